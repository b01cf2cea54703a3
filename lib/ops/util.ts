// Helpers shared by the op files: wrapping native results and checking inputs.
import type { Storage } from '../../binding';
import { ArgumentError } from '../errors';
import { DType, Tensor } from '../tensor';

export function wrap(s: Storage, shape: readonly number[], dtype: DType = 'float32'): Tensor {
  return new Tensor(s, shape, dtype);
}

export function checkTensor(fn: string, param: string, t: unknown, dtype: DType | null = 'float32'): Tensor {
  if (!(t instanceof Tensor)) throw new ArgumentError(fn, param, 'a Tensor', t);
  if (t.isDisposed) throw new ArgumentError(fn, param, 'a live tensor', 'a disposed tensor');
  if (dtype && t.dtype !== dtype) throw new ArgumentError(fn, param, `a ${dtype} tensor`, t);
  return t;
}

/** Resolves a possibly negative axis against a rank. */
export function normAxis(fn: string, axis: number, ndim: number): number {
  if (!Number.isInteger(axis) || axis < -Math.max(ndim, 1) || axis >= Math.max(ndim, 1))
    throw new ArgumentError(fn, 'axis', `an integer in [${-ndim}, ${ndim - 1}]`, axis);
  return axis < 0 ? axis + ndim : axis;
}

export function broadcastShapes(fn: string, a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[i - (n - a.length)] ?? 1;
    const db = b[i - (n - b.length)] ?? 1;
    if (da !== db && da !== 1 && db !== 1)
      throw new Error(`${fn}: shapes [${a.join(', ')}] and [${b.join(', ')}] cannot be broadcast together`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
