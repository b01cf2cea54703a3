// Normalisation ops: batch norm (BatchNorm1d/2d/3d, with in-place running statistics) and
// layer norm (channels-last, or ConvNeXt's channels-first), each one fused native kernel
// forward and one backward.
import type { Storage } from '../../binding';
import { record } from '../autograd';
import { ArgumentError } from '../errors';
import { native } from '../native';
import { numelOf, Tensor } from '../tensor';
import { relu as reluOp } from './elementwise';
import { checkTensor, wrap } from './util';

export interface BatchNormOptions {
  /** Use batch statistics and update the running ones (default false, as F.batch_norm). */
  training?: boolean;
  /** Weight of the new statistic in the running average (default 0.1). */
  momentum?: number;
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /**
   * Apply relu to the result: relu(batchNorm(x)) in one pass over memory on the CPU (ResNet's
   * bn → relu pairs), composed from the two ops elsewhere. Default false.
   */
  relu?: boolean;
}

export interface LayerNormOptions {
  /** Added to the variance (default 1e-6, ConvNeXt's value; nn.LayerNorm's is 1e-5). */
  eps?: number;
  /** Normalise over dim 1 of [N, C, ...] instead of the last dim (ConvNeXt data_format="channels_first"). */
  channelsFirst?: boolean;
}

function checkChannelVector(fn: string, param: string, t: Tensor | null, c: number): Tensor | null {
  if (t === null || t === undefined) return null;
  checkTensor(fn, param, t);
  if (t.ndim !== 1 || t.shape[0] !== c) throw new ArgumentError(fn, param, `a tensor of shape [${c}]`, t);
  return t;
}

function checkEps(fn: string, eps: unknown): number {
  if (typeof eps !== 'number' || !(eps >= 0) || !Number.isFinite(eps)) throw new ArgumentError(fn, 'eps', 'a non-negative number', eps);
  return eps;
}

function untracked(s: Storage, shape: readonly number[]): Tensor {
  return new Tensor(s, shape, 'float32', false);
}

/**
 * Batch normalisation over dim 1 of x [N, C, ...spatial] (BatchNorm1d on [N, C] or [N, C, L],
 * BatchNorm2d, BatchNorm3d), with PyTorch's semantics. In training mode the batch mean and
 * biased variance normalise x, and runningMean / runningVar (when given) are updated IN PLACE:
 * running = (1 - momentum)·running + momentum·stat, with the unbiased variance. In eval mode
 * the running statistics are used (and required).
 * @example const y = batchNorm(x, bn.runningMean, bn.runningVar, bn.weight, bn.bias, { training: true });
 */
export function batchNorm(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, weight: Tensor | null,
                          bias: Tensor | null, opts: BatchNormOptions = {}): Tensor {
  const fn = 'batchNorm';
  checkTensor(fn, 'x', x);
  if (x.ndim < 2) throw new ArgumentError(fn, 'x', 'a tensor of shape [N, C, ...]', x);
  const [n, c] = x.shape;
  const s = numelOf(x.shape.slice(2));
  checkChannelVector(fn, 'runningMean', runningMean, c);
  checkChannelVector(fn, 'runningVar', runningVar, c);
  checkChannelVector(fn, 'weight', weight, c);
  checkChannelVector(fn, 'bias', bias, c);
  const training = opts.training ?? false;
  if (typeof training !== 'boolean') throw new ArgumentError(fn, 'training', 'a boolean', training);
  const momentum = opts.momentum ?? 0.1;
  if (typeof momentum !== 'number' || !Number.isFinite(momentum)) throw new ArgumentError(fn, 'momentum', 'a finite number', momentum);
  const eps = checkEps(fn, opts.eps ?? 1e-5);
  if (!runningMean !== !runningVar)
    throw new ArgumentError(fn, runningMean ? 'runningVar' : 'runningMean', 'given together with the other running statistic', null);
  if (!training && !runningMean)
    throw new ArgumentError(fn, 'runningMean', 'a tensor in eval mode (training: false)', runningMean);
  if (runningMean && runningMean === runningVar)
    throw new ArgumentError(fn, 'runningVar', 'a different tensor from runningMean', runningVar);
  if (training && n * s <= 1)
    throw new ArgumentError(fn, 'x', 'more than 1 value per channel when training', x);

  const relu = opts.relu ?? false;
  if (typeof relu !== 'boolean') throw new ArgumentError(fn, 'relu', 'a boolean', relu);
  if (relu && x.device !== 'cpu') {
    const normed = batchNorm(x, runningMean, runningVar, weight, bias, { ...opts, relu: false });
    const r = reluOp(normed);
    normed.dispose();
    return r;
  }

  const [y, mean, invstd] = native.batchNormForward(x.storage, n, c, s, weight?.storage ?? null, bias?.storage ?? null,
    runningMean?.storage ?? null, runningVar?.storage ?? null, training, momentum, eps, relu);
  const out = wrap(y, x.shape);
  const sm = untracked(mean, [c]), si = untracked(invstd, [c]);
  // The fused backward recomputes relu's mask from x, so it keeps the bias too.
  const keepBias = relu && !!bias;
  const saved = [x, sm, si, ...(weight ? [weight] : []), ...(keepBias ? [bias!] : [])];
  const result = record(fn, [x, weight, bias], out, saved, (dy, [sx, m, is, ...rest]) => {
    const sw = weight ? rest[0] : null, sb = keepBias ? rest[weight ? 1 : 0] : null;
    const [dx, dw, db] = native.batchNormBackward(dy.storage, sx.storage, n, c, s, sw?.storage ?? null, m.storage,
      is.storage, training, x.requiresGrad, !!weight?.requiresGrad, !!bias?.requiresGrad, sb?.storage ?? null, relu);
    return [dx && wrap(dx, x.shape), dw && wrap(dw, [c]), db && wrap(db, [c])];
  });
  sm.dispose();
  si.dispose();
  return result;
}

/**
 * Layer normalisation. Channels-last (default): over the last dim of x [..., C], like
 * F.layer_norm(x, [C]). Channels-first: over dim 1 of x [N, C, ...], like ConvNeXt's LayerNorm
 * with data_format="channels_first". weight and bias are [C].
 * @example const y = layerNorm(x, ln.weight, ln.bias, { eps: 1e-6, channelsFirst: true });
 */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, opts: LayerNormOptions = {}): Tensor {
  const fn = 'layerNorm';
  checkTensor(fn, 'x', x);
  const channelsFirst = opts.channelsFirst ?? false;
  if (typeof channelsFirst !== 'boolean') throw new ArgumentError(fn, 'channelsFirst', 'a boolean', channelsFirst);
  if (x.ndim < (channelsFirst ? 2 : 1))
    throw new ArgumentError(fn, 'x', channelsFirst ? 'a tensor of shape [N, C, ...]' : 'a tensor with at least one dim', x);
  const c = channelsFirst ? x.shape[1] : x.shape[x.ndim - 1];
  if (c === 0) throw new ArgumentError(fn, 'x', 'a non-empty normalised dimension', x);
  const outer = channelsFirst ? x.shape[0] : numelOf(x.shape) / c;
  const inner = channelsFirst ? numelOf(x.shape.slice(2)) : 1;
  checkChannelVector(fn, 'weight', weight, c);
  checkChannelVector(fn, 'bias', bias, c);
  const eps = checkEps(fn, opts.eps ?? 1e-6);

  const [y, mean, invstd] = native.layerNormForward(x.storage, outer, c, inner, weight?.storage ?? null, bias?.storage ?? null, eps);
  const out = wrap(y, x.shape);
  const sm = untracked(mean, [outer * inner]), si = untracked(invstd, [outer * inner]);
  const saved = weight ? [x, sm, si, weight] : [x, sm, si];
  const result = record(fn, [x, weight, bias], out, saved, (dy, [sx, m, is, sw]) => {
    const [dx, dw, db] = native.layerNormBackward(dy.storage, sx.storage, outer, c, inner, sw?.storage ?? null, m.storage,
      is.storage, x.requiresGrad, !!weight?.requiresGrad, !!bias?.requiresGrad);
    return [dx && wrap(dx, x.shape), dw && wrap(dw, [c]), db && wrap(db, [c])];
  });
  sm.dispose();
  si.dispose();
  return result;
}
