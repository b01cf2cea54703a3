// Tensor: a shape and dtype over a native storage handle. Tensors are always contiguous
// (row-major); reshape shares the storage, every other op writes a new one.
//
// Memory is explicit: dispose() frees now, tidy(fn) frees everything fn created except what
// it returns, and the handle's native finalizer frees whatever the GC collects (the backstop).
import type { NativeTypedArray, Storage } from '../binding';
import { ArgumentError, checkShape } from './errors';
import { native } from './native';

export type DType = 'float32' | 'int32' | 'int64' | 'uint8';
export type Device = 'cpu' | 'cuda';
export type NestedArray = number | NestedArray[];

/** The autograd record of the op that produced a tensor (see autograd.ts). */
export interface GradNode {
  readonly name: string;
  readonly inputs: readonly (Tensor | null)[];
  backward(dy: Tensor): (Tensor | null)[];
  release(): void;
  released: boolean;
}

const scopes: Set<Tensor>[] = [];

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  requiresGrad = false;
  /** Accumulated gradient of a leaf tensor after backward(). */
  grad: Tensor | null = null;
  /** The op that produced this tensor, when it was recorded for autograd. */
  gradFn: GradNode | null = null;
  private handle: Storage | null;
  private dev: Device | null = null;  // asked of the native storage once, on first use

  /** Internal: wrap a native storage. Use the creation functions (tensor, zeros, ...) instead. */
  constructor(handle: Storage, shape: readonly number[], dtype: DType = 'float32', track = true) {
    this.handle = handle;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    if (track && scopes.length) scopes[scopes.length - 1].add(this);
  }

  get storage(): Storage {
    if (this.handle === null) throw new Error(`tensor of shape [${this.shape.join(', ')}] was disposed`);
    return this.handle;
  }
  /** Where the data lives: 'cpu', or 'cuda' after .to('cuda'). Ops keep their inputs' device. */
  get device(): Device {
    if (this.dev === null) this.dev = native.deviceOf(this.storage);
    return this.dev;
  }
  get isDisposed(): boolean {
    return this.handle === null;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get numel(): number {
    return numelOf(this.shape);
  }

  /** Frees this tensor's reference to its storage now. Safe to call twice. */
  dispose(): void {
    if (this.handle === null) return;
    native.release(this.handle);
    this.handle = null;
    for (const s of scopes) s.delete(this);
  }

  /** A new tensor object on the same storage (a second reference); not tracked by tidy. */
  share(shape: readonly number[] = this.shape): Tensor {
    return new Tensor(native.share(this.storage), shape, this.dtype, false);
  }

  /**
   * This tensor on `device`: a copy (recorded for autograd, so gradients flow back to the source
   * device), or this very tensor when it is already there, as in PyTorch.
   * Throws saying why when CUDA is unavailable (built without CUDA, no device, old driver).
   * @example const xg = x.to('cuda'); const back = xg.to('cpu');
   */
  to(device: Device): Tensor {
    if (device !== 'cpu' && device !== 'cuda') throw new ArgumentError('Tensor.to', 'device', "'cpu' or 'cuda'", device);
    if (device === this.device) return this;
    const out = new Tensor(native.toDevice(this.storage, device), this.shape, this.dtype);
    out.dev = device;
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { record } = require('./autograd') as typeof import('./autograd');
    const from = this.device;
    return record('to', [this], out, [], (dy) => [new Tensor(native.toDevice(dy.storage, from), dy.shape, dy.dtype, false)]);
  }

  /**
   * Internal (Module.to): moves the data to `device` in place, keeping this object's identity so
   * modules, optimizers and state dicts that hold it stay valid. A leaf's gradient moves too.
   */
  moveTo(device: Device): void {
    if (device === this.device) return;
    const h = native.toDevice(this.storage, device);
    native.release(this.storage);
    this.handle = h;
    this.dev = device;
    this.grad?.moveTo(device);
  }

  /** A copy of the data as a typed array (Float32Array for float32, BigInt64Array for int64...). */
  data(): NativeTypedArray {
    return native.toTypedArray(this.storage);
  }

  /** The data as nested JS arrays in the tensor's shape (numbers; int64 converted). */
  toArray(): NestedArray {
    const flat = Array.from(this.data() as ArrayLike<number | bigint>, Number);
    if (this.shape.length === 0) return flat[0];
    const build = (dim: number, offset: number): NestedArray[] => {
      const n = this.shape[dim];
      const step = numelOf(this.shape.slice(dim + 1));
      const out: NestedArray[] = [];
      for (let i = 0; i < n; i++)
        out.push(dim === this.shape.length - 1 ? flat[offset + i] : build(dim + 1, offset + i * step));
      return out;
    };
    return build(0, 0);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.numel !== 1) throw new ArgumentError('item', 'tensor', 'a one-element tensor', this);
    return Number(this.data()[0]);
  }

  /** Reverse-mode autodiff from this tensor; see autograd.backward. */
  backward(grad?: Tensor, opts?: { retainGraph?: boolean }): void {
    // Loaded lazily: autograd depends on the ops, which depend on this file.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    (require('./autograd') as typeof import('./autograd')).backward(this, grad, opts);
  }

  toString(): string {
    return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Runs fn and disposes every tensor it created, except those reachable from its result. */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const kept = new Set<Tensor>();
  collectTensors(result, kept, 0);
  for (const t of scope) if (!kept.has(t)) t.dispose();
  const outer = scopes[scopes.length - 1];
  if (outer) for (const t of kept) if (scope.has(t)) outer.add(t);
  return result;
}

/** Removes t from every tidy scope, so the enclosing tidy() does not dispose it. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collectTensors(v: unknown, out: Set<Tensor>, depth: number): void {
  if (depth > 4 || v === null || typeof v !== 'object') return;
  if (v instanceof Tensor) {
    out.add(v);
    return;
  }
  if (Array.isArray(v)) for (const x of v) collectTensors(x, out, depth + 1);
  else if (v instanceof Map) for (const x of v.values()) collectTensors(x, out, depth + 1);
  else if (Object.getPrototypeOf(v) === Object.prototype)
    for (const x of Object.values(v as object)) collectTensors(x, out, depth + 1);
}

// ---- creation ----

const arrayDTypes: [new (n: number) => NativeTypedArray, DType][] = [
  [Float32Array, 'float32'],
  [Int32Array, 'int32'],
  [BigInt64Array, 'int64'],
  [Uint8Array, 'uint8'],
];

function flattenNested(v: NestedArray, shape: number[], out: number[], dim: number): void {
  if (Array.isArray(v)) {
    if (shape.length === dim) shape.push(v.length);
    else if (shape[dim] !== v.length) throw new ArgumentError('tensor', 'data', 'a rectangular nested array', 'a ragged array');
    for (const x of v) flattenNested(x, shape, out, dim + 1);
  } else {
    if (typeof v !== 'number') throw new ArgumentError('tensor', 'data', 'numbers', v);
    if (dim !== shape.length) throw new ArgumentError('tensor', 'data', 'a rectangular nested array', 'a ragged array');
    out.push(v);
  }
}

/**
 * Creates a tensor from a typed array or nested number arrays.
 * @example const x = tensor([[1, 2], [3, 4]]); // float32, shape [2, 2]
 * @example const y = tensor(new Int32Array([1, 2, 3]), [3]);
 */
export function tensor(data: NestedArray | NativeTypedArray, shape?: readonly number[], dtype?: DType): Tensor {
  let arr: NativeTypedArray;
  let shp: number[];
  if (ArrayBuffer.isView(data)) {
    shp = shape ? checkShape('tensor', 'shape', [...shape]) : [data.length];
    arr = data;
  } else {
    const flat: number[] = [];
    const inferred: number[] = [];
    flattenNested(data, inferred, flat, 0);
    shp = shape ? checkShape('tensor', 'shape', [...shape]) : inferred;
    arr = new Float32Array(flat);
  }
  if (numelOf(shp) !== arr.length)
    throw new ArgumentError('tensor', 'shape', `a shape with ${arr.length} elements`, shp);
  const entry = arrayDTypes.find(([ctor]) => arr instanceof ctor);
  if (!entry) throw new ArgumentError('tensor', 'data', 'a Float32Array, Int32Array, BigInt64Array or Uint8Array', data);
  let t = new Tensor(native.fromTypedArray(arr), shp, entry[1]);
  if (dtype && dtype !== entry[1]) {
    const c = new Tensor(native.cast(t.storage, dtype), shp, dtype);
    t.dispose();
    t = c;
  }
  return t;
}

/** Zeros on `device` (default cpu). @example const z = zeros([2, 3]); */
export function zeros(shape: readonly number[], dtype: DType = 'float32', device: Device = 'cpu'): Tensor {
  const s = checkShape('zeros', 'shape', [...shape]);
  checkDevice('zeros', device);
  return new Tensor(native.zeros(dtype, numelOf(s), device), s, dtype);
}

/** A float32 tensor filled with value, on `device` (default cpu). @example const h = full([2], 0.5); */
export function full(shape: readonly number[], value: number, device: Device = 'cpu'): Tensor {
  const s = checkShape('full', 'shape', [...shape]);
  checkDevice('full', device);
  return new Tensor(native.full(numelOf(s), value, device), s);
}

export function checkDevice(fn: string, device: unknown): asserts device is Device {
  if (device !== 'cpu' && device !== 'cuda') throw new ArgumentError(fn, 'device', "'cpu' or 'cuda'", device);
}

export function ones(shape: readonly number[]): Tensor {
  return full(shape, 1);
}

export function scalar(value: number): Tensor {
  return full([], value);
}
