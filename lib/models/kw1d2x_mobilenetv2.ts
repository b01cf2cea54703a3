// KW(1/2×)-MobileNetV2 (upstream models/kw1d2x_mobilenetv2.py): the parameter-saving
// variant. Its warehouse settings are fixed by the model (reduction 1/32, per-warehouse cell
// ratios for its 10 warehouses, sharing by `tuple("layer")`, i.e. the characters l, a, y, e, r),
// the 1×1 convolutions of stages 1–5 stay plain, and the classifier is a KW linear layer
// (`classifier.1.conv`). KW options passed to it are ignored, as upstream ignores them.
//
//   const net = kw1d2x_mobilenetv2_050({ numClasses: 10 });
import { Dropout } from '../nn/activation';
import { Layer, Module, Sequential } from '../nn/module';
import type { Tensor } from '../tensor';
import { checkPositiveInt, checkRate, consume, CreateModelOptions, ZooModel } from './common';
import { kwMobileConv } from './kw_mobilenetv2';
import { warehouseManagerFor } from './kw_common';
import { initMobileNet, mobileFeatures, pooledFeatures } from './mobilenetv2';

/** Upstream's pwlinear_enabled, indexed by stage_idx - 1. */
const PW_ENABLED = [false, false, false, false, false, true, true];

export class KW1d2xMobileNetV2 extends ZooModel {
  readonly features: Sequential;
  readonly classifier: Sequential;
  constructor(modelName: string, widthMult: number, opts: CreateModelOptions = {}) {
    const numClasses = checkPositiveInt(modelName, 'numClasses', opts.numClasses ?? 1000);
    super(modelName, numClasses);
    const g = opts.generator;
    const wm = warehouseManagerFor({ generator: g }, {
      reduction: 0.03125,
      cellNumRatio: [1, 1, 1, 1, 1, 1, 0.5, 1, 0.5, 0.5],
      cellInplaneRatio: [1, 1, 1, 1, 1, 1, 0.5, 1, 0.5, 0.025],
      cellOutplaneRatio: [1, 1, 1, 1, 1, 1, 0.5, 1, 0.5, 1],
      sharingRange: [...'layer'],
      nonlocalBasisRatio: 1,
    });
    this.warehouseManager = this.registerModule('warehouse_manager', wm);
    const conv = kwMobileConv(wm);
    const { features, lastChannel } = mobileFeatures(conv, widthMult,
      checkPositiveInt(modelName, 'inChans', opts.inChans ?? 3), (stage) => PW_ENABLED.at(stage - 1)!);
    this.features = this.registerModule('features', features);
    const head = wm.reserve({ inPlanes: lastChannel, outPlanes: numClasses, kernelSize: 1, warehouseName: 'classifier',
      layerType: 'linear' }) as Module & Layer;
    // Upstream's default dropout is 0.1; main.py always passes --dropout (default 0).
    this.classifier = this.registerModule('classifier',
      new Sequential(new Dropout(checkRate(modelName, 'dropout', opts.dropout ?? 0.1), g), head));
    initMobileNet(this, g);
    wm.store();
    wm.allocate(this);
  }
  forward(x: Tensor): Tensor {
    return consume(pooledFeatures(this.features, x), (v) => this.classifier.forward(v));
  }
}

/** KW(1/2×)-MobileNetV2 ×0.5 (1,466,888 parameters at 1000 classes). */
export function kw1d2x_mobilenetv2_050(opts: CreateModelOptions = {}): KW1d2xMobileNetV2 {
  return new KW1d2xMobileNetV2('kw1d2x_mobilenetv2_050', 0.5, opts);
}

/** KW(1/2×)-MobileNetV2 ×1.0 (2,654,396 parameters at 1000 classes). */
export function kw1d2x_mobilenetv2_100(opts: CreateModelOptions = {}): KW1d2xMobileNetV2 {
  return new KW1d2xMobileNetV2('kw1d2x_mobilenetv2_100', 1.0, opts);
}
