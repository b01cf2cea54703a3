// KW-MobileNetV2 (upstream models/kw_mobilenetv2.py): every convolution of MobileNetV2,
// depthwise ones included, from a KernelWarehouse manager (warehouses stage{s}_conv0,
// stage{s}_layer{l}_pwconv{k}, stage{s}_layer{l}_dwconv0); the classifier stays a plain
// Linear. kw_mobilenetv2_050 and kw_mobilenetv2_100.
//
//   const net = kw_mobilenetv2_050({ cellNumRatio: 1, sharingRange: ['layer', 'pwconv'], numClasses: 10 });
import { Dropout, Identity } from '../nn/activation';
import { Linear } from '../nn/layers';
import { Layer, Module, Sequential } from '../nn/module';
import type { Tensor } from '../tensor';
import { checkPositiveInt, checkRate, consume, CreateModelOptions, ZooModel } from './common';
import { warehouseManagerFor } from './kw_common';
import { initMobileNet, MobileConvFactory, mobileFeatures, pooledFeatures } from './mobilenetv2';
import type { WarehouseManager } from '../kw/manager';

export function kwMobileConv(wm: WarehouseManager): MobileConvFactory {
  return (s) => wm.reserve({
    inPlanes: s.inPlanes, outPlanes: s.outPlanes, kernelSize: s.kernelSize, stride: s.stride,
    padding: (s.kernelSize - 1) >> 1, groups: s.groups, bias: false, warehouseName: s.warehouseName, enabled: s.enabled,
  }) as Module & Layer;
}

export class KWMobileNetV2 extends ZooModel {
  readonly features: Sequential;
  readonly dropout: Module & Layer;
  readonly classifier: Linear;
  constructor(modelName: string, widthMult: number, opts: CreateModelOptions = {}) {
    const numClasses = checkPositiveInt(modelName, 'numClasses', opts.numClasses ?? 1000);
    super(modelName, numClasses);
    const g = opts.generator;
    // Upstream's default sharing_range is None (unusable); main.py passes [] unless the config sets it.
    const wm = warehouseManagerFor(opts, { reduction: 0.0625, cellNumRatio: 1, cellInplaneRatio: 1, cellOutplaneRatio: 1,
      sharingRange: [], nonlocalBasisRatio: 1 });
    this.warehouseManager = this.registerModule('warehouse_manager', wm);
    const { features, lastChannel } = mobileFeatures(kwMobileConv(wm), widthMult,
      checkPositiveInt(modelName, 'inChans', opts.inChans ?? 3));
    this.features = this.registerModule('features', features);
    const p = checkRate(modelName, 'dropout', opts.dropout ?? 0);
    this.dropout = this.registerModule('dropout', p > 0 ? new Dropout(p, g) : new Identity());
    this.classifier = this.registerModule('classifier', new Linear(lastChannel, numClasses, true, { generator: g }));
    initMobileNet(this, g);
    wm.store();
    wm.allocate(this);
  }
  forward(x: Tensor): Tensor {
    const pooled = pooledFeatures(this.features, x);
    const d = consume(pooled, (v) => this.dropout.forward(v));
    return consume(d, (v) => this.classifier.forward(v));
  }
}

/** KW-MobileNetV2 ×0.5 (kw1x_mobilenetv2_050.json: 2,854,522 parameters). */
export function kw_mobilenetv2_050(opts: CreateModelOptions = {}): KWMobileNetV2 {
  return new KWMobileNetV2('kw_mobilenetv2_050', 0.5, opts);
}

/** KW-MobileNetV2 ×1.0 (kw1x_mobilenetv2_100.json: 5,168,146 parameters). */
export function kw_mobilenetv2_100(opts: CreateModelOptions = {}): KWMobileNetV2 {
  return new KWMobileNetV2('kw_mobilenetv2_100', 1.0, opts);
}
