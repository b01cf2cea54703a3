// KW layers (upstream's KWConv1d/2d/3d and KWLinear): no weight of their own; each forward
// computes the attention α and runs the fused KW convolution (kwConv) over the shared
// warehouse. Created by WarehouseManager.reserve(), usable after allocate().
import { ArgumentError } from '../errors';
import { Layer, Module } from '../nn/module';
import { convNd } from '../ops/conv';
import { kwAssemble } from '../ops/kw';
import { kwConv } from '../ops/kw_conv';
import { reshape, transpose } from '../ops/layout';
import type { Generator } from '../random';
import { Tensor, zeros } from '../tensor';
import { KWAttention } from './attention';
import type { KWLayerPlan, ResolvedLayerSpec } from './plan_types';

/** Where a KW layer finds its warehouse's cells (the WarehouseManager). */
export interface CellSource {
  cells(warehouseIndex: number): Tensor;
}

export class KWConvNd extends Module implements Layer {
  /** Set by WarehouseManager.allocate(). */
  attention: KWAttention | null = null;
  private layerPlan: KWLayerPlan | null = null;
  readonly bias: Tensor | null;

  constructor(private readonly source: CellSource, readonly layerIndex: number, readonly spec: ResolvedLayerSpec) {
    super();
    // Upstream creates the bias at reserve time (zeros) and the attention at allocate time,
    // so the state dict holds `bias` before `attention.*`.
    this.bias = this.registerParameter('bias', spec.bias ? zeros([spec.outPlanes]) : null);
  }

  get dimension(): number {
    return this.spec.dimension;
  }

  /** The layer's plan (cells, grid, temperature rows); throws before allocate(). */
  get plan(): KWLayerPlan {
    if (!this.layerPlan) throw new Error(`KW layer ${this.layerIndex} is not allocated yet: call WarehouseManager.allocate()`);
    return this.layerPlan;
  }

  /** Builds the attention from the allocated plan (upstream's init_attention). */
  initAttention(plan: KWLayerPlan, generator?: Generator): void {
    if (this.attention) throw new Error(`KW layer ${this.layerIndex} is already allocated`);
    this.layerPlan = plan;
    this.attention = this.registerModule('attention', new KWAttention(plan.attention, plan.startCellIdx, plan.tempBias, generator));
  }

  updateTemperature(t: number): void {
    if (!this.attention) throw new Error(`KW layer ${this.layerIndex} is not allocated yet: call WarehouseManager.allocate()`);
    this.attention.updateTemperature(t);
  }

  /** The per-sample kernels [B, out, in/groups, ...kernel] for input x (attention + assembly). */
  kernels(x: Tensor): Tensor {
    const plan = this.plan;
    const alpha = this.attention!.forward(x);
    const w = kwAssemble(alpha, this.source.cells(plan.warehouseIndex), {
      groupsSpatial: plan.grid.groupsSpatial,
      groupsOutChannel: plan.grid.groupsOutChannel,
      groupsInChannel: plan.grid.groupsInChannel,
      kernelSize: this.spec.kernelSize,
    });
    alpha.dispose(); // the graph keeps its own reference
    return w;
  }

  extraRepr(): string {
    return `${this.spec.inPlanes}→${this.spec.outPlanes}`;
  }

  forward(x: Tensor): Tensor {
    const s = this.spec;
    if (!(x instanceof Tensor) || x.ndim !== s.dimension + 2 || x.shape[1] !== s.inPlanes)
      throw new ArgumentError(`KWConv${s.dimension}d.forward`, 'x', `a [B, ${s.inPlanes}, ...${s.dimension} spatial dims] tensor` +
        (x instanceof Tensor && x.ndim === s.dimension + 2 ? ` (the input has ${x.shape[1]} channels, the layer expects ${s.inPlanes})` : ''), x);
    if (x.device !== 'cpu') {
      // The CUDA backend has the assembly and per-sample convolution but no fused kwConv yet.
      const w = this.kernels(x);
      const y = convNd(x, w, this.bias, { stride: s.stride, padding: s.padding, dilation: s.dilation, groups: s.groups });
      w.dispose();
      return y;
    }
    const plan = this.plan;
    const alpha = this.attention!.forward(x);
    // The fused op: per-sample kernels are assembled in cache-sized chunks (or never, for
    // layers with few output positions) instead of B full kernels kept alive for backward.
    const y = kwConv(x, alpha, this.source.cells(plan.warehouseIndex), this.bias, {
      groupsSpatial: plan.grid.groupsSpatial,
      groupsOutChannel: plan.grid.groupsOutChannel,
      groupsInChannel: plan.grid.groupsInChannel,
      kernelSize: s.kernelSize,
    }, { stride: s.stride, padding: s.padding, dilation: s.dilation, groups: s.groups });
    alpha.dispose(); // the graph keeps its own reference
    return y;
  }
}

export class KWConv1d extends KWConvNd {}
export class KWConv2d extends KWConvNd {}
export class KWConv3d extends KWConvNd {}

/**
 * Upstream's KWLinear: x [..., in] runs as a KW 1-d convolution over the middle dimensions
 * (reshape to [B, -1, in], transpose, KWConv1d, transpose back), its layer under `conv`.
 */
export class KWLinear extends Module implements Layer {
  readonly conv: KWConv1d;
  constructor(source: CellSource, layerIndex: number, spec: ResolvedLayerSpec) {
    super();
    this.conv = this.registerModule('conv', new KWConv1d(source, layerIndex, spec));
  }

  get layerIndex(): number {
    return this.conv.layerIndex;
  }

  updateTemperature(t: number): void {
    this.conv.updateTemperature(t);
  }

  extraRepr(): string {
    return this.conv.extraRepr();
  }

  forward(x: Tensor): Tensor {
    const inPlanes = this.conv.spec.inPlanes;
    if (!(x instanceof Tensor) || x.ndim < 2 || x.shape[x.ndim - 1] !== inPlanes)
      throw new ArgumentError('KWLinear.forward', 'x', `a [B, ..., ${inPlanes}] tensor`, x);
    const shape = x.shape;
    const x3 = reshape(x, [shape[0], -1, inPlanes]);
    const xt = transpose(x3, 1, 2);
    const y = this.conv.forward(xt);
    const yt = transpose(y, 1, 2);
    const out = reshape(yt, [...shape.slice(0, -1), -1]);
    for (const t of [x3, xt, y, yt]) t.dispose();
    return out;
  }
}
