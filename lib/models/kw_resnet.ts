// KW-ResNet (upstream models/kw_resnet.py): ResNet whose block convolutions come from a
// KernelWarehouse manager. Warehouses are named stage{s}_layer{l}_conv{k}; each stage's first
// block hands its conv1 over to the previous stage's warehouse, a downsample is KW only when it
// strides, and KW-ResNet50's first 1×1 conv stays plain. kw_resnet18, kw_resnet50, and the
// small-input kw_resnet18_small / kw_resnet50_small (3×3 stride-1 stem, no max pool).
//
//   const net = kw_resnet18({ cellNumRatio: 0.5, cellInplaneRatio: 0.5, cellOutplaneRatio: 0.5, sharingRange: 'layer_conv', numClasses: 10 });
//   net.updateTemperature(1);
//   const logits = net.forward(x);
import { AdaptiveAvgPool2d, Dropout } from '../nn/activation';
import { Linear } from '../nn/layers';
import type { Tensor } from '../tensor';
import { checkPositiveInt, checkRate, CreateModelOptions, initConvsAndNorms, ZooModel } from './common';
import { warehouseManagerFor } from './kw_common';
import {
  BasicBlock, Bottleneck, ConvFactory, featureWidth, makeStages, makeStem, resnetForward, ResNetLayout,
} from './resnet';

export class KWResNet extends ZooModel {
  readonly dropout: Dropout;
  constructor(modelName: string, layout: ResNetLayout, opts: CreateModelOptions = {}) {
    const numClasses = checkPositiveInt(modelName, 'numClasses', opts.numClasses ?? 1000);
    super(modelName, numClasses);
    const inChans = checkPositiveInt(modelName, 'inChans', opts.inChans ?? 3);
    const dropPath = checkRate(modelName, 'dropPathRate', opts.dropPathRate ?? 0);
    const g = opts.generator;
    const wm = warehouseManagerFor(opts, { reduction: 0.0625, cellNumRatio: 1, cellInplaneRatio: 1, cellOutplaneRatio: 1,
      sharingRange: ['layer', 'conv'], nonlocalBasisRatio: 1 });
    this.warehouseManager = this.registerModule('warehouse_manager', wm);
    makeStem(this, inChans, !!layout.smallInput, g, layout.width);
    const conv: ConvFactory = (s) => wm.reserve({
      inPlanes: s.inPlanes, outPlanes: s.outPlanes, kernelSize: s.kernelSize, stride: s.stride,
      padding: s.kernelSize === 3 ? 1 : 0, warehouseName: s.warehouseName, enabled: s.enabled, bias: false,
    }) as ReturnType<ConvFactory>;
    makeStages(this, layout, conv, dropPath, (stride) => stride !== 1);
    this.registerModule('avgpool', new AdaptiveAvgPool2d([1, 1]));
    // Upstream's default is 0.1; main.py always passes --dropout (default 0).
    this.dropout = this.registerModule('dropout', new Dropout(checkRate(modelName, 'dropout', opts.dropout ?? 0.1), g));
    this.registerModule('fc', new Linear(featureWidth(layout), numClasses, true, { generator: g }));
    initConvsAndNorms(this, g); // fc keeps nn.Linear's default init, as upstream
    wm.store();
    wm.allocate(this);
  }
  forward(x: Tensor): Tensor {
    return resnetForward(this, x, this.dropout);
  }
}

/** KW-ResNet-18 (kw1x_resnet18.json: 11,932,148 parameters). */
export function kw_resnet18(opts: CreateModelOptions = {}): KWResNet {
  return new KWResNet('kw_resnet18', { block: BasicBlock, layers: [2, 2, 2, 2] }, opts);
}

/** KW-ResNet-50 (kw1x_resnet50.json: 28,052,310 parameters). */
export function kw_resnet50(opts: CreateModelOptions = {}): KWResNet {
  return new KWResNet('kw_resnet50', { block: Bottleneck, layers: [3, 4, 6, 3] }, opts);
}

/** KW-ResNet-18 for 28–32 px images. @example kw_resnet18_small({ inChans: 1, numClasses: 10, cellNumRatio: 0.5 }) */
export function kw_resnet18_small(opts: CreateModelOptions = {}): KWResNet {
  return new KWResNet('kw_resnet18_small', { block: BasicBlock, layers: [2, 2, 2, 2], smallInput: true }, opts);
}

/** KW-ResNet-50 for 28–32 px images. */
export function kw_resnet50_small(opts: CreateModelOptions = {}): KWResNet {
  return new KWResNet('kw_resnet50_small', { block: Bottleneck, layers: [3, 4, 6, 3], smallInput: true }, opts);
}

/**
 * KW version of resnet_mini (one BasicBlock per stage, widths 16/32/64/128, small-input stem):
 * the KW model of the built-in default run.
 * @example kw_resnet_mini({ inChans: 1, numClasses: 10 })
 */
export function kw_resnet_mini(opts: CreateModelOptions = {}): KWResNet {
  return new KWResNet('kw_resnet_mini', { block: BasicBlock, layers: [1, 1, 1, 1], smallInput: true, width: 16 }, opts);
}
