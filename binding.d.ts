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
export type NativeDevice = 'cpu' | 'cuda';
export interface CudaInfo {
  /** Whether CUDA tensors can be created (the library loaded and a device is visible). */
  available: boolean;
  /** Where the addon looks for libkw_cuda.so (KW_CUDA_LIB overrides). */
  library: string;
  /** Why not, when unavailable: built without CUDA, library missing, no device or old driver. */
  reason?: string;
  /** Toolkit, driver, device, GEMM and convolution providers, when available. */
  describe?: string;
  liveBytes?: number;
  peakBytes?: number;
  cachedBytes?: number;
}
export interface BuildInfo {
  version: string;
  gemm: string;
  threads: number;
  napiVersion: number;
  /** libkw_cuda.so was built beside this addon (a device may still be missing). */
  cuda: boolean;
}

/** A communication library opened by commOpen (native/comm/comm_api.h). */
export interface CommLibrary {
  name: 'mpi' | 'nccl';
  version: string;
}
export interface CommWorld {
  rank: number;
  size: number;
  /** This rank among the ranks on its machine, and how many share the machine. */
  localRank: number;
  localSize: number;
}

export interface Binding {
  // storage (native/binding/storage.cpp)
  zeros(dtype: NativeDType, numel: number, device?: NativeDevice): Storage;
  full(numel: number, value: number, device?: NativeDevice): Storage;
  fromTypedArray(data: NativeTypedArray): Storage;
  toTypedArray(s: Storage): NativeTypedArray;
  share(s: Storage): Storage;
  /** A copy on the other device (another reference when already there). Throws saying why CUDA is unavailable. */
  toDevice(s: Storage, device: NativeDevice): Storage;
  deviceOf(s: Storage): NativeDevice;
  /** Loads the CUDA backend on first call; never throws. */
  cudaInfo(): CudaInfo;
  cudaSynchronize(): void;
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

  // convolutions, 1-D/2-D/3-D (native/binding/conv.cpp). PyTorch semantics: x [B, C, spatial...],
  // w [out, C/groups, k...], or per-sample w [B, out, C/groups, k...] (one more dim than x: sample b
  // uses w[b]). stride/dilation: one entry per spatial dim; padding: one per spatial dim (both
  // sides) or 2·dims (all leading sides, then all trailing sides). bias: [out] or null.
  convForward(x: Storage, xShape: number[], w: Storage, wShape: number[], bias: Storage | null,
              stride: number[], padding: number[], dilation: number[], groups: number): Storage;
  // Returns [dx, dw, db], each null unless asked for; dw has wShape (per-sample too).
  // dx reads only w and dw reads only x: the other may be null.
  convBackward(dy: Storage, x: Storage | null, xShape: number[], w: Storage | null, wShape: number[],
               stride: number[], padding: number[], dilation: number[], groups: number,
               needDx: boolean, needDw: boolean, needDb: boolean): [Storage | null, Storage | null, Storage | null];

  // counter-based random draws (native/binding/random.cpp)
  uniform(numel: number, seed: number, offset: number, low: number, high: number, device?: NativeDevice): Storage;
  normal(numel: number, seed: number, offset: number, mean: number, std: number, device?: NativeDevice): Storage;
  bernoulli(numel: number, seed: number, offset: number, p: number, device?: NativeDevice): Storage;

  // in-place updates (native/binding/optim.cpp): PyTorch's SGD/Adam/AdamW formulas
  sgdStep(param: Storage, grad: Storage, momentumBuffer: Storage | null, lr: number, momentum: number,
          dampening: number, weightDecay: number, nesterov: boolean, firstStep: boolean): void;
  adamStep(param: Storage, grad: Storage, expAvg: Storage, expAvgSq: Storage, step: number, lr: number,
           beta1: number, beta2: number, eps: number, weightDecay: number, decoupled: boolean): void;
  lerpInplace(dst: Storage, src: Storage, weight: number): void;
  scaleInplace(x: Storage, scale: number): void;
  addInplace(dst: Storage, src: Storage, alpha: number): void;
  /** dst and src may be on different devices (a host↔device copy). */
  copyInto(dst: Storage, src: Storage): void;
  sumSquares(x: Storage): number;

  // normalisation (native/binding/norm.cpp): x viewed as [n, c, s] (batch norm) or
  // [outer, c, inner] (layer norm); the returned statistics are (mean, 1/sqrt(var + eps)) per
  // channel (batch norm) or per normalised group [outer·inner] (layer norm).
  // batchNormForward updates runningMean and runningVar IN PLACE when training (unbiased variance).
  batchNormForward(x: Storage, n: number, c: number, s: number, weight: Storage | null, bias: Storage | null,
                   runningMean: Storage | null, runningVar: Storage | null, training: boolean, momentum: number,
                   eps: number, relu?: boolean): [Storage, Storage, Storage];
  /** relu: the backward of batchNormForward(..., relu = true); it needs the bias. */
  batchNormBackward(dy: Storage, x: Storage, n: number, c: number, s: number, weight: Storage | null,
                    saveMean: Storage, saveInvstd: Storage, training: boolean, needX: boolean, needWeight: boolean,
                    needBias: boolean, bias?: Storage | null, relu?: boolean): [Storage | null, Storage | null, Storage | null];
  layerNormForward(x: Storage, outer: number, c: number, inner: number, weight: Storage | null, bias: Storage | null,
                   eps: number): [Storage, Storage, Storage];
  layerNormBackward(dy: Storage, x: Storage, outer: number, c: number, inner: number, weight: Storage | null,
                    saveMean: Storage, saveInvstd: Storage, needX: boolean, needWeight: boolean,
                    needBias: boolean): [Storage | null, Storage | null, Storage | null];

  // 2-D pooling on [planes, h, w] (native/binding/pool.cpp); window args are [h, w] pairs.
  // maxPool2d's indices (int32) are flat h·W + w positions in each plane, -1 for an all-padding window.
  maxPool2d(x: Storage, planes: number, h: number, w: number, kernel: number[], stride: number[], padding: number[],
            dilation: number[], ceilMode: boolean): [Storage, Storage];
  maxPool2dBackward(dy: Storage, indices: Storage, planes: number, h: number, w: number, kernel: number[],
                    stride: number[], padding: number[], dilation: number[], ceilMode: boolean): Storage;
  avgPool2d(x: Storage, planes: number, h: number, w: number, kernel: number[], stride: number[], padding: number[],
            ceilMode: boolean, countIncludePad: boolean): Storage;
  avgPool2dBackward(dy: Storage, planes: number, h: number, w: number, kernel: number[], stride: number[],
                    padding: number[], ceilMode: boolean, countIncludePad: boolean): Storage;
  adaptiveAvgPool2d(x: Storage, planes: number, h: number, w: number, outH: number, outW: number): Storage;
  adaptiveAvgPool2dBackward(dy: Storage, planes: number, h: number, w: number, outH: number, outW: number): Storage;

  // softmax along the middle axis of [outer, r, inner], and losses on [n, c] (native/binding/loss.cpp).
  // reduction: 0 none ([n] out), 1 mean, 2 sum ([1] out). target: int32/int64 [n] class indices
  // (ignoreIndex rows skipped) or, for crossEntropy only, float32 [n, c] probabilities.
  softmax(x: Storage, outer: number, r: number, inner: number, log: boolean): Storage;
  softmaxBackward(y: Storage, dy: Storage, outer: number, r: number, inner: number, log: boolean): Storage;
  crossEntropy(logits: Storage, n: number, c: number, target: Storage, labelSmoothing: number, reduction: number,
               ignoreIndex: number): [Storage, Storage];
  crossEntropyBackward(logits: Storage, lse: Storage, n: number, c: number, target: Storage, labelSmoothing: number,
                       reduction: number, ignoreIndex: number, dy: Storage): Storage;
  nllLoss(logp: Storage, n: number, c: number, target: Storage, reduction: number, ignoreIndex: number): Storage;
  nllLossBackward(n: number, c: number, target: Storage, reduction: number, ignoreIndex: number, dy: Storage): Storage;
  // KernelWarehouse (native/binding/kw.cpp). Attention dims: [batch, channels, spatial, hidden,
  // mixtures, cells, norm (0 BatchNorm1d train, 1 BatchNorm1d eval, 2 LayerNorm), numLocal,
  // numBasis, start]; numBasis > 0 selects the non-local basis path (fc3 + basisBias, no fc2Bias).
  // The forward updates runningMean/runningVar in place in BatchNorm training mode.
  kwAttentionForward(x: Storage, dims: number[], temperature: number, eps: number, momentum: number,
      fc1Weight: Storage, fc1Bias: Storage | null, normWeight: Storage, normBias: Storage,
      runningMean: Storage | null, runningVar: Storage | null, fc2Weight: Storage, fc2Bias: Storage | null,
      fc3Weight: Storage | null, basisBias: Storage | null, tempBias: Storage): [Storage, Storage];
  /** → [dx, dfc1Weight, dfc1Bias, dnormWeight, dnormBias, dfc2Weight, dfc2Bias, dfc3Weight, dbasisBias] */
  kwAttentionBackward(dalpha: Storage, workspace: Storage, dims: number[], temperature: number, eps: number,
      momentum: number, fc1Weight: Storage, fc1Bias: Storage | null, normWeight: Storage, normBias: Storage,
      fc2Weight: Storage, fc2Bias: Storage | null, fc3Weight: Storage | null,
      basisBias: Storage | null): (Storage | null)[];
  // Assembly dims: [batch, mixtures, cells, gs, goc, gic, co, ci, ck] (ck: flattened cell kernel).
  kwAssemble(alpha: Storage, cells: Storage, dims: number[]): Storage;
  kwAssembleBackward(dweight: Storage, alpha: Storage, cells: Storage, dims: number[], needAlpha: boolean,
      needCells: boolean): [Storage | null, Storage | null];
  // The fused KW convolution (native/binding/kw_conv.cpp): y = conv(x, kwAssemble(alpha, cells)) + bias
  // without materialising the per-sample kernels. dims: the assembly dims above; kernelSize, stride,
  // dilation: one entry per spatial dim of x; padding: one per dim or 2·dims (all before, then all
  // after). strategy: 0 auto (cost model), 1 chunked, 2 input mix (groups = 1 only), 3 panels, 4 winograd.
  // samplesPerChunk: a cap on the samples the kernels block together (0: their own choice).
  kwConvForward(x: Storage, alpha: Storage, cells: Storage, bias: Storage | null, xShape: number[], dims: number[],
      kernelSize: number[], stride: number[], padding: number[], dilation: number[], groups: number,
      strategy: number, samplesPerChunk: number): Storage;
  /** → [dx, dalpha, dcells, dbias], each null unless asked for. */
  kwConvBackward(dy: Storage, x: Storage, alpha: Storage, cells: Storage, xShape: number[], dims: number[],
      kernelSize: number[], stride: number[], padding: number[], dilation: number[], groups: number,
      strategy: number, samplesPerChunk: number, needDx: boolean, needDalpha: boolean, needDcells: boolean,
      needDbias: boolean): [Storage | null, Storage | null, Storage | null, Storage | null];
  /** Seconds of the panels strategy's forward assembly GEMMs on random data (benchmark hook; cellIn = ci·ck). */
  kwPanelAssemblySeconds(cells: number, cellOut: number, cellIn: number, groupsSpatial: number,
    groupsOutChannel: number, groupsInChannel: number, samples: number): number;
  /** The strategy the kernels run for these arguments: 1 chunked, 2 input mix, 3 panels, 4 Winograd with 2×2 output tiles, 5 Winograd with 4×4. */
  kwConvStrategy(xShape: number[], dims: number[], kernelSize: number[], stride: number[], padding: number[],
      dilation: number[], groups: number, strategy: number): number;


  // data-parallel communication (native/binding/comm.cpp over native/comm/*.so, opened at run time)
  commOpen(path: string): CommLibrary;
  commInit(): CommWorld;
  /** In-place float32 sum (or average) over all ranks, packed into buckets of bucketElems floats. */
  commAllreduce(storages: Storage[], average: boolean, bucketElems: number): void;
  commBroadcast(storages: Storage[], root: number): void;
  commBroadcastBytes(bytes: Uint8Array, root: number): void;
  /** Every rank's floats in rank order (all ranks must pass the same length). */
  commAllgather(s: Storage): Storage;
  /** As commAllgather on rank root; an empty storage on the others. */
  commGather(s: Storage, root: number): Storage;
  commBarrier(): void;
  commFinalize(): void;
  commAbort(code: number, message: string): never;
}
