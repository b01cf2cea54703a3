// Tensors, memory management and the autograd engine.
import t from 'tap';
import * as kw from '../lib';

t.test('creation and read-back', async (t) => {
  const x = kw.tensor([[1, 2], [3, 4]]);
  t.same(x.shape, [2, 2]);
  t.equal(x.dtype, 'float32');
  t.same(Array.from(x.data() as Float32Array), [1, 2, 3, 4]);
  t.same(kw.tensor(new Int32Array([1, 2, 3])).toArray(), [1, 2, 3]);
  t.equal(kw.tensor(new BigInt64Array([5n, 6n])).dtype, 'int64');
  t.same(kw.tensor(new Uint8Array([255, 0]), [2, 1]).toArray(), [[255], [0]]);
  t.same(kw.zeros([2, 3]).toArray(), [[0, 0, 0], [0, 0, 0]]);
  t.same(kw.ones([2]).toArray(), [1, 1]);
  t.equal(kw.scalar(3).item(), 3);
  t.throws(() => kw.tensor([[1, 2], [3]]), /rectangular/);
  t.throws(() => kw.tensor([1, 2, 3], [2, 2]), /4 elements|3 elements/);
  t.throws(() => kw.zeros([2, -1]), /non-negative integers/);
  t.throws(() => kw.zeros([1.5]), /non-negative integers/);
  t.throws(() => kw.tensor([1, 2]).item(), /one-element/);
});

t.test('random: seeded, reproducible, right moments', async (t) => {
  const g1 = new kw.Generator(7), g2 = new kw.Generator(7);
  const a = kw.randn([1000], { generator: g1 }).data() as Float32Array;
  const b = kw.randn([1000], { generator: g2 }).data() as Float32Array;
  t.same(Array.from(a), Array.from(b), 'same seed, same numbers');
  const c = kw.randn([1000], { generator: g1 }).data() as Float32Array;
  t.not(a[0], c[0], 'the generator advances');
  const n = kw.randn([100000], { generator: new kw.Generator(1) }).data() as Float32Array;
  const mean = n.reduce((s, v) => s + v, 0) / n.length;
  const varr = n.reduce((s, v) => s + (v - mean) ** 2, 0) / n.length;
  t.ok(Math.abs(mean) < 0.02 && Math.abs(varr - 1) < 0.02, `normal mean ${mean} var ${varr}`);
  const u = kw.rand([100000], { generator: new kw.Generator(2), low: 2, high: 4 }).data() as Float32Array;
  t.ok(u.every((v) => v >= 2 && v < 4), 'uniform in range');
  t.ok(Math.abs(u.reduce((s, v) => s + v, 0) / u.length - 3) < 0.02, 'uniform mean');
  const m = kw.bernoulli([100000], 0.3, { generator: new kw.Generator(3) }).data() as Float32Array;
  t.ok(Math.abs(m.reduce((s, v) => s + v, 0) / m.length - 0.3) < 0.01, 'bernoulli rate');
});

t.test('autograd: accumulation, shared inputs, noGrad, errors', async (t) => {
  const x = kw.tensor([1, 2, 3]);
  x.requiresGrad = true;
  const y = kw.sum(kw.mul(x, x)); // dy/dx = 2x
  y.backward();
  t.same(x.grad!.toArray(), [2, 4, 6]);
  kw.sum(kw.add(x, x)).backward(); // accumulates 2
  t.same(x.grad!.toArray(), [4, 6, 8]);
  const z = kw.noGrad(() => kw.mul(x, x));
  t.equal(z.requiresGrad, false);
  t.throws(() => z.backward(), /does not require grad/);
  const w = kw.mul(x, x);
  t.throws(() => w.backward(), /non-scalar/);
  const l = kw.sum(w);
  l.backward();
  t.throws(() => l.backward(), /second time/);
  // diamond: f = sum(relu(x) * exp(x)) shares x through two paths
  const a = kw.tensor([0.5, -1, 2]);
  a.requiresGrad = true;
  kw.sum(kw.mul(kw.relu(a), kw.exp(a))).backward();
  const want = [0.5, -1, 2].map((v) => (v > 0 ? Math.exp(v) * (1 + v) : 0));
  (a.grad!.toArray() as number[]).forEach((g, i) => t.ok(Math.abs(g - want[i]) < 1e-5, `diamond grad ${i}`));
  // p feeds three ops: its gradient is summed from three buffers, in place into the first
  // (held by nothing else); add(x, x) above returns one buffer twice, which must not be.
  const b = kw.tensor([0.3, -0.7, 1.1]);
  b.requiresGrad = true;
  const p = kw.exp(b);
  kw.sum(kw.add(kw.add(kw.mul(p, p), kw.relu(p)), kw.mul(p, kw.tensor([2, 2, 2])))).backward();
  const wantB = [0.3, -0.7, 1.1].map((v) => Math.exp(v) * (2 * Math.exp(v) + 1 + 2));
  (b.grad!.toArray() as number[]).forEach((g, i) => t.ok(Math.abs(g - wantB[i]) < 1e-4, `three-way grad ${i}: ${g} vs ${wantB[i]}`));
  // A gradient shared elsewhere is not added into: the share keeps its values.
  const kept = b.grad!.share();
  kw.sum(kw.mul(b, kw.tensor([1, 1, 1]))).backward();
  (b.grad!.toArray() as number[]).forEach((g, i) => t.ok(Math.abs(g - wantB[i] - 1) < 1e-4, `accumulated grad ${i}`));
  (kept.toArray() as number[]).forEach((g, i) => t.ok(Math.abs(g - wantB[i]) < 1e-4, `the share still holds the first gradient ${i}`));
});

t.test('memory: dispose, tidy, graph buffers freed after backward', async (t) => {
  const before = kw.memoryStats().liveBytes;
  const x = kw.zeros([1000]);
  t.ok(kw.memoryStats().liveBytes >= before + 4000);
  x.dispose();
  x.dispose(); // twice is fine
  t.equal(kw.memoryStats().liveBytes, before);
  t.throws(() => x.data(), /disposed/);

  const kept = kw.tidy(() => {
    const a = kw.ones([100]);
    const b = kw.add(a, a);
    return kw.mul(b, b);
  });
  t.equal(kw.memoryStats().liveBytes, before + 512, 'only the returned tensor survives tidy (one 512-byte block)');
  kept.dispose();

  const p = kw.randn([64, 32]);
  p.requiresGrad = true;
  const base = kw.memoryStats().liveBytes;
  for (let i = 0; i < 5; i++) {
    kw.tidy(() => {
      const h = kw.relu(kw.matmul(kw.randn([16, 64]), p));
      kw.mean(kw.square(h)).backward();
    });
    p.grad!.dispose();
    p.grad = null;
  }
  t.equal(kw.memoryStats().liveBytes, base, 'a training step leaves nothing behind');
});

t.test('a 200-step training loop of a small conv net keeps native memory flat', async (t) => {
  const g = new kw.Generator(5);
  const w1 = kw.randn([8, 1, 3, 3], { std: 0.3, generator: g }), w2 = kw.randn([16, 8, 3, 3], { std: 0.1, generator: g });
  const fc = kw.randn([10, 16], { std: 0.2, generator: g });
  const gamma = kw.ones([8]), beta = kw.zeros([8]);
  const runMean = kw.zeros([8]), runVar = kw.ones([8]);
  const params = [w1, w2, fc, gamma, beta];
  for (const p of params) p.requiresGrad = true;
  const x = kw.randn([4, 1, 12, 12], { generator: g });
  const y = kw.tensor(new Int32Array([1, 3, 5, 7]));
  const step = () =>
    kw.tidy(() => {
      let h = kw.conv2d(x, w1, null, { padding: 1 });
      h = kw.relu(kw.batchNorm(h, runMean, runVar, gamma, beta, { training: true }));
      h = kw.maxPool2d(h, 2);
      h = kw.relu(kw.conv2d(h, w2, null, { stride: 2, padding: 1 }));
      h = kw.globalAvgPool(h, { keepDims: false });
      const loss = kw.crossEntropy(kw.linear(h, fc), y, { labelSmoothing: 0.1 });
      loss.backward();
      for (const p of params) {
        kw.noGrad(() => kw.sub(p, kw.mulScalar(p.grad!, 0.01))); // an update's temporaries, freed by tidy
        p.grad!.dispose();
        p.grad = null;
      }
      return loss.item();
    });
  const first = step();
  const start = kw.memoryStats().liveBytes;
  let last = first;
  for (let i = 0; i < 200; i++) last = step();
  t.equal(kw.memoryStats().liveBytes, start, 'live native bytes are the same after 200 steps');
  t.ok(Number.isFinite(last), `loss stays finite (${first} → ${last})`);
});
