// The native binding's types: the one contract between TypeScript and C++.
// Every function validates its arguments and throws an Error naming the bad one.
// Tensors cross the boundary as storage handles (opaque) plus shapes; outputs are new handles.

export interface Storage {
  readonly __kwStorage: unique symbol;
}
export type NativeDType = 'float32' | 'int32' | 'int64' | 'uint8';
export type NativeTypedArray = Float32Array | Int32Array | BigInt64Array | Uint8Array;

export interface StorageInfo {
  dtype: NativeDType;
  numel: number;
  bytes: number;
  device: 'cpu' | 'cuda';
  refs: number;
}
export interface MemoryStats {
  liveBytes: number;
  peakBytes: number;
  cachedBytes: number;
  liveBlocks: number;
}
export interface BuildInfo {
  version: string;
  gemm: string;
  threads: number;
  napiVersion: number;
  cuda: boolean;
}

export interface Binding {
  // storage (native/binding/storage.cpp)
  zeros(dtype: NativeDType, numel: number): Storage;
  full(numel: number, value: number): Storage;
  fromTypedArray(data: NativeTypedArray): Storage;
  toTypedArray(s: Storage): NativeTypedArray;
  share(s: Storage): Storage;
  release(s: Storage): void;
  storageInfo(s: Storage): StorageInfo;
  memoryStats(): MemoryStats;
  resetPeakMemory(): void;
  emptyCache(): void;
  setNumThreads(n: number): void;
  numThreads(): number;
  buildInfo(): BuildInfo;

  // elementwise (native/binding/elementwise.cpp); op codes in lib/ops/elementwise.ts
  binary(op: number, a: Storage, aShape: number[], b: Storage, bShape: number[]): Storage;
  unary(op: number, x: Storage): Storage;
  unaryBackward(op: number, x: Storage | null, y: Storage | null, dy: Storage): Storage;
  affine(x: Storage, scale: number, shift: number): Storage;
  powScalar(x: Storage, exponent: number): Storage;
  clamp(x: Storage, min: number, max: number): Storage;

  // reductions along one axis of [outer, r, inner] (native/binding/reduce.cpp)
  sumAxis(x: Storage, outer: number, r: number, inner: number): Storage;
  maxAxis(x: Storage, outer: number, r: number, inner: number): [Storage, Storage];
  maxAxisBackward(dy: Storage, indices: Storage, outer: number, r: number, inner: number): Storage;
  expandAxis(y: Storage, outer: number, r: number, inner: number): Storage;

  // matrix products (native/binding/gemm.cpp)
  bmm(a: Storage, b: Storage, batchA: number, batchB: number, M: number, N: number, K: number,
      transA: boolean, transB: boolean): Storage;

  // strided copies (native/binding/layout.cpp); scatter* write into dst in place
  gather(src: Storage, shape: number[], strides: number[], offset: number): Storage;
  scatterAdd(dst: Storage, src: Storage, shape: number[], strides: number[], offset: number): void;
  scatter(dst: Storage, src: Storage, shape: number[], strides: number[], offset: number): void;
  cast(src: Storage, dtype: NativeDType): Storage;

  // counter-based random draws (native/binding/random.cpp)
  uniform(numel: number, seed: number, offset: number, low: number, high: number): Storage;
  normal(numel: number, seed: number, offset: number, mean: number, std: number): Storage;
  bernoulli(numel: number, seed: number, offset: number, p: number): Storage;

  // in-place updates (native/binding/optim.cpp): PyTorch's SGD/Adam/AdamW formulas
  sgdStep(param: Storage, grad: Storage, momentumBuffer: Storage | null, lr: number, momentum: number,
          dampening: number, weightDecay: number, nesterov: boolean, firstStep: boolean): void;
  adamStep(param: Storage, grad: Storage, expAvg: Storage, expAvgSq: Storage, step: number, lr: number,
           beta1: number, beta2: number, eps: number, weightDecay: number, decoupled: boolean): void;
  lerpInplace(dst: Storage, src: Storage, weight: number): void;
  scaleInplace(x: Storage, scale: number): void;
  addInplace(dst: Storage, src: Storage, alpha: number): void;
  copyInto(dst: Storage, src: Storage): void;
  sumSquares(x: Storage): number;
}
