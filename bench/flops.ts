// FLOP count of one forward pass, from the shapes a real forward sees: every Conv/Linear/KW layer's
// forward is wrapped for one call and its output shape recorded. A multiply-add counts 2 FLOPs.
// KW layers add their kernel assembly, 2·m·n·cell per sample (α [m, n] times E [n, cell]), and
// their attention head's fc layers. Norms, activations and pooling are left out (memory-bound,
// a few % of the total). A training step counts 3× the forward (forward, dX, dW).
import * as kw from '../lib';
import { KWConvNd } from '../lib/kw/layers';
import { ConvNd, Linear } from '../lib/nn/layers';

export interface FlopCount {
  /** Per sample, GFLOP: convolutions and linear layers (KW convolutions with their assembled kernels). */
  conv: number;
  /** Per sample, GFLOP: KW kernel assembly α·E. */
  assembly: number;
  /** Per sample, GFLOP: KW attention heads (fc1, fc2, fc3). */
  attention: number;
  /** conv + assembly + attention. */
  forward: number;
}

const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

/** Counts one eval-mode forward of `net` on `x` (per sample); leaves the model as it was. */
export function countFlops(net: kw.Module, x: kw.Tensor): FlopCount {
  let conv = 0, assembly = 0, attention = 0;
  const restore: (() => void)[] = [];
  const hook = (m: kw.Module, count: (x: kw.Tensor, y: kw.Tensor) => void): void => {
    const layer = m as kw.Module & { forward(x: kw.Tensor): kw.Tensor };
    const own = Object.prototype.hasOwnProperty.call(layer, 'forward');
    const orig = layer.forward;
    layer.forward = (input: kw.Tensor): kw.Tensor => {
      const y = orig.call(layer, input);
      count(input, y);
      return y;
    };
    restore.push(() => {
      if (own) layer.forward = orig;
      else delete (layer as Partial<typeof layer>).forward;
    });
  };
  for (const m of net.modules()) {
    if (m instanceof KWConvNd) {
      hook(m, (_x, y) => {
        const p = m.plan;
        const B = y.shape[0];
        conv += 2 * prod(y.shape) * prod(p.weightShape.slice(1));
        assembly += 2 * B * p.attention.numMixtures * p.attention.numCells * prod(p.cellShape.slice(1));
        const a = p.attention;
        const fc2Out = a.basis ? a.basis.fc2Out : a.kwPlanes;
        const fc3 = a.basis ? a.numMixtures * a.basis.numBasis * a.basis.numNonlocalCell : 0;
        attention += 2 * B * (a.inPlanes * a.hiddenPlanes + a.hiddenPlanes * fc2Out + fc3);
      });
    } else if (m instanceof ConvNd) {
      hook(m, (_x, y) => {
        conv += 2 * prod(y.shape) * prod(m.weight.shape.slice(1));
      });
    } else if (m instanceof Linear) {
      hook(m, (_x, y) => {
        conv += 2 * prod(y.shape) * m.inFeatures;
      });
    }
  }
  const wasTraining = net.training;
  try {
    net.eval();
    kw.noGrad(() => (net as kw.Module & { forward(x: kw.Tensor): kw.Tensor }).forward(x).dispose());
  } finally {
    for (const r of restore) r();
    net.train(wasTraining);
  }
  const B = x.shape[0];
  const g = (f: number) => f / B / 1e9;
  return { conv: g(conv), assembly: g(assembly), attention: g(attention), forward: g(conv + assembly + attention) };
}
