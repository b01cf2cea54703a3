// ConvNeXt (upstream models/convnext.py): a 4×4/4 stem, three 2×2/2 downsamplings with
// channels-first LayerNorm, blocks of depthwise 7×7 conv → LayerNorm → Linear(4×) → GELU →
// Linear → layer scale γ → drop path (rates rising linearly from 0 to dropPathRate), then
// global average pooling, LayerNorm and the head. convnext_tiny (28,589,128 parameters).
//
//   const net = convnext_tiny({ numClasses: 10, dropPathRate: 0.1 });
import { add, mul } from '../ops/elementwise';
import { mean } from '../ops/reduce';
import { permute } from '../ops/layout';
import { DropPath, GELU, Identity } from '../nn/activation';
import { constant_, scale_, truncNormal_ } from '../nn/init';
import { Conv2d, ConvNd, Linear } from '../nn/layers';
import { Layer, Module, ModuleList, Sequential } from '../nn/module';
import { LayerNorm } from '../nn/norm';
import type { Generator } from '../random';
import { full, Tensor } from '../tensor';
import { chain, checkNonNegative, checkPositiveInt, checkRate, consume, linspace, ModelOptions, ZooModel } from './common';

export const CONVNEXT_TINY = { depths: [3, 3, 9, 3], dims: [96, 192, 384, 768] };

/** γ·x + input, with drop path on the branch: the tail of every ConvNeXt block. */
export function residualTail(input: Tensor, branch: Tensor, gamma: Tensor | null, dropPath: Layer): Tensor {
  const scaled = gamma ? consume(branch, (b) => mul(gamma, b)) : branch;
  const dropped = consume(scaled, (b) => dropPath.forward(b));
  return consume(dropped, (b) => add(input, b));
}

export class ConvNeXtBlock extends Module implements Layer {
  readonly gamma: Tensor | null;
  readonly dwconv: Conv2d;
  readonly norm: LayerNorm;
  readonly pwconv1: Linear;
  readonly act: GELU;
  readonly pwconv2: Linear;
  readonly drop_path: Module & Layer;
  constructor(dim: number, dropPath: number, layerScaleInitValue: number, g?: Generator) {
    super();
    this.dwconv = this.registerModule('dwconv', new Conv2d(dim, dim, 7, { padding: 3, groups: dim, generator: g }));
    this.norm = this.registerModule('norm', new LayerNorm(dim, { eps: 1e-6 }));
    this.pwconv1 = this.registerModule('pwconv1', new Linear(dim, 4 * dim, true, { generator: g }));
    this.act = this.registerModule('act', new GELU());
    this.pwconv2 = this.registerModule('pwconv2', new Linear(4 * dim, dim, true, { generator: g }));
    this.gamma = this.registerParameter('gamma', layerScaleInitValue > 0 ? full([dim], layerScaleInitValue) : null);
    this.drop_path = this.registerModule('drop_path', dropPath > 0 ? new DropPath(dropPath, g) : new Identity());
  }
  forward(x: Tensor): Tensor {
    const h = consume(this.dwconv.forward(x), (v) => permute(v, [0, 2, 3, 1])); // (N, C, H, W) → (N, H, W, C)
    const y = chain(h, this.norm, this.pwconv1, this.act, this.pwconv2);
    h.dispose();
    const scaled = this.gamma ? consume(y, (v) => mul(this.gamma!, v)) : y;
    const back = consume(scaled, (v) => permute(v, [0, 3, 1, 2]));
    return residualTail(x, back, null, this.drop_path);
  }
}

/** Drop-path rate of every block, rising linearly from 0 (torch.linspace). */
export function dropPathRates(depths: readonly number[], rate: number): number[] {
  return linspace(rate, depths.reduce((a, b) => a + b, 0));
}

/** forward_features' end: mean over H and W, then the final LayerNorm, then the head. */
export function convnextHead(x: Tensor, norm: Layer, head: Layer): Tensor {
  const pooled = mean(x, [-2, -1]);
  const n = consume(pooled, (v) => norm.forward(v));
  return consume(n, (v) => head.forward(v));
}

export interface ConvNeXtSizes {
  depths: number[];
  dims: number[];
}

export class ConvNeXt extends ZooModel {
  readonly downsample_layers: ModuleList<Sequential>;
  readonly stages: ModuleList<Sequential>;
  readonly norm: LayerNorm;
  readonly head: Linear;
  constructor(modelName: string, sizes: ConvNeXtSizes, opts: ModelOptions = {}) {
    const numClasses = checkPositiveInt(modelName, 'numClasses', opts.numClasses ?? 1000);
    super(modelName, numClasses);
    const g = opts.generator;
    const { depths, dims } = sizes;
    const inChans = checkPositiveInt(modelName, 'inChans', opts.inChans ?? 3);
    const rates = dropPathRates(depths, checkRate(modelName, 'dropPathRate', opts.dropPathRate ?? 0));
    const ls = checkNonNegative(modelName, 'layerScaleInitValue', opts.layerScaleInitValue ?? 1e-6);
    const headScale = checkNonNegative(modelName, 'headInitScale', opts.headInitScale ?? 1);
    const cf = { eps: 1e-6, dataFormat: 'channels_first' as const };
    this.downsample_layers = this.registerModule('downsample_layers', new ModuleList<Sequential>());
    this.downsample_layers.append(new Sequential(new Conv2d(inChans, dims[0], 4, { stride: 4, generator: g }), new LayerNorm(dims[0], cf)));
    for (let i = 0; i < 3; i++)
      this.downsample_layers.append(new Sequential(new LayerNorm(dims[i], cf), new Conv2d(dims[i], dims[i + 1], 2, { stride: 2, generator: g })));
    this.stages = this.registerModule('stages', new ModuleList<Sequential>());
    let cur = 0;
    for (let i = 0; i < 4; i++) {
      this.stages.append(new Sequential(...Array.from({ length: depths[i] },
        (_, j) => new ConvNeXtBlock(dims[i], rates[cur + j], ls, g))));
      cur += depths[i];
    }
    this.norm = this.registerModule('norm', new LayerNorm(dims[3], { eps: 1e-6 }));
    this.head = this.registerModule('head', new Linear(dims[3], numClasses, true, { generator: g }));
    // _init_weights: trunc_normal_(std=.02) and zero bias for every Conv2d and Linear.
    for (const m of this.modules()) {
      if (m instanceof ConvNd || m instanceof Linear) {
        truncNormal_(m.weight, { std: 0.02, generator: g });
        if (m.bias) constant_(m.bias, 0);
      }
    }
    scale_(this.head.weight, headScale);
    scale_(this.head.bias!, headScale);
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

/** f(y), disposing y unless it is the caller's input x. */
export function consume2(x: Tensor, y: Tensor, f: (v: Tensor) => Tensor): Tensor {
  return y === x ? f(y) : consume(y, f);
}

/** ConvNeXt-T (28,589,128 parameters at 1000 classes). @example convnext_tiny({ dropPathRate: 0.1 }) */
export function convnext_tiny(opts: ModelOptions = {}): ConvNeXt {
  return new ConvNeXt('convnext_tiny', CONVNEXT_TINY, opts);
}
