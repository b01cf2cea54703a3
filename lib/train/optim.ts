// Optimizers with PyTorch's update rules (torch.optim.SGD, Adam, AdamW), updating
// parameters in place in one fused native pass each. Parameter groups carry their own
// lr and weight decay (upstream puts biases and 1-D parameters in a group without decay).
import { ArgumentError, checkOptions } from '../errors';
import { native } from '../native';
import { keep, Tensor, zeros } from '../tensor';

// Optimizer state lives across steps: keep() stops an enclosing tidy() from freeing it.
// Optimizer state lives beside its parameter (CPU or CUDA).
const stateZeros = (p: Tensor): Tensor => keep(zeros(p.shape, 'float32', p.device));

export interface ParamGroup {
  params: Tensor[];
  lr?: number;
  weightDecay?: number;
  /** Multiplies the scheduled lr for this group (layer-wise lr decay). */
  lrScale?: number;
}

interface ResolvedGroup {
  params: Tensor[];
  lr: number;
  weightDecay: number;
  lrScale: number;
}

export abstract class Optimizer {
  readonly groups: ResolvedGroup[];
  protected stepCount = 0;

  constructor(params: Tensor[] | ParamGroup[], defaults: { lr: number; weightDecay: number }) {
    const fn = new.target.name;
    if (!Array.isArray(params) || params.length === 0)
      throw new ArgumentError(fn, 'params', 'a non-empty list of tensors or parameter groups', params);
    const list = params as (Tensor | ParamGroup)[];
    const groups: ParamGroup[] = list[0] instanceof Tensor ? [{ params: list as Tensor[] }] : (list as ParamGroup[]);
    this.groups = groups.map((g, i) => {
      checkOptions(fn, `params[${i}]`, g, ['params', 'lr', 'weightDecay', 'lrScale']);
      if (!Array.isArray(g.params)) throw new ArgumentError(fn, `params[${i}].params`, 'a list of tensors', g.params);
      for (const k of ['lr', 'weightDecay', 'lrScale'] as const)
        if (g[k] !== undefined) nonNegative(fn, `params[${i}].${k}`, g[k]);
      g.params.forEach((p, j) => {
        if (!(p instanceof Tensor) || p.dtype !== 'float32')
          throw new ArgumentError(this.constructor.name, `groups[${i}].params[${j}]`, 'a float32 tensor', p);
      });
      return { params: g.params, lr: g.lr ?? defaults.lr, weightDecay: g.weightDecay ?? defaults.weightDecay, lrScale: g.lrScale ?? 1 };
    });
    nonNegative(fn, 'lr', defaults.lr);
    nonNegative(fn, 'weightDecay', defaults.weightDecay);
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    this.stepCount++;
    for (const g of this.groups)
      for (const p of g.params) if (p.grad) this.update(p, p.grad, g);
  }

  /** Drops every parameter's gradient (frees it). */
  zeroGrad(): void {
    for (const g of this.groups)
      for (const p of g.params) {
        p.grad?.dispose();
        p.grad = null;
      }
  }

  /** Sets the lr (and optionally weight decay) of every group, as a per-iteration schedule does. */
  setLr(lr: number, weightDecay?: number): void {
    nonNegative(`${this.constructor.name}.setLr`, 'lr', lr);
    if (weightDecay !== undefined) nonNegative(`${this.constructor.name}.setLr`, 'weightDecay', weightDecay);
    for (const g of this.groups) {
      g.lr = lr * g.lrScale;
      if (weightDecay !== undefined && g.weightDecay > 0) g.weightDecay = weightDecay;
    }
  }

  protected abstract update(p: Tensor, grad: Tensor, g: ResolvedGroup): void;

  /** Every parameter in group order: state tensors are saved under this index. */
  protected allParams(): Tensor[] {
    return this.groups.flatMap((g) => g.params);
  }

  /** The optimizer's state as named tensors (`<param index>.<slot>`) plus plain values. */
  abstract stateDict(): { tensors: Map<string, Tensor>; meta: Record<string, unknown> };

  /** Restores what stateDict() returned (copies values; shapes must match). */
  abstract loadStateDict(tensors: Map<string, Tensor>, meta: Record<string, unknown>): void;

  /** Frees the optimizer's state tensors. */
  abstract dispose(): void;
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/**
 * SGD with momentum (PyTorch semantics; upstream's `--opt sgd` is nesterov: true).
 * @example const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, nesterov: true });
 */
export class SGD extends Optimizer {
  private buffers = new Map<Tensor, Tensor>();
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;

  constructor(params: Tensor[] | ParamGroup[], opts: SGDOptions) {
    checkOptions('SGD', 'opts', opts, ['lr', 'momentum', 'dampening', 'weightDecay', 'nesterov'], true);
    super(params, { lr: opts.lr, weightDecay: opts.weightDecay ?? 0 });
    this.momentum = nonNegative('SGD', 'momentum', opts.momentum ?? 0);
    this.dampening = nonNegative('SGD', 'dampening', opts.dampening ?? 0);
    if (opts.nesterov !== undefined && typeof opts.nesterov !== 'boolean') throw new ArgumentError('SGD', 'nesterov', 'a boolean', opts.nesterov);
    this.nesterov = opts.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0))
      throw new ArgumentError('SGD', 'nesterov', 'used with momentum > 0 and dampening 0', this.momentum);
  }

  protected update(p: Tensor, grad: Tensor, g: ResolvedGroup): void {
    let buf = this.buffers.get(p) ?? null;
    const first = this.momentum !== 0 && buf === null;
    if (first) {
      buf = stateZeros(p);
      this.buffers.set(p, buf);
    }
    native.sgdStep(p.storage, grad.storage, buf ? buf.storage : null, g.lr, this.momentum, this.dampening, g.weightDecay, this.nesterov, first);
  }

  stateDict(): { tensors: Map<string, Tensor>; meta: Record<string, unknown> } {
    const tensors = new Map<string, Tensor>();
    this.allParams().forEach((p, i) => {
      const b = this.buffers.get(p);
      if (b) tensors.set(`${i}.momentum_buffer`, b);
    });
    return { tensors, meta: { type: 'sgd', lr: this.groups.map((g) => g.lr) } };
  }

  loadStateDict(tensors: Map<string, Tensor>, _meta: Record<string, unknown>): void {
    this.allParams().forEach((p, i) => {
      const src = tensors.get(`${i}.momentum_buffer`);
      if (!src) return;
      const buf = loadSlot(src, p, `${i}.momentum_buffer`);
      this.buffers.get(p)?.dispose();
      this.buffers.set(p, buf);
    });
  }

  /** The momentum buffer of a parameter (null before its first step). */
  momentumBuffer(p: Tensor): Tensor | null {
    return this.buffers.get(p) ?? null;
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}

export interface AdamOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** Adam with L2 weight decay added to the gradient (torch.optim.Adam). */
export class Adam extends Optimizer {
  protected state = new Map<Tensor, { m: Tensor; v: Tensor; step: number }>();
  readonly betas: [number, number];
  readonly eps: number;
  protected decoupled = false;

  constructor(params: Tensor[] | ParamGroup[], opts: AdamOptions) {
    const fn = new.target.name;
    checkOptions(fn, 'opts', opts, ['lr', 'betas', 'eps', 'weightDecay'], true);
    super(params, { lr: opts.lr, weightDecay: opts.weightDecay ?? 0 });
    const betas = opts.betas ?? [0.9, 0.999];
    // torch.optim.Adam: 0 <= beta < 1, 0 <= eps
    if (!Array.isArray(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number' && b >= 0 && b < 1))
      throw new ArgumentError(fn, 'betas', 'two numbers in [0, 1)', betas);
    this.betas = [betas[0], betas[1]];
    this.eps = nonNegative(fn, 'eps', opts.eps ?? 1e-8);
  }

  protected update(p: Tensor, grad: Tensor, g: ResolvedGroup): void {
    let s = this.state.get(p);
    if (!s) {
      s = { m: stateZeros(p), v: stateZeros(p), step: 0 };
      this.state.set(p, s);
    }
    s.step++;
    native.adamStep(p.storage, grad.storage, s.m.storage, s.v.storage, s.step, g.lr, this.betas[0], this.betas[1], this.eps, g.weightDecay, this.decoupled);
  }

  stateDict(): { tensors: Map<string, Tensor>; meta: Record<string, unknown> } {
    const tensors = new Map<string, Tensor>();
    const steps: Record<string, number> = {};
    this.allParams().forEach((p, i) => {
      const s = this.state.get(p);
      if (!s) return;
      tensors.set(`${i}.exp_avg`, s.m);
      tensors.set(`${i}.exp_avg_sq`, s.v);
      steps[i] = s.step;
    });
    return { tensors, meta: { type: this.decoupled ? 'adamw' : 'adam', steps } };
  }

  loadStateDict(tensors: Map<string, Tensor>, meta: Record<string, unknown>): void {
    const steps = (meta.steps ?? {}) as Record<string, number>;
    this.allParams().forEach((p, i) => {
      const m = tensors.get(`${i}.exp_avg`), v = tensors.get(`${i}.exp_avg_sq`);
      if (!m || !v) return;
      const old = this.state.get(p);
      if (old) {
        old.m.dispose();
        old.v.dispose();
      }
      this.state.set(p, { m: loadSlot(m, p, `${i}.exp_avg`), v: loadSlot(v, p, `${i}.exp_avg_sq`), step: steps[i] ?? 0 });
    });
  }

  dispose(): void {
    for (const s of this.state.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.state.clear();
  }
}

/**
 * AdamW: decoupled weight decay (torch.optim.AdamW; upstream's default optimizer).
 * @example const opt = new AdamW(groups, { lr: 4e-3, weightDecay: 0.05 });
 */
export class AdamW extends Adam {
  constructor(params: Tensor[] | ParamGroup[], opts: AdamOptions) {
    super(params, { ...opts, weightDecay: opts.weightDecay ?? 1e-2 });
    this.decoupled = true;
  }
}

function nonNegative(fn: string, param: string, v: unknown): number {
  if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new ArgumentError(fn, param, 'a finite non-negative number', v);
  return v;
}

/** A private copy of a saved state tensor, checked against its parameter's shape. */
function loadSlot(src: Tensor, p: Tensor, name: string): Tensor {
  if (src.numel !== p.numel) throw new Error(`optimizer state '${name}' has ${src.numel} elements, its parameter has ${p.numel}`);
  const t = stateZeros(p);
  native.copyInto(t.storage, src.storage);
  return t;
}

/** Scales all gradients so their global L2 norm is at most maxNorm; returns the norm before. */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  if (!Array.isArray(params)) throw new ArgumentError('clipGradNorm', 'params', 'a list of tensors', params);
  if (typeof maxNorm !== 'number' || !(maxNorm > 0)) throw new ArgumentError('clipGradNorm', 'maxNorm', 'a positive number', maxNorm);
  let sq = 0;
  for (const p of params) if (p.grad) sq += native.sumSquares(p.grad.storage);
  const norm = Math.sqrt(sq);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) for (const p of params) if (p.grad) native.scaleInplace(p.grad.storage, coef);
  return norm;
}
