// kernelwarehouse: KernelWarehouse dynamic convolution on a native core.
export { Tensor, tensor, zeros, ones, full, scalar, tidy, keep, numelOf } from './tensor';
export type { DType, Device, NestedArray } from './tensor';
export { backward, noGrad, isGradEnabled } from './autograd';
export { Generator, manualSeed, rand, randn, bernoulli, defaultGenerator } from './random';
export * from './ops/elementwise';
export * from './ops/reduce';
export * from './ops/matmul';
export * from './ops/layout';
export * from './ops/conv';
export { ArgumentError } from './errors';
export { memoryStats, buildInfo, setNumThreads, numThreads, emptyCache } from './runtime';
export * from './ops/kw';
export * from './nn/module';
export * from './nn/layers';
export * from './kw';
