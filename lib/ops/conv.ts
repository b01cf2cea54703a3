// Convolutions: conv1d, conv2d, conv3d and convNd, with PyTorch semantics (cross-correlation,
// NC(D)(H)W layout, weight [out, in/groups, k...]). The weight may also be per-sample,
// [B, out, in/groups, k...]: sample b is convolved with its own kernel w[b] (KernelWarehouse's
// dynamic convolution; upstream runs it as one grouped conv with groups = B·groups).
// Forward and backward both run in one native call each (native/cpu/conv.cpp).
import { record } from '../autograd';
import { ArgumentError } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';
import { reshape } from './layout';
import { checkTensor, wrap } from './util';

/** A number for every spatial dim, or one per dim (PyTorch style). */
export type ConvSize = number | readonly number[];

export interface ConvOptions {
  /** Step between output positions (default 1). */
  stride?: ConvSize;
  /**
   * Zeros added on both sides of each spatial dim (default 0), or 'valid' (none) or 'same'
   * (output size = input size; stride 1 only; an odd total puts the extra zero at the end, as
   * PyTorch does).
   */
  padding?: ConvSize | 'valid' | 'same';
  /** Spacing between kernel taps (default 1). */
  dilation?: ConvSize;
  /** Input and output channels split into this many independent groups (default 1). */
  groups?: number;
}

function perDim(fn: string, param: string, v: ConvSize | undefined, n: number, dflt: number, min: number): number[] {
  const arr = v === undefined ? new Array<number>(n).fill(dflt) : typeof v === 'number' ? new Array<number>(n).fill(v) : v;
  if (!Array.isArray(arr) || arr.length !== n || !arr.every((d) => Number.isInteger(d) && d >= min && d <= 2 ** 31 - 1))
    throw new ArgumentError(fn, param, `an integer ≥ ${min} or an array of ${n} such integers`, v);
  return [...arr];
}

interface Geometry {
  stride: number[];
  padding: number[]; // n entries (symmetric) or 2n (all leading sides, then all trailing sides)
  dilation: number[];
  groups: number;
  outShape: number[];
}

function geometry(fn: string, x: Tensor, w: Tensor, bias: Tensor | null, n: number, opts: ConvOptions): Geometry {
  const perSample = w.ndim === n + 3;
  const [B, C] = x.shape;
  const ws = perSample ? w.shape.slice(1) : w.shape;
  if (perSample && w.shape[0] !== B)
    throw new ArgumentError(fn, 'weight', `per-sample [B=${B}, out, in/groups, k...] (first dim = batch size)`, w);
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new ArgumentError(fn, 'groups', 'a positive integer', groups);
  const stride = perDim(fn, 'stride', opts.stride, n, 1, 1);
  const dilation = perDim(fn, 'dilation', opts.dilation, n, 1, 1);
  const O = ws[0];
  if (C % groups !== 0) throw new ArgumentError(fn, 'groups', `a divisor of the ${C} input channels`, groups);
  if (O % groups !== 0) throw new ArgumentError(fn, 'groups', `a divisor of the ${O} output channels`, groups);
  if (ws[1] !== C / groups)
    throw new ArgumentError(fn, 'weight', `[out, in/groups = ${C / groups}, k...]${perSample ? ' after the batch dim' : ''}`, w);
  if (!ws.every((d) => d >= 1)) throw new ArgumentError(fn, 'weight', 'positive channel and kernel sizes', w);
  if (!x.shape.slice(1).every((d) => d >= 1)) throw new ArgumentError(fn, 'x', 'positive channel and spatial sizes', x);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== O)) throw new ArgumentError(fn, 'bias', `of shape [${O}]`, bias);
  const kernel = ws.slice(2);
  let lo: number[], hi: number[];
  if (opts.padding === 'valid') {
    lo = hi = new Array<number>(n).fill(0);
  } else if (opts.padding === 'same') {
    if (stride.some((s) => s !== 1)) throw new ArgumentError(fn, 'padding', "numbers with a stride > 1 ('same' needs stride 1)", 'same');
    const total = kernel.map((k, i) => dilation[i] * (k - 1));
    lo = total.map((t) => Math.floor(t / 2));
    hi = total.map((t, i) => t - lo[i]);
  } else {
    lo = hi = perDim(fn, 'padding', opts.padding, n, 0, 0);
  }
  const outShape = [B, O];
  for (let i = 0; i < n; i++) {
    const span = x.shape[2 + i] + lo[i] + hi[i] - dilation[i] * (kernel[i] - 1) - 1;
    if (span < 0)
      throw new ArgumentError(fn, 'x', `at least ${dilation[i] * (kernel[i] - 1) + 1 - lo[i] - hi[i]} long along spatial dim ${i} (kernel ${kernel[i]}, dilation ${dilation[i]}, padding ${lo[i]}+${hi[i]})`, x);
    outShape.push(Math.floor(span / stride[i]) + 1);
  }
  const symmetric = lo.every((p, i) => p === hi[i]);
  return { stride, padding: symmetric ? lo : [...lo, ...hi], dilation, groups, outShape };
}

/**
 * N-d convolution (N = 1, 2, 3 from x's rank) of a batched input x [B, C, spatial...] with a
 * weight [out, C/groups, k...] shared by all samples, or a per-sample weight
 * [B, out, C/groups, k...] (one more dim than x) where sample b uses w[b]. Gradients flow to
 * x, weight (per-sample weights get per-sample gradients) and bias [out].
 * @example convNd(x, w, null, { stride: 2, padding: [1, 1] }) // x [8, 3, 32, 32], w [16, 3, 3, 3] → [8, 16, 16, 16]
 */
export function convNd(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor {
  checkTensor('convNd', 'x', x);
  if (x.ndim < 3 || x.ndim > 5) throw new ArgumentError('convNd', 'x', 'a [B, C, spatial...] tensor with 1 to 3 spatial dims', x);
  return convImpl('convNd', x, weight, bias ?? null, x.ndim - 2, opts);
}

function convImpl(fn: string, x: Tensor, w: Tensor, bias: Tensor | null, n: number, opts: ConvOptions): Tensor {
  checkTensor(fn, 'weight', w);
  if (bias !== null) checkTensor(fn, 'bias', bias);
  if (opts === null || typeof opts !== 'object') throw new ArgumentError(fn, 'opts', 'an options object', opts);
  if (w.ndim !== n + 2 && w.ndim !== n + 3)
    throw new ArgumentError(fn, 'weight', `[out, in/groups, k...] (${n + 2} dims) or per-sample [B, out, in/groups, k...] (${n + 3} dims)`, w);
  const g = geometry(fn, x, w, bias, n, opts);
  const xs = [...x.shape], wsh = [...w.shape];
  const y = wrap(native.convForward(x.storage, xs, w.storage, wsh, bias ? bias.storage : null, g.stride, g.padding, g.dilation, g.groups), g.outShape);
  // dW needs x and dX needs W: save only what the gradients asked for will read.
  const saveX = w.requiresGrad, saveW = x.requiresGrad;
  const saved = [...(saveX ? [x] : []), ...(saveW ? [w] : [])];
  return record(fn, [x, w, bias], y, saved, (dy, s) => {
    const sx = saveX ? s[0] : null, sw = saveW ? s[saveX ? 1 : 0] : null;
    const [dx, dw, db] = native.convBackward(dy.storage, sx ? sx.storage : null, xs, sw ? sw.storage : null, wsh,
      g.stride, g.padding, g.dilation, g.groups, saveW, saveX, !!bias && bias.requiresGrad);
    return [dx ? wrap(dx, xs) : null, dw ? wrap(dw, wsh) : null, db ? wrap(db, [g.outShape[1]]) : null];
  });
}

// conv1d/2d/3d: also take an unbatched input [C, spatial...] with a shared weight, as PyTorch does.
function convFixed(fn: string, n: number, x: Tensor, weight: Tensor, bias: Tensor | null | undefined, opts: ConvOptions): Tensor {
  checkTensor(fn, 'x', x);
  checkTensor(fn, 'weight', weight);
  if (x.ndim === n + 1) {
    if (weight.ndim !== n + 2) throw new ArgumentError(fn, 'weight', `[out, in/groups, k...] (${n + 2} dims) for an unbatched input`, weight);
    const xb = reshape(x, [1, ...x.shape]);
    const yb = convImpl(fn, xb, weight, bias ?? null, n, opts);
    const y = reshape(yb, yb.shape.slice(1));
    xb.dispose();
    yb.dispose();
    return y;
  }
  if (x.ndim !== n + 2) throw new ArgumentError(fn, 'x', `[B, C, ${['L', 'H, W', 'D, H, W'][n - 1]}] or unbatched [C, ${['L', 'H, W', 'D, H, W'][n - 1]}]`, x);
  return convImpl(fn, x, weight, bias ?? null, n, opts);
}

/**
 * 1-D convolution: x [B, C, L] (or [C, L]), weight [out, C/groups, k] or per-sample [B, out, C/groups, k].
 * @example conv1d(x, w, b, { padding: 1 }) // x [4, 8, 100], w [16, 8, 3] → [4, 16, 100]
 */
export function conv1d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor {
  return convFixed('conv1d', 1, x, weight, bias, opts);
}

/**
 * 2-D convolution: x [B, C, H, W] (or [C, H, W]), weight [out, C/groups, kh, kw] or per-sample
 * [B, out, C/groups, kh, kw].
 * @example conv2d(x, w, null, { stride: 2, padding: 1 }) // x [8, 64, 56, 56], w [128, 64, 3, 3] → [8, 128, 28, 28]
 */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor {
  return convFixed('conv2d', 2, x, weight, bias, opts);
}

/**
 * 3-D convolution: x [B, C, D, H, W] (or [C, D, H, W]), weight [out, C/groups, kd, kh, kw] or
 * per-sample [B, out, C/groups, kd, kh, kw].
 * @example conv3d(x, w, null, { padding: [0, 1, 1] }) // x [2, 4, 8, 16, 16], w [8, 4, 3, 3, 3] → [2, 8, 6, 16, 16]
 */
export function conv3d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor {
  return convFixed('conv3d', 3, x, weight, bias, opts);
}
