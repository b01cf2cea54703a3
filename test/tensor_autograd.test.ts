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

t.test('a 200-step forward/backward loop keeps native memory flat', async (t) => {
  const w1 = kw.randn([32, 16], { std: 0.2 }), w2 = kw.randn([10, 32], { std: 0.2 });
  for (const w of [w1, w2]) w.requiresGrad = true;
  const x = kw.randn([8, 16]);
  const step = () =>
    kw.tidy(() => {
      const h = kw.relu(kw.linear(x, w1));
      const out = kw.linear(h, w2);
      kw.mean(kw.square(out)).backward();
      kw.noGrad(() => {
        for (const w of [w1, w2]) {
          const upd = kw.sub(w, kw.mulScalar(w.grad!, 0.01));
          w.grad!.dispose();
          w.grad = null;
          return upd;
        }
      });
    });
  step();
  const start = kw.memoryStats().liveBytes;
  for (let i = 0; i < 200; i++) step();
  t.equal(kw.memoryStats().liveBytes, start);
});
