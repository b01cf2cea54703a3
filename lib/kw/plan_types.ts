// Types of a KernelWarehouse plan and the per-layer argument rules of upstream's reserve().

import type { CellGeometry, LayerGrid } from './cells';
import type { AttentionShape, NormLayer, TensorSpec } from './params';
import { expandTuple } from './sharing';
import type { PerWarehouse } from './sharing';

export type LayerType = 'conv1d' | 'conv2d' | 'conv3d' | 'linear';

export interface ManagerOptions {
  reduction?: PerWarehouse<number>;
  cellNumRatio?: PerWarehouse<number>;
  cellInplaneRatio?: PerWarehouse<number>;
  cellOutplaneRatio?: PerWarehouse<number>;
  sharingRange?: string | readonly string[];
  /** One value for all layers: upstream never splits it per warehouse. */
  nonlocalBasisRatio?: number;
  spatialPartition?: PerWarehouse<boolean>;
  normLayer?: NormLayer;
}

/** Options after store(): every per-warehouse option has one entry per warehouse. */
export interface ResolvedOptions {
  reduction: number[];
  cellNumRatio: number[];
  cellInplaneRatio: number[];
  cellOutplaneRatio: number[];
  spatialPartition: boolean[];
  sharingRange: string[];
  nonlocalBasisRatio: number;
  normLayer: NormLayer;
}

/** Arguments of upstream's reserve(); defaults are upstream's. */
export interface LayerSpec {
  inPlanes: number;
  outPlanes: number;
  kernelSize?: number | readonly number[];
  stride?: number | readonly number[];
  padding?: number | readonly number[];
  dilation?: number | readonly number[];
  groups?: number;
  bias?: boolean;
  warehouseName?: string;
  layerType?: LayerType;
  /** false: a plain PyTorch layer with its own weight, outside every warehouse. */
  enabled?: boolean;
}

export interface ResolvedLayerSpec {
  inPlanes: number;
  outPlanes: number;
  kernelSize: number[];
  stride: number[];
  padding: number[];
  dilation: number[];
  groups: number;
  bias: boolean;
  warehouseName: string;
  layerType: LayerType;
  enabled: boolean;
  /** Spatial dimensions of the convolution (linear layers are 1-d convolutions upstream). */
  dimension: number;
}

export interface WarehousePlan {
  index: number;
  /** The fused name. */
  name: string;
  /** Name under the manager module: `weights.<index>`. */
  stateName: string;
  /** Member layers in reserve order. */
  layerIndices: number[];
  dimension: number;
  geometry: CellGeometry;
  /** Σ cells of its layers by store()'s formula. */
  totalMixtures: number;
  /** n. */
  numCells: number;
  /** [n, cell_out, cell_in, ...cell_kernel]. */
  shape: number[];
  reduction: number;
  cellNumRatio: number;
  spatialPartition: boolean;
}

export interface KWLayerPlan {
  kind: 'kw';
  index: number;
  spec: ResolvedLayerSpec;
  warehouseName: string;
  warehouseIndex: number;
  /** [out, in/groups, ...kernel]. */
  weightShape: number[];
  cellShape: number[];
  grid: LayerGrid;
  attention: AttentionShape;
  /** The layer's cells are [startCellIdx, endCellIdx) of its warehouse. */
  startCellIdx: number;
  endCellIdx: number;
  /** Length m·(n+1), as init_temperature fills it. Not a saved buffer. */
  tempBias: Float32Array;
  /** Permutation from [B, gs, goc, gic, cell_out, cell_in, ...cell_kernel] to the kernel layout. */
  permute: number[];
  /** kaiming_normal_(fan_out, relu) of warehouse[start:end] viewed as [-1, cell_in, ...cell_kernel]. */
  sliceInit: { fanOut: number; std: number };
  /** Relative to the layer module; a linear layer nests its KWConv1d as `conv`. */
  tensors: TensorSpec[];
}

export interface PlainLayerPlan {
  kind: 'plain';
  index: number;
  spec: ResolvedLayerSpec;
  weightShape: number[];
  tensors: TensorSpec[];
}

export type LayerPlan = KWLayerPlan | PlainLayerPlan;

export interface ParamCount {
  warehouses: number;
  attentions: number;
  kwBiases: number;
  plainLayers: number;
  total: number;
}

export interface KWPlan {
  options: ResolvedOptions;
  warehouses: WarehousePlan[];
  /** In reserve order. */
  layers: LayerPlan[];
  /** KW layer indices in the order allocate() visited them. */
  allocationOrder: number[];
  /** Relative to the manager module (`weights.0`, ...). */
  managerTensors: TensorSpec[];
  params: ParamCount;
}

/** A layout upstream's allocate() rejects: temperature init does not cover a warehouse exactly. */
export class WarehouseLayoutError extends Error {
  constructor(
    message: string,
    readonly mismatches: { warehouse: string; index: number; claimed: number; held: number }[],
  ) {
    super(message);
    this.name = 'WarehouseLayoutError';
  }
}

const DIMENSION: Record<LayerType, number> = { conv1d: 1, conv2d: 2, conv3d: 3, linear: 1 };

function checkPositiveInt(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${what}: expected a positive integer, got ${value}`);
}

export function resolveLayerSpec(spec: LayerSpec): ResolvedLayerSpec {
  const layerType = spec.layerType ?? 'conv2d';
  const dimension = DIMENSION[layerType];
  if (dimension === undefined) throw new Error(`layerType: expected conv1d, conv2d, conv3d or linear, got ${layerType}`);
  const r: ResolvedLayerSpec = {
    inPlanes: spec.inPlanes,
    outPlanes: spec.outPlanes,
    kernelSize: expandTuple(spec.kernelSize ?? 1, dimension, 'kernelSize'),
    stride: expandTuple(spec.stride ?? 1, dimension, 'stride'),
    padding: expandTuple(spec.padding ?? 0, dimension, 'padding'),
    dilation: expandTuple(spec.dilation ?? 1, dimension, 'dilation'),
    groups: spec.groups ?? 1,
    bias: spec.bias ?? true,
    warehouseName: spec.warehouseName ?? 'default',
    layerType,
    enabled: spec.enabled ?? true,
    dimension,
  };
  checkPositiveInt(r.inPlanes, 'inPlanes');
  checkPositiveInt(r.outPlanes, 'outPlanes');
  checkPositiveInt(r.groups, 'groups');
  r.kernelSize.forEach((k) => checkPositiveInt(k, 'kernelSize'));
  r.stride.forEach((v) => checkPositiveInt(v, 'stride'));
  r.dilation.forEach((v) => checkPositiveInt(v, 'dilation'));
  r.padding.forEach((v) => {
    if (!Number.isInteger(v) || v < 0) throw new Error(`padding: expected a non-negative integer, got ${v}`);
  });
  if (r.inPlanes % r.groups !== 0 || r.outPlanes % r.groups !== 0) {
    throw new Error(`groups: ${r.groups} must divide inPlanes ${r.inPlanes} and outPlanes ${r.outPlanes}`);
  }
  return r;
}

export function weightShapeOf(s: ResolvedLayerSpec): number[] {
  return [s.outPlanes, s.inPlanes / s.groups, ...s.kernelSize];
}

/** The permute of [B, gs, goc, gic, co, ci, ...ck] upstream applies: (0, 2, 4, 3, 5, 1, 6, ...). */
export function assemblyPermute(dimension: number): number[] {
  return [0, 2, 4, 3, 5, 1, ...Array.from({ length: dimension }, (_, d) => 6 + d)];
}
