// Parameter-free layers: activations (ReLU, ReLU6, GELU), Identity, Flatten, Dropout,
// DropPath, MaxPool2d and AdaptiveAvgPool2d, each a Module over the functional op. Every
// forward returns a new tensor object (Identity too), so a caller may dispose its
// intermediates without checking which layer it called.
import { ArgumentError } from '../errors';
import { dropout, dropPath } from '../ops/dropout';
import type { Generator } from '../random';
import { gelu, relu, relu6 } from '../ops/elementwise';
import { flatten, reshape } from '../ops/layout';
import { adaptiveAvgPool2d, maxPool2d } from '../ops/pool';
import type { MaxPool2dOptions, Size2 } from '../ops/pool';
import { Tensor } from '../tensor';
import { Layer, Module } from './module';

/** @example new ReLU().forward(x) */
export class ReLU extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/** min(max(x, 0), 6). @example new ReLU6().forward(x) */
export class ReLU6 extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return relu6(x);
  }
}

/** The exact (erf) GELU, nn.GELU()'s default. @example new GELU().forward(x) */
export class GELU extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return gelu(x);
  }
}

/** Returns its input's values (a new tensor on the same storage, recorded for autograd). */
export class Identity extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return reshape(x, x.shape);
  }
}

/** torch.flatten(x, startDim). @example new Flatten().forward(x) // [N, C, 1, 1] -> [N, C] */
export class Flatten extends Module implements Layer {
  constructor(readonly startDim = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim);
  }
}

function probability(fn: string, p: unknown): number {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new ArgumentError(fn, 'p', 'a probability in [0, 1]', p);
  return p;
}

/** nn.Dropout: zeroes elements with probability p in train mode. @example new Dropout(0.1) */
export class Dropout extends Module implements Layer {
  constructor(readonly p = 0.5, readonly generator?: Generator) {
    super();
    probability('Dropout', p);
  }
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, { training: this.training, generator: this.generator });
  }
}

/** timm's DropPath (stochastic depth): drops whole samples in train mode. @example new DropPath(0.1) */
export class DropPath extends Module implements Layer {
  constructor(readonly p = 0, readonly generator?: Generator) {
    super();
    probability('DropPath', p);
  }
  forward(x: Tensor): Tensor {
    return dropPath(x, this.p, { training: this.training, generator: this.generator });
  }
}

/** nn.MaxPool2d. @example new MaxPool2d(3, { stride: 2, padding: 1 }) */
export class MaxPool2d extends Module implements Layer {
  constructor(readonly kernelSize: Size2, readonly options: MaxPool2dOptions = {}) {
    super();
  }
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, this.options);
  }
}

/** nn.AdaptiveAvgPool2d. @example new AdaptiveAvgPool2d(1) */
export class AdaptiveAvgPool2d extends Module implements Layer {
  constructor(readonly outputSize: number | readonly [number | null, number | null]) {
    super();
  }
  forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x, this.outputSize);
  }
}
