// Softmax, log-softmax, cross-entropy and NLL: forward against naive JS references and hand
// values, gradients by finite differences, errors naming the argument.
import t from 'tap';
import * as kw from '../lib';
import { gradcheck, maxAbsDiff, randomData, randomTensor } from './helpers/gradcheck';

function logSoftmaxRows(x: ArrayLike<number>, n: number, c: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < n; i++) {
    const row = Array.from({ length: c }, (_, k) => x[i * c + k]);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
    out.push(row.map((v) => v - lse));
  }
  return out;
}

function reduce(rows: number[], reduction: string, count = rows.length): number[] {
  const s = rows.reduce((a, v) => a + v, 0);
  return reduction === 'none' ? rows : [reduction === 'sum' ? s : s / count];
}

t.test('softmax / logSoftmax: hand values and stability', async (t) => {
  t.ok(maxAbsDiff(kw.softmax(kw.tensor([0, Math.LN2])).data() as Float32Array, [1 / 3, 2 / 3]) < 1e-7);
  t.ok(maxAbsDiff(kw.logSoftmax(kw.tensor([0, Math.LN2])).data() as Float32Array, [Math.log(1 / 3), Math.log(2 / 3)]) < 1e-6);
  // huge logits: no overflow
  t.ok(maxAbsDiff(kw.softmax(kw.tensor([1000, 1000 + Math.LN2])).data() as Float32Array, [1 / 3, 2 / 3]) < 1e-4);
  t.ok(maxAbsDiff(kw.logSoftmax(kw.tensor([-1000, 0])).data() as Float32Array, [-1000, 0]) < 1e-3);
  t.same(kw.softmax(kw.tensor([[1, 1], [5, 5]]), 1).toArray(), [[0.5, 0.5], [0.5, 0.5]]);
  const cols = kw.softmax(kw.tensor([[0, 1], [Math.LN2, 1]]), 0);
  t.ok(maxAbsDiff(cols.data() as Float32Array, [1 / 3, 0.5, 2 / 3, 0.5]) < 1e-7, `axis 0: ${cols.toArray()}`);
});

t.test('softmax / logSoftmax along any axis against a naive reference', async (t) => {
  const shape = [3, 4, 70]; // inner 70 spans more than one of the kernel's 64-wide blocks
  const xd = randomData(shape, 1, 5);
  const x = kw.tensor(xd, shape);
  for (const axis of [0, 1, 2, -1]) {
    const a = axis < 0 ? axis + 3 : axis;
    const outer = shape.slice(0, a).reduce((p, q) => p * q, 1), r = shape[a], inner = shape.slice(a + 1).reduce((p, q) => p * q, 1);
    const want: number[] = new Array(xd.length);
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) {
        const idx = (k: number) => (o * r + k) * inner + i;
        let m = -Infinity;
        for (let k = 0; k < r; k++) m = Math.max(m, xd[idx(k)]);
        let s = 0;
        for (let k = 0; k < r; k++) s += Math.exp(xd[idx(k)] - m);
        for (let k = 0; k < r; k++) want[idx(k)] = Math.exp(xd[idx(k)] - m) / s;
      }
    t.ok(maxAbsDiff(kw.softmax(x, axis).data() as Float32Array, want) < 1e-6, `softmax axis ${axis}`);
    t.ok(maxAbsDiff(kw.logSoftmax(x, axis).data() as Float32Array, want.map(Math.log)) < 1e-5, `logSoftmax axis ${axis}`);
  }
});

t.test('softmax / logSoftmax gradients', async (t) => {
  for (const axis of [0, 1, -1]) {
    const x = randomTensor([3, 4, 5], 2, 2);
    const a = gradcheck((v) => kw.softmax(v, axis), [x], { eps: 1e-3 });
    t.ok(a.ok, `softmax axis ${axis}: ${a.worst}`);
    const b = gradcheck((v) => kw.logSoftmax(v, axis), [x], { eps: 1e-3 });
    t.ok(b.ok, `logSoftmax axis ${axis}: ${b.worst}`);
  }
});

t.test('crossEntropy with class indices: hand value, reductions, int32/int64, ignoreIndex', async (t) => {
  // row 0: logits [0, 0], class 0 -> log 2; row 1: [1, 2], class 1 -> log(1 + e^-1)
  const l = kw.tensor([[0, 0], [1, 2]]);
  const hand = [Math.LN2, Math.log(1 + Math.exp(-1))];
  const i32 = kw.tensor(new Int32Array([0, 1]), [2]);
  const i64 = kw.tensor(new BigInt64Array([0n, 1n]), [2]);
  t.ok(Math.abs(kw.crossEntropy(l, i32).item() - (hand[0] + hand[1]) / 2) < 1e-6, 'mean');
  t.ok(Math.abs(kw.crossEntropy(l, i64, { reduction: 'sum' }).item() - (hand[0] + hand[1])) < 1e-6, 'sum, int64');
  const none = kw.crossEntropy(l, i32, { reduction: 'none' });
  t.same(none.shape, [2]);
  t.ok(maxAbsDiff(none.data() as Float32Array, hand) < 1e-6, 'none');
  t.same(kw.crossEntropy(l, i32).shape, []);

  const n = 6, c = 5;
  const xd = randomData([n, c], 3, 3);
  const target = [4, 0, -100, 2, 2, 1];
  const logp = logSoftmaxRows(xd, n, c);
  const kept = target.map((v, i) => (v === -100 ? 0 : -logp[i][v]));
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    const got = kw.crossEntropy(kw.tensor(xd, [n, c]), kw.tensor(new Int32Array(target), [n]), { reduction });
    t.ok(maxAbsDiff(got.data() as Float32Array, reduce(kept, reduction, 5)) < 1e-5, `ignoreIndex -100, ${reduction}`);
  }
  const ig = kw.crossEntropy(kw.tensor(xd, [n, c]), kw.tensor(new Int32Array([4, 0, 3, 2, 2, 1]), [n]), { ignoreIndex: 2 });
  t.ok(Math.abs(ig.item() - (-logp[0][4] - logp[1][0] - logp[2][3] - logp[5][1]) / 4) < 1e-5, 'ignoreIndex 2 (a real class)');
  t.ok(Number.isNaN(kw.crossEntropy(l, kw.tensor(new Int32Array([-100, -100]), [2])).item()), 'mean over no rows is NaN, as PyTorch');
});

t.test('crossEntropy with label smoothing: (1-ε)·nll + ε·mean_c(-log p_c)', async (t) => {
  const n = 4, c = 3;
  const xd = randomData([n, c], 4, 3);
  const target = [2, 0, 1, -100];
  const logp = logSoftmaxRows(xd, n, c);
  for (const eps of [0.1, 0.4, 1]) {
    const rows = target.map((v, i) => (v === -100 ? 0 : (1 - eps) * -logp[i][v] + (eps * logp[i].reduce((a, q) => a - q, 0)) / c));
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      const got = kw.crossEntropy(kw.tensor(xd, [n, c]), kw.tensor(new Int32Array(target), [n]), { labelSmoothing: eps, reduction });
      t.ok(maxAbsDiff(got.data() as Float32Array, reduce(rows, reduction, 3)) < 1e-5, `ε=${eps} ${reduction}`);
    }
  }
  // hand value: logits [0, 0] with ε: every -log p is log 2, so the loss is log 2 for any ε
  t.ok(Math.abs(kw.crossEntropy(kw.tensor([[0, 0]]), kw.tensor(new Int32Array([1]), [1]), { labelSmoothing: 0.3 }).item() - Math.LN2) < 1e-6);
});

t.test('crossEntropy with soft targets (SoftTargetCrossEntropy)', async (t) => {
  const n = 4, c = 5;
  const xd = randomData([n, c], 5, 3);
  const td = randomData([n, c], 6).map((v) => Math.abs(v));
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < c; k++) s += td[i * c + k];
    for (let k = 0; k < c; k++) td[i * c + k] /= s;
  }
  const logp = logSoftmaxRows(xd, n, c);
  const rows = logp.map((r, i) => r.reduce((a, q, k) => a - td[i * c + k] * q, 0));
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    const got = kw.crossEntropy(kw.tensor(xd, [n, c]), kw.tensor(td, [n, c]), { reduction });
    t.ok(maxAbsDiff(got.data() as Float32Array, reduce(rows, reduction)) < 1e-5, `soft ${reduction}`);
  }
  // one-hot probabilities equal class indices
  const onehot = new Float32Array(n * c);
  [3, 1, 0, 4].forEach((k, i) => (onehot[i * c + k] = 1));
  const a = kw.crossEntropy(kw.tensor(xd, [n, c]), kw.tensor(onehot, [n, c]), { labelSmoothing: 0.2 }).item();
  const b = kw.crossEntropy(kw.tensor(xd, [n, c]), kw.tensor(new Int32Array([3, 1, 0, 4]), [n]), { labelSmoothing: 0.2 }).item();
  t.ok(Math.abs(a - b) < 1e-5, `one-hot soft target ${a} = class index target ${b} (with smoothing)`);
});

t.test('crossEntropy and nllLoss gradients', async (t) => {
  const x = randomTensor([5, 4], 7, 2);
  const hard = kw.tensor(new Int32Array([3, 0, 1, 1, 2]), [5]);
  const withIgnored = kw.tensor(new BigInt64Array([3n, -100n, 1n, 1n, 2n]), [5]);
  const soft = kw.softmax(randomTensor([5, 4], 8, 2));
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    for (const [name, target, eps] of [
      ['hard', hard, 0], ['hard smoothed', hard, 0.2], ['ignored rows', withIgnored, 0.1], ['soft', soft, 0], ['soft smoothed', soft, 0.3],
    ] as [string, kw.Tensor, number][]) {
      const r = gradcheck((v) => kw.crossEntropy(v, target, { labelSmoothing: eps, reduction }), [x], { eps: 1e-3 });
      t.ok(r.ok, `crossEntropy ${name} ${reduction}: ${r.worst}`);
    }
    const st = gradcheck((v, tt) => kw.crossEntropy(v, tt, { labelSmoothing: 0.1, reduction }), [x, soft], { eps: 1e-3 });
    t.ok(st.ok, `crossEntropy soft, gradient to the target too, ${reduction}: ${st.worst}`);
    const nl = gradcheck((v) => kw.nllLoss(v, withIgnored, { reduction }), [x], { eps: 1e-3 });
    t.ok(nl.ok, `nllLoss ${reduction}: ${nl.worst}`);
  }
});

t.test('nllLoss: crossEntropy(x, t) = nllLoss(logSoftmax(x, 1), t)', async (t) => {
  const x = randomTensor([6, 3], 9, 3);
  const tg = kw.tensor(new Int32Array([0, 2, 1, -100, 2, 0]), [6]);
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    const a = kw.crossEntropy(x, tg, { reduction }).data() as Float32Array;
    const b = kw.nllLoss(kw.logSoftmax(x, 1), tg, { reduction }).data() as Float32Array;
    t.ok(maxAbsDiff(a, b) < 1e-5, reduction);
  }
  t.ok(Math.abs(kw.nllLoss(kw.tensor([[-1, -2], [-3, -4]]), kw.tensor(new Int32Array([1, 0]), [2])).item() - 2.5) < 1e-6, 'hand value');
});

t.test('losses: bad input gives errors naming the argument', async (t) => {
  const x = kw.zeros([3, 4]);
  const tg = kw.tensor(new Int32Array([0, 1, 2]), [3]);
  t.throws(() => kw.softmax(x, 2), /'axis'/);
  t.throws(() => kw.softmax(kw.zeros([2], 'int32')), /'x'/);
  t.throws(() => kw.crossEntropy(kw.zeros([3]), tg), /'logits'/);
  t.throws(() => kw.crossEntropy(x, kw.tensor(new Int32Array([0, 1]), [2])), /'target'/);
  t.throws(() => kw.crossEntropy(x, kw.zeros([3, 5])), /'target'/);
  t.throws(() => kw.crossEntropy(x, kw.zeros([3], 'uint8')), /'target'/);
  t.throws(() => kw.crossEntropy(x, kw.tensor(new Int32Array([0, 4, 1]), [3])), /'target' holds class 4 at row 1/);
  t.throws(() => kw.crossEntropy(x, kw.tensor(new BigInt64Array([0n, -1n, 1n]), [3])), /'target' holds class -1/);
  t.throws(() => kw.crossEntropy(x, tg, { labelSmoothing: 1.5 }), /'labelSmoothing'/);
  t.throws(() => kw.crossEntropy(x, tg, { reduction: 'avg' as 'mean' }), /'reduction'/);
  t.throws(() => kw.crossEntropy(x, tg, { ignoreIndex: 0.5 }), /'ignoreIndex'/);
  t.throws(() => kw.nllLoss(x, kw.zeros([3, 4])), /'target'/);
  t.throws(() => kw.nllLoss(x, kw.tensor(new Int32Array([9, 0, 0]), [3])), /'target'/);
  const { native } = await import('../lib/native');
  t.throws(() => native.crossEntropy(x.storage, 3, 5, tg.storage, 0, 1, -100), /'logits' holds 12 elements/);
  t.throws(() => native.softmax(x.storage, 2, 4, 2, false), /'x' holds 12/);
  t.throws(() => native.crossEntropyBackward(x.storage, kw.zeros([3]).storage, 3, 4, tg.storage, 0, 0, -100, kw.zeros([1]).storage), /'dy'/);
});
