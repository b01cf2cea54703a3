// Reads upstream's snake_case spellings (kw configs, reference-case JSON) into planner options.

import type { NormLayer } from './params';
import type { LayerSpec, LayerType, ManagerOptions } from './plan_types';
import type { PerWarehouse } from './sharing';

type Json = Record<string, unknown>;

function numbers(v: unknown, key: string): PerWarehouse<number> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v;
  if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return v as number[];
  throw new Error(`${key}: expected a number or a list of numbers, got ${JSON.stringify(v)}`);
}

function numberOrTuple(v: unknown, key: string): number | number[] | undefined {
  const r = numbers(v, key);
  return r === undefined ? undefined : typeof r === 'number' ? r : [...r];
}

/**
 * Manager options from upstream keys. Absent or null keys keep the planner's defaults, as
 * timm's create_model drops None-valued arguments so the model's defaults apply.
 */
export function managerOptionsFromUpstream(o: Json): ManagerOptions {
  const out: ManagerOptions = {};
  const reduction = numbers(o.reduction, 'reduction');
  if (reduction !== undefined) out.reduction = reduction;
  const cnr = numbers(o.cell_num_ratio, 'cell_num_ratio');
  if (cnr !== undefined) out.cellNumRatio = cnr;
  const cir = numbers(o.cell_inplane_ratio, 'cell_inplane_ratio');
  if (cir !== undefined) out.cellInplaneRatio = cir;
  const cor = numbers(o.cell_outplane_ratio, 'cell_outplane_ratio');
  if (cor !== undefined) out.cellOutplaneRatio = cor;
  const nb = numbers(o.nonlocal_basis_ratio, 'nonlocal_basis_ratio');
  if (nb !== undefined) {
    if (Array.isArray(nb) && nb.length !== 1) {
      throw new Error(`nonlocal_basis_ratio: one value applies to every warehouse, got ${JSON.stringify(nb)}`);
    }
    out.nonlocalBasisRatio = Array.isArray(nb) ? nb[0] : (nb as number);
  }
  const sr = o.sharing_range;
  if (typeof sr === 'string' || (Array.isArray(sr) && sr.every((x) => typeof x === 'string'))) {
    out.sharingRange = sr as string | string[];
  } else if (sr !== undefined && sr !== null) {
    throw new Error(`sharing_range: expected a string or a list of strings, got ${JSON.stringify(sr)}`);
  }
  if (o.norm_layer !== undefined && o.norm_layer !== null) {
    if (o.norm_layer !== 'batchnorm1d' && o.norm_layer !== 'layernorm') {
      throw new Error(`norm_layer: expected "batchnorm1d" or "layernorm", got ${JSON.stringify(o.norm_layer)}`);
    }
    out.normLayer = o.norm_layer as NormLayer;
  }
  if (typeof o.spatial_partition === 'boolean' || Array.isArray(o.spatial_partition)) {
    out.spatialPartition = o.spatial_partition as PerWarehouse<boolean>;
  }
  return out;
}

/** One reserve(...) call from upstream keys. */
export function layerSpecFromUpstream(o: Json): LayerSpec {
  const spec: LayerSpec = { inPlanes: o.in_planes as number, outPlanes: o.out_planes as number };
  const kernelSize = numberOrTuple(o.kernel_size, 'kernel_size');
  if (kernelSize !== undefined) spec.kernelSize = kernelSize;
  const stride = numberOrTuple(o.stride, 'stride');
  if (stride !== undefined) spec.stride = stride;
  const padding = numberOrTuple(o.padding, 'padding');
  if (padding !== undefined) spec.padding = padding;
  const dilation = numberOrTuple(o.dilation, 'dilation');
  if (dilation !== undefined) spec.dilation = dilation;
  if (typeof o.groups === 'number') spec.groups = o.groups;
  if (typeof o.bias === 'boolean') spec.bias = o.bias;
  if (typeof o.warehouse_name === 'string') spec.warehouseName = o.warehouse_name;
  if (typeof o.layer_type === 'string') spec.layerType = o.layer_type as LayerType;
  if (typeof o.enabled === 'boolean') spec.enabled = o.enabled;
  return spec;
}
