// Dropout and drop-path (stochastic depth): a random keep-mask from the seedable generator,
// scaled so the expectation is unchanged, multiplied in natively. Eval mode or p = 0 is the
// identity (a new tensor on the same storage).
import { record } from '../autograd';
import { ArgumentError } from '../errors';
import { native } from '../native';
import { bernoulli, Generator } from '../random';
import { Tensor } from '../tensor';
import { checkTensor, wrap } from './util';

export interface DropoutOptions {
  /** Drop only in training mode (default true, as F.dropout; layers pass their own mode). */
  training?: boolean;
  /** Source of the mask (default: the global generator). */
  generator?: Generator;
}

export interface DropPathOptions extends DropoutOptions {
  /** Divide kept samples by the keep probability (default true, as timm). */
  scaleByKeep?: boolean;
}

const MUL = 2; // BinaryOp::Mul in native/core/kernels/elementwise.h

function checkP(fn: string, p: unknown): number {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new ArgumentError(fn, 'p', 'a probability in [0, 1]', p);
  return p;
}

function checkTraining(fn: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new ArgumentError(fn, 'training', 'a boolean', v);
  return v;
}

function identity(fn: string, x: Tensor): Tensor {
  const out = wrap(native.share(x.storage), x.shape);
  return record(fn, [x], out, [], (dy) => [dy.share()]);
}

/** y = x·mask with mask broadcast from maskShape; mask = bernoulli(1-p) scaled by `scale`. */
function masked(fn: string, x: Tensor, maskShape: number[], keep: number, scale: number, generator?: Generator): Tensor {
  if (generator !== undefined && !(generator instanceof Generator)) throw new ArgumentError(fn, 'generator', 'a Generator', generator);
  const raw = bernoulli(maskShape, keep, { generator, device: x.device });
  const mask = new Tensor(scale === 1 ? native.share(raw.storage) : native.affine(raw.storage, scale, 0), maskShape, 'float32', false);
  raw.dispose();
  const out = wrap(native.binary(MUL, x.storage, [...x.shape], mask.storage, maskShape), x.shape);
  const result = record(fn, [x], out, [mask], (dy, [m]) => [wrap(native.binary(MUL, dy.storage, [...dy.shape], m.storage, maskShape), x.shape)]);
  mask.dispose();
  return result;
}

/**
 * Inverted dropout: each element is zeroed with probability p and the rest are scaled by
 * 1/(1-p) (p = 1 gives zeros).
 * @example const h = dropout(x, 0.1, { training: model.training });
 */
export function dropout(x: Tensor, p = 0.5, opts: DropoutOptions = {}): Tensor {
  const fn = 'dropout';
  checkTensor(fn, 'x', x);
  checkP(fn, p);
  const training = checkTraining(fn, opts.training ?? true);
  if (!training || p === 0) return identity(fn, x);
  const keep = 1 - p;
  return masked(fn, x, [...x.shape], keep, keep > 0 ? 1 / keep : 1, opts.generator);
}

/**
 * Drop path (stochastic depth), as timm's drop_path: each sample along dim 0 is zeroed with
 * probability p, kept samples are scaled by 1/(1-p) when scaleByKeep (default true).
 * @example const y = add(shortcut, dropPath(branch, 0.1, { training: true }));
 */
export function dropPath(x: Tensor, p = 0, opts: DropPathOptions = {}): Tensor {
  const fn = 'dropPath';
  checkTensor(fn, 'x', x);
  checkP(fn, p);
  const training = checkTraining(fn, opts.training ?? true);
  const scaleByKeep = opts.scaleByKeep ?? true;
  if (typeof scaleByKeep !== 'boolean') throw new ArgumentError(fn, 'scaleByKeep', 'a boolean', scaleByKeep);
  if (x.ndim === 0) throw new ArgumentError(fn, 'x', 'a tensor with a batch dim', x);
  if (!training || p === 0) return identity(fn, x);
  const keep = 1 - p;
  const maskShape = [x.shape[0], ...x.shape.slice(1).map(() => 1)];
  return masked(fn, x, maskShape, keep, keep > 0 && scaleByKeep ? 1 / keep : 1, opts.generator);
}
