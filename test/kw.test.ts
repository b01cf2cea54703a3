// The fused KernelWarehouse kernels (attention head, cell assembly) against references composed
// of basic ops, and their gradients by finite differences. Run: npx tap test/kw.test.ts
import t from 'tap';
import * as kw from '../lib';
import { native } from '../lib/native';
import { Tensor, kwAssemble, kwAttention, mul, sum, tensor } from '../lib';
import type { KWAttentionOptions, KWAttentionParams } from '../lib';
import { planNetwork } from '../lib/kw/plan';
import type { KWLayerPlan, LayerSpec, ManagerOptions } from '../lib/kw/plan';
import { gradcheck, maxAbsDiff, randomData, randomTensor } from './helpers/gradcheck';
import { referenceAssemble, referenceAttention } from './helpers/kw_reference';

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** |a − b| ≤ tol · max(1, max|b|), the golden tolerance rule. */
function close(t: tap.Test, a: Tensor, b: Tensor | ArrayLike<number>, what: string, tol = 2e-5): void {
  const bd = b instanceof Tensor ? (b.data() as Float32Array) : b;
  const err = maxAbsDiff(a.data() as Float32Array, bd);
  t.ok(err <= tol * Math.max(1, maxAbs(bd)), `${what}: max error ${err.toExponential(2)}`);
}

interface AttentionCase {
  name: string;
  B: number; C: number; spatial: number[]; H: number; m: number; n: number;
  norm: 'batchnorm1d' | 'layernorm';
  training: boolean;
  temperature: number;
  basis?: { numLocal: number; numBasis: number; start: number };
}

const attentionCases: AttentionCase[] = [
  { name: 'BN train, 2-d input', B: 3, C: 5, spatial: [4, 3], H: 16, m: 4, n: 6, norm: 'batchnorm1d', training: true, temperature: 0.3 },
  { name: 'BN eval', B: 2, C: 6, spatial: [5], H: 16, m: 3, n: 5, norm: 'batchnorm1d', training: false, temperature: 0.6 },
  { name: 'LN train (pooled input)', B: 2, C: 7, spatial: [], H: 16, m: 2, n: 9, norm: 'layernorm', training: true, temperature: 0 },
  { name: 'LN eval, τ = 1', B: 1, C: 4, spatial: [2, 2, 2], H: 16, m: 3, n: 4, norm: 'layernorm', training: false, temperature: 1 },
  { name: 'non-local basis, BN train', B: 3, C: 6, spatial: [3, 3], H: 16, m: 3, n: 12, norm: 'batchnorm1d', training: true,
    temperature: 0.4, basis: { numLocal: 3, numBasis: 16, start: 4 } },
  { name: 'non-local basis, start past the end (clamped), LN', B: 2, C: 5, spatial: [4], H: 16, m: 2, n: 7, norm: 'layernorm',
    training: true, temperature: 0.2, basis: { numLocal: 2, numBasis: 16, start: 9 } },
  { name: 'non-local basis, no local cells, BN eval', B: 2, C: 5, spatial: [4], H: 16, m: 2, n: 5, norm: 'batchnorm1d',
    training: false, temperature: 0.5, basis: { numLocal: 0, numBasis: 16, start: 0 } },
];

function attentionInputs(c: AttentionCase, seed: number): { x: Tensor; params: KWAttentionParams; names: string[]; list: Tensor[] } {
  const { B, C, H, m, n } = c;
  const P = m * (n + 1);
  const L = c.basis?.numLocal ?? 0, K = c.basis?.numBasis ?? 0;
  const fc2Out = c.basis ? (L + K + 1) * m : P;
  const x = randomTensor([B, C, ...c.spatial], seed, 2);
  const bn = c.norm === 'batchnorm1d';
  const tb = new Float32Array(P);
  for (let j = 0; j < m; j++) tb[j * (n + 1) + ((j * 3 + 1) % (n + 1))] = 1;
  const params: KWAttentionParams = {
    fc1Weight: randomTensor([H, C], seed + 1, 0.8),
    fc1Bias: bn ? null : randomTensor([H], seed + 2, 0.3),
    normWeight: tensor(randomData([H], seed + 3, 0.5).map((v) => 1 + v), [H]),
    normBias: randomTensor([H], seed + 4, 0.3),
    runningMean: bn ? randomTensor([H], seed + 5, 0.2) : null,
    runningVar: bn ? tensor(randomData([H], seed + 6, 0.4).map((v) => 1 + v), [H]) : null,
    fc2Weight: randomTensor([fc2Out, H], seed + 7, 0.7),
    fc2Bias: c.basis ? null : randomTensor([P], seed + 8, 0.2),
    fc3Weight: c.basis ? randomTensor([n - L, K], seed + 9, 0.5) : null,
    basisBias: c.basis ? randomTensor([P], seed + 10, 0.2) : null,
    tempBias: tensor(tb, [P]),
  };
  const names = ['x', 'fc1Weight', 'fc1Bias', 'normWeight', 'normBias', 'fc2Weight', 'fc2Bias', 'fc3Weight', 'basisBias']
    .filter((k) => k === 'x' || (params as unknown as Record<string, Tensor | null>)[k]);
  const list = names.map((k) => (k === 'x' ? x : (params as unknown as Record<string, Tensor>)[k]));
  return { x, params, names, list };
}

function optionsOf(c: AttentionCase): KWAttentionOptions {
  return { mixtures: c.m, cells: c.n, norm: c.norm, training: c.training, temperature: c.temperature, basis: c.basis ?? null };
}

/** Rebuilds the params object with the differentiable tensors replaced by `xs` (in names order). */
function withInputs(base: KWAttentionParams, names: string[], xs: Tensor[]): [Tensor, KWAttentionParams] {
  const p = { ...base } as unknown as Record<string, Tensor | null>;
  names.forEach((k, i) => { if (k !== 'x') p[k] = xs[i]; });
  return [xs[0], p as unknown as KWAttentionParams];
}

function copyOf(tn: Tensor | null | undefined): Tensor | null {
  return tn ? tensor(tn.data(), [...tn.shape]) : null;
}

t.test('attention: fused kernel against the composed reference', async (t) => {
  for (const [k, c] of attentionCases.entries()) {
    t.test(c.name, async (t) => {
      const { params, names, list } = attentionInputs(c, 100 + 20 * k);
      const o = optionsOf(c);
      // Two copies of every input: one graph through the native op, one through the reference.
      const leavesA = list.map((x) => { const l = copyOf(x)!; l.requiresGrad = true; return l; });
      const leavesB = list.map((x) => { const l = copyOf(x)!; l.requiresGrad = true; return l; });
      const [xa, pa] = withInputs(params, names, leavesA);
      const [xb, pb] = withInputs(params, names, leavesB);
      pa.runningMean = copyOf(params.runningMean);
      pa.runningVar = copyOf(params.runningVar);
      const ref = referenceAttention(xb, pb, o);
      const alpha = kwAttention(xa, pa, o);
      t.same(alpha.shape, [c.B * c.m, c.n], 'α shape');
      close(t, alpha, ref.alpha, 'α');
      if (ref.runningMean) {
        close(t, pa.runningMean!, ref.runningMean, 'running_mean after the step');
        close(t, pa.runningVar!, ref.runningVar!, 'running_var after the step');
      } else if (pa.runningMean) {
        close(t, pa.runningMean, params.runningMean!, 'running_mean untouched in eval mode', 0);
      }
      const w = randomTensor([...alpha.shape], 7 + k, 1);
      sum(mul(alpha, w)).backward();
      sum(mul(ref.alpha, w)).backward();
      names.forEach((nm, i) => close(t, leavesA[i].grad!, leavesB[i].grad!, `d${nm}`, 1e-4));
    });
  }
});

t.test('attention: gradients by finite differences', async (t) => {
  for (const [k, c] of attentionCases.entries()) {
    // Finite differences are meaningless across a kink of |z| or ReLU: the seeds keep every
    // probe at least eps = 1e-3 away from one (the composed reference checks those points).
    const { params, names, list } = attentionInputs(c, 400 + 20 * k);
    const o = optionsOf(c);
    const r = gradcheck((...xs: Tensor[]) => {
      const [x, p] = withInputs(params, names, xs);
      return kwAttention(x, p, o);
    }, list, { eps: 1e-3, maxProbes: 24 });
    t.ok(r.ok, `${c.name}: worst ${r.maxAbsErr.toExponential(2)} (${r.worst})`);
  }
});

interface AssemblyCase {
  name: string;
  manager: ManagerOptions;
  layers: LayerSpec[];
  batch: number;
}

const conv = (inPlanes: number, outPlanes: number, kernelSize: number | number[], extra: Partial<LayerSpec> = {}): LayerSpec =>
  ({ inPlanes, outPlanes, kernelSize, warehouseName: 'stage0_layer0_conv0', ...extra });

const assemblyCases: AssemblyCase[] = [
  { name: 'cell ratio 1, 3×3', manager: {}, layers: [conv(4, 6, 3)], batch: 3 },
  { name: 'cell ratio 1/4 (in/out plane 1/2)', manager: { cellNumRatio: 0.25, cellInplaneRatio: 0.5, cellOutplaneRatio: 0.5 },
    layers: [conv(8, 8, 3)], batch: 2 },
  { name: 'cell ratio 1/2 (in/out plane 1/2), two layers', manager: { cellNumRatio: 0.5, cellInplaneRatio: 0.5, cellOutplaneRatio: 0.5 },
    layers: [conv(4, 8, 3), conv(8, 8, 3, { warehouseName: 'stage0_layer1_conv1' })], batch: 2 },
  { name: 'cell ratio 2', manager: { cellNumRatio: 2 }, layers: [conv(4, 4, 3), conv(4, 8, 1, { warehouseName: 'stage0_layer1_conv1' })], batch: 2 },
  { name: 'cell ratio 4', manager: { cellNumRatio: 4 }, layers: [conv(6, 3, 3)], batch: 2 },
  { name: 'groups 2 (cells from gcds)', manager: {}, layers: [conv(8, 6, 3, { groups: 2 })], batch: 2 },
  { name: 'depthwise', manager: {}, layers: [conv(6, 6, 3, { groups: 6 })], batch: 3 },
  { name: 'no spatial partition (3×3 cells)', manager: { spatialPartition: false }, layers: [conv(4, 8, 3), conv(4, 4, 3, { warehouseName: 'stage0_layer1_conv1' })], batch: 2 },
  { name: 'conv1d', manager: {}, layers: [conv(4, 6, 3, { layerType: 'conv1d' })], batch: 2 },
  { name: 'conv3d, kernel [3, 1, 2]', manager: {}, layers: [conv(4, 2, [3, 1, 2], { layerType: 'conv3d' })], batch: 2 },
  { name: 'batch beyond one chunk', manager: {}, layers: [conv(32, 64, 3)], batch: 9 },
];

t.test('assembly: fused kernel against matmul + permute', async (t) => {
  for (const [k, c] of assemblyCases.entries()) {
    const plan = planNetwork(c.manager, c.layers);
    for (const l of plan.layers as KWLayerPlan[]) {
      t.test(`${c.name}, layer ${l.index}`, async (t) => {
        const n = l.cellShape[0], m = l.grid.numMixtures;
        const g = { groupsSpatial: l.grid.groupsSpatial, groupsOutChannel: l.grid.groupsOutChannel,
          groupsInChannel: l.grid.groupsInChannel, kernelSize: l.spec.kernelSize };
        const a0 = randomTensor([c.batch * m, n], 500 + k, 1), e0 = randomTensor(l.cellShape, 600 + k, 1);
        const [aa, ea, ab, eb] = [a0, e0, a0, e0].map((x) => { const y = copyOf(x)!; y.requiresGrad = true; return y; });
        const w = kwAssemble(aa, ea, g);
        const ref = referenceAssemble(ab, eb, g);
        t.same(w.shape, [c.batch, ...l.weightShape], 'per-sample kernel shape');
        close(t, w, ref, 'W');
        const gw = randomTensor([...w.shape], 700 + k, 1);
        sum(mul(w, gw)).backward();
        sum(mul(ref, gw)).backward();
        close(t, aa.grad!, ab.grad!, 'dα', 1e-4);
        close(t, ea.grad!, eb.grad!, 'dE', 1e-4);
        if (k < 4 || c.name.includes('conv3d') || c.name.includes('spatial')) {
          const r = gradcheck((a, e) => kwAssemble(a, e, g), [a0, e0], { maxProbes: 16 });
          t.ok(r.ok, `finite differences: worst ${r.maxAbsErr.toExponential(2)} (${r.worst})`);
        }
      });
    }
  }
});

t.test('assembly: several chunks per thread (dE accumulated across chunks)', async (t) => {
  // One thread and 120 samples of a 64→64 3×3 kernel: the scratch cap splits the batch into 3 chunks.
  const threads = kw.numThreads();
  kw.setNumThreads(1);
  try {
    const g = { groupsSpatial: 9, groupsOutChannel: 1, groupsInChannel: 1, kernelSize: [3, 3] };
    const a0 = randomTensor([120 * 9, 5], 901, 1), e0 = randomTensor([5, 64, 64, 1, 1], 902, 1);
    const [aa, ea, ab, eb] = [a0, e0, a0, e0].map((x) => { const y = copyOf(x)!; y.requiresGrad = true; return y; });
    const w = kwAssemble(aa, ea, g);
    const ref = referenceAssemble(ab, eb, g);
    close(t, w, ref, 'W');
    const gw = randomTensor([...w.shape], 903, 1);
    sum(mul(w, gw)).backward();
    sum(mul(ref, gw)).backward();
    close(t, aa.grad!, ab.grad!, 'dα', 1e-4);
    close(t, ea.grad!, eb.grad!, 'dE', 1e-4);
  } finally {
    kw.setNumThreads(threads);
  }
});

t.test('realistic sizes are accepted (dims are checked one by one, not as a product)', async (t) => {
  const c: AttentionCase = { name: 'large', B: 2, C: 256, spatial: [7, 7], H: 16, m: 9, n: 100, norm: 'layernorm', training: false,
    temperature: 0.3, basis: { numLocal: 9, numBasis: 45, start: 50 } };
  const { x, params } = attentionInputs(c, 11);
  const alpha = kwAttention(x, params, optionsOf(c));
  close(t, alpha, referenceAttention(x, params, optionsOf(c)).alpha, 'α');
  const cells = randomTensor([100, 64, 64, 1, 1], 12);
  const w = kwAssemble(alpha, cells, { groupsSpatial: 9, groupsOutChannel: 1, groupsInChannel: 1, kernelSize: [3, 3] });
  t.same(w.shape, [2, 64, 64, 3, 3]);
});

t.test('bad arguments give errors naming them', async (t) => {
  const c = attentionCases[0];
  const { x, params } = attentionInputs(c, 1);
  const o = optionsOf(c);
  t.throws(() => kwAttention(x, { ...params, fc1Weight: randomTensor([16, 3], 1) }, o), /fc1Weight/);
  t.throws(() => kwAttention(x, { ...params, runningMean: null }, o), /runningMean/);
  t.throws(() => kwAttention(x, { ...params, fc3Weight: randomTensor([2, 2], 1) }, o), /fc3Weight/);
  t.throws(() => kwAttention(x, params, { ...o, mixtures: 0 }), /mixtures/);
  t.throws(() => kwAttention(x, params, { ...o, norm: 'groupnorm' as 'layernorm' }), /norm/);
  t.throws(() => kwAttention(randomTensor([1, 5, 4], 2), params, o), /more than 1 sample/);
  const alpha = randomTensor([2 * 9, 4], 3), cells = randomTensor([4, 2, 3, 1, 1], 4);
  const g = { groupsSpatial: 9, groupsOutChannel: 1, groupsInChannel: 1, kernelSize: [3, 3] };
  t.same(kwAssemble(alpha, cells, g).shape, [2, 2, 3, 3, 3]);
  t.throws(() => kwAssemble(alpha, cells, { ...g, kernelSize: [3, 2] }), /kernelSize/);
  t.throws(() => kwAssemble(randomTensor([17, 4], 1), cells, g), /alpha/);
  t.throws(() => kwAssemble(alpha, randomTensor([5, 2, 3, 1, 1], 1), g), /alpha/);
  // The binding checks again, independently of the TS checks.
  t.throws(() => native.kwAssemble(alpha.storage, cells.storage, [2, 9, 4, 9, 1, 1, 2, 3, 2]), /cells/);
  t.throws(() => native.kwAssemble(alpha.storage, cells.storage, [2, 9, 4, 3, 1, 1, 2, 3, 1]), /mixtures/);
  t.throws(() => native.kwAssembleBackward(alpha.storage, alpha.storage, cells.storage, [2, 9, 4, 9, 1, 1, 2, 3, 1], true, true), /dweight/);
  const p = params;
  const st = (x: Tensor | null | undefined) => (x ? x.storage : null);
  const dims = [3, 5, 13, 16, 4, 6, 0, 0, 0, 0]; // spatial 13, but x has 4·3
  t.throws(() => native.kwAttentionForward(x.storage, dims, 0.3, 1e-5, 0.1, p.fc1Weight.storage, null, p.normWeight.storage,
    p.normBias.storage, st(p.runningMean), st(p.runningVar), p.fc2Weight.storage, st(p.fc2Bias), null, null, p.tempBias.storage), /x/);
  t.throws(() => native.kwAttentionForward(x.storage, [3, 5, 12, 16, 4, 6, 2, 0, 0, 0], 0.3, 1e-5, 0.1, p.fc1Weight.storage, null,
    p.normWeight.storage, p.normBias.storage, st(p.runningMean), st(p.runningVar), p.fc2Weight.storage, st(p.fc2Bias), null, null,
    p.tempBias.storage), /runningMean/);
});
