// Convolutions: forward and gradients against a naive float64 JS convolution (written here,
// independent of the native code), gradients also by finite differences, and bad arguments.
import t from 'tap';
import * as kw from '../lib';
import { native } from '../lib/native';
import { gradcheck, randomData, randomTensor, maxAbsDiff } from './helpers/gradcheck';

interface Cfg {
  name: string;
  x: number[]; // [B, C, spatial...]
  w: number[]; // [out, C/groups, k...] or per-sample [B, out, C/groups, k...]
  bias?: boolean;
  stride?: number | number[];
  padding?: number | number[] | 'same' | 'valid';
  dilation?: number | number[];
  groups?: number;
}

const perDim = (v: number | number[] | undefined, n: number, d: number): number[] =>
  v === undefined ? new Array(n).fill(d) : typeof v === 'number' ? new Array(n).fill(v) : v;

// The geometry lifted to 3 spatial dims (unit dims in front), padding split into before/after.
function lift(c: Cfg) {
  const n = c.x.length - 2;
  const perSample = c.w.length === n + 3;
  const ws = perSample ? c.w.slice(1) : c.w;
  const k = ws.slice(2);
  const dil = perDim(c.dilation, n, 1);
  let lo: number[], hi: number[];
  if (c.padding === 'same') {
    lo = k.map((kk, i) => Math.floor((dil[i] * (kk - 1)) / 2));
    hi = k.map((kk, i) => dil[i] * (kk - 1) - lo[i]);
  } else lo = hi = c.padding === 'valid' ? new Array(n).fill(0) : perDim(c.padding, n, 0);
  const up = (a: number[], fill: number) => [...new Array(3 - n).fill(fill), ...a];
  const st = perDim(c.stride, n, 1);
  const inS = up(c.x.slice(2), 1), kS = up(k, 1), sS = up(st, 1), loS = up(lo, 0), hiS = up(hi, 0), dS = up(dil, 1);
  const outS = inS.map((i, d) => Math.floor((i + loS[d] + hiS[d] - dS[d] * (kS[d] - 1) - 1) / sS[d]) + 1);
  const [B, C] = c.x;
  const O = ws[0], G = c.groups ?? 1;
  return { n, perSample, B, C, O, G, Cg: C / G, Og: O / G, inS, kS, sS, loS, dS, outS, outShape: [B, O, ...outS.slice(3 - n)] };
}

// Calls f(y index, x index, w index, o) for every multiply-add of the convolution: the
// direct 7-nested loop (batch, out channel, 3 output dims, in channel, 3 kernel dims).
function forEachTap(c: Cfg, f: (yi: number, xi: number, wi: number, o: number) => void): void {
  const g = lift(c);
  const [ID, IH, IW] = g.inS, [KD, KH, KW] = g.kS, [OD, OH, OW] = g.outS;
  const wPer = g.O * g.Cg * KD * KH * KW;
  for (let b = 0; b < g.B; b++)
    for (let o = 0; o < g.O; o++) {
      const grp = Math.floor(o / g.Og);
      for (let od = 0; od < OD; od++)
        for (let oh = 0; oh < OH; oh++)
          for (let ow = 0; ow < OW; ow++) {
            const yi = (((b * g.O + o) * OD + od) * OH + oh) * OW + ow;
            for (let ci = 0; ci < g.Cg; ci++)
              for (let kd = 0; kd < KD; kd++)
                for (let kh = 0; kh < KH; kh++)
                  for (let kx = 0; kx < KW; kx++) {
                    const id = od * g.sS[0] - g.loS[0] + kd * g.dS[0];
                    const ih = oh * g.sS[1] - g.loS[1] + kh * g.dS[1];
                    const iw = ow * g.sS[2] - g.loS[2] + kx * g.dS[2];
                    if (id < 0 || id >= ID || ih < 0 || ih >= IH || iw < 0 || iw >= IW) continue;
                    const xi = (((b * g.C + grp * g.Cg + ci) * ID + id) * IH + ih) * IW + iw;
                    const wi = (g.perSample ? b * wPer : 0) + (((o * g.Cg + ci) * KD + kd) * KH + kh) * KW + kx;
                    f(yi, xi, wi, o);
                  }
          }
    }
}

function refForward(c: Cfg, x: Float32Array, w: Float32Array, bias: Float32Array | null): Float64Array {
  const g = lift(c);
  const y = new Float64Array(g.outShape.reduce((a, b) => a * b, 1));
  const L = g.outS[0] * g.outS[1] * g.outS[2];
  if (bias) for (let i = 0; i < y.length; i++) y[i] = bias[Math.floor(i / L) % g.O];
  forEachTap(c, (yi, xi, wi) => (y[yi] += x[xi] * w[wi]));
  return y;
}

function refBackward(c: Cfg, x: Float32Array, w: Float32Array, dy: Float32Array) {
  const g = lift(c);
  const dx = new Float64Array(x.length), dw = new Float64Array(w.length), db = new Float64Array(g.O);
  forEachTap(c, (yi, xi, wi) => {
    dx[xi] += w[wi] * dy[yi];
    dw[wi] += x[xi] * dy[yi];
  });
  const L = g.outS[0] * g.outS[1] * g.outS[2];
  for (let i = 0; i < dy.length; i++) db[Math.floor(i / L) % g.O] += dy[i];
  return { dx, dw, db };
}

const opts = (c: Cfg): kw.ConvOptions => ({ stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups });
const run = (c: Cfg, x: kw.Tensor, w: kw.Tensor, b: kw.Tensor | null) => kw.convNd(x, w, b, opts(c));

const cases: Cfg[] = [
  { name: '1-D, bias, padding 1', x: [2, 3, 10], w: [4, 3, 3], bias: true, padding: 1 },
  { name: '2-D', x: [2, 3, 7, 6], w: [4, 3, 3, 3] },
  { name: '3-D, per-dim stride and padding', x: [2, 2, 5, 4, 6], w: [3, 2, 3, 2, 3], stride: [1, 2, 1], padding: [1, 0, 1], bias: true },
  { name: '2-D stride 2', x: [2, 3, 9, 8], w: [5, 3, 3, 3], stride: 2, padding: 1 },
  { name: '2-D dilation 2', x: [1, 2, 9, 9], w: [3, 2, 3, 3], dilation: 2, padding: 2, bias: true },
  { name: '2-D groups 2', x: [2, 4, 6, 6], w: [6, 2, 3, 3], groups: 2, bias: true, padding: 1 },
  { name: 'depthwise', x: [2, 4, 7, 7], w: [4, 1, 3, 3], groups: 4, padding: 1, bias: true },
  { name: 'depthwise ×2 multiplier, stride [1, 2], dilation 2', x: [2, 3, 8, 9], w: [6, 1, 3, 3], groups: 3, stride: [1, 2], dilation: 2, padding: [2, 1] },
  { name: 'depthwise 3-D, stride and padding per dim', x: [2, 3, 5, 6, 7], w: [3, 1, 3, 2, 3], groups: 3, stride: [2, 1, 2], padding: [1, 0, 1], bias: true },
  { name: 'depthwise 1-D ×2, stride 2, dilation 3', x: [2, 4, 12], w: [8, 1, 3], groups: 4, stride: 2, dilation: 3, padding: 2 },
  { name: 'single input channel (depthwise loop)', x: [3, 1, 6, 6], w: [5, 1, 2, 3], stride: [2, 1], bias: true },
  { name: '1×1 fast path', x: [3, 8, 5, 5], w: [6, 8, 1, 1], bias: true },
  { name: '1×1 groups 2', x: [2, 8, 4, 3], w: [6, 4, 1, 1], groups: 2 },
  { name: '1×1 stride 2 (im2col path)', x: [2, 4, 5, 6], w: [3, 4, 1, 1], stride: 2 },
  { name: "'same' padding, even kernel (asymmetric)", x: [2, 3, 6, 7], w: [4, 3, 2, 4], padding: 'same', bias: true },
  { name: "'valid' padding", x: [1, 2, 5, 5], w: [2, 2, 3, 3], padding: 'valid' },
  { name: 'kernel wider than input, padding', x: [2, 2, 2, 3], w: [3, 2, 3, 5], padding: [1, 2] },
  { name: 'per-sample 2-D', x: [3, 4, 6, 6], w: [3, 5, 4, 3, 3], padding: 1, bias: true },
  { name: 'per-sample groups 2, stride 2', x: [2, 4, 7, 6], w: [2, 6, 2, 3, 3], groups: 2, stride: 2, padding: 1 },
  { name: 'per-sample depthwise', x: [3, 4, 6, 6], w: [3, 4, 1, 3, 3], groups: 4, padding: 1 },
  { name: 'per-sample 1×1', x: [2, 6, 4, 4], w: [2, 3, 6, 1, 1], bias: true },
  { name: 'per-sample 1-D dilation 2', x: [2, 3, 11], w: [2, 4, 3, 3], dilation: 2 },
  { name: 'per-sample 3-D', x: [2, 2, 4, 4, 4], w: [2, 3, 2, 2, 3, 2], padding: [1, 0, 1] },
  // Taps that read only padding are cropped off the kernel (their dW must come back as zeros).
  { name: 'dead taps: 3×3 padding 1 on a 1×1 map (centre only)', x: [4, 6, 1, 1], w: [5, 6, 3, 3], padding: 1, bias: true },
  { name: 'dead taps: stride 2 on a 2×2 map', x: [3, 4, 2, 2], w: [5, 4, 3, 3], stride: 2, padding: 1 },
  { name: 'dead taps: front ones only (kernel 5, stride 3)', x: [2, 2, 3, 3], w: [3, 2, 5, 5], padding: 2, stride: 3, bias: true },
  { name: 'dead taps, per-sample, one dim only', x: [2, 3, 1, 2], w: [2, 4, 3, 3, 3], padding: 1 },
  { name: 'dead taps, 3-D depth, dilation 2 in H', x: [2, 2, 1, 3, 5], w: [3, 2, 3, 3, 3], padding: [1, 2, 1], dilation: [1, 2, 1] },
  { name: 'dead taps, groups 2', x: [2, 4, 1, 1], w: [6, 2, 3, 3], groups: 2, padding: 1 },
  // Tiny maps with a batch ≥ 8: one GEMM per (output position, live tap), the batch as N.
  { name: 'pair GEMMs: 3×3 padding 1 on a 2×2 map', x: [10, 6, 2, 2], w: [5, 6, 3, 3], padding: 1, bias: true },
  { name: 'pair GEMMs: stride 2, 3×3 → 2×2', x: [9, 4, 3, 3], w: [5, 4, 3, 3], stride: 2, padding: 1 },
  { name: 'pair GEMMs: 3-D 2×2×2 map', x: [8, 3, 2, 2, 2], w: [4, 3, 3, 3, 3], padding: 1, bias: true },
  { name: 'pair GEMMs: dilation 2, rectangular map', x: [8, 3, 2, 3], w: [4, 3, 3, 3], padding: 2, dilation: 2 },
  // Stride-1 2-D depthwise convs run on zero-padded planes (junk columns dropped).
  { name: 'depthwise 7×7 padding 3 on a 2×2 map (ConvNeXt)', x: [2, 3, 2, 2], w: [3, 1, 7, 7], groups: 3, padding: 3, bias: true },
  { name: 'depthwise 7×7 padding 3 on a 1×1 map', x: [3, 2, 1, 1], w: [2, 1, 7, 7], groups: 2, padding: 3 },
  { name: 'depthwise ×2 multiplier, dilation [2, 1], padding [2, 0]', x: [2, 2, 6, 5], w: [4, 1, 3, 3], groups: 2, dilation: [2, 1], padding: [2, 0], bias: true },
  { name: "depthwise 'same', even kernel (asymmetric)", x: [2, 3, 5, 6], w: [3, 1, 4, 2], groups: 3, padding: 'same' },
  { name: 'depthwise 1-D stride 1', x: [2, 3, 9], w: [3, 1, 5], groups: 3, padding: 1 },
  { name: 'depthwise kernel wider than input, no padding', x: [2, 2, 3, 7], w: [2, 1, 3, 3], groups: 2 },
  { name: 'per-sample depthwise 5×5 padding 2', x: [2, 3, 4, 5], w: [2, 3, 1, 5, 5], groups: 3, padding: 2 },
  // Stride-1 'same' 2-D convs copy whole shifted planes (edges zeroed afterwards).
  { name: "shifted planes: 3×3 'same' on a 1-row map", x: [2, 3, 1, 6], w: [4, 3, 3, 3], padding: 1 },
  { name: "shifted planes: 1×5 kernel, padding [0, 2]", x: [3, 2, 3, 4], w: [2, 2, 1, 5], padding: [0, 2], bias: true },
];

// Larger shapes: samples split over threads (B ≥ threads) vs one sample with threaded GEMMs.
const bigCases: Cfg[] = [
  { name: 'threaded over samples', x: [5, 16, 12, 12], w: [24, 16, 3, 3], padding: 1, bias: true },
  { name: 'one sample, threaded GEMM', x: [1, 32, 24, 24], w: [48, 32, 3, 3], padding: 1, stride: 1 },
  { name: 'per-sample, threaded over samples', x: [4, 16, 10, 10], w: [4, 24, 16, 3, 3], padding: 1 },
  { name: '1×1 threaded', x: [4, 32, 9, 9], w: [40, 32, 1, 1] },
  { name: 'depthwise threaded', x: [4, 32, 14, 14], w: [32, 1, 3, 3], groups: 32, padding: 1, stride: 2 },
  // in/groups·k·k = 576 and ≥ 256 positions: im2col runs in tiles of output rows.
  { name: 'row tiles', x: [2, 64, 20, 20], w: [8, 64, 3, 3], padding: 1, bias: true },
  { name: 'row tiles, stride 2, dilation 2', x: [3, 64, 40, 33], w: [6, 64, 3, 3], stride: 2, padding: 2, dilation: 2 },
  { name: 'row tiles, per-sample', x: [2, 64, 20, 20], w: [2, 8, 64, 3, 3], padding: 1 },
  { name: 'row tiles, groups 2', x: [2, 128, 16, 16], w: [4, 64, 3, 3], groups: 2, padding: 1 },
  { name: 'depthwise 7×7 threaded (ConvNeXt stage 1 at 32×32)', x: [6, 24, 8, 8], w: [24, 1, 7, 7], groups: 24, padding: 3, bias: true },
  { name: "shifted planes in row tiles, dilation 2 'same'", x: [2, 64, 18, 17], w: [4, 64, 3, 3], padding: 2, dilation: 2 },
  { name: 'shifted planes, per-sample, row tiles', x: [2, 64, 17, 16], w: [2, 5, 64, 3, 3], padding: 1 },
  { name: 'several samples per GEMM (4×4 maps), dead taps at 1×1', x: [40, 8, 4, 4], w: [6, 8, 3, 3], padding: 1, bias: true },
  { name: 'several samples per GEMM, 1×1 maps', x: [40, 8, 1, 1], w: [6, 8, 3, 3], padding: 1 },
];

function inputs(c: Cfg, seed: number) {
  const g = lift(c);
  const x = randomTensor(c.x, seed);
  const w = randomTensor(c.w, seed + 1, 0.5);
  const b = c.bias ? randomTensor([g.O], seed + 2) : null;
  return { x, w, b };
}

t.test('forward and backward match a naive convolution', async (t) => {
  let seed = 100;
  for (const c of [...cases, ...bigCases]) {
    const { x, w, b } = inputs(c, (seed += 10));
    x.requiresGrad = w.requiresGrad = true;
    if (b) b.requiresGrad = true;
    const y = run(c, x, w, b);
    const g = lift(c);
    t.same(y.shape, g.outShape, `${c.name}: output shape`);
    const xd = x.data() as Float32Array, wd = w.data() as Float32Array;
    const ref = refForward(c, xd, wd, b ? (b.data() as Float32Array) : null);
    t.ok(maxAbsDiff(y.data() as Float32Array, ref) < 1e-4, `${c.name}: forward max diff ${maxAbsDiff(y.data() as Float32Array, ref)}`);
    const dyData = randomData(g.outShape, seed + 5);
    y.backward(kw.tensor(dyData, g.outShape));
    const r = refBackward(c, xd, wd, dyData);
    t.ok(maxAbsDiff(x.grad!.data() as Float32Array, r.dx) < 1e-4, `${c.name}: dx max diff ${maxAbsDiff(x.grad!.data() as Float32Array, r.dx)}`);
    t.ok(maxAbsDiff(w.grad!.data() as Float32Array, r.dw) < 2e-4, `${c.name}: dw max diff ${maxAbsDiff(w.grad!.data() as Float32Array, r.dw)}`);
    if (b) t.ok(maxAbsDiff(b.grad!.data() as Float32Array, r.db) < 2e-4, `${c.name}: db`);
  }
});

t.test('a hand-computed 1-D case', async (t) => {
  // x = [1, 2, 3, 4], w = [1, 0, -1], padding 1: y[i] = x[i-1] - x[i+1]
  const y = kw.conv1d(kw.tensor([[[1, 2, 3, 4]]]), kw.tensor([[[1, 0, -1]]]), kw.tensor([10]), { padding: 1 });
  t.same(y.toArray(), [[[8, 8, 8, 13]]]);
  // stride 2, dilation 2 on [0..6]: taps at i, i+2 with weights 1, 2 → x[0]+2x[2], x[2]+2x[4], x[4]+2x[6]
  const z = kw.conv1d(kw.tensor([[[0, 1, 2, 3, 4, 5, 6]]]), kw.tensor([[[1, 2]]]), null, { stride: 2, dilation: 2 });
  t.same(z.toArray(), [[[4, 10, 16]]]);
});

t.test('gradients by finite differences', async (t) => {
  let seed = 500;
  for (const c of cases) {
    const { x, w, b } = inputs(c, (seed += 10));
    const ins = b ? [x, w, b] : [x, w];
    const r = gradcheck((xx, ww, bb) => run(c, xx, ww, bb ?? null), ins, { eps: 1e-2, maxProbes: 24 });
    t.ok(r.ok, `${c.name}: ${r.worst}`);
  }
});

t.test('only the requested gradients are computed', async (t) => {
  const x = randomTensor([2, 3, 5, 5], 1), w = randomTensor([4, 3, 3, 3], 2), b = randomTensor([4], 3);
  w.requiresGrad = true;
  kw.sum(kw.conv2d(x, w, b)).backward();
  t.ok(w.grad, 'dw computed');
  t.equal(x.grad, null);
  t.equal(b.grad, null);
  const x2 = randomTensor([2, 3, 5, 5], 4);
  x2.requiresGrad = true;
  kw.sum(kw.conv2d(x2, w, null)).backward();
  t.same(x2.grad!.shape, [2, 3, 5, 5]);
});

t.test('unbatched input, empty batch, conv1d/2d/3d ranks', async (t) => {
  const x = randomTensor([3, 6, 5], 7), w = randomTensor([4, 3, 3, 3], 8);
  const y = kw.conv2d(x, w, null, { padding: 1 });
  t.same(y.shape, [4, 6, 5]);
  const yb = kw.conv2d(kw.reshape(x, [1, 3, 6, 5]), w, null, { padding: 1 });
  t.same(y.data(), yb.data());
  t.same(kw.conv2d(kw.zeros([0, 3, 6, 5]), w).shape, [0, 4, 4, 3]);
  t.same(kw.conv2d(kw.zeros([0, 3, 6, 5]), kw.zeros([0, 4, 3, 3, 3])).shape, [0, 4, 4, 3]);
  t.same(kw.conv3d(kw.zeros([1, 2, 4, 4, 4]), kw.zeros([3, 2, 1, 1, 1])).shape, [1, 3, 4, 4, 4]);
  t.same(kw.conv1d(kw.zeros([2, 4]), kw.zeros([5, 2, 1])).shape, [5, 4]);
});

t.test('bad arguments throw errors naming them', async (t) => {
  const x = kw.zeros([2, 4, 6, 6]), w = kw.zeros([6, 4, 3, 3]);
  t.throws(() => kw.conv2d(x, kw.zeros([6, 2, 3, 3]), null, { groups: 3 }), /'groups'/);
  t.throws(() => kw.conv2d(x, kw.zeros([6, 3, 3, 3])), /'weight'/);
  t.throws(() => kw.conv2d(x, kw.zeros([3, 6, 4, 3, 3])), /'weight'.*batch/);
  t.throws(() => kw.conv2d(x, w, null, { stride: 0 }), /'stride'/);
  t.throws(() => kw.conv2d(x, w, null, { stride: [1, 1, 1] }), /'stride'/);
  t.throws(() => kw.conv2d(x, w, null, { padding: -1 }), /'padding'/);
  t.throws(() => kw.conv2d(x, w, null, { dilation: 1.5 }), /'dilation'/);
  t.throws(() => kw.conv2d(x, w, null, { padding: 'same', stride: 2 }), /'padding'/);
  t.throws(() => kw.conv2d(x, kw.zeros([6, 4, 7, 3])), /'x'.*spatial dim 0/);
  t.throws(() => kw.conv2d(x, w, kw.zeros([5])), /'bias'/);
  t.throws(() => kw.conv2d(kw.zeros([2, 4, 6]), kw.zeros([2, 6, 4, 3, 3])), /'weight'/);
  t.throws(() => kw.conv2d(kw.zeros([4, 6]), w), /'x'/);
  t.throws(() => kw.conv1d(x, w), /'x'/);
  t.throws(() => kw.convNd(kw.zeros([2, 4]), w), /'x'/);
  t.throws(() => kw.conv2d(x, kw.zeros([6, 4, 3])), /'weight'/);
  t.throws(() => kw.conv2d(x, w, null, { groups: 0 }), /'groups'/);
});

t.test('the native binding validates before touching memory', async (t) => {
  const x = kw.zeros([2, 4, 6, 6]), w = kw.zeros([6, 4, 3, 3]), b = kw.zeros([6]);
  const fwd = (xs: number[], ws: number[], st = [1, 1], pad = [0, 0], dil = [1, 1], groups = 1, bias: kw.Tensor | null = null) =>
    native.convForward(x.storage, xs, w.storage, ws, bias ? bias.storage : null, st, pad, dil, groups);
  t.throws(() => fwd([2, 4, 6, 7], [6, 4, 3, 3]), /'x' holds/);
  t.throws(() => fwd([2, 4, 6, 6], [6, 4, 3, 4]), /'w' holds/);
  t.throws(() => fwd([2, 4, 6, 6], [6, 4, 3, 3], [1]), /'stride'/);
  t.throws(() => fwd([2, 4, 6, 6], [6, 4, 3, 3], [0, 1]), /'stride'/);
  t.throws(() => fwd([2, 4, 6, 6], [6, 4, 3, 3], [1, 1], [1, 1, 1]), /'padding'/);
  t.throws(() => fwd([2, 4, 6, 6], [6, 4, 3, 3], [1, 1], [0, 0], [1, 0]), /'dilation'/);
  t.throws(() => fwd([2, 4, 6, 6], [6, 4, 3, 3], [1, 1], [0, 0], [1, 1], 0), /'groups'/);
  t.throws(() => fwd([2, 4, 6, 6], [6, 2, 3, 3], [1, 1], [0, 0], [1, 1], 3), /'groups'/);
  t.throws(() => fwd([2, 4, 6, 6], [6, 2, 3, 3]), /'wShape'/);
  t.throws(() => fwd([2, 4, 6, 6], [3, 2, 4, 3, 3]), /'wShape'.*batch/);
  t.throws(() => fwd([2, 4, 6, 6], [6, 4, 3]), /'wShape'/);
  t.throws(() => fwd([2, 4, 2, 2], [6, 4, 3, 3]), /output size/);
  t.throws(() => fwd([2, 4, 6, 6], [6, 4, 3, 3], [1, 1], [0, 0], [1, 1], 1, kw.zeros([5])), /'bias'/);
  t.throws(() => fwd([2, 4, 6, 6], [6, 4, 3, 3], [1, 1], [-1, 0]), /'padding'/);
  t.throws(() => fwd([2, 4, 36], [6, 4, 3, 3]), /'wShape'/);
  t.throws(() => fwd([2, 4, 6, 6], [6, 4, 3, 3], [1, 1], [0, 0], [2 ** 31, 1]), /'dilation'/);
  const dy = kw.zeros([2, 6, 4, 4]);
  const bwd = (dys: kw.Tensor, withX: boolean, withW: boolean, needDx: boolean, needDw: boolean) =>
    native.convBackward(dys.storage, withX ? x.storage : null, [2, 4, 6, 6], withW ? w.storage : null, [6, 4, 3, 3], [1, 1], [0, 0], [1, 1], 1, needDx, needDw, true);
  t.throws(() => bwd(kw.zeros([2, 6, 4, 5]), true, true, true, true), /'dy' holds/);
  t.throws(() => bwd(dy, false, true, true, true), /'x' is needed/);
  t.throws(() => bwd(dy, true, false, true, true), /'w' is needed/);
  const [dx, dw, db] = bwd(dy, false, true, true, false);
  t.ok(dx && !dw && db, 'returns only what was asked');
  t.throws(() => native.convForward(x.storage, [2, 4, 6, 6], w.storage, [6, 4, 3, 3], null, [1, 1], [0, 0], [1, 1], 1.5), /'groups'/);
});
