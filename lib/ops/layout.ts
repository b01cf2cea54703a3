// Shape ops: reshape shares storage; permute, transpose, slice and concat copy through
// strided views (native gather/scatter), and their backward passes are the reverse copies.
import { record } from '../autograd';
import { ArgumentError, checkShape } from '../errors';
import { native } from '../native';
import { DType, numelOf, Tensor, zeros } from '../tensor';
import { checkTensor, normAxis, wrap } from './util';

/** Row-major strides of a contiguous tensor of this shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= shape[i];
  }
  return st;
}

/** Same data, new shape (one dimension may be -1). Shares storage: no copy. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor('reshape', 'x', x, null);
  const s = [...shape];
  const free = s.indexOf(-1);
  if (free >= 0) {
    const rest = numelOf(s.filter((_, i) => i !== free));
    s[free] = rest === 0 ? 0 : x.numel / rest;
  }
  checkShape('reshape', 'shape', s);
  if (numelOf(s) !== x.numel) throw new ArgumentError('reshape', 'shape', `a shape with ${x.numel} elements`, shape);
  const out = new Tensor(native.share(x.storage), s, x.dtype);
  return record('reshape', [x], out, [], (dy) => [dy.share(x.shape)]);
}

/** Flattens dimensions from `startDim` on into one. */
export function flatten(x: Tensor, startDim = 1): Tensor {
  const d = normAxis('flatten', startDim, x.ndim);
  return reshape(x, [...x.shape.slice(0, d), numelOf(x.shape.slice(d))]);
}

/** Reorders dimensions: out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  checkTensor('permute', 'x', x, null);
  const p = perm.map((a) => normAxis('permute', a, x.ndim));
  if (p.length !== x.ndim || new Set(p).size !== p.length)
    throw new ArgumentError('permute', 'perm', `a permutation of ${x.ndim} axes`, perm);
  const st = stridesOf(x.shape);
  const shape = p.map((a) => x.shape[a]);
  const out = new Tensor(native.gather(x.storage, shape, p.map((a) => st[a]), 0), shape, x.dtype);
  const inverse = new Array<number>(p.length);
  p.forEach((a, i) => (inverse[a] = i));
  return record('permute', [x], out, [], (dy) => {
    const dst = stridesOf(dy.shape);
    return [wrap(native.gather(dy.storage, [...x.shape], inverse.map((a) => dst[a]), 0), x.shape)];
  });
}

/** Swaps two dimensions. */
export function transpose(x: Tensor, dim0: number, dim1: number): Tensor {
  const p = [...Array(x.ndim).keys()];
  const a = normAxis('transpose', dim0, x.ndim), b = normAxis('transpose', dim1, x.ndim);
  [p[a], p[b]] = [p[b], p[a]];
  return permute(x, p);
}

/**
 * Slices along one axis: elements start, start+step, ... below end (negative indices count
 * from the end, as in Python).
 * @example slice(x, 1, 0, 2) // x[:, 0:2]
 */
export function slice(x: Tensor, axis: number, start: number, end?: number, step = 1): Tensor {
  checkTensor('slice', 'x', x, null);
  const a = normAxis('slice', axis, x.ndim);
  const n = x.shape[a];
  if (!Number.isInteger(step) || step < 1) throw new ArgumentError('slice', 'step', 'a positive integer', step);
  const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + n : i, 0), n);
  const s0 = clampIdx(start), e0 = clampIdx(end ?? n);
  const len = Math.max(0, Math.ceil((e0 - s0) / step));
  const st = stridesOf(x.shape);
  const shape = [...x.shape];
  shape[a] = len;
  const strides = [...st];
  strides[a] = st[a] * step;
  const offset = len ? s0 * st[a] : 0;
  const out = new Tensor(native.gather(x.storage, shape, strides, offset), shape, x.dtype);
  return record('slice', [x], out, [], (dy) => {
    const g = zeros(x.shape, 'float32', x.device);
    native.scatterAdd(g.storage, dy.storage, shape, strides, offset);
    return [g];
  });
}

/** Concatenates tensors along an axis; all other dimensions must match. */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (!Array.isArray(xs as unknown) || xs.length === 0) throw new ArgumentError('concat', 'xs', 'a non-empty array of tensors', xs);
  xs.forEach((t, i) => checkTensor('concat', `xs[${i}]`, t, xs[0].dtype));
  const a = normAxis('concat', axis, xs[0].ndim);
  for (const t of xs)
    if (t.ndim !== xs[0].ndim || t.shape.some((d, i) => i !== a && d !== xs[0].shape[i]))
      throw new Error(`concat: shapes [${xs[0].shape}] and [${t.shape}] differ outside axis ${a}`);
  const shape = [...xs[0].shape];
  shape[a] = xs.reduce((s, t) => s + t.shape[a], 0);
  const dtype: DType = xs[0].dtype;
  const out = zeros(shape, dtype, xs[0].device);
  const st = stridesOf(shape);
  const offsets: number[] = [];
  let pos = 0;
  for (const t of xs) {
    offsets.push(pos);
    if (t.numel) native.scatter(out.storage, t.storage, [...t.shape], st, pos * st[a]);
    pos += t.shape[a];
  }
  return record('concat', [...xs], out, [], (dy) =>
    xs.map((t, i) => (t.requiresGrad ? wrap(native.gather(dy.storage, [...t.shape], st, offsets[i] * st[a]), t.shape) : null)),
  );
}

/** Copies to another dtype (no gradient through integer types). */
export function cast(x: Tensor, dtype: DType): Tensor {
  checkTensor('cast', 'x', x, null);
  return new Tensor(native.cast(x.storage, dtype), x.shape, dtype);
}

/** Inserts a size-1 dimension. */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis('unsqueeze', axis, x.ndim + 1);
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

/** Removes a size-1 dimension. */
export function squeeze(x: Tensor, axis: number): Tensor {
  const a = normAxis('squeeze', axis, x.ndim);
  if (x.shape[a] !== 1) throw new ArgumentError('squeeze', 'axis', 'an axis of size 1', axis);
  return reshape(x, x.shape.filter((_, i) => i !== a));
}
