// WarehouseManager: upstream's Warehouse_Manager as a Module. reserve() hands out KW layers
// (or plain ones when KW is disabled), store() creates the warehouses `weights.<i>`,
// allocate(network) builds each layer's attention in network.modules() order and
// re-initialises its slice of cells. The bookkeeping is the planner's (plan.ts).
//
//   const wm = new WarehouseManager({ sharingRange: 'layer_conv', cellNumRatio: 1 });
//   const conv = wm.reserve({ inPlanes: 64, outPlanes: 64, kernelSize: 3, padding: 1, warehouseName: 'stage0_layer0_conv0' });
//   wm.store();
//   wm.allocate(net);          // net: the Module holding `conv` (and `wm`)
//   const y = conv.forward(x);
import { copyInto, Module, ParameterList } from '../nn/module';
import { Conv1d, Conv2d, Conv3d, Linear } from '../nn/layers';
import { Generator, randn } from '../random';
import { Tensor } from '../tensor';
import { KWAttention } from './attention';
import { CellSource, KWConv1d, KWConv2d, KWConv3d, KWConvNd, KWLinear } from './layers';
import { WarehousePlanner, resolveLayerSpec } from './plan';
import type { KWPlan, LayerSpec, ManagerOptions, WarehousePlan } from './plan';

export interface WarehouseManagerOptions extends ManagerOptions {
  /** Random source for the warehouses, attentions and plain layers (default: the global one). */
  generator?: Generator;
}

export type ReservedLayer = KWConvNd | KWLinear | Linear | Conv1d | Conv2d | Conv3d;

export class WarehouseManager extends Module implements CellSource {
  private readonly planner: WarehousePlanner;
  private readonly generator?: Generator;
  private readonly reserved: ReservedLayer[] = [];
  private warehouses: WarehousePlan[] | null = null;
  private weights: ParameterList | null = null;
  private allocated: KWPlan | null = null;

  constructor(readonly options: WarehouseManagerOptions = {}) {
    super();
    const { generator, ...planOptions } = options;
    this.generator = generator;
    this.planner = new WarehousePlanner(planOptions);
  }

  /**
   * Records a layer and returns it: a KWConv1d/2d/3d or KWLinear sharing the warehouse its
   * fused name selects, or a plain Conv/Linear when `enabled` is false.
   */
  reserve(layer: LayerSpec): ReservedLayer {
    const spec = resolveLayerSpec(layer);
    const index = this.planner.reserve(layer);
    let m: ReservedLayer;
    if (!spec.enabled) {
      const g = { generator: this.generator };
      const conv = { stride: spec.stride, padding: spec.padding, dilation: spec.dilation, groups: spec.groups, bias: spec.bias, ...g };
      const k = spec.kernelSize;
      m = spec.layerType === 'linear' ? new Linear(spec.inPlanes, spec.outPlanes, spec.bias, g)
        : spec.layerType === 'conv1d' ? new Conv1d(spec.inPlanes, spec.outPlanes, k, conv)
          : spec.layerType === 'conv3d' ? new Conv3d(spec.inPlanes, spec.outPlanes, k, conv)
            : new Conv2d(spec.inPlanes, spec.outPlanes, k, conv);
    } else {
      m = spec.layerType === 'linear' ? new KWLinear(this, index, spec)
        : spec.layerType === 'conv1d' ? new KWConv1d(this, index, spec)
          : spec.layerType === 'conv3d' ? new KWConv3d(this, index, spec)
            : new KWConv2d(this, index, spec);
    }
    this.reserved.push(m);
    return m;
  }

  /** Sizes the warehouses and creates them as `weights.<i>` (standard normal, as upstream). */
  store(): WarehousePlan[] {
    this.warehouses = this.planner.store();
    const list = new ParameterList();
    for (const w of this.warehouses) list.append(randn(w.shape, { generator: this.generator }));
    this.weights = this.registerModule('weights', list);
    return this.warehouses;
  }

  /**
   * Builds every KW layer's attention and temperature rows, and re-initialises its slice of
   * its warehouse (kaiming normal, fan_out), visiting the layers in `network.modules()` order
   * (upstream's order; reserve order when no network is given). Throws, naming the warehouse
   * and the counts, for a layout upstream rejects.
   */
  allocate(network?: Module): KWPlan {
    if (!this.weights) throw new Error('WarehouseManager.allocate() before store()');
    let order: number[] | undefined;
    if (network) {
      const mine = new Set<Module>(this.reserved.map((m) => (m instanceof KWLinear ? m.conv : m)));
      order = network.modules().filter((m): m is KWConvNd => m instanceof KWConvNd && mine.has(m)).map((m) => m.layerIndex);
    }
    const plan = this.planner.allocate(order);
    const byIndex = new Map<number, KWConvNd>();
    for (const m of this.reserved) {
      const conv = m instanceof KWLinear ? m.conv : m;
      if (conv instanceof KWConvNd) byIndex.set(conv.layerIndex, conv);
    }
    for (const i of plan.allocationOrder) {
      const lp = plan.layers[i];
      if (lp.kind !== 'kw') continue;
      byIndex.get(i)!.initAttention(lp, this.generator);
      const cellSize = lp.cellShape.slice(1).reduce((a, b) => a * b, 1);
      const count = lp.endCellIdx - lp.startCellIdx;
      if (count > 0) {
        const slice = randn([count * cellSize], { std: lp.sliceInit.std, generator: this.generator });
        copyInto(this.weights.at(lp.warehouseIndex), slice, lp.startCellIdx * cellSize);
        slice.dispose();
      }
    }
    this.allocated = plan;
    return plan;
  }

  /** Warehouse i's cells [n, cell_out, cell_in, ...cell_kernel] (upstream's take_cell). */
  cells(warehouseIndex: number): Tensor {
    if (!this.weights) throw new Error('WarehouseManager: no warehouses before store()');
    return this.weights.at(warehouseIndex);
  }

  /** The allocated plan: warehouses, per-layer cells and attention sizes, parameter counts. */
  get plan(): KWPlan {
    if (!this.allocated) throw new Error('WarehouseManager: not allocated yet');
    return this.allocated;
  }

  /** Layers in reserve order. */
  get layers(): readonly ReservedLayer[] {
    return this.reserved;
  }
}

/**
 * Sets τ on every KW attention under `module` (upstream's net_update_temperature); the schedule is lib/train/schedule.ts temperature().
 * @example updateTemperature(model, 0.5);
 */
export function updateTemperature(module: Module, t: number): void {
  for (const m of module.modules()) if (m instanceof KWAttention) m.updateTemperature(t);
}
