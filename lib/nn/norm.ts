// Normalisation layers with PyTorch's state-dict names and semantics: BatchNorm1d/2d
// (weight, bias, running_mean, running_var, num_batches_tracked; batch statistics and an
// in-place running update in train mode, running statistics in eval mode) and LayerNorm
// (channels-last like nn.LayerNorm, or ConvNeXt's channels-first).
import { ArgumentError } from '../errors';
import { batchNorm, layerNorm } from '../ops/norm';
import { full, Tensor, tensor, zeros } from '../tensor';
import { copyInto, Layer, Module } from './module';

function positiveInt(fn: string, name: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 1) throw new ArgumentError(fn, name, 'a positive integer', v);
  return v as number;
}

function checkEps(fn: string, eps: unknown): number {
  if (typeof eps !== 'number' || !(eps >= 0) || !Number.isFinite(eps)) throw new ArgumentError(fn, 'eps', 'a non-negative number', eps);
  return eps;
}

export interface BatchNormLayerOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Weight of the new statistic (default 0.1); null: cumulative average over num_batches_tracked. */
  momentum?: number | null;
  /** Learnable weight and bias (default true). */
  affine?: boolean;
  /** Keep running statistics (default true); false: batch statistics in both modes. */
  trackRunningStats?: boolean;
}

/** PyTorch's _BatchNorm: normalises dim 1 of its input. Subclasses fix the input rank. */
export class BatchNormNd extends Module implements Layer {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly eps: number;
  readonly momentum: number | null;

  constructor(private readonly fn: string, private readonly ranks: number[], readonly numFeatures: number,
    opts: BatchNormLayerOptions = {}) {
    super();
    positiveInt(fn, 'numFeatures', numFeatures);
    this.eps = checkEps(fn, opts.eps ?? 1e-5);
    const m = opts.momentum === undefined ? 0.1 : opts.momentum;
    if (m !== null && (typeof m !== 'number' || !Number.isFinite(m))) throw new ArgumentError(fn, 'momentum', 'a number or null', m);
    this.momentum = m;
    const affine = opts.affine ?? true;
    this.weight = this.registerParameter('weight', affine ? full([numFeatures], 1) : null);
    this.bias = this.registerParameter('bias', affine ? zeros([numFeatures]) : null);
    const track = opts.trackRunningStats ?? true;
    this.registerBuffer('running_mean', track ? zeros([numFeatures]) : null);
    this.registerBuffer('running_var', track ? full([numFeatures], 1) : null);
    this.registerBuffer('num_batches_tracked', track ? zeros([], 'int64') : null);
  }

  get runningMean(): Tensor | null {
    return this.getBuffer('running_mean');
  }

  get runningVar(): Tensor | null {
    return this.getBuffer('running_var');
  }

  /** Sets running_mean to 0, running_var to 1 and num_batches_tracked to 0. */
  resetRunningStats(): void {
    for (const [name, value] of [['running_mean', 0], ['running_var', 1], ['num_batches_tracked', 0]] as const) {
      const b = this.getBuffer(name);
      if (!b) continue;
      const v = b.dtype === 'int64' ? zeros(b.shape, 'int64') : full(b.shape, value);
      copyInto(b, v);
      v.dispose();
    }
  }

  extraRepr(): string {
    return String(this.numFeatures);
  }

  forward(x: Tensor): Tensor {
    return this.normalize(x, false);
  }

  /**
   * relu(this.forward(x)) in one pass over memory (the CPU kernel fuses them; elsewhere they
   * are composed). ResNet's bn → relu pairs call this.
   * @example const y = bn.forwardRelu(x);
   */
  forwardRelu(x: Tensor): Tensor {
    return this.normalize(x, true);
  }

  private normalize(x: Tensor, relu: boolean): Tensor {
    if (!(x instanceof Tensor) || !this.ranks.includes(x.ndim) || x.shape[1] !== this.numFeatures)
      throw new ArgumentError(`${this.fn}.forward`, 'x',
        `a tensor of rank ${this.ranks.join(' or ')} with ${this.numFeatures} channels in dim 1`, x);
    const rm = this.runningMean, rv = this.runningVar;
    const useBatchStats = this.training || !rm;
    let momentum = this.momentum ?? 0;
    if (this.training && rm) {
      // PyTorch counts the batch before using the cumulative average factor 1/num_batches_tracked.
      const nbt = this.getBuffer('num_batches_tracked') as Tensor;
      const count = (nbt.data() as BigInt64Array)[0] + 1n;
      const next = tensor(new BigInt64Array([count]), [], 'int64');
      copyInto(nbt, next);
      next.dispose();
      if (this.momentum === null) momentum = 1 / Number(count);
    }
    return batchNorm(x, rm, rv, this.weight, this.bias, { training: useBatchStats, momentum, eps: this.eps, relu });
  }
}

/** nn.BatchNorm1d over [N, C] or [N, C, L]. @example const bn = new BatchNorm1d(64); */
export class BatchNorm1d extends BatchNormNd {
  constructor(numFeatures: number, opts: BatchNormLayerOptions = {}) {
    super('BatchNorm1d', [2, 3], numFeatures, opts);
  }
}

/** nn.BatchNorm2d over [N, C, H, W]. @example const bn = new BatchNorm2d(64); const y = bn.forward(x); */
export class BatchNorm2d extends BatchNormNd {
  constructor(numFeatures: number, opts: BatchNormLayerOptions = {}) {
    super('BatchNorm2d', [4], numFeatures, opts);
  }
}

export interface LayerNormLayerOptions {
  /** Added to the variance (default 1e-5, nn.LayerNorm's; ConvNeXt passes 1e-6). */
  eps?: number;
  /** 'channels_last' (default): over the last dim; 'channels_first': over dim 1 of [N, C, ...]. */
  dataFormat?: 'channels_last' | 'channels_first';
}

/**
 * Layer norm over one dimension of size `normalizedShape`, weight 1 and bias 0 at init: nn.LayerNorm(C)
 * (channels_last) or ConvNeXt's LayerNorm(C, data_format="channels_first").
 * @example const ln = new LayerNorm(96, { eps: 1e-6, dataFormat: 'channels_first' });
 */
export class LayerNorm extends Module implements Layer {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly eps: number;
  readonly dataFormat: 'channels_last' | 'channels_first';
  constructor(readonly normalizedShape: number, opts: LayerNormLayerOptions = {}) {
    super();
    positiveInt('LayerNorm', 'normalizedShape', normalizedShape);
    this.eps = checkEps('LayerNorm', opts.eps ?? 1e-5);
    const f = opts.dataFormat ?? 'channels_last';
    if (f !== 'channels_last' && f !== 'channels_first')
      throw new ArgumentError('LayerNorm', 'dataFormat', "'channels_last' or 'channels_first'", f);
    this.dataFormat = f;
    this.weight = this.registerParameter('weight', full([normalizedShape], 1))!;
    this.bias = this.registerParameter('bias', zeros([normalizedShape]))!;
  }
  extraRepr(): string {
    return `${this.normalizedShape}, ${this.dataFormat}`;
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, { eps: this.eps, channelsFirst: this.dataFormat === 'channels_first' });
  }
}
