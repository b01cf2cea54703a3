// Softmax, log-softmax and the classification losses (cross-entropy with hard, smoothed or
// soft targets; negative log-likelihood), each a fused native kernel forward and backward.
import { record } from '../autograd';
import { ArgumentError } from '../errors';
import { native } from '../native';
import { numelOf, Tensor } from '../tensor';
import { checkTensor, normAxis, wrap } from './util';

export type LossReduction = 'mean' | 'sum' | 'none';

export interface CrossEntropyOptions {
  /** ε in [0, 1]: loss = (1-ε)·nll + ε·mean_c(-log p_c), as F.cross_entropy(label_smoothing=ε). */
  labelSmoothing?: number;
  /** 'mean' (default) averages over rows not ignored, 'sum' adds, 'none' returns [N]. */
  reduction?: LossReduction;
  /** Rows whose class index equals this contribute nothing (default -100, as PyTorch). */
  ignoreIndex?: number;
}

export interface NllLossOptions {
  reduction?: LossReduction;
  ignoreIndex?: number;
}

const reductionCodes: Record<LossReduction, number> = { none: 0, mean: 1, sum: 2 };
const MUL = 2; // BinaryOp::Mul in native/core/kernels/elementwise.h

function split(x: Tensor, a: number): [number, number, number] {
  return [numelOf(x.shape.slice(0, a)), x.shape[a], numelOf(x.shape.slice(a + 1))];
}

function softmaxOp(fn: string, x: Tensor, axis: number, log: boolean): Tensor {
  checkTensor(fn, 'x', x);
  if (x.ndim === 0) throw new ArgumentError(fn, 'x', 'a tensor with at least one dim', x);
  const [o, r, i] = split(x, normAxis(fn, axis, x.ndim));
  const out = wrap(native.softmax(x.storage, o, r, i, log), x.shape);
  return record(fn, [x], out, [out], (dy, [y]) => [wrap(native.softmaxBackward(y.storage, dy.storage, o, r, i, log), x.shape)]);
}

/**
 * Softmax along `axis` (default -1), computed stably (the max is subtracted first).
 * @example softmax(tensor([0, Math.LN2])) // [1/3, 2/3]
 */
export function softmax(x: Tensor, axis = -1): Tensor {
  return softmaxOp('softmax', x, axis, false);
}

/**
 * log(softmax(x)) along `axis` (default -1), computed as x - max - log Σ exp(x - max).
 * @example const logp = logSoftmax(logits, 1);
 */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return softmaxOp('logSoftmax', x, axis, true);
}

function checkReduction(fn: string, r: unknown): number {
  if (typeof r !== 'string' || !(r in reductionCodes)) throw new ArgumentError(fn, 'reduction', "'mean', 'sum' or 'none'", r);
  return reductionCodes[r as LossReduction];
}

function checkIgnore(fn: string, v: unknown): number {
  if (!Number.isSafeInteger(v)) throw new ArgumentError(fn, 'ignoreIndex', 'an integer', v);
  return v as number;
}

function checkLogits(fn: string, param: string, x: Tensor): [number, number] {
  checkTensor(fn, param, x);
  if (x.ndim !== 2 || x.shape[1] === 0) throw new ArgumentError(fn, param, 'a tensor of shape [N, C] with C >= 1', x);
  return [x.shape[0], x.shape[1]];
}

function checkHardTarget(fn: string, target: Tensor, n: number): void {
  if (target.ndim !== 1 || target.shape[0] !== n)
    throw new ArgumentError(fn, 'target', `class indices of shape [${n}]`, target);
}

/**
 * Cross-entropy between logits [N, C] and a target: int32/int64 class indices [N], or float32
 * class probabilities [N, C] (timm's SoftTargetCrossEntropy: Σ_c -t_c·log p_c per row).
 * @example const loss = crossEntropy(logits, labels, { labelSmoothing: 0.1 });
 */
export function crossEntropy(logits: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const fn = 'crossEntropy';
  const [n, c] = checkLogits(fn, 'logits', logits);
  checkTensor(fn, 'target', target, null);
  const soft = target.dtype === 'float32';
  if (soft) {
    if (target.ndim !== 2 || target.shape[0] !== n || target.shape[1] !== c)
      throw new ArgumentError(fn, 'target', `probabilities of shape [${n}, ${c}]`, target);
  } else if (target.dtype === 'int32' || target.dtype === 'int64') {
    checkHardTarget(fn, target, n);
  } else {
    throw new ArgumentError(fn, 'target', 'int32/int64 class indices or float32 probabilities', target);
  }
  const eps = opts.labelSmoothing ?? 0;
  if (typeof eps !== 'number' || !(eps >= 0 && eps <= 1)) throw new ArgumentError(fn, 'labelSmoothing', 'a number in [0, 1]', eps);
  const red = checkReduction(fn, opts.reduction ?? 'mean');
  const ignore = checkIgnore(fn, opts.ignoreIndex ?? -100);

  const [loss, lseS] = native.crossEntropy(logits.storage, n, c, target.storage, eps, red, ignore);
  const out = wrap(loss, red === 0 ? [n] : []);
  const lse = new Tensor(lseS, [n], 'float32', false);
  const result = record(fn, [logits, target], out, [logits, lse, target], (dy, [x, l, t]) => {
    const dx = logits.requiresGrad
      ? wrap(native.crossEntropyBackward(x.storage, l.storage, n, c, t.storage, eps, red, ignore, dy.storage), [n, c])
      : null;
    // d loss / d t_c = -(1-ε)·log p_c per row, times the row's upstream gradient.
    let dt: Tensor | null = null;
    if (soft && target.requiresGrad) {
      const logp = native.softmax(x.storage, n, c, 1, true);
      const rowScale = red === 1 ? -(1 - eps) / n : -(1 - eps);
      const g = native.binary(MUL, logp, [n, c], dy.storage, red === 0 ? [n, 1] : []);
      dt = wrap(native.affine(g, rowScale, 0), [n, c]);
      native.release(logp);
      native.release(g);
    }
    return [dx, dt];
  });
  lse.dispose();
  return result;
}

/**
 * Negative log-likelihood of log-probabilities logp [N, C] at class indices target [N]
 * (F.nll_loss): crossEntropy(x, t) equals nllLoss(logSoftmax(x, 1), t).
 * @example const loss = nllLoss(logSoftmax(logits, 1), labels);
 */
export function nllLoss(logp: Tensor, target: Tensor, opts: NllLossOptions = {}): Tensor {
  const fn = 'nllLoss';
  const [n, c] = checkLogits(fn, 'logp', logp);
  checkTensor(fn, 'target', target, null);
  if (target.dtype !== 'int32' && target.dtype !== 'int64') throw new ArgumentError(fn, 'target', 'int32/int64 class indices', target);
  checkHardTarget(fn, target, n);
  const red = checkReduction(fn, opts.reduction ?? 'mean');
  const ignore = checkIgnore(fn, opts.ignoreIndex ?? -100);
  const out = wrap(native.nllLoss(logp.storage, n, c, target.storage, red, ignore), red === 0 ? [n] : []);
  return record(fn, [logp], out, [target], (dy, [t]) => [
    wrap(native.nllLossBackward(n, c, t.storage, red, ignore, dy.storage), [n, c]),
  ]);
}
