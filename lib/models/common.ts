// What every zoo model shares: the options (upstream's create_model keywords in camelCase),
// the base class with the one-call temperature update, and small helpers.
import { ArgumentError } from '../errors';
import { updateTemperature, WarehouseManager } from '../kw/manager';
import type { ManagerOptions } from '../kw/plan';
import { constant_, kaimingNormal_ } from '../nn/init';
import { ConvNd } from '../nn/layers';
import { Layer, Module } from '../nn/module';
import { BatchNormNd } from '../nn/norm';
import type { Generator } from '../random';
import { Tensor } from '../tensor';

/** Options every model accepts (each model uses those it has; upstream ignores the rest too). */
export interface ModelOptions {
  /** Classifier outputs (default 1000). */
  numClasses?: number;
  /** Input image channels (default 3; 1 for Fashion-MNIST with the small variants). */
  inChans?: number;
  /** Dropout before the classifier (upstream `dropout`; the default is each model's own). */
  dropout?: number;
  /** Stochastic depth: ConvNeXt rises linearly from 0 to this over its blocks, ResNets use it in every block. */
  dropPathRate?: number;
  /** ConvNeXt layer-scale γ initial value (default 1e-6; 0 disables γ). */
  layerScaleInitValue?: number;
  /** ConvNeXt head weight and bias scale at init (default 1). */
  headInitScale?: number;
  /** Random source for the initialisation (default: the global generator). */
  generator?: Generator;
}

/** The Warehouse_Manager options a KW model passes on (defaults are each model's). */
export type KWModelOptions = Pick<ManagerOptions,
  'reduction' | 'cellNumRatio' | 'cellInplaneRatio' | 'cellOutplaneRatio' | 'sharingRange' | 'nonlocalBasisRatio'>;

export type CreateModelOptions = ModelOptions & KWModelOptions;

/** A classifier of the zoo: forward(x [B, C, H, W]) → logits [B, numClasses]. */
export abstract class ZooModel extends Module implements Layer {
  /** The KW warehouse manager (null for a plain model). */
  warehouseManager: WarehouseManager | null = null;
  constructor(readonly modelName: string, readonly numClasses: number) {
    super();
  }

  abstract forward(x: Tensor): Tensor;

  /**
   * Sets the KW temperature τ on every KW layer (upstream's net_update_temperature); a
   * no-op for a plain model, so a training loop can call it on any model.
   * @example model.updateTemperature(0.5);
   */
  updateTemperature(t: number): void {
    if (typeof t !== 'number' || !Number.isFinite(t)) throw new ArgumentError(`${this.modelName}.updateTemperature`, 't', 'a finite number', t);
    updateTemperature(this, t);
  }

  /** Trainable parameter count (what upstream prints as n_parameters). */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.numel, 0);
  }
}

export function checkPositiveInt(fn: string, name: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 1) throw new ArgumentError(fn, name, 'a positive integer', v);
  return v as number;
}

export function checkRate(fn: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new ArgumentError(fn, name, 'a number in [0, 1)', v);
  return v;
}

export function checkNonNegative(fn: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new ArgumentError(fn, name, 'a non-negative number', v);
  return v;
}

/** Applies layers in order, disposing the intermediates (never x itself). */
export function chain(x: Tensor, ...layers: Layer[]): Tensor {
  let y = x;
  for (const l of layers) {
    const next = l.forward(y);
    if (y !== x && next !== y) y.dispose();
    y = next;
  }
  return y;
}

/** Calls f(x) and disposes x: for the intermediates of a forward. */
export function consume(x: Tensor, f: (x: Tensor) => Tensor): Tensor {
  const y = f(x);
  if (y !== x) x.dispose();
  return y;
}

/** torch.linspace(0, end, steps) as float32 values (ConvNeXt's drop-path rates). */
export function linspace(end: number, steps: number): number[] {
  if (steps === 1) return [0];
  return Array.from({ length: steps }, (_, i) => Math.fround((end * i) / (steps - 1)));
}

/** Upstream's init loop: every Conv2d kaiming-normal (fan_out), BatchNorm weight 1 and bias 0. */
export function initConvsAndNorms(m: Module, g?: Generator): void {
  for (const x of m.modules()) {
    if (x instanceof ConvNd && x.dimension === 2) {
      kaimingNormal_(x.weight, { mode: 'fan_out', generator: g });
      if (x.bias) constant_(x.bias, 0);
    } else if (x instanceof BatchNormNd && x.weight && x.bias) {
      constant_(x.weight, 1);
      constant_(x.bias, 0);
    }
  }
}
