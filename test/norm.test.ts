// Batch norm and layer norm: forward against naive JS references and hand values, running
// statistics against hand-computed updates, gradients by finite differences.
import t from 'tap';
import * as kw from '../lib';
import { gradcheck, maxAbsDiff, randomData, randomTensor } from './helpers/gradcheck';

/** Naive batch norm on x [N, C, S] (flat), using the given per-channel mean/var. */
function bnRef(x: ArrayLike<number>, n: number, c: number, s: number, mean: number[], variance: number[], eps: number,
               w?: ArrayLike<number>, b?: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++)
    for (let ch = 0; ch < c; ch++)
      for (let j = 0; j < s; j++) {
        const v = x[(i * c + ch) * s + j];
        out.push(((v - mean[ch]) / Math.sqrt(variance[ch] + eps)) * (w ? w[ch] : 1) + (b ? b[ch] : 0));
      }
  return out;
}

function batchStats(x: ArrayLike<number>, n: number, c: number, s: number): { mean: number[]; biased: number[]; unbiased: number[] } {
  const mean: number[] = [], biased: number[] = [], unbiased: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    const vals: number[] = [];
    for (let i = 0; i < n; i++) for (let j = 0; j < s; j++) vals.push(x[(i * c + ch) * s + j]);
    const m = vals.reduce((a, v) => a + v, 0) / vals.length;
    const ss = vals.reduce((a, v) => a + (v - m) ** 2, 0);
    mean.push(m);
    biased.push(ss / vals.length);
    unbiased.push(ss / (vals.length - 1));
  }
  return { mean, biased, unbiased };
}

t.test('batchNorm training: running statistics updated in place by hand-computed values', async (t) => {
  // channel 0 holds 1, 3: mean 2, biased var 1, unbiased var 2
  // channel 1 holds 2, 6: mean 4, biased var 4, unbiased var 8
  const x = kw.tensor([[1, 2], [3, 6]]);
  const rm = kw.zeros([2]), rv = kw.ones([2]);
  const y = kw.batchNorm(x, rm, rv, null, null, { training: true, eps: 0 });
  t.ok(maxAbsDiff(y.data() as Float32Array, [-1, -1, 1, 1]) < 1e-6, `y ${y.toArray()}`);
  t.ok(maxAbsDiff(rm.data() as Float32Array, [0.2, 0.4]) < 1e-6, `running mean ${rm.toArray()}`); // 0.9·0 + 0.1·mean
  t.ok(maxAbsDiff(rv.data() as Float32Array, [1.1, 1.7]) < 1e-6, `running var ${rv.toArray()}`); // 0.9·1 + 0.1·unbiased
  // A second step with momentum 0.5 accumulates on the updated buffers.
  kw.batchNorm(x, rm, rv, null, null, { training: true, momentum: 0.5 });
  t.ok(maxAbsDiff(rm.data() as Float32Array, [1.1, 2.2]) < 1e-6, `running mean ${rm.toArray()}`);
  t.ok(maxAbsDiff(rv.data() as Float32Array, [1.55, 4.85]) < 1e-6, `running var ${rv.toArray()}`);
  // A tensor sharing the buffer's storage sees the update (it is in place, not a new tensor).
  const alias = kw.reshape(rm, [1, 2]);
  kw.batchNorm(x, rm, rv, null, null, { training: true, momentum: 1 });
  t.same(alias.toArray(), [[2, 4]]);
});

t.test('batchNorm forward (1d, 2d, 3d) against a naive reference', async (t) => {
  for (const shape of [[5, 3], [4, 3, 7], [2, 3, 4, 5], [2, 2, 2, 3, 2]]) {
    const [n, c] = shape;
    const s = shape.slice(2).reduce((a, b) => a * b, 1);
    const xd = randomData(shape, 1, 3).map((v, i) => v + (i % 3)); // offset means
    const x = kw.tensor(xd, shape);
    const w = randomTensor([c], 2), b = randomTensor([c], 3);
    const rmInit = randomData([c], 4), rvInit = randomData([c], 5).map((v) => v + 1.5);
    const rm = kw.tensor(rmInit.slice(), [c]), rv = kw.tensor(rvInit.slice(), [c]);
    const st = batchStats(xd, n, c, s);

    const y = kw.batchNorm(x, rm, rv, w, b, { training: true, momentum: 0.3, eps: 1e-5 });
    const want = bnRef(xd, n, c, s, st.mean, st.biased, 1e-5, w.data() as Float32Array, b.data() as Float32Array);
    t.ok(maxAbsDiff(y.data() as Float32Array, want) < 1e-4, `train ${JSON.stringify(shape)}`);
    t.ok(maxAbsDiff(rm.data() as Float32Array, [...rmInit].map((v, k) => 0.7 * v + 0.3 * st.mean[k])) < 1e-5, 'running mean');
    t.ok(maxAbsDiff(rv.data() as Float32Array, [...rvInit].map((v, k) => 0.7 * v + 0.3 * st.unbiased[k])) < 1e-5, 'running var');

    const rmNow = Array.from(rm.data() as Float32Array), rvNow = Array.from(rv.data() as Float32Array);
    const ye = kw.batchNorm(x, rm, rv, w, b, { eps: 1e-3 });
    const wantE = bnRef(xd, n, c, s, rmNow, rvNow, 1e-3, w.data() as Float32Array, b.data() as Float32Array);
    t.ok(maxAbsDiff(ye.data() as Float32Array, wantE) < 1e-4, `eval ${JSON.stringify(shape)}`);
    t.same(Array.from(rm.data() as Float32Array), rmNow, 'eval leaves the running mean alone');
    t.same(Array.from(rv.data() as Float32Array), rvNow, 'eval leaves the running var alone');

    // Without running statistics (track_running_stats=False) training still normalises.
    const y0 = kw.batchNorm(x, null, null, null, null, { training: true });
    t.ok(maxAbsDiff(y0.data() as Float32Array, bnRef(xd, n, c, s, st.mean, st.biased, 1e-5)) < 1e-4, 'no running stats');
  }
});

t.test('norm statistics keep their precision on inputs far from zero', async (t) => {
  // float32 one-pass variance (E[x²] - E[x]²) would lose every digit here; PyTorch keeps them.
  const xd = randomData([64, 2, 3], 50).map((v) => 1000 + v);
  const st = batchStats(xd, 64, 2, 3);
  const y = kw.batchNorm(kw.tensor(xd, [64, 2, 3]), null, null, null, null, { training: true });
  t.ok(maxAbsDiff(y.data() as Float32Array, bnRef(xd, 64, 2, 3, st.mean, st.biased, 1e-5)) < 2e-3, 'batchNorm');
  const xr = randomData([4, 256], 51).map((v) => 1000 + v);
  const yl = kw.layerNorm(kw.tensor(xr, [4, 256]), null, null);
  t.ok(maxAbsDiff(yl.data() as Float32Array, lnRef(xr, 4, 256, 1, 1e-6)) < 2e-3, 'layerNorm');
});

t.test('batchNorm gradients by finite differences (train and eval, 1d and 2d)', async (t) => {
  for (const shape of [[6, 3], [3, 2, 3, 2]]) {
    const c = shape[1];
    const x = randomTensor(shape, 10, 2);
    const w = kw.addScalar(randomTensor([c], 11), 1.5), b = randomTensor([c], 12);
    const rm = randomTensor([c], 13), rv = kw.addScalar(kw.abs(randomTensor([c], 14)), 0.5);
    const train = gradcheck((xx, ww, bb) => kw.batchNorm(xx, null, null, ww, bb, { training: true }), [x, w, b], { eps: 1e-3 });
    t.ok(train.ok, `train ${JSON.stringify(shape)}: ${train.worst}`);
    const trainRs = gradcheck((xx) => kw.batchNorm(xx, kw.zeros([c]), kw.ones([c]), null, null, { training: true }), [x], { eps: 1e-3 });
    t.ok(trainRs.ok, `train, no affine ${JSON.stringify(shape)}: ${trainRs.worst}`);
    const evalR = gradcheck((xx, ww, bb) => kw.batchNorm(xx, rm, rv, ww, bb, { training: false }), [x, w, b], { eps: 1e-3 });
    t.ok(evalR.ok, `eval ${JSON.stringify(shape)}: ${evalR.worst}`);
  }
});

t.test('batchNorm with relu: equal to relu(batchNorm) forward and in every gradient, and by finite differences', async (t) => {
  // Compared with the composition: same statistics, same affine map, relu's mask at the same
  // values; the fused backward recomputes the mask from x, weight and bias.
  for (const [shape, training, affine] of [[[4, 3, 5, 6], true, true], [[4, 3, 5, 6], false, true],
    [[6, 5], true, false], [[2, 4, 3, 3, 2], true, true]] as [number[], boolean, boolean][]) {
    const c = shape[1];
    const run = (fused: boolean, need: { x: boolean; wb: boolean }) => {
      const x = randomTensor(shape, 21, 2);
      const w = affine ? kw.addScalar(randomTensor([c], 22), 0.5) : null, b = affine ? randomTensor([c], 23) : null;
      const rm = randomTensor([c], 24), rv = kw.addScalar(kw.abs(randomTensor([c], 25)), 0.5);
      x.requiresGrad = need.x;
      if (w && b) w.requiresGrad = b.requiresGrad = need.wb;
      const opts = { training, momentum: 0.2 };
      const y = fused ? kw.batchNorm(x, rm, rv, w, b, { ...opts, relu: true }) : kw.relu(kw.batchNorm(x, rm, rv, w, b, opts));
      const dy = kw.tensor(randomData(shape, 26), shape);
      if (need.x || (affine && need.wb)) kw.backward(kw.sum(kw.mul(y, dy)));
      return [y, x.grad, w?.grad, b?.grad, rm, rv].map((v) => (v ? Array.from(v.data() as Float32Array) : null));
    };
    for (const need of [{ x: true, wb: true }, { x: false, wb: true }, { x: true, wb: false }]) {
      if (!affine && !need.x) continue;
      const got = run(true, need), want = run(false, need);
      const what = `${JSON.stringify(shape)} ${training ? 'train' : 'eval'}${affine ? '' : ', no affine'}, grads ${need.x ? 'x' : ''}${need.wb ? ' w b' : ''}`;
      ['y', 'dx', 'dweight', 'dbias', 'runningMean', 'runningVar'].forEach((name, i) => {
        t.equal(got[i] === null, want[i] === null, `${what}: ${name} present alike`);
        if (got[i] && want[i]) t.ok(maxAbsDiff(got[i]!, want[i]!) < 1e-5, `${what}: ${name} ${maxAbsDiff(got[i]!, want[i]!)}`);
      });
    }
  }
  const x = randomTensor([3, 2, 3, 2], 31, 2), w = kw.addScalar(randomTensor([2], 32), 1.5), b = randomTensor([2], 33);
  const r = gradcheck((xx, ww, bb) => kw.batchNorm(xx, null, null, ww, bb, { training: true, relu: true }), [x, w, b], { eps: 1e-3 });
  t.ok(r.ok, `finite differences: ${r.worst}`);
  t.throws(() => kw.batchNorm(x, null, null, w, b, { training: true, relu: 1 as never }), /relu/);
});

/** Naive layer norm over the C axis of [outer, C, inner]. */
function lnRef(x: ArrayLike<number>, outer: number, c: number, inner: number, eps: number,
               w?: ArrayLike<number>, b?: ArrayLike<number>): number[] {
  const out = new Array<number>(outer * c * inner);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let u = 0;
      for (let k = 0; k < c; k++) u += x[(o * c + k) * inner + i];
      u /= c;
      let s = 0;
      for (let k = 0; k < c; k++) s += (x[(o * c + k) * inner + i] - u) ** 2;
      s /= c;
      for (let k = 0; k < c; k++) {
        const j = (o * c + k) * inner + i;
        out[j] = ((x[j] - u) / Math.sqrt(s + eps)) * (w ? w[k] : 1) + (b ? b[k] : 0);
      }
    }
  return out;
}

t.test('layerNorm forward: channels-last and channels-first against a naive reference', async (t) => {
  // Hand value: [1, 3] normalises to [-1, 1] (eps 0).
  t.ok(maxAbsDiff(kw.layerNorm(kw.tensor([[1, 3]]), null, null, { eps: 0 }).data() as Float32Array, [-1, 1]) < 1e-6);
  const w = randomTensor([5], 20), b = randomTensor([5], 21);
  const xl = randomData([2, 3, 5], 22, 4);
  const yl = kw.layerNorm(kw.tensor(xl, [2, 3, 5]), w, b);
  t.ok(maxAbsDiff(yl.data() as Float32Array, lnRef(xl, 6, 5, 1, 1e-6, w.data() as Float32Array, b.data() as Float32Array)) < 1e-4, 'channels-last');
  const yl2 = kw.layerNorm(kw.tensor(xl, [2, 3, 5]), null, null, { eps: 1e-5 });
  t.ok(maxAbsDiff(yl2.data() as Float32Array, lnRef(xl, 6, 5, 1, 1e-5)) < 1e-4, 'channels-last, no affine');
  // channels-first [N, C, H, W] with H·W above the kernel's 64-wide block
  const xf = randomData([2, 5, 9, 8], 23, 4).map((v) => v + 10);
  const yf = kw.layerNorm(kw.tensor(xf, [2, 5, 9, 8]), w, b, { channelsFirst: true });
  t.ok(maxAbsDiff(yf.data() as Float32Array, lnRef(xf, 2, 5, 72, 1e-6, w.data() as Float32Array, b.data() as Float32Array)) < 1e-4, 'channels-first');
});

t.test('layerNorm gradients by finite differences', async (t) => {
  const w = kw.addScalar(randomTensor([4], 30), 1), b = randomTensor([4], 31);
  const cl = gradcheck((x, ww, bb) => kw.layerNorm(x, ww, bb), [randomTensor([3, 4], 32, 2), w, b], { eps: 1e-3 });
  t.ok(cl.ok, `channels-last: ${cl.worst}`);
  const cl3 = gradcheck((x) => kw.layerNorm(x, null, null, { eps: 1e-5 }), [randomTensor([2, 3, 4], 33, 2)], { eps: 1e-3 });
  t.ok(cl3.ok, `channels-last 3d, no affine: ${cl3.worst}`);
  const cf = gradcheck((x, ww, bb) => kw.layerNorm(x, ww, bb, { channelsFirst: true }), [randomTensor([2, 4, 3, 2], 34, 2), w, b], { eps: 1e-3 });
  t.ok(cf.ok, `channels-first: ${cf.worst}`);
  const cfw = gradcheck((x, ww) => kw.layerNorm(x, ww, null, { channelsFirst: true }), [randomTensor([2, 4, 3, 2], 35, 2), w], { eps: 1e-3 });
  t.ok(cfw.ok, `channels-first, weight only: ${cfw.worst}`);
});

t.test('norm backward: only the gradients that are needed, and the sums over the batch', async (t) => {
  // With a constant upstream gradient of 1, dbias = the count per channel and dx = 0 (train).
  const x = randomTensor([4, 3, 2, 2], 40);
  const w = kw.ones([3]), b = kw.zeros([3]);
  w.requiresGrad = true;
  b.requiresGrad = true;
  kw.sum(kw.batchNorm(x, null, null, w, b, { training: true })).backward();
  t.same(b.grad!.toArray(), [16, 16, 16]);
  t.ok(Math.abs((w.grad!.data() as Float32Array)[0]) < 1e-4, 'Σ x̂ = 0 per channel');
  const xl = randomTensor([3, 5], 41);
  xl.requiresGrad = true;
  kw.sum(kw.layerNorm(xl, null, null)).backward();
  t.ok(maxAbsDiff(xl.grad!.data() as Float32Array, new Array(15).fill(0)) < 1e-5, 'a constant gradient is projected out');
});

t.test('norm: bad input gives errors naming the argument', async (t) => {
  const x = kw.zeros([4, 3]);
  t.throws(() => kw.batchNorm(kw.zeros([4]), null, null, null, null, { training: true }), /'x'/);
  t.throws(() => kw.batchNorm(x, kw.zeros([2]), kw.ones([3]), null, null), /'runningMean'/);
  t.throws(() => kw.batchNorm(x, kw.zeros([3]), kw.ones([2]), null, null), /'runningVar'/);
  t.throws(() => kw.batchNorm(x, null, null, kw.ones([4]), null, { training: true }), /'weight'/);
  t.throws(() => kw.batchNorm(x, null, null, null, kw.ones([4]), { training: true }), /'bias'/);
  t.throws(() => kw.batchNorm(x, null, null, null, null), /'runningMean'.*eval/);
  t.throws(() => kw.batchNorm(x, kw.zeros([3]), null, null, null, { training: true }), /'runningVar'/);
  t.throws(() => kw.batchNorm(kw.zeros([1, 3]), null, null, null, null, { training: true }), /'x'.*more than 1 value/);
  t.throws(() => kw.batchNorm(x, null, null, null, null, { training: true, eps: -1 }), /'eps'/);
  t.throws(() => kw.batchNorm(x, null, null, null, null, { training: true, momentum: NaN }), /'momentum'/);
  t.throws(() => kw.batchNorm(kw.zeros([4, 3], 'int32'), null, null, null, null, { training: true }), /'x'.*float32/);
  const rm = kw.zeros([3]);
  t.throws(() => kw.batchNorm(x, rm, rm, null, null, { training: true }), /'runningVar'/);
  t.throws(() => kw.layerNorm(x, kw.ones([4]), null), /'weight'/);
  t.throws(() => kw.layerNorm(kw.zeros([4, 3, 2]), null, kw.ones([2]), { channelsFirst: true }), /'bias'/);
  t.throws(() => kw.layerNorm(kw.zeros([3]), null, null, { channelsFirst: true }), /'x'/);
  t.throws(() => kw.layerNorm(kw.zeros([3, 0]), null, null), /'x'/);
  // The binding checks again before touching memory.
  const { native } = await import('../lib/native');
  t.throws(() => native.batchNormForward(x.storage, 4, 4, 1, null, null, null, null, true, 0.1, 1e-5), /'x' holds 12 elements/);
  t.throws(() => native.layerNormForward(x.storage, 4, 3, 1, kw.ones([2]).storage, null, 1e-5), /'weight'/);
  t.throws(() => native.batchNormForward(x.storage, 4, 3, 1, null, null, rm.storage, rm.storage, true, 0.1, 1e-5), /separate/);
});
