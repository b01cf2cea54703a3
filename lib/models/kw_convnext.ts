// KW-ConvNeXt (upstream models/kw_convnext.py): ConvNeXt whose stem, downsampling,
// depthwise and pointwise convolutions (all with a bias) come from a KernelWarehouse manager
// whose attentions use LayerNorm (fc1 with a bias) instead of BatchNorm1d. The pointwise
// layers are 1×1 KW convolutions on (N, C, H, W), so γ is [1, C, 1, 1]. kw_convnext_tiny.
//
//   const net = kw_convnext_tiny({ sharingRange: 'layer_pwconv', dropPathRate: 0.3 });
import { layerNorm } from '../ops/norm';
import { DropPath, GELU, Identity } from '../nn/activation';
import { constant_, scale_, truncNormal_ } from '../nn/init';
import { ConvNd, Linear } from '../nn/layers';
import { Layer, Module, ModuleList, Sequential } from '../nn/module';
import { LayerNorm } from '../nn/norm';
import type { WarehouseManager } from '../kw/manager';
import type { Generator } from '../random';
import { full, Tensor } from '../tensor';
import { chain, checkNonNegative, checkPositiveInt, checkRate, consume, CreateModelOptions, ZooModel } from './common';
import { consume2, CONVNEXT_TINY, ConvNeXtSizes, convnextHead, dropPathRates, residualTail } from './convnext';
import { warehouseManagerFor } from './kw_common';

type Reserve = (inPlanes: number, outPlanes: number, kernelSize: number, opts: { stride?: number; padding?: number; groups?: number }, name: string) => Module & Layer;

export class KWConvNeXtBlock extends Module implements Layer {
  readonly gamma: Tensor | null;
  readonly dwconv: Module & Layer;
  readonly norm: LayerNorm;
  readonly pwconv1: Module & Layer;
  readonly act: GELU;
  readonly pwconv2: Module & Layer;
  readonly drop_path: Module & Layer;
  constructor(reserve: Reserve, dim: number, dropPath: number, layerScaleInitValue: number, stageIdx: number, layerIdx: number,
    g?: Generator) {
    super();
    const wn = (kind: string) => `stage${stageIdx}_layer${layerIdx}_${kind}`;
    this.dwconv = this.registerModule('dwconv', reserve(dim, dim, 7, { padding: 3, groups: dim }, wn('dwconv0')));
    this.norm = this.registerModule('norm', new LayerNorm(dim, { eps: 1e-6 }));
    this.pwconv1 = this.registerModule('pwconv1', reserve(dim, 4 * dim, 1, {}, wn('pwconv1')));
    this.act = this.registerModule('act', new GELU());
    this.pwconv2 = this.registerModule('pwconv2', reserve(4 * dim, dim, 1, {}, wn('pwconv2')));
    this.gamma = this.registerParameter('gamma', layerScaleInitValue > 0 ? full([1, dim, 1, 1], layerScaleInitValue) : null);
    this.drop_path = this.registerModule('drop_path', dropPath > 0 ? new DropPath(dropPath, g) : new Identity());
  }
  forward(x: Tensor): Tensor {
    const h = this.dwconv.forward(x);
    // Upstream permutes to channels-last, normalises over C and permutes back: the same as
    // normalising dim 1 in place.
    const n = consume(h, (v) => layerNorm(v, this.norm.weight, this.norm.bias, { eps: this.norm.eps, channelsFirst: true }));
    const y = chain(n, this.pwconv1, this.act, this.pwconv2);
    n.dispose();
    return residualTail(x, y, this.gamma, this.drop_path);
  }
}

export class KWConvNeXt extends ZooModel {
  readonly downsample_layers: ModuleList<Sequential>;
  readonly stages: ModuleList<Sequential>;
  readonly norm: LayerNorm;
  readonly head: Linear;
  constructor(modelName: string, sizes: ConvNeXtSizes, opts: CreateModelOptions = {}) {
    const numClasses = checkPositiveInt(modelName, 'numClasses', opts.numClasses ?? 1000);
    super(modelName, numClasses);
    const g = opts.generator;
    const { depths, dims } = sizes;
    const inChans = checkPositiveInt(modelName, 'inChans', opts.inChans ?? 3);
    const rates = dropPathRates(depths, checkRate(modelName, 'dropPathRate', opts.dropPathRate ?? 0));
    const ls = checkNonNegative(modelName, 'layerScaleInitValue', opts.layerScaleInitValue ?? 1e-6);
    const headScale = checkNonNegative(modelName, 'headInitScale', opts.headInitScale ?? 1);
    const wm: WarehouseManager = warehouseManagerFor(opts, { reduction: 0.0625, cellNumRatio: 1, cellInplaneRatio: 1,
      cellOutplaneRatio: 1, sharingRange: ['layer', 'pwconv'], nonlocalBasisRatio: 1, normLayer: 'layernorm' });
    this.warehouseManager = this.registerModule('warehouse_manager', wm);
    const reserve: Reserve = (i, o, k, s, name) =>
      wm.reserve({ inPlanes: i, outPlanes: o, kernelSize: k, ...s, warehouseName: name }) as Module & Layer;
    const cf = { eps: 1e-6, dataFormat: 'channels_first' as const };
    this.downsample_layers = this.registerModule('downsample_layers', new ModuleList<Sequential>());
    this.downsample_layers.append(new Sequential(reserve(inChans, dims[0], 4, { stride: 4 }, 'stagestem_conv0'), new LayerNorm(dims[0], cf)));
    for (let i = 0; i < 3; i++)
      this.downsample_layers.append(new Sequential(new LayerNorm(dims[i], cf),
        reserve(dims[i], dims[i + 1], 2, { stride: 2 }, `stage${i}_layerds_conv0`)));
    this.stages = this.registerModule('stages', new ModuleList<Sequential>());
    let cur = 0;
    for (let i = 0; i < 4; i++) {
      this.stages.append(new Sequential(...Array.from({ length: depths[i] },
        (_, j) => new KWConvNeXtBlock(reserve, dims[i], rates[cur + j], ls, i, j, g))));
      cur += depths[i];
    }
    this.norm = this.registerModule('norm', new LayerNorm(dims[3], { eps: 1e-6 }));
    this.head = this.registerModule('head', new Linear(dims[3], numClasses, true, { generator: g }));
    // _init_weights runs before allocate(): it reaches the head (and any plain conv), not the attentions.
    for (const m of this.modules()) {
      if (m instanceof ConvNd || m instanceof Linear) {
        truncNormal_(m.weight, { std: 0.02, generator: g });
        if (m.bias) constant_(m.bias, 0);
      }
    }
    scale_(this.head.weight, headScale);
    scale_(this.head.bias!, headScale);
    wm.store();
    wm.allocate(this);
  }
  forward(x: Tensor): Tensor {
    let y = x;
    for (let i = 0; i < 4; i++) {
      y = consume2(x, y, (v) => this.downsample_layers.at(i).forward(v));
      y = consume2(x, y, (v) => this.stages.at(i).forward(v));
    }
    return consume2(x, y, (v) => convnextHead(v, this.norm, this.head));
  }
}

/** KW-ConvNeXt-T (kw1x_convnext_tiny.json: 39,370,674 parameters). */
export function kw_convnext_tiny(opts: CreateModelOptions = {}): KWConvNeXt {
  return new KWConvNeXt('kw_convnext_tiny', CONVNEXT_TINY, opts);
}
