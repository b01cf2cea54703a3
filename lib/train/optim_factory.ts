// Builds the optimizer the way upstream's optim_factory does: parameters with one dimension
// or named *.bias get no weight decay, ConvNeXt gets layer-wise lr scales, and the --opt name
// picks the update rule (sgd = Nesterov momentum, momentum = plain momentum).
import type { Module } from '../nn/module';
import type { Tensor } from '../tensor';
import { Adam, AdamW, Optimizer, ParamGroup, SGD } from './optim';

export interface OptimizerArgs {
  opt: string;
  lr: number;
  weightDecay: number;
  momentum: number;
  optEps: number;
  optBetas: number[] | null;
  layerDecay: number;
}

/** ConvNeXt's layer id of a parameter (upstream get_num_layer_for_convnext; 12 layers). */
export function convnextLayerId(name: string): number {
  const parts = name.split('.');
  if (name.startsWith('downsample_layers')) {
    const stage = Number(parts[1]);
    return stage === 0 ? 0 : stage === 1 || stage === 2 ? stage + 1 : 12;
  }
  if (name.startsWith('stages')) {
    const stage = Number(parts[1]), block = Number(parts[2]);
    return stage === 0 || stage === 1 ? stage + 1 : stage === 2 ? 3 + Math.floor(block / 3) : 12;
  }
  return 13;
}

/** Upstream's parameter groups: decay / no decay, and an lr scale per layer when asked. */
export function parameterGroups(model: Module, weightDecay: number, layerDecay = 1, layerId: ((name: string) => number) | null = null): ParamGroup[] {
  const groups = new Map<string, ParamGroup>();
  const useLayers = layerDecay !== 1 && layerId !== null;
  for (const [name, p] of model.namedParameters()) {
    const noDecay = p.ndim === 1 || name.endsWith('.bias');
    const layer = useLayers ? layerId!(name) : 0;
    const key = `${layer}_${noDecay ? 'no_decay' : 'decay'}`;
    let g = groups.get(key);
    if (!g) {
      g = { params: [], weightDecay: noDecay ? 0 : weightDecay, lrScale: useLayers ? layerDecay ** (12 + 1 - layer) : 1 };
      groups.set(key, g);
    }
    g.params.push(p as Tensor);
  }
  return [...groups.values()];
}

export function createOptimizer(model: Module, a: OptimizerArgs, isConvnext = false): Optimizer {
  const groups = parameterGroups(model, a.weightDecay, a.layerDecay, isConvnext ? convnextLayerId : null);
  const betas = (a.optBetas ?? [0.9, 0.999]) as [number, number];
  switch (a.opt.toLowerCase()) {
    case 'sgd':
    case 'nesterov':
      return new SGD(groups, { lr: a.lr, momentum: a.momentum, nesterov: true, weightDecay: a.weightDecay });
    case 'momentum':
      return new SGD(groups, { lr: a.lr, momentum: a.momentum, nesterov: false, weightDecay: a.weightDecay });
    case 'adam':
      return new Adam(groups, { lr: a.lr, betas, eps: a.optEps, weightDecay: a.weightDecay });
    case 'adamw':
      return new AdamW(groups, { lr: a.lr, betas, eps: a.optEps, weightDecay: a.weightDecay });
    default:
      throw new Error(`--opt ${a.opt}: unknown optimizer (expected sgd, momentum, adam or adamw)`);
  }
}
