// Optimizer steps against hand-computed PyTorch formulas.
import t from 'tap';
import * as kw from '../lib';
import { SGD, Adam, AdamW, clipGradNorm } from '../lib/train/optim';

function param(values: number[], grad: number[]): kw.Tensor {
  const p = kw.tensor(values);
  p.requiresGrad = true;
  p.grad = kw.tensor(grad);
  return p;
}
const close = (t: { ok(v: boolean, msg: string): void }, got: kw.Tensor, want: number[], msg: string) =>
  t.ok((got.toArray() as number[]).every((v, i) => Math.abs(v - want[i]) < 1e-6), `${msg}: ${got.toArray()} vs ${want}`);

t.test('SGD: plain, weight decay, momentum, nesterov', async (t) => {
  const p = param([1, -2], [0.5, 0.25]);
  new SGD([p], { lr: 0.1 }).step();
  close(t, p, [1 - 0.05, -2 - 0.025], 'plain');

  const q = param([1, -2], [0.5, 0.25]);
  new SGD([q], { lr: 0.1, weightDecay: 0.01 }).step(); // d = g + 0.01·p
  close(t, q, [1 - 0.1 * 0.51, -2 - 0.1 * (0.25 - 0.02)], 'weight decay');

  // momentum 0.9, two steps with the same grad g: buf1 = g, buf2 = 0.9·g + g = 1.9g
  const r = param([1], [1]);
  const opt = new SGD([r], { lr: 0.1, momentum: 0.9 });
  opt.step();
  opt.step();
  close(t, r, [1 - 0.1 - 0.19], 'momentum');

  // nesterov: d = g + m·buf: step 1 buf = g → d = 1.9g; step 2 buf = 1.9g → d = g + 1.71g = 2.71g
  const n = param([1], [1]);
  const nopt = new SGD([n], { lr: 0.1, momentum: 0.9, nesterov: true });
  nopt.step();
  nopt.step();
  close(t, n, [1 - 0.19 - 0.271], 'nesterov');
  t.throws(() => new SGD([n], { lr: 0.1, nesterov: true }), /nesterov/);
});

// Every SGD kernel variant (decay on/off, momentum, dampening, nesterov) on a tensor large enough
// to be split across threads, three steps, against a float32 loop of torch's formulas.
t.test('SGD variants on a multi-chunk tensor match a float32 reference', async (t) => {
  const f = Math.fround;
  const n = 50000;
  const cases = [
    { lr: 0.1 },
    { lr: 0.1, weightDecay: 0.01 },
    { lr: 0.05, momentum: 0.9 },
    { lr: 0.05, momentum: 0.8, dampening: 0.3, weightDecay: 0.02 },
    { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.001 },
  ];
  for (const o of cases) {
    const p0 = Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 2);
    const p = kw.tensor(p0);
    p.requiresGrad = true;
    const opt = new SGD([p], o);
    const ref = Float32Array.from(p0);
    const buf = new Float32Array(n);
    const mom = o.momentum ?? 0, damp = o.dampening ?? 0, wd = o.weightDecay ?? 0;
    for (let step = 0; step < 3; step++) {
      const g = Array.from({ length: n }, (_, i) => Math.cos(i * 0.11 + step));
      p.grad = kw.tensor(g);
      opt.step();
      for (let i = 0; i < n; i++) {
        let d = f(g[i]);
        if (wd !== 0) d = f(d + f(f(wd) * ref[i]));
        if (mom !== 0) {
          const b = step === 0 ? d : f(f(f(mom) * buf[i]) + f(f(1 - damp) * d));
          buf[i] = b;
          d = o.nesterov ? f(d + f(f(mom) * b)) : b;
        }
        ref[i] = f(ref[i] - f(f(o.lr) * d));
      }
    }
    const got = p.toArray() as number[];
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]));
    t.ok(worst < 1e-6, `${JSON.stringify(o)}: worst |diff| ${worst}`);
  }
});

t.test('Adam and AdamW: first steps', async (t) => {
  // step 1: m = 0.1g, v = 0.001g², m̂ = g, v̂ = g² → p -= lr·g/(|g| + eps)
  const p = param([1, 2], [0.5, -4]);
  new Adam([p], { lr: 0.01 }).step();
  close(t, p, [1 - 0.01 * 0.5 / (0.5 + 1e-8), 2 + 0.01 * 4 / (4 + 1e-8)], 'adam step 1');

  const q = param([1], [0.5]);
  new AdamW([q], { lr: 0.01, weightDecay: 0.1 }).step(); // p·(1 − lr·wd) first
  close(t, q, [1 * (1 - 0.001) - 0.01 * 0.5 / (0.5 + 1e-8)], 'adamw step 1');

  // two steps with grads 1 then 2 (betas 0.9, 0.999)
  const r = param([0], [1]);
  const opt = new Adam([r], { lr: 0.1 });
  opt.step();
  r.grad = kw.tensor([2]);
  opt.step();
  const m = 0.9 * 0.1 + 0.1 * 2, v = 0.999 * 0.001 + 0.001 * 4;
  const want = -0.1 - (0.1 / (1 - 0.81)) * m / (Math.sqrt(v) / Math.sqrt(1 - 0.999 ** 2) + 1e-8);
  close(t, r, [want], 'adam step 2');
});

t.test('groups, zeroGrad, clipGradNorm', async (t) => {
  const a = param([1], [1]), b = param([1], [1]);
  const opt = new SGD([{ params: [a], weightDecay: 0 }, { params: [b], weightDecay: 0.5 }], { lr: 1 });
  opt.step();
  close(t, a, [0], 'group without decay');
  close(t, b, [1 - 1.5], 'group with decay');
  opt.zeroGrad();
  t.equal(a.grad, null);
  const c = param([0, 0], [3, 4]);
  t.equal(clipGradNorm([c], 1), 5);
  close(t, c.grad!, [0.6, 0.8], 'clipped to norm 1');
});

t.test('optimizer state survives tidy() and round-trips through stateDict', async (t) => {
  const p = param([1, 2], [0.5, -1]);
  const opt = new AdamW([p], { lr: 0.1 });
  kw.tidy(() => opt.step());
  const { tensors, meta } = opt.stateDict();
  const m = tensors.get('0.exp_avg')!.toArray() as number[];
  t.ok(Math.abs(m[0] - 0.05) < 1e-7 && Math.abs(m[1] + 0.1) < 1e-7, `exp_avg after one step = 0.1·g: ${m}`);
  // a fresh optimizer on a copy of the stepped parameters, given the saved state, continues identically
  const q = param(p.toArray() as number[], [0.5, -1]);
  const opt2 = new AdamW([q], { lr: 0.1 });
  opt2.loadStateDict(tensors, meta);
  opt.step();
  opt2.step();
  t.same(q.toArray(), p.toArray(), 'same parameters after a step from restored state');
  const s = param([1], [1]);
  const sgd = new SGD([s], { lr: 0.1, momentum: 0.9 });
  kw.tidy(() => sgd.step());
  t.same(sgd.momentumBuffer(s)!.toArray(), [1], 'momentum buffer alive after tidy');
});
