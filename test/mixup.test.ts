// Mixup / CutMix against timm's formulas, with scripted random draws.
import t from 'tap';
import { beta, mixBatch } from '../lib/data/mixup';
import { sampleRng } from '../lib/data/augment';

const script = (draws: number[]) => () => {
  if (!draws.length) throw new Error('ran out of scripted draws');
  return draws.shift()!;
};

t.test('no mixing when the batch is not selected: smoothed one-hot targets', async (t) => {
  const x = Float32Array.from([1, 2, 3, 4]);
  const y = mixBatch(x, [2, 1, 1, 2], Int32Array.from([0, 2]), { mixupAlpha: 0.8, cutmixAlpha: 1, prob: 0.5, switchProb: 0.5, labelSmoothing: 0.3, numClasses: 3 }, script([0.9]));
  t.same(Array.from(x), [1, 2, 3, 4]);
  const off = 0.1, on = 0.8;
  t.same(Array.from(y).map((v) => +v.toFixed(6)), [on, off, off, off, off, on].map((v) => +v.toFixed(6)));
});

t.test('mixup: x = λx + (1-λ)·reversed, targets mixed the same way', async (t) => {
  const x = Float32Array.from([0, 0, 10, 10]); // two 1×1×2 images
  // draws: selected (0.1 < 1), mixup only: λ from beta → use a spec with cutmix off
  const rand = sampleRng(1, 2, 3);
  const lamRef = (() => { const r = sampleRng(1, 2, 3); r(); return beta(0.5, 0.5, r); })();
  const y = mixBatch(x, [2, 1, 1, 2], Int32Array.from([1, 0]), { mixupAlpha: 0.5, cutmixAlpha: 0, prob: 1, switchProb: 0.5, labelSmoothing: 0, numClasses: 2 }, rand);
  t.ok(Math.abs(x[0] - 10 * (1 - lamRef)) < 1e-5 && Math.abs(x[2] - 10 * lamRef) < 1e-5, `λ = ${lamRef}`);
  t.ok(Math.abs(y[1] - lamRef) < 1e-6 && Math.abs(y[0] - (1 - lamRef)) < 1e-6, 'sample 0: λ on its label 1, 1-λ on the reversed label 0');
  t.ok(Math.abs(y[0] + y[1] - 1) < 1e-6 && Math.abs(y[2] + y[3] - 1) < 1e-6, 'rows sum to 1');
});

t.test('cutmix: a box copied from the reversed batch, λ from the box area', async (t) => {
  const H = 4, W = 4;
  const x = new Float32Array(2 * H * W);
  x.fill(1, H * W); // image 0 is zeros, image 1 is ones
  // draws: selected, cutmix only → beta draws happen inside; then cy, cx
  const y = mixBatch(x, [2, 1, H, W], Int32Array.from([0, 1]), { mixupAlpha: 0, cutmixAlpha: 1, prob: 1, switchProb: 0.5, labelSmoothing: 0, numClasses: 2 }, sampleRng(7, 0, 0));
  const ones0 = x.subarray(0, H * W).reduce((s, v) => s + v, 0);
  const lam = 1 - ones0 / (H * W);
  t.ok(Math.abs(y[0] - lam) < 1e-6 && Math.abs(y[1] - (1 - lam)) < 1e-6, `targets follow the pasted area (λ = ${lam})`);
  const zeros1 = H * W - x.subarray(H * W).reduce((s, v) => s + v, 0);
  t.equal(zeros1, ones0, 'both images swap the same box');
});

t.test('beta sampler: mean a/(a+b)', async (t) => {
  const r = sampleRng(3, 0, 0);
  let s = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) s += beta(0.8, 0.8, r);
  t.ok(Math.abs(s / n - 0.5) < 0.01, `mean ${s / n}`);
  let s2 = 0;
  for (let i = 0; i < n; i++) s2 += beta(2, 6, r);
  t.ok(Math.abs(s2 / n - 0.25) < 0.01, `mean ${s2 / n}`);
  t.throws(() => mixBatch(new Float32Array(3), [3, 1, 1, 1], Int32Array.from([0, 0, 0]), { mixupAlpha: 1, cutmixAlpha: 0, prob: 1, switchProb: 0, labelSmoothing: 0, numClasses: 2 }, r), /even batch size/);
});
