// The fused KernelWarehouse convolution: one autograd op for conv(x, kwAssemble(α, cells)) + bias
// whose native forward and backward (native/cpu/kw_conv.cpp) never materialise the batch of
// per-sample kernels and keep only x, α and the cells for the backward.
import { record } from '../autograd';
import { ArgumentError, checkInt } from '../errors';
import { native } from '../native';
import { numelOf, Tensor } from '../tensor';
import type { ConvSize } from './conv';
import type { KWAssemblyGeometry } from './kw';
import { checkTensor, wrap } from './util';

export type KWConvStrategy = 'auto' | 'chunked' | 'inputMix' | 'panels' | 'winograd';
const STRATEGY_CODE: Record<KWConvStrategy, number> = { auto: 0, chunked: 1, inputMix: 2, panels: 3, winograd: 4 };

export interface KWConvOptions {
  stride?: ConvSize;
  /** Zeros on both sides of each spatial dim, or [...before, ...after] (2·dims entries). */
  padding?: ConvSize;
  dilation?: ConvSize;
  groups?: number;
  /**
   * 'chunked' assembles a few samples' kernels at a time; 'inputMix' (groups = 1) mixes the
   * input columns with α first, cheaper for few output positions; 'panels' (groups = 1, cell
   * rows and columns multiples of 32) assembles each sample's kernel 32 output channels at a
   * time into the panel a register-blocked GEMM reads; 'winograd' (3×3, stride 1, padding 1,
   * one cell per tap, cell rows and columns multiples of 32) does the same for the Winograd
   * F(2×2, 3×3) kernel, about half the multiply-adds at many output positions; 'auto' (default)
   * picks by cost. A requested strategy that does not apply runs 'chunked'.
   */
  strategy?: KWConvStrategy;
  /** At most this many samples blocked together (default: the kernels' own choice). A tuning and testing knob. */
  samplesPerChunk?: number;
}

function perDim(fn: string, param: string, v: ConvSize | undefined, n: number, dflt: number, min: number, pairs = false): number[] {
  const arr = v === undefined ? new Array<number>(n).fill(dflt) : typeof v === 'number' ? new Array<number>(n).fill(v) : v;
  if (!Array.isArray(arr) || !(arr.length === n || (pairs && arr.length === 2 * n)) ||
    !arr.every((d) => Number.isInteger(d) && d >= min && d <= 2 ** 31 - 1))
    throw new ArgumentError(fn, param, `an integer ≥ ${min} or an array of ${n}${pairs ? ` or ${2 * n}` : ''} such integers`, v);
  return [...arr];
}

interface Prepared {
  xShape: number[];
  dims: number[];
  kernel: number[];
  stride: number[];
  padding: number[];
  dilation: number[];
  groups: number;
  strategy: number;
  samplesPerChunk: number;
  outShape: number[];
}

function prepare(fn: string, x: Tensor, alpha: Tensor, cells: Tensor, bias: Tensor | null, geo: KWAssemblyGeometry,
  opts: KWConvOptions): Prepared {
  checkTensor(fn, 'x', x);
  checkTensor(fn, 'alpha', alpha);
  checkTensor(fn, 'cells', cells);
  if (bias !== null) checkTensor(fn, 'bias', bias);
  if (opts === null || typeof opts !== 'object') throw new ArgumentError(fn, 'opts', 'an options object', opts);
  if (geo === null || typeof geo !== 'object') throw new ArgumentError(fn, 'geometry', 'an assembly geometry object', geo);
  if (x.ndim < 3 || x.ndim > 5 || !x.shape.every((d) => d >= 1))
    throw new ArgumentError(fn, 'x', 'a [B, C, spatial...] tensor with 1 to 3 spatial dims, all positive', x);
  const nd = x.ndim - 2;
  if (cells.ndim < 3) throw new ArgumentError(fn, 'cells', 'a tensor [n, cellOut, cellIn, ...cellKernel]', cells);
  const gs = checkInt(fn, 'groupsSpatial', geo.groupsSpatial, 1);
  const goc = checkInt(fn, 'groupsOutChannel', geo.groupsOutChannel, 1);
  const gic = checkInt(fn, 'groupsInChannel', geo.groupsInChannel, 1);
  const m = gs * goc * gic;
  const [n, co, ci] = cells.shape;
  const ck = numelOf(cells.shape.slice(3));
  const kernel = geo.kernelSize;
  if (!Array.isArray(kernel) || kernel.length !== nd || !kernel.every((k) => Number.isInteger(k) && k >= 1))
    throw new ArgumentError(fn, 'kernelSize', `an array of ${nd} positive integers (one per spatial dim of x)`, kernel);
  if (numelOf(kernel) !== gs * ck)
    throw new ArgumentError(fn, 'kernelSize', `a kernel of ${gs}·${ck} = ${gs * ck} positions`, kernel);
  const B = x.shape[0];
  if (alpha.ndim !== 2 || alpha.shape[0] !== B * m || alpha.shape[1] !== n)
    throw new ArgumentError(fn, 'alpha', `a tensor [${B}·${m}, ${n}]`, alpha);
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new ArgumentError(fn, 'groups', 'a positive integer', groups);
  const C = x.shape[1], O = goc * co;
  if (C % groups !== 0 || O % groups !== 0)
    throw new ArgumentError(fn, 'groups', `a divisor of the ${C} input and ${O} output channels`, groups);
  if (C / groups !== gic * ci)
    throw new ArgumentError(fn, 'x', `${groups}·${gic}·${ci} = ${groups * gic * ci} channels (groups·gic·cellIn)`, x);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== O)) throw new ArgumentError(fn, 'bias', `of shape [${O}]`, bias);
  const stride = perDim(fn, 'stride', opts.stride, nd, 1, 1);
  const dilation = perDim(fn, 'dilation', opts.dilation, nd, 1, 1);
  const padding = perDim(fn, 'padding', opts.padding, nd, 0, 0, true);
  const strategyName = opts.strategy ?? 'auto';
  if (!(strategyName in STRATEGY_CODE)) throw new ArgumentError(fn, 'strategy', '"auto", "chunked", "inputMix", "panels" or "winograd"', strategyName);
  if (strategyName === 'inputMix' && groups !== 1) throw new ArgumentError(fn, 'strategy', '"auto" or "chunked" when groups > 1', strategyName);
  const samplesPerChunk = opts.samplesPerChunk === undefined ? 0 : checkInt(fn, 'samplesPerChunk', opts.samplesPerChunk, 1);
  const outShape = [B, O];
  for (let i = 0; i < nd; i++) {
    const lo = padding[i], hi = padding.length === nd ? padding[i] : padding[nd + i];
    const span = x.shape[2 + i] + lo + hi - dilation[i] * (kernel[i] - 1) - 1;
    if (span < 0)
      throw new ArgumentError(fn, 'x', `at least ${dilation[i] * (kernel[i] - 1) + 1 - lo - hi} long along spatial dim ${i}`, x);
    outShape.push(Math.floor(span / stride[i]) + 1);
  }
  return {
    xShape: [...x.shape], dims: [B, m, n, gs, goc, gic, co, ci, ck], kernel: [...kernel], stride, padding, dilation,
    groups, strategy: STRATEGY_CODE[strategyName], samplesPerChunk, outShape,
  };
}

/**
 * KernelWarehouse convolution: y = conv(x, W) + bias where sample b's kernel is
 * W_b = kwAssemble(α, cells)[b] [goc·co, gic·ci, ...kernelSize], computed without ever holding
 * the batch of kernels. Same result and gradients (x, alpha, cells, bias) as
 * convNd(x, kwAssemble(alpha, cells, geometry), bias, opts).
 * @example const y = kwConv(x, alpha, cells, null, { groupsSpatial: 9, groupsOutChannel: 1, groupsInChannel: 1, kernelSize: [3, 3] }, { padding: 1 });
 */
export function kwConv(x: Tensor, alpha: Tensor, cells: Tensor, bias: Tensor | null, geometry: KWAssemblyGeometry,
  opts: KWConvOptions = {}): Tensor {
  const fn = 'kwConv';
  const p = prepare(fn, x, alpha, cells, bias ?? null, geometry, opts);
  const args = [p.xShape, p.dims, p.kernel, p.stride, p.padding, p.dilation, p.groups, p.strategy, p.samplesPerChunk] as const;
  const y = wrap(native.kwConvForward(x.storage, alpha.storage, cells.storage, bias ? bias.storage : null, ...args),
    p.outShape);
  return record(fn, [x, alpha, cells, bias ?? null], y, [x, alpha, cells], (dy, [sx, sa, sc]) => {
    const [dx, da, dc, db] = native.kwConvBackward(dy.storage, sx.storage, sa.storage, sc.storage, ...args,
      x.requiresGrad, alpha.requiresGrad, cells.requiresGrad, !!bias && bias.requiresGrad);
    return [dx ? wrap(dx, x.shape) : null, da ? wrap(da, alpha.shape) : null, dc ? wrap(dc, cells.shape) : null,
      db ? wrap(db, [p.outShape[1]]) : null];
  });
}

/**
 * The strategy kwConv runs for these arguments ('chunked', 'inputMix', 'panels' or 'winograd'), by
 * its cost model when opts.strategy is 'auto'. A requested 'panels' or 'winograd' that does not
 * apply (groups > 1, cell rows or columns not multiples of 32; for 'winograd' also anything but
 * a 3×3, stride-1, padding-1 layer with one cell per tap) runs 'chunked'.
 * @example kwConvStrategy(x, alpha, cells, geometry, { padding: 1 }) // 'inputMix' for a 1×1-output layer
 */
export function kwConvStrategy(x: Tensor, alpha: Tensor, cells: Tensor, geometry: KWAssemblyGeometry,
  opts: KWConvOptions = {}): Exclude<KWConvStrategy, 'auto'> {
  const p = prepare('kwConvStrategy', x, alpha, cells, null, geometry, opts);
  const code = native.kwConvStrategy(p.xShape, p.dims, p.kernel, p.stride, p.padding, p.dilation, p.groups, p.strategy);
  return code === 2 ? 'inputMix' : code === 3 ? 'panels' : code >= 4 ? 'winograd' : 'chunked';
}
