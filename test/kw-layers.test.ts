// KW layers end to end: WarehouseManager + KWConv1d/2d/3d/KWLinear against a reference built
// from basic ops (composed attention, matmul + permute assembly, one shared-weight conv per
// sample), gradients by finite differences, the temperature one-hot at τ = 1, allocation
// order, initialisation, plain layers, and errors. Run: npx tap test/kw-layers.test.ts
import t from 'tap';
import * as kw from '../lib';
import {
  KWConvNd, KWLinear, Module, ModuleList, Tensor, WarehouseManager, concat, convNd, copyInto, mul, noGrad, reshape,
  slice, sum, tensor, transpose, updateTemperature,
} from '../lib';
import type { KWAttentionParams, Layer, LayerSpec, ManagerOptions } from '../lib';
import { maxAbsDiff, randomData, randomTensor } from './helpers/gradcheck';
import { referenceAssemble, referenceAttention } from './helpers/kw_reference';

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function relErr(a: Tensor | null, b: Tensor | null): number {
  const bd = b ? (b.data() as Float32Array) : new Float32Array(a ? a.numel : 0);
  const ad = a ? (a.data() as Float32Array) : new Float32Array(bd.length);
  return maxAbsDiff(ad, bd) / Math.max(1, maxAbs(bd));
}

class Net extends Module {
  readonly manager: WarehouseManager;
  readonly layers: ModuleList<Module & Layer>;
  constructor(options: ManagerOptions, specs: LayerSpec[], seed = 1) {
    super();
    this.manager = this.registerModule('warehouse_manager', new WarehouseManager({ ...options, generator: new kw.Generator(seed) }));
    this.layers = this.registerModule('layers', new ModuleList(specs.map((s) => this.manager.reserve(s))));
    this.manager.store();
    this.manager.allocate(this);
    // Non-trivial attention state (upstream's init leaves biases at 0 and running stats at 0/1).
    let k = 0;
    for (const [name, p] of this.stateDict()) {
      if (/(fc\d\.bias|basis_bias|norm1\.bias|running_mean)$/.test(name)) copyInto(p, randomTensor([...p.shape], seed * 100 + k++, 0.2));
      if (/(running_var|norm1\.weight)$/.test(name)) copyInto(p, tensor(randomData([...p.shape], seed * 100 + k++, 0.3).map((v) => 1 + v), [...p.shape]));
    }
  }
}

function attentionParams(layer: KWConvNd): KWAttentionParams {
  const a = layer.attention!;
  const g = (p: string): Tensor | null => {
    try {
      return a.get(p) as Tensor | null;
    } catch {
      return null;
    }
  };
  return {
    fc1Weight: g('fc1.weight')!, fc1Bias: g('fc1.bias'), normWeight: g('norm1.weight')!, normBias: g('norm1.bias')!,
    runningMean: g('norm1.running_mean'), runningVar: g('norm1.running_var'), fc2Weight: g('fc2.weight')!,
    fc2Bias: g('fc2.bias'), fc3Weight: g('fc3.weight'), basisBias: g('basis_bias'), tempBias: a.tempBias,
  };
}

/** The layer computed from basic ops, with each sample convolved by its own kernel separately. */
function referenceConv(layer: KWConvNd, x: Tensor, cells: Tensor): Tensor {
  const plan = layer.plan, s = layer.spec, a = plan.attention;
  const alpha = referenceAttention(x, attentionParams(layer), {
    mixtures: a.numMixtures, cells: a.numCells, norm: a.normLayer, training: layer.training,
    temperature: layer.attention!.tempValue,
    basis: a.basis ? { numLocal: a.basis.numLocalCell, numBasis: a.basis.numBasis, start: plan.startCellIdx } : null,
  }).alpha;
  const w = referenceAssemble(alpha, cells, {
    groupsSpatial: plan.grid.groupsSpatial, groupsOutChannel: plan.grid.groupsOutChannel,
    groupsInChannel: plan.grid.groupsInChannel, kernelSize: s.kernelSize,
  });
  const outs: Tensor[] = [];
  for (let b = 0; b < x.shape[0]; b++) {
    const wb = reshape(slice(w, 0, b, b + 1), w.shape.slice(1));
    outs.push(convNd(slice(x, 0, b, b + 1), wb, layer.bias, { stride: s.stride, padding: s.padding, dilation: s.dilation, groups: s.groups }));
  }
  return concat(outs, 0);
}

function referenceForward(net: Net, k: number, x: Tensor): Tensor {
  const layer = net.layers.at(k);
  if (layer instanceof KWLinear) {
    const shape = x.shape, inner = layer.conv;
    const xt = transpose(reshape(x, [shape[0], -1, shape[shape.length - 1]]), 1, 2);
    const y = referenceConv(inner, xt, net.manager.cells(inner.plan.warehouseIndex));
    return reshape(transpose(y, 1, 2), [...shape.slice(0, -1), -1]);
  }
  const conv = layer as KWConvNd;
  return referenceConv(conv, x, net.manager.cells(conv.plan.warehouseIndex));
}

interface LayerCase {
  name: string;
  options: ManagerOptions;
  layers: LayerSpec[];
  inputs: number[][];
  mode: 'train' | 'eval';
  temperature: number;
  /** Run finite differences on this case. */
  fd?: boolean;
}

const c2 = (inPlanes: number, outPlanes: number, kernelSize: number | number[], name: string, extra: Partial<LayerSpec> = {}): LayerSpec =>
  ({ inPlanes, outPlanes, kernelSize, warehouseName: name, bias: false, ...extra });

const cases: LayerCase[] = [
  { name: 'stride 2, padding, bias, two layers sharing a warehouse (ratio 1)', options: { sharingRange: 'layer_conv' },
    layers: [c2(4, 8, 3, 'stage0_layer0_conv0', { stride: 2, padding: 1, bias: true }), c2(4, 4, 3, 'stage0_layer1_conv1', { padding: 1 })],
    inputs: [[3, 4, 7, 7], [2, 4, 5, 5]], mode: 'train', temperature: 0.3, fd: true },
  { name: 'dilation 2, groups 2, cell ratio 2, eval', options: { cellNumRatio: 2 },
    layers: [c2(4, 6, 3, 'stage0_layer0_conv0', { dilation: 2, padding: 2, groups: 2, bias: true })],
    inputs: [[2, 4, 6, 6]], mode: 'eval', temperature: 0.5, fd: true },
  { name: 'depthwise stride 2, LayerNorm attention', options: { normLayer: 'layernorm' },
    layers: [c2(6, 6, 3, 'stage0_layer0_dwconv0', { stride: 2, padding: 1, groups: 6 })],
    inputs: [[2, 6, 7, 7]], mode: 'train', temperature: 0.5, fd: true },
  { name: 'cell ratio 1/4 (in/out plane 1/2), stride 2', options: { cellNumRatio: 0.25, cellInplaneRatio: 0.5, cellOutplaneRatio: 0.5, sharingRange: 'layer_conv' },
    layers: [c2(8, 8, 3, 'stage0_layer0_conv0', { stride: 2, padding: 1 })], inputs: [[2, 8, 6, 6]], mode: 'train', temperature: 0.7, fd: true },
  { name: 'cell ratio 1/2, two layers', options: { cellNumRatio: 0.5, cellInplaneRatio: 0.5, cellOutplaneRatio: 0.5, sharingRange: 'layer_conv' },
    layers: [c2(4, 8, 3, 'stage0_layer0_conv0', { padding: 1 }), c2(8, 8, 3, 'stage0_layer1_conv1', { padding: 1 })],
    inputs: [[2, 4, 5, 5], [2, 8, 5, 5]], mode: 'train', temperature: 0.2 },
  { name: 'cell ratio 4', options: { cellNumRatio: 4 }, layers: [c2(4, 6, 3, 'stage0_layer0_conv0', { padding: 1 })],
    inputs: [[2, 4, 5, 5]], mode: 'train', temperature: 0.4, fd: true },
  { name: 'non-local basis 0.5, three layers', options: { nonlocalBasisRatio: 0.5, sharingRange: 'layer_conv' },
    layers: [c2(4, 4, 3, 'stage0_layer0_conv0', { padding: 1 }), c2(4, 4, 3, 'stage0_layer1_conv1', { padding: 1 }),
      c2(4, 4, 3, 'stage0_layer2_conv1', { padding: 1, stride: 2 })],
    inputs: [[2, 4, 5, 5], [2, 4, 5, 5], [2, 4, 5, 5]], mode: 'train', temperature: 0.6, fd: true },
  { name: 'conv1d stride 2, dilation 2', options: {},
    layers: [c2(4, 6, 3, 'stage0_layer0_conv0', { layerType: 'conv1d', stride: 2, dilation: 2, padding: 1, bias: true })],
    inputs: [[2, 4, 11]], mode: 'train', temperature: 0.3, fd: true },
  { name: 'conv3d kernel [3, 1, 2], stride [1, 2, 1]', options: {},
    layers: [c2(3, 4, [3, 1, 2], 'stage0_layer0_conv0', { layerType: 'conv3d', stride: [1, 2, 1], padding: [1, 0, 1] })],
    inputs: [[2, 3, 4, 5, 3]], mode: 'eval', temperature: 0.1, fd: true },
  { name: 'KWLinear on [B, T, in] and [B, in]', options: {},
    layers: [c2(6, 5, 1, 'stage0_layer0_fc0', { layerType: 'linear', bias: true }), c2(5, 3, 1, 'stage0_layer0_fc1', { layerType: 'linear' })],
    inputs: [[2, 3, 6], [3, 5]], mode: 'train', temperature: 0.5, fd: true },
  { name: 'no spatial partition (3×3 cells)', options: { spatialPartition: false, sharingRange: 'layer_conv' },
    layers: [c2(4, 8, 3, 'stage0_layer0_conv0', { padding: 1 }), c2(4, 4, 3, 'stage0_layer1_conv1', { padding: 1 })],
    inputs: [[2, 4, 5, 5], [2, 4, 5, 5]], mode: 'train', temperature: 0.3 },
];

function gradsOf(net: Net): Map<string, Tensor | null> {
  return new Map(net.namedParameters().map(([k, p]) => [k, p.grad ? tensor(p.grad.data(), [...p.shape]) : null]));
}

t.test('KW layers against the composed reference, forward and every gradient', async (t) => {
  for (const [ci, c] of cases.entries()) {
    t.test(c.name, async (t) => {
      const net = new Net(c.options, c.layers, ci + 1);
      updateTemperature(net, c.temperature);
      net.train(c.mode === 'train');
      const xs = c.inputs.map((s, k) => randomTensor(s, 1000 + 10 * ci + k, 1.5));
      const gys: Tensor[] = [];
      const run = (f: (k: number, x: Tensor) => Tensor): { ys: Tensor[]; dx: Tensor[]; grads: Map<string, Tensor | null> } => {
        net.zeroGrad();
        const leaves = xs.map((x) => { const l = tensor(x.data(), [...x.shape]); l.requiresGrad = true; return l; });
        const ys = leaves.map((x, k) => f(k, x));
        ys.forEach((y, k) => { if (!gys[k]) gys[k] = randomTensor([...y.shape], 2000 + k, 1); });
        let loss = sum(mul(ys[0], gys[0]));
        for (let k = 1; k < ys.length; k++) loss = kw.add(loss, sum(mul(ys[k], gys[k])));
        loss.backward();
        return { ys, dx: leaves.map((l) => l.grad!), grads: gradsOf(net) };
      };
      const ref = run((k, x) => referenceForward(net, k, x));
      const got = run((k, x) => net.layers.at(k).forward(x));
      got.ys.forEach((y, k) => {
        t.same(y.shape, ref.ys[k].shape, `out.${k} shape`);
        t.ok(relErr(y, ref.ys[k]) < 2e-5, `out.${k}: ${relErr(y, ref.ys[k]).toExponential(2)}`);
        t.ok(relErr(got.dx[k], ref.dx[k]) < 1e-4, `grad in.${k}: ${relErr(got.dx[k], ref.dx[k]).toExponential(2)}`);
      });
      for (const [name, g] of got.grads) {
        const e = relErr(g, ref.grads.get(name) ?? null);
        t.ok(e < 1e-4, `grad ${name}: ${e.toExponential(2)}`);
      }
    });
  }
});

t.test('KW layers: gradients by finite differences (input and every parameter, sampled)', async (t) => {
  for (const [ci, c] of cases.entries()) {
    if (!c.fd) continue;
    const net = new Net(c.options, c.layers, 50 + ci);
    updateTemperature(net, c.temperature);
    net.train(c.mode === 'train');
    const xs = c.inputs.map((s, k) => randomTensor(s, 3000 + 10 * ci + k, 1.5));
    const w = c.inputs.map((_, k) => k);
    const loss = (): Tensor => {
      const ys = xs.map((x, k) => net.layers.at(k).forward(x));
      const ws = ys.map((y, k) => randomTensor([...y.shape], 4000 + w[k], 1));
      let l = sum(mul(ys[0], ws[0]));
      for (let k = 1; k < ys.length; k++) l = kw.add(l, sum(mul(ys[k], ws[k])));
      return l;
    };
    net.zeroGrad();
    xs.forEach((x) => (x.requiresGrad = true));
    loss().backward();
    const targets: [string, Tensor][] = [...xs.map((x, k): [string, Tensor] => [`in.${k}`, x]), ...net.namedParameters()];
    // Central differences at two step sizes: the function has kinks (ReLU, |z|), and a probe
    // within one step of a kink averages two slopes; the smaller step (noisier in float32)
    // resolves those. A probe passes when either step agrees with the analytic gradient.
    const steps = [1e-3, 2.5e-4];
    let worst = 0, worstAt = '', bad = 0;
    for (const [name, p] of targets) {
      const analytic = p.grad!.data() as Float32Array;
      const base = p.data() as Float32Array;
      const probes = Math.min(base.length, 6);
      for (let q = 0; q < probes; q++) {
        const j = Math.floor((q * base.length) / probes);
        const at = (d: number): number => {
          const v = new Float32Array(base);
          v[j] += d;
          copyInto(p, tensor(v, [...p.shape]));
          return noGrad(() => loss().item());
        };
        let best = Infinity, numeric = 0;
        for (const eps of steps) {
          const num = (at(eps) - at(-eps)) / (2 * eps);
          const err = Math.abs(num - analytic[j]) - 2e-2 * Math.abs(num);
          if (err < best) { best = err; numeric = num; }
        }
        copyInto(p, tensor(base, [...p.shape]));
        const err = Math.abs(numeric - analytic[j]);
        if (err > worst) { worst = err; worstAt = `${name}[${j}]: numeric ${numeric.toFixed(5)} analytic ${analytic[j].toFixed(5)}`; }
        if (err > 3e-3 + 2e-2 * Math.abs(numeric)) bad++;
      }
    }
    t.equal(bad, 0, `${c.name}: worst ${worst.toExponential(2)} at ${worstAt}`);
  }
});

t.test('τ = 1: each kernel cell is exactly the warehouse cell the temperature assigns', async (t) => {
  for (const [ratio, extra] of [[1, {}], [2, {}], [0.5, { cellInplaneRatio: 0.5, cellOutplaneRatio: 0.5 }]] as [number, ManagerOptions][]) {
    const net = new Net({ cellNumRatio: ratio, sharingRange: 'layer_conv', ...extra },
      [c2(4, 4, 3, 'stage0_layer0_conv0', { padding: 1 }), c2(4, 8, 3, 'stage0_layer1_conv1', { padding: 1, stride: 2 })], 7);
    updateTemperature(net, 1);
    for (let k = 0; k < 2; k++) {
      const layer = net.layers.at(k) as KWConvNd;
      const plan = layer.plan, g = plan.grid, [n, co, ci] = plan.cellShape;
      const E = net.manager.cells(plan.warehouseIndex).data() as Float32Array;
      const [O, I] = plan.weightShape;
      const W = new Float32Array(O * I * 9);
      const tb = plan.tempBias;
      // Mixture j = (s·goc + o)·gic + i takes the cell its one-hot row marks (none: the zero cell).
      for (let s = 0; s < g.groupsSpatial; s++)
        for (let o = 0; o < g.groupsOutChannel; o++)
          for (let i = 0; i < g.groupsInChannel; i++) {
            const j = (s * g.groupsOutChannel + o) * g.groupsInChannel + i;
            const cell = Array.from(tb.subarray(j * (n + 1), j * (n + 1) + n)).indexOf(1);
            if (cell < 0) continue;
            for (let c = 0; c < co; c++)
              for (let d = 0; d < ci; d++)
                W[((o * co + c) * I + i * ci + d) * 9 + s] = E[(cell * co + c) * ci + d];
          }
      const x = randomTensor([2, 4, 6, 6], 77 + k);
      const y = noGrad(() => layer.forward(x));
      const s = layer.spec;
      const ref = kw.conv2d(x, tensor(W, plan.weightShape), null, { stride: s.stride, padding: s.padding });
      t.ok(relErr(y, ref) < 1e-5, `ratio ${ratio}, layer ${k}: ${relErr(y, ref).toExponential(2)}`);
    }
  }
});

t.test('allocation follows network.modules() order, not reserve order', async (t) => {
  const wm = new WarehouseManager({ sharingRange: 'layer_conv' });
  const a = wm.reserve(c2(4, 4, 1, 'stage0_layer0_conv0')); // 1 cell
  const b = wm.reserve(c2(4, 4, 3, 'stage0_layer1_conv1')); // 9 cells
  const net = new Module();
  net.registerModule('warehouse_manager', wm);
  net.registerModule('second', b);
  net.registerModule('first', a);
  wm.store();
  const plan = wm.allocate(net);
  t.same(plan.allocationOrder, [1, 0]);
  t.equal((b as KWConvNd).plan.startCellIdx, 0);
  t.equal((a as KWConvNd).plan.startCellIdx, 9);
});

t.test('initialisation: warehouse slices, attention, buffers, state-dict names', async (t) => {
  const net = new Module();
  const wm = net.registerModule('warehouse_manager', new WarehouseManager({ sharingRange: 'layer_conv', generator: new kw.Generator(3) }));
  const layers = [c2(32, 32, 3, 'stage0_layer0_conv0'), c2(32, 64, 3, 'stage0_layer1_conv1', { bias: true }),
    c2(64, 10, 1, 'stage0_layer0_fc0', { layerType: 'linear' })].map((s) => wm.reserve(s));
  net.registerModule('layers', new ModuleList(layers));
  wm.store();
  const plan = wm.allocate(net);
  const names = [...net.stateDict().keys()];
  const expected = [...plan.managerTensors.map((s) => `warehouse_manager.${s.name}`),
    ...plan.layers.flatMap((l) => l.tensors.map((s) => `layers.${l.index}.${s.name}`))];
  t.same(names, expected, 'state-dict names and order are the plan\'s');
  t.equal(net.parameters().reduce((n, p) => n + p.numel, 0), plan.params.total, 'parameter count');
  const std = (a: Float32Array): number => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
  for (const l of plan.layers) {
    if (l.kind !== 'kw') continue;
    const E = wm.cells(l.warehouseIndex).data() as Float32Array;
    const cell = l.cellShape.slice(1).reduce((a, b) => a * b, 1);
    const got = std(E.subarray(l.startCellIdx * cell, l.endCellIdx * cell));
    const n = (l.endCellIdx - l.startCellIdx) * cell;
    t.ok(Math.abs(got / l.sliceInit.std - 1) < 4 / Math.sqrt(2 * n), `layer ${l.index} slice std ${got.toFixed(4)} ≈ ${l.sliceInit.std.toFixed(4)}`);
    const prefix = `layers.${l.index}.${l.spec.layerType === 'linear' ? 'conv.' : ''}attention.`;
    const fc2 = net.stateDict().get(prefix + 'fc2.weight')!;
    // The sample std of N normals is within 4/√(2N) of σ (relative) but for 1 run in ~10⁴.
    const tol = 4 / Math.sqrt(2 * fc2.numel);
    t.ok(Math.abs(std(fc2.data() as Float32Array) / Math.sqrt(2 / fc2.shape[0]) - 1) < tol, 'fc2 kaiming fan_out');
    t.same(Array.from(net.stateDict().get(prefix + 'norm1.running_var')!.data() as Float32Array).every((v) => v === 1), true);
    t.same(Array.from(net.stateDict().get(prefix + 'fc2.bias')!.data() as Float32Array).every((v) => v === 0), true);
  }
});

t.test('temperature on a layer and on a tree; BatchNorm statistics by mode', async (t) => {
  const net = new Net({}, [c2(4, 4, 3, 'stage0_layer0_conv0', { padding: 1 })], 5);
  const layer = net.layers.at(0) as KWConvNd;
  layer.updateTemperature(0.25);
  t.equal(layer.attention!.tempValue, 0.25);
  updateTemperature(net, 0.75);
  t.equal(layer.attention!.tempValue, 0.75);
  const rm = layer.attention!.get('norm1.running_mean') as Tensor;
  const nbt = layer.attention!.get('norm1.num_batches_tracked') as Tensor;
  const before = Array.from(rm.data() as Float32Array);
  net.eval();
  noGrad(() => layer.forward(randomTensor([2, 4, 5, 5], 1)));
  t.same(Array.from(rm.data() as Float32Array), before, 'eval leaves running stats');
  t.same(Array.from(nbt.data() as BigInt64Array), [0n]);
  net.train();
  noGrad(() => layer.forward(randomTensor([2, 4, 5, 5], 1)));
  t.not(Array.from(rm.data() as Float32Array).join(), before.join(), 'train updates running stats');
  t.same(Array.from(nbt.data() as BigInt64Array), [1n], 'num_batches_tracked counts');
  t.equal(net.stateDict().get('layers.0.attention.norm1.running_mean'), rm, 'updated in place');
});

t.test('disabled layers are plain PyTorch layers', async (t) => {
  const wm = new WarehouseManager();
  const conv = wm.reserve(c2(4, 6, 3, 'stage0_layer0_conv0', { enabled: false, stride: 2, padding: 1, bias: true }));
  const lin = wm.reserve({ inPlanes: 6, outPlanes: 2, layerType: 'linear', enabled: false });
  const k = wm.reserve(c2(4, 4, 1, 'stage0_layer0_conv1'));
  t.ok(conv instanceof kw.Conv2d && lin instanceof kw.Linear && k instanceof kw.KWConv2d);
  t.same([...conv.stateDict().keys()], ['weight', 'bias']);
  wm.store();
  const plan = wm.allocate();
  t.same(plan.layers.map((l) => l.kind), ['plain', 'plain', 'kw']);
  const x = randomTensor([2, 4, 5, 5], 3);
  const c = conv as kw.Conv2d;
  t.equal(relErr(c.forward(x), kw.conv2d(x, c.weight, c.bias, { stride: 2, padding: 1 })), 0);
});

t.test('a KW training loop keeps native memory flat', async (t) => {
  const net = new Net({ nonlocalBasisRatio: 0.5, sharingRange: 'layer_conv' },
    [c2(4, 4, 3, 'stage0_layer0_conv0', { padding: 1 }), c2(4, 6, 3, 'stage0_layer1_conv1', { padding: 1, stride: 2 }),
      c2(6, 3, 1, 'stage0_layer0_fc0', { layerType: 'linear' })], 9);
  const x = randomTensor([2, 4, 6, 6], 1);
  const step = (): void => {
    kw.tidy(() => {
      const h = net.layers.at(1).forward(net.layers.at(0).forward(x));
      const y = net.layers.at(2).forward(kw.mean(h, [2, 3]));
      sum(y).backward();
    });
    net.zeroGrad();
  };
  step();
  const before = kw.memoryStats().liveBytes;
  for (let i = 0; i < 20; i++) step();
  t.equal(kw.memoryStats().liveBytes, before, 'live bytes unchanged after 20 steps');
});

t.test('errors', async (t) => {
  const wm = new WarehouseManager();
  const layer = wm.reserve(c2(4, 4, 3, 'a')) as KWConvNd;
  t.throws(() => layer.forward(randomTensor([2, 4, 5, 5], 1)), /not allocated/);
  t.throws(() => wm.allocate(), /before store/);
  wm.store();
  t.throws(() => wm.reserve(c2(4, 4, 3, 'b')), /after store/);
  wm.allocate();
  t.throws(() => layer.forward(randomTensor([2, 3, 5, 5], 1)), /KWConv2d.forward: 'x'/);
  t.throws(() => layer.forward(randomTensor([2, 4, 5], 1)), /'x'/);
  t.throws(() => layer.forward(randomTensor([1, 4, 5, 5], 1)), /more than 1 sample/);
  t.throws(() => layer.updateTemperature(Number.NaN), /number/);
  t.throws(() => new WarehouseManager({ cellNumRatio: [1, 2] }).store(), /cellNumRatio/);
  const bad = new WarehouseManager({ cellNumRatio: 0.5, sharingRange: 'layer_conv' });
  bad.reserve(c2(12, 24, 3, 'stage0_layer0_conv0', { groups: 3 }));
  bad.store();
  t.throws(() => bad.allocate(), /warehouse 'stage0_layer_conv'.*holds \d+ cells/);
});
