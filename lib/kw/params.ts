// Parameter and buffer layout of KW layers under upstream's state-dict names, with their
// initialisation, as data for the tensor layer. Order follows PyTorch's state_dict(): a
// module's own parameters, then its own buffers, then its children in registration order
// (so `bias` before `attention.*`, and `attention.basis_bias` before `attention.fc1.*`).

import { pyInt } from './cells';

export type NormLayer = 'batchnorm1d' | 'layernorm';

export type TensorInit =
  | { kind: 'constant'; value: number }
  /** kaiming_normal_(mode='fan_out', nonlinearity='relu'): N(0, std²), std = sqrt(2 / fanOut). */
  | { kind: 'kaimingNormal'; fanOut: number; std: number }
  /** N(0, std²) (a warehouse is torch.randn before allocate() re-initialises each layer's slice). */
  | { kind: 'normal'; std: number }
  /** Left to the model's own init loop (plain layers). */
  | { kind: 'model' };

export interface TensorSpec {
  name: string;
  shape: number[];
  role: 'parameter' | 'buffer';
  dtype: 'float32' | 'int64';
  init: TensorInit;
}

/** Sizes of one layer's Attention module (upstream class `Attention`). */
export interface AttentionShape {
  inPlanes: number;
  /** max(int(in_planes * reduction), 16). */
  hiddenPlanes: number;
  /** m. */
  numMixtures: number;
  /** n: cells of the layer's warehouse. */
  numCells: number;
  /** n + 1: one logit per cell plus the zero cell. */
  kwPlanesPerMixture: number;
  /** m · (n + 1). */
  kwPlanes: number;
  normLayer: NormLayer;
  /** Present when nonlocal_basis_ratio < 1. */
  basis: AttentionBasis | null;
}

export interface AttentionBasis {
  /** int(cell_num_ratio * m): the layer's own cells, kept as direct logits. */
  numLocalCell: number;
  /** n - numLocalCell: other layers' cells, reached through fc3. */
  numNonlocalCell: number;
  /** max(int(numNonlocalCell * nonlocal_basis_ratio), 16). */
  numBasis: number;
  /** fc2's out features: (numLocalCell + numBasis + 1) · m. */
  fc2Out: number;
}

export function attentionShape(
  inPlanes: number,
  reduction: number,
  numCells: number,
  numMixtures: number,
  cellNumRatio: number,
  nonlocalBasisRatio: number,
  normLayer: NormLayer,
): AttentionShape {
  const kwPlanesPerMixture = numCells + 1;
  let basis: AttentionBasis | null = null;
  if (nonlocalBasisRatio < 1.0) {
    const numLocalCell = pyInt(cellNumRatio * numMixtures);
    const numNonlocalCell = numCells - numLocalCell;
    if (numNonlocalCell < 0) {
      throw new Error(
        `attention: the layer's ${numLocalCell} local cells exceed its warehouse's ${numCells} cells`,
      );
    }
    const numBasis = Math.max(pyInt(numNonlocalCell * nonlocalBasisRatio), 16);
    basis = { numLocalCell, numNonlocalCell, numBasis, fc2Out: (numLocalCell + numBasis + 1) * numMixtures };
  }
  return {
    inPlanes,
    hiddenPlanes: Math.max(pyInt(inPlanes * reduction), 16),
    numMixtures,
    numCells,
    kwPlanesPerMixture,
    kwPlanes: kwPlanesPerMixture * numMixtures,
    normLayer,
    basis,
  };
}

const zeros: TensorInit = { kind: 'constant', value: 0 };
const ones: TensorInit = { kind: 'constant', value: 1 };

function kaiming(outFeatures: number): TensorInit {
  // A zero-row fc3 (no non-local cells) is legal upstream; its init is a no-op.
  return { kind: 'kaimingNormal', fanOut: outFeatures, std: outFeatures > 0 ? Math.sqrt(2 / outFeatures) : 0 };
}

function param(name: string, shape: number[], init: TensorInit): TensorSpec {
  return { name, shape, role: 'parameter', dtype: 'float32', init };
}

/** Tensors of an Attention module, names relative to it (`fc1.weight`, `norm1.running_mean`, ...). */
export function attentionTensors(a: AttentionShape): TensorSpec[] {
  const h = a.hiddenPlanes;
  const out: TensorSpec[] = [];
  if (a.basis) out.push(param('basis_bias', [a.kwPlanes], zeros));
  out.push(param('fc1.weight', [h, a.inPlanes], kaiming(h)));
  // fc1 has a bias exactly when the norm is not BatchNorm1d.
  if (a.normLayer !== 'batchnorm1d') out.push(param('fc1.bias', [h], zeros));
  out.push(param('norm1.weight', [h], ones), param('norm1.bias', [h], zeros));
  if (a.normLayer === 'batchnorm1d') {
    out.push(
      { name: 'norm1.running_mean', shape: [h], role: 'buffer', dtype: 'float32', init: zeros },
      { name: 'norm1.running_var', shape: [h], role: 'buffer', dtype: 'float32', init: ones },
      { name: 'norm1.num_batches_tracked', shape: [], role: 'buffer', dtype: 'int64', init: zeros },
    );
  }
  if (a.basis) {
    out.push(param('fc2.weight', [a.basis.fc2Out, h], kaiming(a.basis.fc2Out)));
    out.push(param('fc3.weight', [a.basis.numNonlocalCell, a.basis.numBasis], kaiming(a.basis.numNonlocalCell)));
  } else {
    out.push(param('fc2.weight', [a.kwPlanes, h], kaiming(a.kwPlanes)), param('fc2.bias', [a.kwPlanes], zeros));
  }
  return out;
}

export function countTensorParams(specs: readonly TensorSpec[]): number {
  let total = 0;
  for (const s of specs) if (s.role === 'parameter') total += s.shape.reduce((p, d) => p * d, 1);
  return total;
}

export function prefixed(prefix: string, specs: readonly TensorSpec[]): TensorSpec[] {
  return specs.map((s) => ({ ...s, name: prefix + s.name }));
}
