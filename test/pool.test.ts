// Pooling: forward against naive JS references (PyTorch's window rules written out) and hand
// values, gradients by finite differences, errors naming the argument.
import t from 'tap';
import * as kw from '../lib';
import { gradcheck, maxAbsDiff, randomData, randomTensor } from './helpers/gradcheck';

interface Win { k: [number, number]; s: [number, number]; p: [number, number]; d: [number, number]; ceil: boolean }

function outSize(n: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const span = n + 2 * p - d * (k - 1) - 1;
  let o = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceil && (o - 1) * s >= n + p) o--;
  return o;
}

/** Max over the in-bounds window elements (padding never wins), per plane. */
function maxRef(x: ArrayLike<number>, planes: number, h: number, w: number, g: Win): { y: number[]; oh: number; ow: number } {
  const oh = outSize(h, g.k[0], g.s[0], g.p[0], g.d[0], g.ceil), ow = outSize(w, g.k[1], g.s[1], g.p[1], g.d[1], g.ceil);
  const y: number[] = [];
  for (let pl = 0; pl < planes; pl++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        let best = -Infinity;
        for (let a = 0; a < g.k[0]; a++)
          for (let b = 0; b < g.k[1]; b++) {
            const r = i * g.s[0] - g.p[0] + a * g.d[0], c = j * g.s[1] - g.p[1] + b * g.d[1];
            if (r >= 0 && r < h && c >= 0 && c < w) best = Math.max(best, x[pl * h * w + r * w + c]);
          }
        y.push(best);
      }
  return { y, oh, ow };
}

/** Average pooling: the window is clipped to the padded input; the divisor counts padding or not. */
function avgRef(x: ArrayLike<number>, planes: number, h: number, w: number, g: Win, includePad: boolean): { y: number[]; oh: number; ow: number } {
  const oh = outSize(h, g.k[0], g.s[0], g.p[0], 1, g.ceil), ow = outSize(w, g.k[1], g.s[1], g.p[1], 1, g.ceil);
  const y: number[] = [];
  for (let pl = 0; pl < planes; pl++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        let sum = 0, inside = 0, padded = 0;
        for (let a = 0; a < g.k[0]; a++)
          for (let b = 0; b < g.k[1]; b++) {
            const r = i * g.s[0] - g.p[0] + a, c = j * g.s[1] - g.p[1] + b;
            if (r >= h + g.p[0] || c >= w + g.p[1]) continue; // beyond the right/bottom padding (ceil mode)
            padded++;
            if (r >= 0 && r < h && c >= 0 && c < w) {
              sum += x[pl * h * w + r * w + c];
              inside++;
            }
          }
        y.push(sum / (includePad ? padded : inside));
      }
  return { y, oh, ow };
}

function adaptiveRef(x: ArrayLike<number>, planes: number, h: number, w: number, oh: number, ow: number): number[] {
  const y: number[] = [];
  for (let pl = 0; pl < planes; pl++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        const h0 = Math.floor((i * h) / oh), h1 = Math.ceil(((i + 1) * h) / oh);
        const w0 = Math.floor((j * w) / ow), w1 = Math.ceil(((j + 1) * w) / ow);
        let s = 0;
        for (let r = h0; r < h1; r++) for (let c = w0; c < w1; c++) s += x[pl * h * w + r * w + c];
        y.push(s / ((h1 - h0) * (w1 - w0)));
      }
  return y;
}

const seq = (n: number) => Float32Array.from({ length: n }, (_, i) => i + 1);

t.test('pooling: hand values', async (t) => {
  const x = kw.tensor(seq(16), [1, 1, 4, 4]);
  t.same(kw.maxPool2d(x, 2).toArray(), [[[[6, 8], [14, 16]]]]);
  t.same(kw.avgPool2d(x, 2).toArray(), [[[[3.5, 5.5], [11.5, 13.5]]]]);
  // ResNet's stem pool (3, stride 2, pad 1) on 4x4: windows rows {0,1},{1,2,3}
  t.same(kw.maxPool2d(x, 3, { stride: 2, padding: 1 }).toArray(), [[[[6, 8], [14, 16]]]]);
  // ceil mode on a row of 5 with 2-wide windows keeps the partial last window
  const r = kw.tensor(seq(5), [1, 1, 5]);
  t.same(kw.maxPool2d(r, [1, 2], { ceilMode: true }).toArray(), [[[2, 4, 5]]]);
  t.same(kw.maxPool2d(r, [1, 2]).toArray(), [[[2, 4]]]);
  t.same(kw.avgPool2d(r, [1, 2], { ceilMode: true }).toArray(), [[[1.5, 3.5, 5]]]);
  // padding counted or not: window [pad, 1, 2] / 3 or / 2
  t.same(kw.avgPool2d(kw.tensor(seq(4), [1, 1, 4]), [1, 3], { stride: [1, 2], padding: [0, 1] }).toArray(), [[[1, 3]]]);
  t.same(kw.avgPool2d(kw.tensor(seq(4), [1, 1, 4]), [1, 3], { stride: [1, 2], padding: [0, 1], countIncludePad: false }).toArray(), [[[1.5, 3]]]);
  // adaptive 5 -> 3: windows [0,2) [1,4) [3,5)
  t.same(kw.adaptiveAvgPool1d(kw.tensor(seq(5), [1, 1, 5]), 3).toArray(), [[[1.5, 3, 4.5]]]);
  t.same(kw.globalAvgPool(x).toArray(), [[[[8.5]]]]);
  t.same(kw.globalAvgPool(x, { keepDims: false }).toArray(), [[8.5]]);
  // -inf padding: an all-negative input keeps its own maximum at the border
  t.same(kw.maxPool2d(kw.full([1, 1, 2, 2], -5), 3, { stride: 1, padding: 1 }).toArray(), [[[[-5, -5], [-5, -5]]]]);
});

const maxCases: [number[], Win][] = [
  [[2, 3, 7, 6], { k: [3, 3], s: [2, 2], p: [1, 1], d: [1, 1], ceil: false }],
  [[2, 3, 7, 6], { k: [3, 2], s: [2, 1], p: [1, 0], d: [1, 1], ceil: true }],
  [[1, 2, 9, 8], { k: [3, 3], s: [2, 3], p: [1, 1], d: [2, 2], ceil: false }],
  [[1, 2, 8, 9], { k: [2, 3], s: [3, 2], p: [1, 0], d: [2, 1], ceil: true }],
  [[3, 5, 5], { k: [2, 2], s: [2, 2], p: [0, 0], d: [1, 1], ceil: true }],
  // Rows wider than the kernel's 64-column block: output columns split over several blocks.
  [[1, 2, 3, 150], { k: [3, 3], s: [2, 2], p: [1, 1], d: [1, 1], ceil: false }],
  [[1, 1, 4, 140], { k: [2, 3], s: [1, 1], p: [1, 1], d: [1, 2], ceil: true }],
];

t.test('maxPool2d forward against a naive reference (padding, stride, dilation, ceil mode, unbatched)', async (t) => {
  for (const [shape, g] of maxCases) {
    const [h, w] = shape.slice(-2);
    const planes = shape.slice(0, -2).reduce((a, b) => a * b, 1);
    const xd = randomData(shape, 1);
    const y = kw.maxPool2d(kw.tensor(xd, shape), g.k, { stride: g.s, padding: g.p, dilation: g.d, ceilMode: g.ceil });
    const ref = maxRef(xd, planes, h, w, g);
    t.same(y.shape, [...shape.slice(0, -2), ref.oh, ref.ow], `shape ${JSON.stringify(g)}`);
    t.ok(maxAbsDiff(y.data() as Float32Array, ref.y) === 0, `values ${JSON.stringify(g)}`);
  }
});

t.test('avgPool2d forward against a naive reference', async (t) => {
  const cases: [number[], Win][] = [
    [[2, 3, 7, 6], { k: [3, 3], s: [2, 2], p: [1, 1], d: [1, 1], ceil: false }],
    [[2, 3, 7, 6], { k: [3, 2], s: [2, 2], p: [1, 1], d: [1, 1], ceil: true }],
    [[1, 2, 5, 8], { k: [2, 4], s: [3, 3], p: [1, 2], d: [1, 1], ceil: true }],
    [[3, 6, 6], { k: [2, 2], s: [2, 2], p: [0, 0], d: [1, 1], ceil: false }],
  ];
  for (const [shape, g] of cases)
    for (const includePad of [true, false]) {
      const [h, w] = shape.slice(-2);
      const planes = shape.slice(0, -2).reduce((a, b) => a * b, 1);
      const xd = randomData(shape, 2);
      const y = kw.avgPool2d(kw.tensor(xd, shape), g.k, { stride: g.s, padding: g.p, ceilMode: g.ceil, countIncludePad: includePad });
      const ref = avgRef(xd, planes, h, w, g, includePad);
      t.same(y.shape, [...shape.slice(0, -2), ref.oh, ref.ow]);
      t.ok(maxAbsDiff(y.data() as Float32Array, ref.y) < 1e-6, `${JSON.stringify(g)} includePad=${includePad}`);
    }
});

t.test('adaptive and global average pooling against a naive reference', async (t) => {
  for (const [h, w, oh, ow] of [[7, 5, 3, 2], [6, 6, 4, 4], [4, 5, 7, 3], [5, 5, 1, 1], [9, 8, 9, 8]]) {
    const xd = randomData([2, 3, h, w], 3);
    const y = kw.adaptiveAvgPool2d(kw.tensor(xd, [2, 3, h, w]), [oh, ow]);
    t.same(y.shape, [2, 3, oh, ow]);
    t.ok(maxAbsDiff(y.data() as Float32Array, adaptiveRef(xd, 6, h, w, oh, ow)) < 1e-6, `${h}x${w} -> ${oh}x${ow}`);
  }
  const xd = randomData([2, 3, 4, 5], 4);
  t.same(kw.adaptiveAvgPool2d(kw.tensor(xd, [2, 3, 4, 5]), [null, 2]).shape, [2, 3, 4, 2]);
  const x1 = kw.tensor(randomData([2, 3, 10], 5), [2, 3, 10]);
  t.ok(maxAbsDiff(kw.adaptiveAvgPool1d(x1, 4).data() as Float32Array, adaptiveRef(x1.data() as Float32Array, 6, 1, 10, 1, 4)) < 1e-6, '1d');
  const x3 = kw.tensor(randomData([2, 3, 2, 3, 4], 6), [2, 3, 2, 3, 4]);
  const g = kw.globalAvgPool(x3);
  t.same(g.shape, [2, 3, 1, 1, 1]);
  t.ok(maxAbsDiff(g.data() as Float32Array, kw.mean(x3, [2, 3, 4]).data() as Float32Array) < 1e-6, 'global = mean over spatial dims');
});

t.test('pooling gradients by finite differences', async (t) => {
  for (const [shape, g] of maxCases) {
    // a small step keeps each probe from changing which element is the maximum
    const r = gradcheck((x) => kw.maxPool2d(x, g.k, { stride: g.s, padding: g.p, dilation: g.d, ceilMode: g.ceil }), [randomTensor(shape, 7)], { eps: 1e-4, atol: 5e-3 });
    t.ok(r.ok, `maxPool2d ${JSON.stringify(g)}: ${r.worst}`);
  }
  // overlapping windows share argmaxes: the gradient must accumulate
  const ov = kw.tensor(new Float32Array([0, 0, 0, 0, 9, 0, 0, 0, 0]), [1, 1, 3, 3]);
  ov.requiresGrad = true;
  kw.sum(kw.maxPool2d(ov, 2, { stride: 1 })).backward();
  t.same(ov.grad!.toArray(), [[[[0, 0, 0], [0, 4, 0], [0, 0, 0]]]]);
  for (const includePad of [true, false])
    for (const ceilMode of [false, true]) {
      const r = gradcheck((x) => kw.avgPool2d(x, [3, 2], { stride: [2, 2], padding: [1, 1], ceilMode, countIncludePad: includePad }), [randomTensor([2, 2, 7, 6], 8)]);
      t.ok(r.ok, `avgPool2d includePad=${includePad} ceil=${ceilMode}: ${r.worst}`);
    }
  for (const out of [[3, 2], [5, 7], [1, 1]] as [number, number][]) {
    const r = gradcheck((x) => kw.adaptiveAvgPool2d(x, out), [randomTensor([2, 2, 4, 5], 9)]);
    t.ok(r.ok, `adaptiveAvgPool2d ${out}: ${r.worst}`);
  }
  const r1 = gradcheck((x) => kw.adaptiveAvgPool1d(x, 3), [randomTensor([2, 2, 7], 10)]);
  t.ok(r1.ok, `adaptiveAvgPool1d: ${r1.worst}`);
  const rg = gradcheck((x) => kw.globalAvgPool(x, { keepDims: false }), [randomTensor([2, 3, 3, 3], 11)]);
  t.ok(rg.ok, `globalAvgPool: ${rg.worst}`);
});

t.test('pooling: bad input gives errors naming the argument', async (t) => {
  const x = kw.zeros([1, 2, 5, 5]);
  t.throws(() => kw.maxPool2d(kw.zeros([2, 5]), 2), /'x'/);
  t.throws(() => kw.maxPool2d(kw.zeros([1, 2, 5, 5], 'int32'), 2), /'x'.*float32/);
  t.throws(() => kw.maxPool2d(x, 0), /'kernelSize'/);
  t.throws(() => kw.maxPool2d(x, [2, 2, 2] as unknown as [number, number]), /'kernelSize'/);
  t.throws(() => kw.maxPool2d(x, 2, { stride: 0 }), /'stride'/);
  t.throws(() => kw.maxPool2d(x, 3, { padding: 2 }), /'padding'.*half/);
  t.throws(() => kw.maxPool2d(x, 2, { dilation: 0 }), /'dilation'/);
  t.throws(() => kw.maxPool2d(x, 2, { ceilMode: 1 as unknown as boolean }), /'ceilMode'/);
  t.throws(() => kw.maxPool2d(x, 6), /'x'.*large enough/);
  t.throws(() => kw.avgPool2d(x, 2, { countIncludePad: 'yes' as unknown as boolean }), /'countIncludePad'/);
  t.throws(() => kw.avgPool2d(x, 4, { padding: 3 }), /'padding'/);
  t.throws(() => kw.adaptiveAvgPool2d(x, [0, 2]), /'outputSize'/);
  t.throws(() => kw.adaptiveAvgPool2d(kw.zeros([1, 2, 0, 3]), 1), /'x'/);
  t.throws(() => kw.adaptiveAvgPool1d(x, 2), /'x'/);
  t.throws(() => kw.globalAvgPool(kw.zeros([2, 3])), /'x'/);
  // The binding checks again before touching memory.
  const { native } = await import('../lib/native');
  t.throws(() => native.maxPool2d(x.storage, 2, 5, 6, [2, 2], [2, 2], [0, 0], [1, 1], false), /'x' holds 50 elements/);
  t.throws(() => native.maxPool2d(x.storage, 2, 5, 5, [2, 2], [2, 2], [2, 0], [1, 1], false), /'padding'/);
  t.throws(() => native.avgPool2d(x.storage, 2, 5, 5, [2], [2, 2], [0, 0], false, true), /'kernel'/);
  const bad = kw.tensor(new Int32Array([0, 99]), [2]);
  t.throws(() => native.maxPool2dBackward(kw.zeros([2]).storage, bad.storage, 2, 1, 2, [1, 2], [1, 2], [0, 0], [1, 1], false), /'indices' out of range/);
});

t.test('maxPool2d argmax: ties go to the first element, a NaN wins and stays, all -inf picks the first in-bounds', async (t) => {
  const grad = (rows: number[][], k: number, padding = 0) => {
    const x = kw.tensor([[rows]]);
    x.requiresGrad = true;
    const y = kw.maxPool2d(x, k, { stride: k, padding });
    kw.sum(y).backward();
    return { y: (y.data() as Float32Array)[0], dx: Array.from(x.grad!.data() as Float32Array) };
  };
  t.same(grad([[1, 1], [1, 1]], 2).dx, [1, 0, 0, 0], 'tie: first in row-major order');
  t.same(grad([[0, 2], [2, 1]], 2).dx, [0, 1, 0, 0], 'tie between rows: the upper one');
  const n = grad([[1, NaN], [3, 2]], 2);
  t.ok(Number.isNaN(n.y), 'NaN propagates');
  t.same(n.dx, [0, 1, 0, 0], 'a later larger value does not replace the NaN');
  const inf = grad([[-Infinity, -Infinity], [-Infinity, -Infinity]], 3, 1);
  t.equal(inf.y, -Infinity);
  t.same(inf.dx, [1, 0, 0, 0], 'all -inf: the first in-bounds element');
});
