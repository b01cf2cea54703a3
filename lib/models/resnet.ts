// ResNet (upstream models/resnet.py, torchvision's layout): BasicBlock and Bottleneck with
// upstream's module names, so official state dicts load; resnet18 and resnet50, plus small-
// input variants (3×3 stride-1 stem, no max pool) for 28–32 px images. The blocks take a
// convolution factory, so KW-ResNet (kw_resnet.ts) builds the same blocks from a warehouse.
//
//   const net = resnet18({ numClasses: 10 });
//   const logits = net.forward(x);            // x [B, 3, 224, 224] → [B, 10]
import { add } from '../ops/elementwise';
import { flatten } from '../ops/layout';
import { AdaptiveAvgPool2d, DropPath, Identity, MaxPool2d, ReLU } from '../nn/activation';
import { constant_, normal_ } from '../nn/init';
import { Conv2d, Linear } from '../nn/layers';
import { Layer, Module, Sequential } from '../nn/module';
import { BatchNorm2d } from '../nn/norm';
import type { Generator } from '../random';
import { Tensor } from '../tensor';
import { chain, checkPositiveInt, checkRate, consume, initConvsAndNorms, ModelOptions, ZooModel } from './common';

/** One convolution of a block: a plain Conv2d, or a KW layer reserved under `warehouseName`. */
export interface ConvSpec {
  inPlanes: number;
  outPlanes: number;
  kernelSize: 1 | 3;
  stride: number;
  warehouseName: string;
  /** false: a plain convolution even in a KW network. */
  enabled: boolean;
}
export type ConvFactory = (spec: ConvSpec) => Module & Layer;

/** Where a block sits, for KW warehouse names (`stage{s}_layer{l}_conv{k}`). */
export interface BlockPlace {
  stageIdx: number;
  layerIdx: number;
  /** The stage's first block: its conv1 shares the previous stage's warehouse. */
  handover: boolean;
}

export function plainConv(g?: Generator): ConvFactory {
  return (s) => new Conv2d(s.inPlanes, s.outPlanes, s.kernelSize,
    { stride: s.stride, padding: s.kernelSize === 3 ? 1 : 0, bias: false, generator: g });
}

const name = (stage: number, layer: number, conv: number): string => `stage${stage}_layer${layer}_conv${conv}`;

/** bn followed by relu as one layer: the fused kernel (one pass over the activation, not three). */
const bnRelu = (bn: BatchNorm2d): Layer => ({ forward: (v: Tensor) => bn.forwardRelu(v) });

abstract class ResidualBlock extends Module implements Layer {
  relu!: ReLU;
  downsample!: Module & Layer | null;
  drop_path!: Module & Layer;
  protected abstract branch(x: Tensor): Tensor;
  forward(x: Tensor): Tensor {
    const out = this.branch(x);
    const identity = this.downsample ? this.downsample.forward(x) : x;
    const dropped = consume(out, (o) => this.drop_path.forward(o));
    const sum = add(identity, dropped);
    dropped.dispose();
    if (identity !== x) identity.dispose();
    return consume(sum, (s) => this.relu.forward(s));
  }
}

export class BasicBlock extends ResidualBlock {
  static readonly expansion = 1;
  readonly conv1: Module & Layer;
  readonly bn1: BatchNorm2d;
  readonly conv2: Module & Layer;
  readonly bn2: BatchNorm2d;
  constructor(inplanes: number, planes: number, stride: number, downsample: (Module & Layer) | null,
    conv: ConvFactory, place: BlockPlace, dropPath: number) {
    super();
    const conv1Stage = Math.max(place.handover ? place.stageIdx - 1 : place.stageIdx, 0);
    this.conv1 = this.registerModule('conv1', conv({ inPlanes: inplanes, outPlanes: planes, kernelSize: 3, stride,
      warehouseName: name(conv1Stage, place.layerIdx, 0), enabled: true }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.relu = this.registerModule('relu', new ReLU());
    const layer = place.handover ? 0 : place.layerIdx;
    this.conv2 = this.registerModule('conv2', conv({ inPlanes: planes, outPlanes: planes, kernelSize: 3, stride: 1,
      warehouseName: name(place.stageIdx, layer, 1), enabled: true }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.downsample = this.registerModule('downsample', downsample);
    this.drop_path = this.registerModule('drop_path', dropPath > 0 ? new DropPath(dropPath) : new Identity());
  }
  protected branch(x: Tensor): Tensor {
    return chain(x, this.conv1, bnRelu(this.bn1), this.conv2, this.bn2);
  }
}

export class Bottleneck extends ResidualBlock {
  static readonly expansion = 4;
  readonly conv1: Module & Layer;
  readonly bn1: BatchNorm2d;
  readonly conv2: Module & Layer;
  readonly bn2: BatchNorm2d;
  readonly conv3: Module & Layer;
  readonly bn3: BatchNorm2d;
  constructor(inplanes: number, planes: number, stride: number, downsample: (Module & Layer) | null,
    conv: ConvFactory, place: BlockPlace, dropPath: number) {
    super();
    const conv1Stage = place.handover ? place.stageIdx - 1 : place.stageIdx;
    // Upstream KW-ResNet50 keeps the very first 1×1 conv plain (its warehouse would be stage -1).
    this.conv1 = this.registerModule('conv1', conv({ inPlanes: inplanes, outPlanes: planes, kernelSize: 1, stride: 1,
      warehouseName: name(conv1Stage, place.layerIdx, 0), enabled: conv1Stage >= 0 }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    const layer = place.handover ? 0 : place.layerIdx;
    this.conv2 = this.registerModule('conv2', conv({ inPlanes: planes, outPlanes: planes, kernelSize: 3, stride,
      warehouseName: name(place.stageIdx, layer, 1), enabled: true }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.conv3 = this.registerModule('conv3', conv({ inPlanes: planes, outPlanes: planes * 4, kernelSize: 1, stride: 1,
      warehouseName: name(place.stageIdx, layer, 2), enabled: true }));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(planes * 4));
    this.relu = this.registerModule('relu', new ReLU());
    this.downsample = this.registerModule('downsample', downsample);
    this.drop_path = this.registerModule('drop_path', dropPath > 0 ? new DropPath(dropPath) : new Identity());
  }
  protected branch(x: Tensor): Tensor {
    return chain(x, this.conv1, bnRelu(this.bn1), this.conv2, bnRelu(this.bn2), this.conv3, this.bn3);
  }
}

export type BlockKind = typeof BasicBlock | typeof Bottleneck;

export interface ResNetLayout {
  block: BlockKind;
  /** Blocks per stage. */
  layers: [number, number, number, number];
  /** 3×3 stride-1 stem and no max pool, for 28–32 px inputs. */
  smallInput?: boolean;
  /** Width of the stem and first stage (64 upstream); stage s has width·2^s planes. */
  width?: number;
}

/** Channels entering the classifier. */
export function featureWidth(layout: ResNetLayout): number {
  return 8 * (layout.width ?? 64) * layout.block.expansion;
}

/**
 * The stages of a (KW-)ResNet, built as upstream's _make_layer does: `downsample` is asked of
 * the factory before the block's own convolutions (its KW warehouse name uses the running
 * layer index + 1, and it is KW only when it strides).
 */
export function makeStages(owner: Module, layout: ResNetLayout, conv: ConvFactory, dropPath: number,
  downsampleEnabled: (stride: number) => boolean): void {
  const block = layout.block;
  const width = layout.width ?? 64;
  let inplanes = width;
  let layerIdx = 0;
  [width, 2 * width, 4 * width, 8 * width].forEach((planes, stage) => {
    const stride = stage === 0 ? 1 : 2;
    let downsample: (Module & Layer) | null = null;
    if (stride !== 1 || inplanes !== planes * block.expansion) {
      downsample = new Sequential(
        conv({ inPlanes: inplanes, outPlanes: planes * block.expansion, kernelSize: 1, stride,
          warehouseName: name(stage - 1, layerIdx + 1, 0), enabled: downsampleEnabled(stride) }),
        new BatchNorm2d(planes * block.expansion));
    }
    const blocks: (Module & Layer)[] = [
      new block(inplanes, planes, stride, downsample, conv, { stageIdx: stage, layerIdx, handover: true }, dropPath),
    ];
    layerIdx = 1;
    inplanes = planes * block.expansion;
    for (let i = 1; i < layout.layers[stage]; i++) {
      blocks.push(new block(inplanes, planes, 1, null, conv, { stageIdx: stage, layerIdx, handover: false }, dropPath));
      layerIdx++;
    }
    owner.registerModule(`layer${stage + 1}`, new Sequential(...blocks));
  });
}

/** Registers conv1, bn1, relu, maxpool: the 7×7/2 stem and 3×3/2 max pool, or the small-input stem. */
export function makeStem(owner: Module, inChans: number, smallInput: boolean, g?: Generator, width = 64): void {
  owner.registerModule('conv1', smallInput
    ? new Conv2d(inChans, width, 3, { stride: 1, padding: 1, bias: false, generator: g })
    : new Conv2d(inChans, width, 7, { stride: 2, padding: 3, bias: false, generator: g }));
  owner.registerModule('bn1', new BatchNorm2d(width));
  owner.registerModule('relu', new ReLU());
  owner.registerModule('maxpool', smallInput ? new Identity() : new MaxPool2d(3, { stride: 2, padding: 1 }));
}


/** The shared forward of ResNet and KW-ResNet: stem, four stages, pool, (dropout), fc. */
export function resnetForward(m: Module, x: Tensor, dropout: Layer | null): Tensor {
  const get = (k: string) => m.getModule(k) as Module & Layer;
  const feat = chain(x, get('conv1'), bnRelu(get('bn1') as unknown as BatchNorm2d), get('maxpool'),
    get('layer1'), get('layer2'), get('layer3'), get('layer4'), get('avgpool'));
  const flat = consume(feat, (f) => flatten(f, 1));
  const dropped = dropout ? consume(flat, (f) => dropout.forward(f)) : flat;
  return consume(dropped, (f) => get('fc').forward(f));
}

export class ResNet extends ZooModel {
  constructor(modelName: string, layout: ResNetLayout, opts: ModelOptions = {}) {
    const numClasses = checkPositiveInt(modelName, 'numClasses', opts.numClasses ?? 1000);
    super(modelName, numClasses);
    const inChans = checkPositiveInt(modelName, 'inChans', opts.inChans ?? 3);
    const dropPath = checkRate(modelName, 'dropPathRate', opts.dropPathRate ?? 0);
    const g = opts.generator;
    makeStem(this, inChans, !!layout.smallInput, g, layout.width);
    makeStages(this, layout, plainConv(g), dropPath, () => true);
    this.registerModule('avgpool', new AdaptiveAvgPool2d([1, 1]));
    const fc = this.registerModule('fc', new Linear(featureWidth(layout), numClasses, true, { generator: g }));
    initConvsAndNorms(this, g);
    normal_(fc.weight, { std: 0.01, generator: g });
    constant_(fc.bias!, 0);
  }
  forward(x: Tensor): Tensor {
    return resnetForward(this, x, null);
  }
}

/** ResNet-18 (11,689,512 parameters at 1000 classes). @example const net = resnet18({ numClasses: 10 }); */
export function resnet18(opts: ModelOptions = {}): ResNet {
  return new ResNet('resnet18', { block: BasicBlock, layers: [2, 2, 2, 2] }, opts);
}

/** ResNet-50 (25,557,032 parameters at 1000 classes). */
export function resnet50(opts: ModelOptions = {}): ResNet {
  return new ResNet('resnet50', { block: Bottleneck, layers: [3, 4, 6, 3] }, opts);
}

/** ResNet-18 for 28–32 px images: 3×3 stride-1 stem, no max pool. @example resnet18_small({ inChans: 1, numClasses: 10 }) */
export function resnet18_small(opts: ModelOptions = {}): ResNet {
  return new ResNet('resnet18_small', { block: BasicBlock, layers: [2, 2, 2, 2], smallInput: true }, opts);
}

/** ResNet-50 for 28–32 px images: 3×3 stride-1 stem, no max pool. */
export function resnet50_small(opts: ModelOptions = {}): ResNet {
  return new ResNet('resnet50_small', { block: Bottleneck, layers: [3, 4, 6, 3], smallInput: true }, opts);
}

/**
 * A mini ResNet for 28–32 px images: one BasicBlock per stage, widths 16/32/64/128 (about
 * 0.7 M parameters). The built-in default run trains it beside kw_resnet_mini.
 * @example resnet_mini({ inChans: 1, numClasses: 10 })
 */
export function resnet_mini(opts: ModelOptions = {}): ResNet {
  return new ResNet('resnet_mini', { block: BasicBlock, layers: [1, 1, 1, 1], smallInput: true, width: 16 }, opts);
}
