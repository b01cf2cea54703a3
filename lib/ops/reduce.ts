// Reductions: sum, mean, max over axes, and sumToShape (the backward of broadcasting).
import { record } from '../autograd';
import { ArgumentError } from '../errors';
import { native } from '../native';
import { numelOf, Tensor } from '../tensor';
import { checkTensor, normAxis, sameShape, wrap } from './util';

export interface ReduceOptions {
  keepDims?: boolean;
}

function axesOf(fn: string, axis: number | number[] | undefined, ndim: number): number[] {
  if (axis === undefined) return [...Array(ndim).keys()];
  const list = (Array.isArray(axis) ? axis : [axis]).map((a) => normAxis(fn, a, ndim));
  if (new Set(list).size !== list.length) throw new ArgumentError(fn, 'axis', 'distinct axes', axis);
  return list.sort((a, b) => a - b);
}

function split(shape: readonly number[], axis: number): [number, number, number] {
  return [numelOf(shape.slice(0, axis)), shape[axis], numelOf(shape.slice(axis + 1))];
}

/** Sums x over the given axes of its shape, keeping them as size 1 (no autograd). */
function sumAxesRaw(x: Tensor, axes: number[]): Tensor {
  let cur = x;
  let shape = [...x.shape];
  for (const a of axes) {
    const [o, r, i] = split(shape, a);
    shape[a] = 1;
    const next = new Tensor(native.sumAxis(cur.storage, o, r, i), shape, 'float32', cur !== x);
    if (cur !== x) cur.dispose();
    cur = next;
  }
  return cur === x ? x.share() : cur;
}

function reducedShape(shape: readonly number[], axes: number[], keepDims: boolean): number[] {
  return keepDims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

/** Broadcasts g (shape with 1s at reduced axes) back to `shape`. */
function expandTo(g: Tensor, keptShape: number[], shape: readonly number[]): Tensor {
  let cur = g.share(keptShape);
  let curShape = [...keptShape];
  for (let a = 0; a < shape.length; a++) {
    if (curShape[a] === shape[a]) continue;
    const o = numelOf(curShape.slice(0, a));
    const i = numelOf(curShape.slice(a + 1));
    curShape[a] = shape[a];
    const next = new Tensor(native.expandAxis(cur.storage, o, shape[a], i), curShape, 'float32', false);
    cur.dispose();
    cur = next;
  }
  return finish(cur, shape);
}

/** A tracked tensor of `shape` on t's storage; t (an internal reference) is released. */
function finish(t: Tensor, shape: readonly number[]): Tensor {
  const out = wrap(native.share(t.storage), shape);
  t.dispose();
  return out;
}

/**
 * Sum over `axis` (all axes by default).
 * @example sum(x, 1, { keepDims: true })
 */
export function sum(x: Tensor, axis?: number | number[], opts: ReduceOptions = {}): Tensor {
  checkTensor('sum', 'x', x);
  const axes = axesOf('sum', axis, x.ndim);
  const kept = reducedShape(x.shape, axes, true);
  const r = sumAxesRaw(x, axes);
  const out = wrap(native.share(r.storage), reducedShape(x.shape, axes, !!opts.keepDims));
  r.dispose();
  return record('sum', [x], out, [], (dy) => [expandTo(dy, kept, x.shape)]);
}

/** Mean over `axis` (all axes by default). */
export function mean(x: Tensor, axis?: number | number[], opts: ReduceOptions = {}): Tensor {
  checkTensor('mean', 'x', x);
  const axes = axesOf('mean', axis, x.ndim);
  const count = axes.reduce((n, a) => n * x.shape[a], 1);
  const kept = reducedShape(x.shape, axes, true);
  const r = sumAxesRaw(x, axes);
  const out = wrap(native.affine(r.storage, 1 / count, 0), reducedShape(x.shape, axes, !!opts.keepDims));
  r.dispose();
  return record('mean', [x], out, [], (dy) => {
    const scaled = new Tensor(native.affine(dy.storage, 1 / count, 0), dy.shape, 'float32', false);
    const g = expandTo(scaled, kept, x.shape);
    scaled.dispose();
    return [g];
  });
}

/** Maximum over one axis; the gradient flows to the first maximal element. */
export function max(x: Tensor, axis: number, opts: ReduceOptions = {}): Tensor {
  checkTensor('max', 'x', x);
  const a = normAxis('max', axis, x.ndim);
  const [o, r, i] = split(x.shape, a);
  if (r === 0) throw new ArgumentError('max', 'x', 'a non-empty axis', x);
  const [y, idx] = native.maxAxis(x.storage, o, r, i);
  const out = wrap(y, reducedShape(x.shape, [a], !!opts.keepDims));
  const indices = new Tensor(idx, [o, i], 'int32', false);
  const rec = record('max', [x], out, [indices], (dy, [ix]) => [wrap(native.maxAxisBackward(dy.storage, ix.storage, o, r, i), x.shape)]);
  indices.dispose();
  return rec;
}

/** Sums g over the broadcast dimensions so it has `shape` (the backward of broadcasting). */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g.share();
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  for (let a = 0; a < g.ndim; a++) if (a < lead || (shape[a - lead] === 1 && g.shape[a] !== 1)) axes.push(a);
  const r = sumAxesRaw(g, axes);
  const out = wrap(native.share(r.storage), shape);
  r.dispose();
  return out;
}
