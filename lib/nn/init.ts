// In-place initialisers with torch.nn.init's names and formulas (kaiming_normal_, normal_,
// trunc_normal_, constant_), writing into a parameter's own storage so the module keeps the
// same tensor. They draw from lib/random (the default generator unless one is given).
//
//   kaimingNormal_(conv.weight, { mode: 'fan_out' });   // std = √2 / √fan_out
//   truncNormal_(head.weight, { std: 0.02 });
import { ArgumentError } from '../errors';
import { native } from '../native';
import { Generator, randn } from '../random';
import { full, Tensor, tensor } from '../tensor';
import { copyInto } from './module';

/** PyTorch's _calculate_fan_in_and_fan_out: dims 1 and 0 times the receptive field. */
export function fans(t: Tensor): { fanIn: number; fanOut: number } {
  if (t.ndim < 2) throw new ArgumentError('fans', 't', 'a tensor with at least 2 dims', t);
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: t.shape[1] * receptive, fanOut: t.shape[0] * receptive };
}

/** Fills t with value. */
export function constant_(t: Tensor, value: number): Tensor {
  const v = full(t.shape, value);
  copyInto(t, v);
  v.dispose();
  return t;
}

/** N(mean, std²). */
export function normal_(t: Tensor, opts: { mean?: number; std?: number; generator?: Generator } = {}): Tensor {
  const v = randn(t.shape, { mean: opts.mean ?? 0, std: opts.std ?? 1, generator: opts.generator });
  copyInto(t, v);
  v.dispose();
  return t;
}

/**
 * kaiming_normal_ with nonlinearity 'relu' (or 'leaky_relu' with a = 0, the same gain √2):
 * N(0, 2 / fan), fan = fan_in or fan_out.
 */
export function kaimingNormal_(t: Tensor, opts: { mode?: 'fan_in' | 'fan_out'; generator?: Generator } = {}): Tensor {
  const mode = opts.mode ?? 'fan_in';
  const f = fans(t);
  const fan = mode === 'fan_out' ? f.fanOut : f.fanIn;
  return normal_(t, { std: fan > 0 ? Math.sqrt(2 / fan) : 0, generator: opts.generator });
}

/**
 * timm's trunc_normal_: N(mean, std²) restricted to [a, b] (absolute bounds, default ±2);
 * values outside are redrawn until they fall inside.
 */
export function truncNormal_(t: Tensor, opts: { mean?: number; std?: number; a?: number; b?: number; generator?: Generator } = {}): Tensor {
  const mean = opts.mean ?? 0, std = opts.std ?? 1, a = opts.a ?? -2, b = opts.b ?? 2;
  if (!(a < b)) throw new ArgumentError('truncNormal_', 'b', `a bound above a = ${a}`, b);
  if (!(mean + 8 * std > a && mean - 8 * std < b))
    throw new ArgumentError('truncNormal_', 'mean', `within 8 std of [${a}, ${b}] (redrawing would not end)`, mean);
  const first = randn(t.shape, { mean, std, generator: opts.generator });
  const data = first.data() as Float32Array;
  first.dispose();
  let outside = data.reduce<number[]>((acc, v, i) => (v < a || v > b ? (acc.push(i), acc) : acc), []);
  while (outside.length > 0) {
    const redraw = randn([outside.length], { mean, std, generator: opts.generator });
    const r = redraw.data() as Float32Array;
    redraw.dispose();
    outside = outside.filter((idx, k) => {
      data[idx] = r[k];
      return r[k] < a || r[k] > b;
    });
  }
  const v = tensor(data, [...t.shape]);
  copyInto(t, v);
  v.dispose();
  return t;
}

/** Multiplies t by s in place (head.weight.data.mul_(head_init_scale)). */
export function scale_(t: Tensor, s: number): Tensor {
  const v = new Tensor(native.affine(t.storage, s, 0), t.shape, 'float32', false);
  copyInto(t, v);
  v.dispose();
  return t;
}
