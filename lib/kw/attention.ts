// KWAttention: upstream's `Attention` module (the contrasting-driven attention of a KW layer).
// Its parameters and buffers come from the planner's tensor list (params.ts), under upstream's
// names (basis_bias, fc1.weight, norm1.running_mean, ...); the whole head runs as one fused op.
import { copyInto, Module } from '../nn/module';
import { kwAttention } from '../ops/kw';
import { Generator, randn } from '../random';
import { full, keep, Tensor, tensor, zeros } from '../tensor';
import { attentionTensors } from './params';
import type { AttentionShape, TensorSpec } from './params';

/** A child that only holds tensors (fc1, norm1, ...): the fused attention op computes it. */
export class TensorHolder extends Module {}

export function createTensor(spec: TensorSpec, generator?: Generator): Tensor {
  const init = spec.init;
  if (spec.dtype === 'int64') return zeros(spec.shape, 'int64');
  switch (init.kind) {
    case 'constant':
      return init.value === 0 ? zeros(spec.shape) : full(spec.shape, init.value);
    case 'normal':
    case 'kaimingNormal':
      return randn(spec.shape, { std: init.std, generator });
    case 'model':
      throw new Error(`createTensor: '${spec.name}' is initialised by its model, not by the planner`);
  }
}

/** Registers a tensor at a dotted path, creating holder modules on the way. */
export function registerAt(root: Module, spec: TensorSpec, t: Tensor): void {
  const parts = spec.name.split('.');
  let m = root;
  for (const p of parts.slice(0, -1)) {
    let next: Module | null = null;
    try {
      next = m.getModule(p);
    } catch {
      next = m.registerModule(p, new TensorHolder());
    }
    m = next as Module;
  }
  const last = parts[parts.length - 1];
  if (spec.role === 'parameter') m.registerParameter(last, t);
  else m.registerBuffer(last, t);
}

export class KWAttention extends Module {
  /** τ: 1 gives the one-hot temperature bias, 0 the learnt attention. */
  tempValue = 0;
  /** [m·(n+1)] one-hot rows from init_temperature; derived, not part of the state dict. */
  readonly tempBias: Tensor;

  /**
   * @param shape the layer's attention sizes (from the plan)
   * @param startCellIdx where the layer's cells begin in its warehouse (the basis map's split)
   * @param tempBias the plan's temperature one-hot rows
   */
  constructor(readonly shape: AttentionShape, readonly startCellIdx: number, tempBias: Float32Array,
    generator?: Generator) {
    super();
    for (const spec of attentionTensors(shape)) registerAt(this, spec, createTensor(spec, generator));
    // A plain attribute upstream (not a buffer): kept out of the state dict.
    this.tempBias = keep(tensor(tempBias, [tempBias.length]));
  }

  dispose(): void {
    super.dispose();
    this.tempBias.dispose();
  }

  protected deviceTensors(): Tensor[] {
    return [this.tempBias];
  }

  updateTemperature(t: number): void {
    if (typeof t !== 'number' || Number.isNaN(t)) throw new Error(`updateTemperature: expected a number, got ${t}`);
    this.tempValue = t;
  }

  private t(path: string): Tensor | null {
    return this.get(path) as Tensor | null;
  }

  /** α [B·m, n] for x [B, C, ...spatial]. */
  forward(x: Tensor): Tensor {
    const a = this.shape;
    const bn = a.normLayer === 'batchnorm1d';
    const alpha = kwAttention(x, {
      fc1Weight: this.t('fc1.weight')!,
      fc1Bias: bn ? null : this.t('fc1.bias'),
      normWeight: this.t('norm1.weight')!,
      normBias: this.t('norm1.bias')!,
      runningMean: bn ? this.t('norm1.running_mean') : null,
      runningVar: bn ? this.t('norm1.running_var') : null,
      fc2Weight: this.t('fc2.weight')!,
      fc2Bias: a.basis ? null : this.t('fc2.bias'),
      fc3Weight: a.basis ? this.t('fc3.weight') : null,
      basisBias: a.basis ? this.t('basis_bias') : null,
      tempBias: this.tempBias,
    }, {
      mixtures: a.numMixtures,
      cells: a.numCells,
      norm: a.normLayer,
      training: this.training,
      temperature: this.tempValue,
      basis: a.basis ? { numLocal: a.basis.numLocalCell, numBasis: a.basis.numBasis, start: this.startCellIdx } : null,
    });
    if (bn && this.training) {
      const nbt = this.t('norm1.num_batches_tracked') as Tensor;
      const next = tensor(new BigInt64Array([(nbt.data() as BigInt64Array)[0] + 1n]), [], 'int64');
      copyInto(nbt, next);
      next.dispose();
    }
    return alpha;
  }
}
