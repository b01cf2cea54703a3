// Dropout and drop-path: keep rate, scaling, eval identity, reproducible masks, gradients.
import t from 'tap';
import * as kw from '../lib';
import { gradcheck, randomTensor } from './helpers/gradcheck';

t.test('dropout: keep rate and 1/(1-p) scaling', async (t) => {
  const n = 200000;
  for (const p of [0.1, 0.5, 0.8]) {
    const y = kw.dropout(kw.ones([n]), p, { generator: new kw.Generator(1) }).data() as Float32Array;
    let kept = 0;
    let wrongScale = 0;
    for (const v of y) {
      if (v !== 0) kept++;
      if (v !== 0 && Math.abs(v - 1 / (1 - p)) > 1e-6) wrongScale++;
    }
    // binomial std of the rate is sqrt(p(1-p)/n) < 0.0012: allow 5 sigma
    t.ok(Math.abs(kept / n - (1 - p)) < 0.006, `p=${p}: keep rate ${kept / n}`);
    t.equal(wrongScale, 0, `p=${p}: kept values are 1/(1-p)`);
  }
  t.same(kw.dropout(kw.tensor([1, -2, 3]), 1).toArray(), [0, 0, 0], 'p = 1 drops everything');
});

t.test('dropout: eval and p = 0 are the identity; same seed gives the same mask', async (t) => {
  const x = randomTensor([4, 5], 1);
  t.same(kw.dropout(x, 0.5, { training: false }).toArray(), x.toArray());
  t.same(kw.dropout(x, 0).toArray(), x.toArray());
  t.same(kw.dropPath(x, 0.5, { training: false }).toArray(), x.toArray());
  const id = kw.dropout(x, 0.3, { training: false });
  id.dispose();
  t.notOk(x.isDisposed, 'disposing the identity result leaves the input alive');
  const a = kw.dropout(x, 0.5, { generator: new kw.Generator(42) }).toArray();
  const b = kw.dropout(x, 0.5, { generator: new kw.Generator(42) }).toArray();
  const c = kw.dropout(x, 0.5, { generator: new kw.Generator(43) }).toArray();
  t.same(a, b, 'same seed, same mask');
  t.notSame(a, c, 'another seed, another mask');
  const g = new kw.Generator(42);
  const first = kw.dropout(x, 0.5, { generator: g }).toArray();
  const second = kw.dropout(x, 0.5, { generator: g }).toArray();
  t.same(first, a);
  t.notSame(first, second, 'the generator advances between draws');
});

t.test('dropPath: whole samples dropped, kept ones scaled by 1/keep', async (t) => {
  const n = 20000, p = 0.25;
  const y = kw.dropPath(kw.ones([n, 3, 2]), p, { generator: new kw.Generator(5) }).data() as Float32Array;
  let kept = 0, mixed = 0;
  for (let i = 0; i < n; i++) {
    const s = y.subarray(i * 6, i * 6 + 6);
    const allKept = s.every((v) => Math.abs(v - 1 / (1 - p)) < 1e-6), allDropped = s.every((v) => v === 0);
    if (allKept) kept++;
    if (!allKept && !allDropped) mixed++;
  }
  t.equal(mixed, 0, 'every sample is kept or dropped whole');
  t.ok(Math.abs(kept / n - (1 - p)) < 0.016, `keep rate ${kept / n}`); // 5 sigma
  const unscaled = kw.dropPath(kw.ones([8, 2]), 0.5, { generator: new kw.Generator(5), scaleByKeep: false }).data() as Float32Array;
  t.ok(unscaled.every((v) => v === 0 || v === 1), 'scaleByKeep false leaves kept samples as they are');
  t.same(kw.dropPath(kw.ones([3, 2]), 1).toArray(), [[0, 0], [0, 0], [0, 0]], 'p = 1 drops every sample');
});

t.test('dropout / dropPath gradients: the same mask as the forward pass', async (t) => {
  // A fresh generator with a fixed seed per call: every evaluation sees the same mask.
  const r1 = gradcheck((x) => kw.dropout(x, 0.4, { generator: new kw.Generator(3) }), [randomTensor([6, 7], 2)]);
  t.ok(r1.ok, `dropout: ${r1.worst}`);
  const r2 = gradcheck((x) => kw.dropPath(x, 0.4, { generator: new kw.Generator(3) }), [randomTensor([6, 2, 3], 3)]);
  t.ok(r2.ok, `dropPath: ${r2.worst}`);
  const r3 = gradcheck((x) => kw.dropout(x, 0.4, { training: false }), [randomTensor([5], 4)]);
  t.ok(r3.ok, `dropout eval: ${r3.worst}`);
  // dx = mask / keep: with x = 1 the gradient equals the output
  const x = kw.ones([50]);
  x.requiresGrad = true;
  const y = kw.dropout(x, 0.3, { generator: new kw.Generator(9) });
  kw.sum(y).backward();
  t.same(Array.from(x.grad!.data() as Float32Array), Array.from(y.data() as Float32Array));
});

t.test('dropout: bad input gives errors naming the argument', async (t) => {
  const x = kw.ones([3]);
  t.throws(() => kw.dropout(x, 1.5), /'p'/);
  t.throws(() => kw.dropout(x, -0.1), /'p'/);
  t.throws(() => kw.dropout(x, NaN), /'p'/);
  t.throws(() => kw.dropout(x, 0.5, { training: 1 as unknown as boolean }), /'training'/);
  t.throws(() => kw.dropout(x, 0.5, { generator: {} as kw.Generator }), /'generator'/);
  t.throws(() => kw.dropout(null as unknown as kw.Tensor, 0.5), /'x'/);
  t.throws(() => kw.dropPath(kw.scalar(1), 0.5), /'x'/);
  t.throws(() => kw.dropPath(x, 2), /'p'/);
  t.throws(() => kw.dropPath(x, 0.5, { scaleByKeep: 'no' as unknown as boolean }), /'scaleByKeep'/);
});
