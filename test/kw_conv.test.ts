// kwConv (the fused KernelWarehouse convolution) against the unfused path it replaces,
// convNd(x, kwAssemble(α, E), bias), forward and all four gradients, for every strategy;
// finite differences; the cost model's choice; bad arguments.
import t from 'tap';
import type * as tap from 'tap';
import { backward, buildInfo, convNd, kwAssemble, kwConv, kwConvStrategy, mul, sum, Tensor, tensor } from '../lib';
import type { KWConvOptions, KWAssemblyGeometry } from '../lib';
import { native } from '../lib/native';
import { gradcheck, randomData, randomTensor } from './helpers/gradcheck';

interface Case {
  name: string;
  x: number[]; // [B, C, spatial...]
  cells: number[]; // [n, co, ci, ...cellKernel]
  geo: KWAssemblyGeometry;
  opts: KWConvOptions;
  bias?: boolean;
  /** convNd's options for the reference when they differ (its TS API spells asymmetric padding 'same'). */
  refOpts?: object;
}

const g2 = (gs: number, goc: number, gic: number, k: number[]): KWAssemblyGeometry =>
  ({ groupsSpatial: gs, groupsOutChannel: goc, groupsInChannel: gic, kernelSize: k });

const cases: Case[] = [
  { name: '3×3 spatial partition, pad 1', x: [3, 4, 5, 5], cells: [7, 4, 4, 1, 1], geo: g2(9, 1, 1, [3, 3]), opts: { padding: 1 } },
  { name: 'goc 2, gic 2, stride 2, bias', x: [2, 6, 6, 5], cells: [5, 3, 3, 1, 1], geo: g2(9, 2, 2, [3, 3]), opts: { padding: 1, stride: 2 }, bias: true },
  { name: 'goc 3, stride 2 to 1×1 output', x: [4, 5, 2, 2], cells: [6, 2, 5, 1, 1], geo: g2(9, 3, 1, [3, 3]), opts: { padding: 1, stride: 2 } },
  { name: 'no spatial partition (cell kernel 3×3), dilation 2', x: [2, 4, 7, 6], cells: [4, 3, 2, 3, 3], geo: g2(1, 2, 2, [3, 3]), opts: { padding: [2, 1], dilation: [2, 1] } },
  { name: '1×1 downsample, stride 2', x: [3, 4, 4, 4], cells: [5, 4, 2, 1, 1], geo: g2(1, 2, 2, [1, 1]), opts: { stride: 2 } },
  { name: 'asymmetric padding, 2×3 kernel', x: [2, 3, 4, 5], cells: [4, 2, 3, 1, 1], geo: g2(6, 1, 1, [2, 3]), opts: { padding: [0, 1, 1, 1] }, refOpts: { padding: 'same' } },
  { name: '1-d (KWLinear layout)', x: [3, 6, 4], cells: [5, 2, 3, 1], geo: g2(1, 2, 2, [1]), opts: {}, bias: true },
  { name: '1-d k 3', x: [2, 4, 9], cells: [4, 2, 4, 1], geo: g2(3, 2, 1, [3]), opts: { padding: 1, stride: 2 } },
  { name: '3-d', x: [2, 2, 3, 4, 4], cells: [4, 2, 2, 1, 1, 1], geo: g2(12, 1, 1, [3, 2, 2]), opts: { padding: [1, 0, 1] } },
  // Grouped and depthwise layers only run chunked.
  { name: 'groups 2', x: [2, 4, 5, 5], cells: [5, 2, 2, 1, 1], geo: g2(9, 3, 1, [3, 3]), opts: { padding: 1, groups: 2 }, bias: true },
  // 289 output positions of 64·9 columns each: the chunked conv splits them into column tiles.
  { name: 'several column tiles', x: [2, 64, 17, 17], cells: [3, 64, 64, 1, 1], geo: g2(9, 1, 1, [3, 3]), opts: { padding: 1 }, bias: true },
  // Warehouses over 4 MB: chunked tiles the cells' rows (2 tiles of 128 and of 56 + 8 rows here).
  { name: 'large warehouse, cell-row tiles', x: [2, 256, 3, 3], cells: [17, 256, 256, 1, 1], geo: g2(9, 1, 1, [3, 3]), opts: { padding: 1 }, bias: true },
  { name: 'large warehouse, goc 2, stride 2', x: [3, 256, 3, 3], cells: [33, 128, 256, 1, 1], geo: g2(9, 2, 1, [3, 3]), opts: { padding: 1, stride: 2 } },
  { name: 'large warehouse, 3×3 cells', x: [2, 64, 4, 4], cells: [30, 64, 64, 3, 3], geo: g2(1, 1, 1, [3, 3]), opts: { padding: 1 } },
  // Stride-1 layers as wide as their input copy each tap's rows as one shifted run; here the
  // dilated taps kx = 0 and 2 read no valid column at all (width 2, offsets ∓2), and taps
  // kh = 0 and 2 have their first or last two rows in the padding.
  { name: 'shifted rows: dilation 2, taps with no valid column', x: [2, 3, 6, 2], cells: [4, 2, 3, 1, 1], geo: g2(9, 1, 1, [3, 3]), opts: { padding: 2, dilation: 2 }, bias: true },
  { name: 'depthwise (MobileNetV2)', x: [3, 6, 6, 6], cells: [5, 3, 1, 1, 1], geo: g2(9, 2, 1, [3, 3]), opts: { padding: 1, stride: 2, groups: 6 } },
  // Panels need cell rows and columns in multiples of 32 (the cases above with 64/128/256 too).
  { name: 'panels: goc 2, gic 2, stride 2, bias', x: [3, 64, 5, 5], cells: [5, 32, 32, 1, 1], geo: g2(9, 2, 2, [3, 3]), opts: { padding: 1, stride: 2 }, bias: true },
  { name: 'panels: 96 cell columns (a 64 and a 32 block), 7 output columns', x: [2, 96, 4, 7], cells: [4, 64, 96, 1, 1], geo: g2(9, 1, 1, [3, 3]), opts: { padding: 1 } },
  { name: 'panels: 3×3 cells (288 columns)', x: [2, 32, 5, 5], cells: [4, 32, 32, 3, 3], geo: g2(1, 1, 1, [3, 3]), opts: { padding: 1 }, bias: true },
  // Over 256 output positions the warehouse gradients run by chunks (the input gradient by panels).
  // Warehouses over 16 MB assemble two samples at once; an odd batch leaves one alone.
  { name: 'panels: 17 MB warehouse (samples in pairs), odd batch', x: [3, 256, 2, 3], cells: [65, 256, 256, 1, 1], geo: g2(9, 1, 1, [3, 3]), opts: { padding: 1 }, bias: true },
  { name: 'panels: 1×1 downsample, stride 2 (input larger than its columns)', x: [2, 32, 6, 5], cells: [3, 32, 32, 1, 1], geo: g2(1, 2, 1, [1, 1]), opts: { stride: 2 } },
  { name: 'panels: 289 output positions', x: [3, 32, 17, 17], cells: [3, 32, 32, 1, 1], geo: g2(9, 1, 1, [3, 3]), opts: { padding: 1 } },
  // Winograd F(2×2, 3×3): 3×3 stride-1 'same' layers with one cell per tap. Odd sizes leave
  // half tiles on the bottom and right; 1×3 has tiles reaching past the image on both sides.
  { name: 'winograd: 64 → 32 channels, 5×7 (half tiles), bias', x: [3, 64, 5, 7], cells: [5, 32, 64, 1, 1], geo: g2(9, 1, 1, [3, 3]), opts: { padding: 1 }, bias: true },
  { name: 'winograd: 32 → 64 channels, 6×6', x: [2, 32, 6, 6], cells: [4, 64, 32, 1, 1], geo: g2(9, 1, 1, [3, 3]), opts: { padding: 1 } },
  { name: 'winograd: 1×3 image', x: [2, 32, 1, 3], cells: [3, 32, 32, 1, 1], geo: g2(9, 1, 1, [3, 3]), opts: { padding: 1 } },
];

/** Strategies that apply to a case: input mix, panels and Winograd need groups = 1 (a Winograd request where it does not apply runs chunked). */
const strategiesOf = (c: Case) =>
  (c.opts.groups ?? 1) === 1 ? (['chunked', 'inputMix', 'panels', 'winograd'] as const) : (['chunked'] as const);

// The unfused reference: assemble the batch of kernels, per-sample conv.
function reference(x: Tensor, a: Tensor, e: Tensor, b: Tensor | null, c: Case): Tensor {
  const w = kwAssemble(a, e, c.geo);
  const { strategy: _s, ...conv } = c.opts;
  const y = convNd(x, w, b, (c.refOpts ?? conv) as never);
  w.dispose();
  return y;
}

function close(t: tap.Test, got: Float32Array, want: Float32Array, what: string, tol = 1e-4): void {
  let worst = 0, at = -1;
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (d > worst) [worst, at] = [d, i];
  }
  t.equal(got.length, want.length, `${what}: length`);
  t.ok(worst <= tol * Math.max(1, scale), `${what}: max |diff| ${worst.toExponential(2)} at ${at} (scale ${scale.toFixed(3)})`);
}

function inputs(c: Case, seed: number): Tensor[] {
  const m = c.geo.groupsSpatial * c.geo.groupsOutChannel * c.geo.groupsInChannel;
  const x = randomTensor(c.x, seed);
  const a = randomTensor([c.x[0] * m, c.cells[0]], seed + 1);
  const e = randomTensor(c.cells, seed + 2);
  const b = c.bias ? randomTensor([c.geo.groupsOutChannel * c.cells[1]], seed + 3) : null;
  return b ? [x, a, e, b] : [x, a, e];
}

// test/kw_conv_isa.test.ts reruns this file with KW_SIMD set and checks this line.
t.comment(`KW kernels: ${/KW kernels: (\w+)/.exec(buildInfo().gemm)?.[1]}`);

for (const c of cases) {
  for (const strategy of strategiesOf(c)) {
    t.test(`${c.name} (${strategy}): forward and gradients match kwAssemble + convNd`, (t) => {
      const [x0, a0, e0, b0] = inputs(c, 11);
      const leaves = () => [x0, a0, e0, b0 ?? null].map((v) => (v ? tensor(v.data(), [...v.shape]) : null));
      const run = (f: (x: Tensor, a: Tensor, e: Tensor, b: Tensor | null) => Tensor) => {
        const [x, a, e, b] = leaves();
        for (const v of [x, a, e, b]) if (v) v.requiresGrad = true;
        const y = f(x!, a!, e!, b);
        const wdy = tensor(randomData([...y.shape], 99), [...y.shape]);
        backward(sum(mul(y, wdy)));
        return { y: y.data() as Float32Array, grads: [x, a, e, b].map((v) => (v ? (v.grad!.data() as Float32Array) : null)) };
      };
      const got = run((x, a, e, b) => kwConv(x, a, e, b, c.geo, { ...c.opts, strategy }));
      const want = run((x, a, e, b) => reference(x, a, e, b, c));
      close(t, got.y, want.y, 'y');
      ['dx', 'dalpha', 'dcells', 'dbias'].forEach((name, i) => {
        if (want.grads[i]) close(t, got.grads[i]!, want.grads[i]!, name);
      });
      t.end();
    });
  }
}

// One and two samples per chunk: several chunks per thread (chunked: dE partials summed across
// parts; input mix: batch chunks after the first accumulate dE).
for (const c of [cases[0], cases[1], cases[3], cases[10], cases[12], cases[14], cases[16], cases[20]]) {
  for (const strategy of strategiesOf(c))
    for (const samplesPerChunk of [1, 2]) {
      t.test(`${c.name} (${strategy}, ${samplesPerChunk} per chunk) matches the unchunked result`, (t) => {
        const run = (o: KWConvOptions) => {
          const ins = inputs(c, 21).map((v) => { v.requiresGrad = true; return v; });
          const [x, a, e, b] = ins;
          const y = kwConv(x, a, e, b ?? null, c.geo, { ...c.opts, ...o });
          backward(sum(mul(y, tensor(randomData([...y.shape], 7), [...y.shape]))));
          return [y.data() as Float32Array, ...ins.map((v) => v.grad!.data() as Float32Array)];
        };
        const got = run({ strategy, samplesPerChunk }), want = run({ strategy });
        ['y', 'dx', 'dalpha', 'dcells', 'dbias'].slice(0, got.length).forEach((name, i) => close(t, got[i], want[i], name));
        t.end();
      });
    }
}

t.test('finite differences, every strategy', (t) => {
  for (const c of [cases[1], cases[3], cases[6], cases[14], cases[16]]) {
    for (const strategy of strategiesOf(c)) {
      const ins = inputs(c, 5);
      const f = (x: Tensor, a: Tensor, e: Tensor, b?: Tensor) => kwConv(x, a, e, b ?? null, c.geo, { ...c.opts, strategy });
      const r = gradcheck(f, ins, { maxProbes: 12 });
      t.ok(r.ok, `${c.name} (${strategy}): ${r.worst}`);
    }
  }
  t.end();
});

t.test('the cost model: input mix for 1×1 outputs of a 3×3 layer, chunked for large outputs or groups', (t) => {
  // KW-ResNet-18 layer4 at 32×32 input: 512 channels on 1×1, 27 cells of 512×512, m = 9.
  const late = { x: randomTensor([2, 64, 1, 1], 1), a: randomTensor([18, 7], 2), e: randomTensor([7, 64, 64, 1, 1], 3) };
  t.equal(kwConvStrategy(late.x, late.a, late.e, g2(9, 1, 1, [3, 3]), { padding: 1 }), 'inputMix');
  t.equal(kwConvStrategy(late.x, late.a, late.e, g2(9, 1, 1, [3, 3]), { padding: 1, strategy: 'chunked' }), 'chunked');
  const early = { x: randomTensor([2, 8, 16, 16], 1), a: randomTensor([18, 7], 2), e: randomTensor([7, 8, 8, 1, 1], 3) };
  t.equal(kwConvStrategy(early.x, early.a, early.e, g2(9, 1, 1, [3, 3]), { padding: 1 }), 'chunked');
  t.equal(kwConvStrategy(early.x, early.a, early.e, g2(9, 1, 1, [3, 3]), { padding: 1, strategy: 'inputMix' }), 'inputMix');
  // Panels run only where cell rows and columns are multiples of 32; elsewhere a request runs chunked.
  t.equal(kwConvStrategy(early.x, early.a, early.e, g2(9, 1, 1, [3, 3]), { padding: 1, strategy: 'panels' }), 'chunked');
  const wide = { x: randomTensor([2, 32, 4, 4], 1), a: randomTensor([18, 3], 2), e: randomTensor([3, 32, 32, 1, 1], 3) };
  t.equal(kwConvStrategy(wide.x, wide.a, wide.e, g2(9, 1, 1, [3, 3]), { padding: 1, strategy: 'panels' }), 'panels');
  t.equal(kwConvStrategy(randomTensor([2, 32, 8, 8], 1), randomTensor([18, 18], 2), randomTensor([18, 32, 32, 1, 1], 3),
    g2(9, 1, 1, [3, 3]), { padding: 1, stride: 2 }), 'panels', 'auto: panels for a 3×3 layer split by tap (9 α rows per assembly pass)');
  // A 1×1 layer has one slot per group: one α row per pass, too few to pay off; chunked unless asked.
  const pw = { x: randomTensor([2, 32, 8, 8], 1), a: randomTensor([4, 3], 2), e: randomTensor([3, 32, 32, 1, 1], 3) };
  t.equal(kwConvStrategy(pw.x, pw.a, pw.e, g2(1, 2, 1, [1, 1]), {}), 'chunked', 'auto: chunked for a 1×1 layer');
  t.equal(kwConvStrategy(pw.x, pw.a, pw.e, g2(1, 2, 1, [1, 1]), { strategy: 'panels' }), 'panels');
  // Winograd where it saves a fifth of the panels' multiply-adds: many positions per cell
  // (KW-ResNet-18's layer1 at 224 px), not at 7×7 with 512 channels (layer4), nor at stride 2.
  const l1 = { x: randomTensor([1, 64, 56, 56], 1), a: randomTensor([9, 56], 2), e: randomTensor([56, 64, 64, 1, 1], 3) };
  t.equal(kwConvStrategy(l1.x, l1.a, l1.e, g2(9, 1, 1, [3, 3]), { padding: 1 }), 'winograd', 'auto: winograd for 64 channels at 56×56');
  t.equal(kwConvStrategy(l1.x, l1.a, l1.e, g2(9, 1, 1, [3, 3]), { padding: 1, stride: 2 }), 'panels', 'stride 2: panels, not winograd');
  t.equal(kwConvStrategy(l1.x, l1.a, l1.e, g2(9, 1, 1, [3, 3]), { padding: 1, strategy: 'winograd', dilation: 2 }), 'chunked',
    'a winograd request with dilation 2 runs chunked');
  // The tile: 4×4 outputs where that does fewer multiply-adds over at least 32 tiles (56×56 and
  // 28×28), 2×2 where 4×4 tiles would be too few (16×16: 16 tiles); the raw code says which.
  const rawCode = (x: Tensor, a: Tensor, e: Tensor) =>
    native.kwConvStrategy([...x.shape], [x.shape[0], 9, e.shape[0], 9, 1, 1, e.shape[1], e.shape[2], 1], [3, 3], [1, 1],
      [1, 1], [1, 1], 1, 0);
  t.equal(rawCode(l1.x, l1.a, l1.e), 5, '56×56: 4×4 tiles');
  t.equal(rawCode(randomTensor([1, 64, 28, 28], 1), l1.a, l1.e), 5, '28×28: 4×4 tiles');
  t.equal(rawCode(randomTensor([1, 64, 16, 16], 1), l1.a, l1.e), 4, '16×16: 2×2 tiles');
  if (process.env.KW_WINOGRAD_TILE === '2' || process.env.KW_WINOGRAD_TILE === '4') {
    // test/kw_conv_winograd.test.ts reruns this file with the tile of every Winograd request fixed.
    const code = native.kwConvStrategy([1, 32, 1, 3], [1, 9, 3, 9, 1, 1, 32, 32, 1], [3, 3], [1, 1], [1, 1], [1, 1], 1, 4);
    t.equal(code, process.env.KW_WINOGRAD_TILE === '4' ? 5 : 4, `KW_WINOGRAD_TILE=${process.env.KW_WINOGRAD_TILE} fixes a request's tile`);
  }
  const l4 = { x: randomTensor([1, 512, 7, 7], 1), a: randomTensor([9, 27], 2), e: randomTensor([27, 512, 512, 1, 1], 3) };
  t.equal(kwConvStrategy(l4.x, l4.a, l4.e, g2(9, 1, 1, [3, 3]), { padding: 1 }), 'panels', 'auto: panels for 512 channels at 7×7');
  t.equal(kwConvStrategy(l4.x, l4.a, l4.e, g2(9, 1, 1, [3, 3]), { padding: 1, strategy: 'winograd' }), 'winograd');
  const dw = { x: randomTensor([2, 8, 1, 1], 1), a: randomTensor([18, 7], 2), e: randomTensor([7, 8, 1, 1, 1], 3) };
  t.equal(kwConvStrategy(dw.x, dw.a, dw.e, g2(9, 1, 1, [3, 3]), { padding: 1, groups: 8 }), 'chunked');
  t.end();
});

t.test('bad arguments throw errors naming the argument', (t) => {
  const c = cases[0];
  const [x, a, e] = inputs(c, 1);
  t.throws(() => kwConv(x, a, e, null, { ...c.geo, kernelSize: [3, 2] }, c.opts), /kernelSize/);
  t.throws(() => kwConv(x, randomTensor([26, 7], 1), e, null, c.geo, c.opts), /alpha/);
  t.throws(() => kwConv(randomTensor([3, 5, 5, 5], 1), a, e, null, c.geo, c.opts), /x/);
  t.throws(() => kwConv(x, a, e, randomTensor([5], 1), c.geo, c.opts), /bias/);
  t.throws(() => kwConv(x, a, e, null, c.geo, { ...c.opts, strategy: 'fast' as never }), /strategy/);
  t.throws(() => kwConv(x, a, e, null, c.geo, { padding: 1, groups: 2 }), /groups|x/);
  t.throws(() => kwConv(x, a, e, null, c.geo, { padding: -1 }), /padding/);
  t.throws(() => kwConv(randomTensor([3, 4, 2, 2], 1), a, e, null, c.geo, {}), /x/);
  // The native layer checks again before touching memory.
  const dims = [3, 9, 7, 9, 1, 1, 4, 4, 1];
  const call = (xs: number[], d: number[], cellsT: Tensor, strategy = 0, groups = 1) =>
    native.kwConvForward(x.storage, a.storage, cellsT.storage, null, xs, d, [3, 3], [1, 1], [1, 1], [1, 1], groups, strategy, 0);
  t.throws(() => call([3, 4, 5, 5], dims, randomTensor([7, 4, 3, 1, 1], 1)), /cells/);
  t.throws(() => call([3, 4, 6, 5], dims, e), /x/);
  t.throws(() => call([4, 4, 5, 5], dims, e), /batch|xShape/);
  t.throws(() => call([3, 4, 5, 5], [3, 9, 7, 9, 1, 1, 4, 4, 2], e), /kernelSize|cells/);
  t.throws(() => call([3, 4, 5, 5], dims, e, 5), /strategy/);
  t.throws(() => call([3, 4, 5, 5], [3, 9, 7, 9, 1, 1, 4, 2, 1], e, 2, 2), /input-mix|groups|cells/);
  t.throws(() => native.kwConvBackward(a.storage, x.storage, a.storage, e.storage, [3, 4, 5, 5], dims, [3, 3], [1, 1],
    [1, 1], [1, 1], 1, 0, 0, true, true, true, false), /dy/);
  t.throws(() => kwConv(x, a, e, null, c.geo, { ...c.opts, samplesPerChunk: 0 }), /samplesPerChunk/);
  // The benchmark hook checks its sizes too.
  t.ok(native.kwPanelAssemblySeconds(3, 32, 64, 9, 1, 1, 2) > 0, 'the panel assembly benchmark runs');
  t.throws(() => native.kwPanelAssemblySeconds(3, 48, 64, 9, 1, 1, 2), /multiples of 32/);
  t.throws(() => native.kwPanelAssemblySeconds(3, 32, 64, 9, 1, 1, 0), /samples/);
  t.throws(() => native.kwPanelAssemblySeconds(4096, 4096, 4096, 9, 1, 1, 1), /cellOut|512 MB/);
  t.throws(() => native.kwPanelAssemblySeconds(4096, 32, 32, 27, 64, 64, 4096), /alpha.*512 MB/);
  t.end();
});
