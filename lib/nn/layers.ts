// Plain layers with PyTorch's parameter names and default initialisation: Linear and
// Conv1d/2d/3d (what a KW warehouse manager returns for a layer with KW disabled).
import { ArgumentError } from '../errors';
import { convNd } from '../ops/conv';
import type { ConvOptions, ConvSize } from '../ops/conv';
import { linear } from '../ops/matmul';
import { Generator, rand } from '../random';
import { Tensor } from '../tensor';
import { Layer, Module } from './module';

/** U(−bound, bound) with bound = 1/√fanIn: PyTorch's kaiming_uniform_(a=√5) and its bias rule. */
function defaultInit(shape: number[], fanIn: number, generator?: Generator): Tensor {
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return rand(shape, { low: -bound, high: bound, generator });
}

function positiveInt(fn: string, name: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 1) throw new ArgumentError(fn, name, 'a positive integer', v);
  return v as number;
}

export interface InitOptions {
  generator?: Generator;
}

/**
 * y = x·Wᵀ + b over the last dimension (nn.Linear): weight [out, in], bias [out].
 * @example const fc = new Linear(512, 10); const logits = fc.forward(features);
 */
export class Linear extends Module implements Layer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, bias = true, opts: InitOptions = {}) {
    super();
    positiveInt('Linear', 'inFeatures', inFeatures);
    positiveInt('Linear', 'outFeatures', outFeatures);
    this.weight = this.registerParameter('weight', defaultInit([outFeatures, inFeatures], inFeatures, opts.generator))!;
    this.bias = this.registerParameter('bias', bias ? defaultInit([outFeatures], inFeatures, opts.generator) : null);
  }
  extraRepr(): string {
    return `${this.inFeatures}→${this.outFeatures}`;
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

export interface ConvLayerOptions extends ConvOptions, InitOptions {
  bias?: boolean;
}

/** nn.ConvNd: weight [out, in/groups, ...kernel], bias [out]. */
export class ConvNd extends Module implements Layer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: number[];
  readonly options: ConvOptions;
  constructor(readonly dimension: number, readonly inChannels: number, readonly outChannels: number,
    kernelSize: ConvSize, opts: ConvLayerOptions = {}) {
    super();
    const fn = `Conv${dimension}d`;
    positiveInt(fn, 'inChannels', inChannels);
    positiveInt(fn, 'outChannels', outChannels);
    const groups = positiveInt(fn, 'groups', opts.groups ?? 1);
    if (inChannels % groups || outChannels % groups)
      throw new ArgumentError(fn, 'groups', `a divisor of inChannels ${inChannels} and outChannels ${outChannels}`, groups);
    const k = typeof kernelSize === 'number' ? new Array<number>(dimension).fill(kernelSize) : [...kernelSize];
    if (k.length !== dimension || !k.every((d) => Number.isInteger(d) && d >= 1))
      throw new ArgumentError(fn, 'kernelSize', `a positive integer or ${dimension} of them`, kernelSize);
    this.kernelSize = k;
    this.options = { stride: opts.stride, padding: opts.padding, dilation: opts.dilation, groups };
    const fanIn = (inChannels / groups) * k.reduce((a, b) => a * b, 1);
    this.weight = this.registerParameter('weight',
      defaultInit([outChannels, inChannels / groups, ...k], fanIn, opts.generator))!;
    this.bias = this.registerParameter('bias', (opts.bias ?? true) ? defaultInit([outChannels], fanIn, opts.generator) : null);
  }
  extraRepr(): string {
    return `${this.inChannels}→${this.outChannels}`;
  }
  forward(x: Tensor): Tensor {
    const fn = `Conv${this.dimension}d.forward`;
    if (!(x instanceof Tensor) || x.ndim !== this.dimension + 2)
      throw new ArgumentError(fn, 'x', `a [B, ${this.inChannels}, ...${this.dimension} spatial dims] tensor`, x);
    // checked here rather than left to convNd, whose message would be about the weight's shape
    if (x.shape[1] !== this.inChannels)
      throw new ArgumentError(fn, 'x', `a [B, ${this.inChannels}, ...] tensor (the input has ${x.shape[1]} channels, the layer expects ${this.inChannels})`, x);
    return convNd(x, this.weight, this.bias, this.options);
  }
}

/** @example const c = new Conv1d(16, 32, 3, { padding: 1 }); */
export class Conv1d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: ConvSize, opts: ConvLayerOptions = {}) {
    super(1, inChannels, outChannels, kernelSize, opts);
  }
}

/** @example const c = new Conv2d(3, 64, 3, { stride: 2, padding: 1, bias: false }); */
export class Conv2d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: ConvSize, opts: ConvLayerOptions = {}) {
    super(2, inChannels, outChannels, kernelSize, opts);
  }
}

/** @example const c = new Conv3d(4, 8, [3, 3, 3], { padding: 1 }); */
export class Conv3d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: ConvSize, opts: ConvLayerOptions = {}) {
    super(3, inChannels, outChannels, kernelSize, opts);
  }
}
