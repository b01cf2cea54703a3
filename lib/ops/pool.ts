// Pooling ops on [N, C, H, W] (or unbatched [C, H, W]) with PyTorch semantics: max pooling
// (padding acts as -inf, the gradient goes to the saved argmax), average pooling (padded or
// clipped divisor), adaptive average pooling, and global average pooling.
import { record } from '../autograd';
import { ArgumentError } from '../errors';
import { native } from '../native';
import { numelOf, Tensor } from '../tensor';
import { checkTensor, wrap } from './util';

export type Size2 = number | readonly [number, number];

export interface MaxPool2dOptions {
  /** Default: the kernel size. */
  stride?: Size2;
  /** Implicit -inf padding on each side, at most half the kernel (default 0). */
  padding?: Size2;
  dilation?: Size2;
  /** Count a last partial window that starts inside the input (default false). */
  ceilMode?: boolean;
}

export interface AvgPool2dOptions {
  stride?: Size2;
  /** Implicit zero padding on each side, at most half the kernel (default 0). */
  padding?: Size2;
  ceilMode?: boolean;
  /** Divide by the window size including padding (default true) or by the in-bounds count. */
  countIncludePad?: boolean;
}

function pair(fn: string, param: string, v: unknown, min: number): [number, number] {
  const p = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || !p.every((d) => Number.isInteger(d) && d >= min && d <= 0x7fffffff))
    throw new ArgumentError(fn, param, `an integer >= ${min} or a pair of them`, v);
  return [p[0], p[1]];
}

function checkBool(fn: string, param: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new ArgumentError(fn, param, 'a boolean', v);
  return v;
}

/** PyTorch's pooling output size (pooling_output_shape). */
function outSize(inp: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  let out = Math.floor((inp + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0)) / s) + 1;
  if (ceil && (out - 1) * s >= inp + p) out--;
  return out;
}

interface Planes {
  planes: number;
  h: number;
  w: number;
  lead: number[];
}

/** x as [planes, H, W] for [N, C, H, W] or [C, H, W] inputs. */
function planesOf(fn: string, x: Tensor): Planes {
  checkTensor(fn, 'x', x);
  if (x.ndim !== 3 && x.ndim !== 4) throw new ArgumentError(fn, 'x', 'a tensor of shape [N, C, H, W] or [C, H, W]', x);
  const lead = x.shape.slice(0, -2);
  const [h, w] = x.shape.slice(-2);
  if (h === 0 || w === 0) throw new ArgumentError(fn, 'x', 'non-empty spatial dimensions', x);
  return { planes: numelOf(lead), h, w, lead };
}

interface Window {
  k: [number, number];
  s: [number, number];
  p: [number, number];
  d: [number, number];
  ceil: boolean;
  oh: number;
  ow: number;
}

function windowOf(fn: string, pl: Planes, x: Tensor, kernel: Size2, o: MaxPool2dOptions): Window {
  const k = pair(fn, 'kernelSize', kernel, 1);
  const s = o.stride === undefined || o.stride === null ? k : pair(fn, 'stride', o.stride, 1);
  const p = pair(fn, 'padding', o.padding ?? 0, 0);
  const d = pair(fn, 'dilation', o.dilation ?? 1, 1);
  const ceil = checkBool(fn, 'ceilMode', o.ceilMode ?? false);
  if (p[0] > Math.floor(k[0] / 2) || p[1] > Math.floor(k[1] / 2))
    throw new ArgumentError(fn, 'padding', `at most half of the kernel size [${k}]`, o.padding);
  const oh = outSize(pl.h, k[0], s[0], p[0], d[0], ceil), ow = outSize(pl.w, k[1], s[1], p[1], d[1], ceil);
  if (oh < 1 || ow < 1) throw new ArgumentError(fn, 'x', `a spatial size large enough for the window (output ${oh}x${ow})`, x);
  return { k, s, p, d, ceil, oh, ow };
}

/**
 * 2-D max pooling, as F.max_pool2d.
 * @example const y = maxPool2d(x, 3, { stride: 2, padding: 1 }); // ResNet's stem pool
 */
export function maxPool2d(x: Tensor, kernelSize: Size2, opts: MaxPool2dOptions = {}): Tensor {
  const fn = 'maxPool2d';
  const pl = planesOf(fn, x);
  const g = windowOf(fn, pl, x, kernelSize, opts);
  const [y, idx] = native.maxPool2d(x.storage, pl.planes, pl.h, pl.w, g.k, g.s, g.p, g.d, g.ceil);
  const outShape = [...pl.lead, g.oh, g.ow];
  const out = wrap(y, outShape);
  const indices = new Tensor(idx, outShape, 'int32', false);
  const result = record(fn, [x], out, [indices], (dy, [ix]) => [
    wrap(native.maxPool2dBackward(dy.storage, ix.storage, pl.planes, pl.h, pl.w, g.k, g.s, g.p, g.d, g.ceil), x.shape),
  ]);
  indices.dispose();
  return result;
}

/**
 * 2-D average pooling, as F.avg_pool2d (no divisor override).
 * @example const y = avgPool2d(x, 2); // 2x2 windows, stride 2
 */
export function avgPool2d(x: Tensor, kernelSize: Size2, opts: AvgPool2dOptions = {}): Tensor {
  const fn = 'avgPool2d';
  const pl = planesOf(fn, x);
  const g = windowOf(fn, pl, x, kernelSize, { stride: opts.stride, padding: opts.padding, ceilMode: opts.ceilMode });
  const includePad = checkBool(fn, 'countIncludePad', opts.countIncludePad ?? true);
  const out = wrap(native.avgPool2d(x.storage, pl.planes, pl.h, pl.w, g.k, g.s, g.p, g.ceil, includePad), [...pl.lead, g.oh, g.ow]);
  return record(fn, [x], out, [], (dy) => [
    wrap(native.avgPool2dBackward(dy.storage, pl.planes, pl.h, pl.w, g.k, g.s, g.p, g.ceil, includePad), x.shape),
  ]);
}

function adaptive(fn: string, x: Tensor, pl: Planes, oh: number, ow: number, outShape: number[]): Tensor {
  const out = wrap(native.adaptiveAvgPool2d(x.storage, pl.planes, pl.h, pl.w, oh, ow), outShape);
  return record(fn, [x], out, [], (dy) => [
    wrap(native.adaptiveAvgPool2dBackward(dy.storage, pl.planes, pl.h, pl.w, oh, ow), x.shape),
  ]);
}

function outputDim(fn: string, v: unknown, input: number): number {
  if (v === null) return input; // PyTorch's None: keep the input size
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 0x7fffffff)
    throw new ArgumentError(fn, 'outputSize', 'positive integers (or null to keep a dim)', v);
  return v as number;
}

/**
 * Adaptive average pooling to outputSize: output cell i averages input rows
 * [floor(i·H/oh), ceil((i+1)·H/oh)), likewise for columns (F.adaptive_avg_pool2d).
 * @example const y = adaptiveAvgPool2d(x, [7, 7]);
 */
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | readonly [number | null, number | null]): Tensor {
  const fn = 'adaptiveAvgPool2d';
  const pl = planesOf(fn, x);
  const pairSize = typeof outputSize === 'number' ? [outputSize, outputSize] : outputSize;
  if (!Array.isArray(pairSize) || pairSize.length !== 2) throw new ArgumentError(fn, 'outputSize', 'an integer or a pair', outputSize);
  const oh = outputDim(fn, pairSize[0], pl.h), ow = outputDim(fn, pairSize[1], pl.w);
  return adaptive(fn, x, pl, oh, ow, [...pl.lead, oh, ow]);
}

/**
 * Adaptive average pooling over the last dim of [N, C, L] or [C, L] (F.adaptive_avg_pool1d).
 * @example const y = adaptiveAvgPool1d(x, 1);
 */
export function adaptiveAvgPool1d(x: Tensor, outputSize: number): Tensor {
  const fn = 'adaptiveAvgPool1d';
  checkTensor(fn, 'x', x);
  if (x.ndim !== 2 && x.ndim !== 3) throw new ArgumentError(fn, 'x', 'a tensor of shape [N, C, L] or [C, L]', x);
  const lead = x.shape.slice(0, -1);
  const l = x.shape[x.ndim - 1];
  if (l === 0) throw new ArgumentError(fn, 'x', 'a non-empty last dimension', x);
  const ol = outputDim(fn, outputSize, l);
  return adaptive(fn, x, { planes: numelOf(lead), h: 1, w: l, lead }, 1, ol, [...lead, ol]);
}

/**
 * Mean over all spatial dims of x [N, C, ...spatial]: adaptive average pooling to 1×…×1.
 * keepDims (default true) keeps them as size 1, as F.adaptive_avg_pool2d(x, 1); false gives [N, C].
 * @example const feat = globalAvgPool(x, { keepDims: false }); // [N, C]
 */
export function globalAvgPool(x: Tensor, opts: { keepDims?: boolean } = {}): Tensor {
  const fn = 'globalAvgPool';
  checkTensor(fn, 'x', x);
  if (x.ndim < 3) throw new ArgumentError(fn, 'x', 'a tensor of shape [N, C, ...spatial]', x);
  const keepDims = checkBool(fn, 'keepDims', opts.keepDims ?? true);
  const spatial = numelOf(x.shape.slice(2));
  if (spatial === 0) throw new ArgumentError(fn, 'x', 'non-empty spatial dimensions', x);
  const lead = x.shape.slice(0, 2);
  const outShape = keepDims ? [...lead, ...x.shape.slice(2).map(() => 1)] : lead;
  return adaptive(fn, x, { planes: numelOf(lead), h: 1, w: spatial, lead }, 1, 1, outShape);
}
