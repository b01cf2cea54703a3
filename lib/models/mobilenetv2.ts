// MobileNetV2 (upstream models/mobilenetv2.py, torchvision's layout): ConvBNReLU and
// InvertedResidual with upstream's module names; mobilenetv2_050 and mobilenetv2_100. The
// feature builder takes a convolution factory and tracks upstream's KW stage/layer naming, so
// KW-MobileNetV2 (kw_mobilenetv2.ts, kw1d2x_mobilenetv2.ts) builds the same features.
//
//   const net = mobilenetv2_050({ numClasses: 10 });
//   const logits = net.forward(x);        // x [B, 3, H, W] → [B, 10]
import { add } from '../ops/elementwise';
import { reshape } from '../ops/layout';
import { globalAvgPool } from '../ops/pool';
import { Dropout, ReLU6 } from '../nn/activation';
import { constant_, normal_ } from '../nn/init';
import { Conv2d, Linear } from '../nn/layers';
import { Layer, Module, Sequential } from '../nn/module';
import { BatchNorm2d } from '../nn/norm';
import { initConvsAndNorms } from './common';
import type { Generator } from '../random';
import { Tensor } from '../tensor';
import { checkPositiveInt, checkRate, consume, ModelOptions, ZooModel } from './common';

/** Upstream's _make_divisible: v rounded to a multiple of divisor, never below 90% of v. */
export function makeDivisible(v: number, divisor: number, minValue?: number): number {
  const min = minValue ?? divisor;
  let n = Math.max(min, Math.floor(Math.trunc(v + divisor / 2) / divisor) * divisor);
  if (n < 0.9 * v) n += divisor;
  return n;
}

export interface MobileConvSpec {
  inPlanes: number;
  outPlanes: number;
  kernelSize: number;
  stride: number;
  groups: number;
  warehouseName: string;
  enabled: boolean;
}
export type MobileConvFactory = (spec: MobileConvSpec) => Module & Layer;

export function plainMobileConv(g?: Generator): MobileConvFactory {
  return (s) => new Conv2d(s.inPlanes, s.outPlanes, s.kernelSize,
    { stride: s.stride, padding: (s.kernelSize - 1) >> 1, groups: s.groups, bias: false, generator: g });
}

/** conv → BatchNorm2d → ReLU6 as children 0, 1, 2. */
export class ConvBNReLU extends Sequential {
  constructor(conv: MobileConvFactory, inPlanes: number, outPlanes: number,
    opts: { kernelSize?: number; stride?: number; groups?: number; warehouseName?: string; enabled?: boolean } = {}) {
    super(conv({ inPlanes, outPlanes, kernelSize: opts.kernelSize ?? 3, stride: opts.stride ?? 1, groups: opts.groups ?? 1,
      warehouseName: opts.warehouseName ?? 'default', enabled: opts.enabled ?? true }),
    new BatchNorm2d(outPlanes), new ReLU6());
  }
}

export class InvertedResidual extends Module implements Layer {
  readonly useResConnect: boolean;
  readonly conv: Sequential;
  /** @param pwEnabled whether the 1×1 convolutions are KW (kw1d2x keeps early ones plain) */
  constructor(conv: MobileConvFactory, inp: number, oup: number, stride: number, expandRatio: number,
    stageIdx: number, layerIdx: number, pwEnabled = true) {
    super();
    if (stride !== 1 && stride !== 2) throw new Error(`InvertedResidual: stride must be 1 or 2, got ${stride}`);
    const hidden = Math.round(inp * expandRatio);
    this.useResConnect = stride === 1 && inp === oup;
    const wn = (kind: string) => `stage${stageIdx}_layer${layerIdx}_${kind}`;
    const layers: (Module & Layer)[] = [];
    if (expandRatio !== 1)
      layers.push(new ConvBNReLU(conv, inp, hidden, { kernelSize: 1, warehouseName: wn('pwconv0'), enabled: pwEnabled }));
    layers.push(
      new ConvBNReLU(conv, hidden, hidden, { stride, groups: hidden, warehouseName: wn('dwconv0') }),
      conv({ inPlanes: hidden, outPlanes: oup, kernelSize: 1, stride: 1, groups: 1, warehouseName: wn('pwconv1'), enabled: pwEnabled }),
      new BatchNorm2d(oup));
    this.conv = this.registerModule('conv', new Sequential(...layers));
  }
  forward(x: Tensor): Tensor {
    const y = this.conv.forward(x);
    return this.useResConnect ? consume(y, (v) => add(x, v)) : y;
  }
}

const SETTING: [number, number, number, number][] = [
  // t (expansion), c (channels), n (blocks), s (stride)
  [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
];
/** Upstream's kw_stage_setting: the KW stage of each row of SETTING. */
const KW_STAGE = [1, 2, 3, 4, 5, 6, 6];

/**
 * The `features` Sequential of every MobileNetV2 variant, with upstream's KW warehouse names
 * (stage/layer indices with hand-over at stage changes). `pwEnabled(stageIdx)` says whether
 * a block's 1×1 convolutions are KW.
 */
export function mobileFeatures(conv: MobileConvFactory, widthMult: number, inChans: number,
  pwEnabled: (stageIdx: number) => boolean = () => true): { features: Sequential; lastChannel: number } {
  let inputChannel = makeDivisible(32 * widthMult, 8);
  const lastChannel = makeDivisible(1280 * Math.max(1.0, widthMult), 8);
  const features: (Module & Layer)[] = [
    new ConvBNReLU(conv, inChans, inputChannel, { stride: 2, warehouseName: 'stage0_conv0' }),
  ];
  let layerIdx = 0;
  SETTING.forEach(([t, c, n, s], idx) => {
    const outputChannel = makeDivisible(c * widthMult, 8);
    for (let i = 0; i < n; i++) {
      const handover = i === 0 && idx > 0 && KW_STAGE[idx] !== KW_STAGE[idx - 1];
      const stageIdx = handover ? KW_STAGE[idx] - 1 : KW_STAGE[idx];
      features.push(new InvertedResidual(conv, inputChannel, outputChannel, i === 0 ? s : 1, t, stageIdx, layerIdx,
        pwEnabled(stageIdx)));
      inputChannel = outputChannel;
      layerIdx = handover ? 0 : layerIdx + 1;
    }
  });
  features.push(new ConvBNReLU(conv, inputChannel, lastChannel,
    { kernelSize: 1, warehouseName: `stage${KW_STAGE[KW_STAGE.length - 1]}_layer${layerIdx}_pwconv1` }));
  return { features: new Sequential(...features), lastChannel };
}

/** Upstream's init loop: Conv2d kaiming-normal (fan_out), norms 1/0, Linear N(0, 0.01²) with zero bias. */
export function initMobileNet(m: Module, g?: Generator): void {
  initConvsAndNorms(m, g);
  for (const x of m.modules())
    if (x instanceof Linear) {
      normal_(x.weight, { std: 0.01, generator: g });
      if (x.bias) constant_(x.bias, 0);
    }
}

/** features → global average pool → [B, C]. */
export function pooledFeatures(features: Layer, x: Tensor): Tensor {
  const f = features.forward(x);
  const p = consume(f, (v) => globalAvgPool(v, { keepDims: false }));
  return consume(p, (v) => reshape(v, [x.shape[0], -1]));
}

export class MobileNetV2 extends ZooModel {
  readonly features: Sequential;
  readonly classifier: Sequential;
  constructor(modelName: string, widthMult: number, opts: ModelOptions = {}) {
    const numClasses = checkPositiveInt(modelName, 'numClasses', opts.numClasses ?? 1000);
    super(modelName, numClasses);
    const g = opts.generator;
    const { features, lastChannel } = mobileFeatures(plainMobileConv(g), widthMult,
      checkPositiveInt(modelName, 'inChans', opts.inChans ?? 3));
    this.features = this.registerModule('features', features);
    this.classifier = this.registerModule('classifier', new Sequential(
      new Dropout(checkRate(modelName, 'dropout', opts.dropout ?? 0), g), new Linear(lastChannel, numClasses, true, { generator: g })));
    initMobileNet(this, g);
  }
  forward(x: Tensor): Tensor {
    return consume(pooledFeatures(this.features, x), (v) => this.classifier.forward(v));
  }
}

/** MobileNetV2 ×0.5 (1,968,680 parameters at 1000 classes). @example mobilenetv2_050({ numClasses: 10 }) */
export function mobilenetv2_050(opts: ModelOptions = {}): MobileNetV2 {
  return new MobileNetV2('mobilenetv2_050', 0.5, opts);
}

/** MobileNetV2 ×1.0 (3,504,872 parameters at 1000 classes). */
export function mobilenetv2_100(opts: ModelOptions = {}): MobileNetV2 {
  return new MobileNetV2('mobilenetv2_100', 1.0, opts);
}
