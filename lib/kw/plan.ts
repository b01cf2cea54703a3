// Tensor-free planner for a KernelWarehouse network: the bookkeeping of upstream's
// Warehouse_Manager (reserve → store → allocate) as plain numbers, so the tensor layer only
// has to create the tensors this describes.
//
//   const p = new WarehousePlanner({ cellNumRatio: 0.5, sharingRange: 'layer_conv' });
//   p.reserve({ inPlanes: 64, outPlanes: 64, kernelSize: 3, padding: 1, warehouseName: 'stage0_layer0_conv0' });
//   p.store();
//   const plan = p.allocate(); // plan.warehouses[0].shape, plan.layers[0], plan.params.total

import { cellGeometry, initTemperature, layerGrid, storeMixtures, warehouseCellCount } from './cells';
import { attentionShape, attentionTensors, countTensorParams, prefixed } from './params';
import type { TensorSpec } from './params';
import {
  WarehouseLayoutError,
  assemblyPermute,
  resolveLayerSpec,
  weightShapeOf,
} from './plan_types';
import type {
  KWLayerPlan,
  KWPlan,
  LayerPlan,
  LayerSpec,
  ManagerOptions,
  ParamCount,
  PlainLayerPlan,
  ResolvedLayerSpec,
  ResolvedOptions,
  WarehousePlan,
} from './plan_types';
import { fuseWarehouseName, perWarehouse, sharingEntries } from './sharing';

export * from './plan_types';
export type { AttentionShape, AttentionBasis, NormLayer, TensorInit, TensorSpec } from './params';
export type { CellGeometry, LayerGrid } from './cells';
export type { PerWarehouse } from './sharing';
export { fuseWarehouseName, sharingEntries } from './sharing';
export { layerSpecFromUpstream, managerOptionsFromUpstream } from './upstream_json';

interface Reserved {
  spec: ResolvedLayerSpec;
  /** Fused name; undefined for a plain layer. */
  warehouseName?: string;
  warehouseIndex: number;
}

export class WarehousePlanner {
  private readonly reserved: Reserved[] = [];
  private readonly names: string[] = [];
  private readonly sharing: string[];
  private stored: { options: ResolvedOptions; warehouses: WarehousePlan[] } | undefined;
  private allocated = false;

  constructor(private readonly options: ManagerOptions = {}) {
    this.sharing = sharingEntries(options.sharingRange);
    const nb = options.nonlocalBasisRatio;
    if (nb !== undefined && typeof nb !== 'number') {
      throw new Error(`nonlocalBasisRatio: expected one number for all warehouses, got ${JSON.stringify(nb)}`);
    }
  }

  /** Records one layer; returns its index. Warehouses are numbered by first appearance. */
  reserve(layer: LayerSpec): number {
    if (this.stored) throw new Error('reserve() after store(): the warehouses are already sized');
    const spec = resolveLayerSpec(layer);
    if (!spec.enabled) {
      this.reserved.push({ spec, warehouseIndex: -1 });
      return this.reserved.length - 1;
    }
    const name = fuseWarehouseName(spec.warehouseName, this.sharing);
    let warehouseIndex = this.names.indexOf(name);
    if (warehouseIndex < 0) warehouseIndex = this.names.push(name) - 1;
    this.reserved.push({ spec, warehouseName: name, warehouseIndex });
    return this.reserved.length - 1;
  }

  /** Sizes every warehouse (upstream's store()). */
  store(): WarehousePlan[] {
    if (this.stored) throw new Error('store() called twice');
    const count = this.names.length;
    const o = this.options;
    const options: ResolvedOptions = {
      reduction: perWarehouse(o.reduction ?? 0.0625, count, 'reduction'),
      cellNumRatio: perWarehouse(o.cellNumRatio ?? 1, count, 'cellNumRatio'),
      cellInplaneRatio: perWarehouse(o.cellInplaneRatio ?? 1, count, 'cellInplaneRatio'),
      cellOutplaneRatio: perWarehouse(o.cellOutplaneRatio ?? 1, count, 'cellOutplaneRatio'),
      spatialPartition: perWarehouse(o.spatialPartition ?? true, count, 'spatialPartition'),
      sharingRange: this.sharing,
      nonlocalBasisRatio: o.nonlocalBasisRatio ?? 1,
      normLayer: o.normLayer ?? 'batchnorm1d',
    };
    const warehouses = this.names.map((name, w): WarehousePlan => {
      const layerIndices = this.reserved.flatMap((r, i) => (r.warehouseIndex === w ? [i] : []));
      const shapes = layerIndices.map((i) => weightShapeOf(this.reserved[i].spec));
      const dimension = shapes[0].length - 2;
      if (shapes.some((s) => s.length - 2 !== dimension)) {
        throw new Error(`warehouse '${name}': its layers mix convolutions of different dimensions`);
      }
      const geometry = cellGeometry(
        shapes, options.cellOutplaneRatio[w], options.cellInplaneRatio[w], options.spatialPartition[w], name);
      const totalMixtures = shapes.reduce((sum, s) => sum + storeMixtures(s, geometry), 0);
      const numCells = warehouseCellCount(totalMixtures, options.cellNumRatio[w]);
      return {
        index: w,
        name,
        stateName: `weights.${w}`,
        layerIndices,
        dimension,
        geometry,
        totalMixtures,
        numCells,
        shape: [numCells, geometry.cellOutPlane, geometry.cellInPlane, ...geometry.cellKernelSize],
        reduction: options.reduction[w],
        cellNumRatio: options.cellNumRatio[w],
        spatialPartition: options.spatialPartition[w],
      };
    });
    this.stored = { options, warehouses };
    return warehouses;
  }

  /**
   * Builds every KW layer's attention and cell range (upstream's allocate()). `order` lists
   * the KW layers' indices in the order upstream's `network.modules()` visits them, which
   * can differ from reserve order (KW-ResNet reserves a downsample before its block's convs
   * but registers it after them); it decides each layer's cells and temp_bias.
   */
  allocate(order?: readonly number[]): KWPlan {
    if (!this.stored) throw new Error('allocate() before store()');
    if (this.allocated) throw new Error('allocate() called twice');
    const { options, warehouses } = this.stored;
    const kwIndices = this.reserved.flatMap((r, i) => (r.spec.enabled ? [i] : []));
    const allocationOrder = order ? [...order] : kwIndices;
    checkOrder(allocationOrder, kwIndices);

    const endIdx = warehouses.map(() => 0);
    const overflow = warehouses.map(() => false);
    const kwPlans = new Map<number, KWLayerPlan>();
    for (const i of allocationOrder) {
      const r = this.reserved[i];
      const w = warehouses[r.warehouseIndex];
      const plan = planKWLayer(i, r.spec, w, endIdx[w.index], options);
      if (plan.overflow) overflow[w.index] = true;
      endIdx[w.index] = plan.layer.endCellIdx;
      kwPlans.set(i, plan.layer);
    }

    const bad = warehouses.filter((w) => overflow[w.index] || endIdx[w.index] !== w.numCells);
    if (bad.length > 0) throw layoutError(bad, endIdx, allocationOrder, kwPlans);
    this.allocated = true;

    const layers: LayerPlan[] = this.reserved.map((r, i) => kwPlans.get(i) ?? planPlainLayer(i, r.spec));
    const managerTensors: TensorSpec[] = warehouses.map((w) => ({
      name: w.stateName, shape: w.shape, role: 'parameter', dtype: 'float32', init: { kind: 'normal', std: 1 },
    }));
    return { options, warehouses, layers, allocationOrder, managerTensors, params: countParams(layers, managerTensors) };
  }
}

/** reserve() every spec, store(), allocate(order): the whole upstream sequence. */
export function planNetwork(options: ManagerOptions, layers: readonly LayerSpec[], order?: readonly number[]): KWPlan {
  const planner = new WarehousePlanner(options);
  for (const layer of layers) planner.reserve(layer);
  planner.store();
  return planner.allocate(order);
}

function checkOrder(order: readonly number[], kwIndices: readonly number[]): void {
  const sorted = [...order].sort((a, b) => a - b);
  if (sorted.length !== kwIndices.length || sorted.some((v, k) => v !== kwIndices[k])) {
    throw new Error(
      `allocate(order): expected each KW layer index exactly once (${kwIndices.join(', ')}), got ${order.join(', ')}`);
  }
}

function planKWLayer(
  index: number, spec: ResolvedLayerSpec, w: WarehousePlan, start: number, options: ResolvedOptions,
): { layer: KWLayerPlan; overflow: boolean } {
  const weightShape = weightShapeOf(spec);
  const grid = layerGrid(spec.inPlanes, spec.outPlanes, spec.groups, spec.kernelSize, w.shape);
  const g = w.geometry;
  const tiles = grid.groupsOutChannel * g.cellOutPlane === spec.outPlanes
    && grid.groupsInChannel * g.cellInPlane === weightShape[1]
    && spec.kernelSize.every((k, d) => k % g.cellKernelSize[d] === 0);
  if (!tiles) {
    // Upstream accepts this in allocate() but its forward cannot reshape the cells into the kernel.
    throw new Error(
      `warehouse '${w.name}': layer ${index}'s kernel [${weightShape.join(', ')}] does not split into ` +
        `whole cells [${w.shape.slice(1).join(', ')}]`);
  }
  const attention = attentionShape(spec.inPlanes, w.reduction, w.numCells, grid.numMixtures, w.cellNumRatio,
    options.nonlocalBasisRatio, options.normLayer);
  const t = initTemperature(grid.numMixtures, w.numCells, start, w.cellNumRatio);
  const cellsInSlice = Math.max(t.endCellIdx - start, 0);
  const fanOut = cellsInSlice * g.cellOutPlane * g.cellKernelSize.reduce((p, k) => p * k, 1);
  const own: TensorSpec[] = spec.bias
    ? [{ name: 'bias', shape: [spec.outPlanes], role: 'parameter', dtype: 'float32', init: { kind: 'constant', value: 0 } }]
    : [];
  const tensors = [...own, ...prefixed('attention.', attentionTensors(attention))];
  return {
    overflow: t.overflow,
    layer: {
      kind: 'kw',
      index,
      spec,
      warehouseName: w.name,
      warehouseIndex: w.index,
      weightShape,
      cellShape: w.shape,
      grid,
      attention,
      startCellIdx: start,
      endCellIdx: t.endCellIdx,
      tempBias: t.tempBias,
      permute: assemblyPermute(spec.dimension),
      sliceInit: { fanOut, std: fanOut > 0 ? Math.sqrt(2 / fanOut) : 0 },
      tensors: spec.layerType === 'linear' ? prefixed('conv.', tensors) : tensors,
    },
  };
}

function planPlainLayer(index: number, spec: ResolvedLayerSpec): PlainLayerPlan {
  // nn.Linear ignores kernel size and groups; nn.ConvNd keeps both.
  const weightShape = spec.layerType === 'linear' ? [spec.outPlanes, spec.inPlanes] : weightShapeOf(spec);
  const tensors: TensorSpec[] = [
    { name: 'weight', shape: weightShape, role: 'parameter', dtype: 'float32', init: { kind: 'model' } },
  ];
  if (spec.bias) {
    tensors.push({ name: 'bias', shape: [spec.outPlanes], role: 'parameter', dtype: 'float32', init: { kind: 'model' } });
  }
  return { kind: 'plain', index, spec, weightShape, tensors };
}

function layoutError(
  bad: readonly WarehousePlan[], endIdx: readonly number[], order: readonly number[],
  layers: ReadonlyMap<number, KWLayerPlan>,
): WarehouseLayoutError {
  const mismatches = bad.map((w) => ({ warehouse: w.name, index: w.index, claimed: endIdx[w.index], held: w.numCells }));
  const lines = bad.map((w) => {
    const claims = order
      .map((i) => layers.get(i) as KWLayerPlan)
      .filter((l) => l.warehouseIndex === w.index)
      .map((l) => `layer ${l.index}: ${l.grid.numMixtures} kernel cells -> warehouse cells ` +
        `${l.startCellIdx}..${l.endCellIdx}`)
      .join('; ');
    return `warehouse '${w.name}' (#${w.index}) holds ${w.numCells} cells but temperature initialisation at ` +
      `cell_num_ratio ${w.cellNumRatio} assigns ${endIdx[w.index]} (${claims})`;
  });
  return new WarehouseLayoutError(
    `invalid warehouse layout, upstream's allocate() rejects it: ${lines.join('. ')}`, mismatches);
}

function countParams(layers: readonly LayerPlan[], managerTensors: readonly TensorSpec[]): ParamCount {
  let attentions = 0;
  let kwBiases = 0;
  let plainLayers = 0;
  for (const l of layers) {
    if (l.kind === 'plain') {
      plainLayers += countTensorParams(l.tensors);
    } else {
      attentions += countTensorParams(attentionTensors(l.attention));
      if (l.spec.bias) kwBiases += l.spec.outPlanes;
    }
  }
  const warehouses = countTensorParams(managerTensors);
  return { warehouses, attentions, kwBiases, plainLayers, total: warehouses + attentions + kwBiases + plainLayers };
}
