// KernelWarehouse ops: the fused attention head and the cell assembly, each one autograd op
// over a native forward and backward (native/cpu/kw_attention.cpp, kw_assemble.cpp).
import { record } from '../autograd';
import { ArgumentError, checkInt, checkNumber } from '../errors';
import { native } from '../native';
import { numelOf, Tensor } from '../tensor';
import { checkTensor, wrap } from './util';

export type KWNormKind = 'batchnorm1d' | 'layernorm';

export interface KWAttentionParams {
  fc1Weight: Tensor;
  /** Present exactly when the norm is not BatchNorm1d (upstream's rule; any layout accepted here). */
  fc1Bias?: Tensor | null;
  normWeight: Tensor;
  normBias: Tensor;
  /** BatchNorm1d only: read in eval mode, updated in place in training mode. */
  runningMean?: Tensor | null;
  runningVar?: Tensor | null;
  fc2Weight: Tensor;
  /** Without the non-local basis. */
  fc2Bias?: Tensor | null;
  /** With the non-local basis: [n − numLocal, numBasis]. */
  fc3Weight?: Tensor | null;
  basisBias?: Tensor | null;
  /** [m·(n+1)]: the temperature one-hot rows (not a parameter). */
  tempBias: Tensor;
}

export interface KWAttentionOptions {
  /** m: kernel cells of the layer. */
  mixtures: number;
  /** n: cells of the warehouse. */
  cells: number;
  norm: KWNormKind;
  /** BatchNorm1d: batch statistics and running-stat update (true) or running statistics (false). */
  training: boolean;
  temperature: number;
  eps?: number;
  momentum?: number;
  /** The non-local basis path: local cells L, basis size K, and where the local block starts. */
  basis?: { numLocal: number; numBasis: number; start: number } | null;
}

const NORM_CODE = { batchnorm1d: [0, 1], layernorm: [2, 2] } as const;

/**
 * KernelWarehouse attention: mean over x's spatial dims → fc1 → norm → ReLU → fc2 (or the
 * basis map) → rows / (Σ|row| + 1e-3) → (1 − τ)·row + τ·tempBias → drop the zero slot.
 * Returns α of shape [B·m, n].
 * @example const alpha = kwAttention(x, params, { mixtures: 9, cells: 36, norm: 'batchnorm1d', training: true, temperature: 1 });
 */
export function kwAttention(x: Tensor, p: KWAttentionParams, o: KWAttentionOptions): Tensor {
  const fn = 'kwAttention';
  checkTensor(fn, 'x', x);
  if (x.ndim < 2) throw new ArgumentError(fn, 'x', 'a tensor [batch, channels, ...spatial]', x);
  const [B, C] = x.shape;
  const S = numelOf(x.shape.slice(2));
  const m = checkInt(fn, 'mixtures', o.mixtures, 1);
  const n = checkInt(fn, 'cells', o.cells, 1);
  const temperature = checkNumber(fn, 'temperature', o.temperature);
  const eps = checkNumber(fn, 'eps', o.eps ?? 1e-5);
  const momentum = checkNumber(fn, 'momentum', o.momentum ?? 0.1);
  if (!(o.norm in NORM_CODE)) throw new ArgumentError(fn, 'norm', '"batchnorm1d" or "layernorm"', o.norm);
  const norm = NORM_CODE[o.norm][o.training ? 0 : 1];
  checkTensor(fn, 'fc1Weight', p.fc1Weight);
  if (p.fc1Weight.ndim !== 2 || p.fc1Weight.shape[1] !== C)
    throw new ArgumentError(fn, 'fc1Weight', `[hidden, ${C}]`, p.fc1Weight);
  const H = p.fc1Weight.shape[0];
  const basis = o.basis ?? null;
  const L = basis ? checkInt(fn, 'basis.numLocal', basis.numLocal, 0, n) : 0;
  const K = basis ? checkInt(fn, 'basis.numBasis', basis.numBasis, 1) : 0;
  const start = basis ? checkInt(fn, 'basis.start', basis.start, 0) : 0;
  const P = m * (n + 1);
  const fc2Out = basis ? (L + K + 1) * m : P;
  const shapeOf = (name: string, t: Tensor | null | undefined, shape: number[], wanted: boolean | null): void => {
    if (t === null || t === undefined) {
      if (wanted) throw new ArgumentError(fn, name, `a tensor [${shape.join(', ')}]`, t);
      return;
    }
    checkTensor(fn, name, t);
    if (wanted === false) throw new ArgumentError(fn, name, 'null for this layout', t);
    if (t.shape.join() !== shape.join()) throw new ArgumentError(fn, name, `a tensor [${shape.join(', ')}]`, t);
  };
  const bn = o.norm === 'batchnorm1d';
  shapeOf('fc1Bias', p.fc1Bias, [H], null);
  shapeOf('normWeight', p.normWeight, [H], true);
  shapeOf('normBias', p.normBias, [H], true);
  shapeOf('runningMean', p.runningMean, [H], bn);
  shapeOf('runningVar', p.runningVar, [H], bn);
  shapeOf('fc2Weight', p.fc2Weight, [fc2Out, H], true);
  shapeOf('fc2Bias', p.fc2Bias, [P], !basis);
  shapeOf('fc3Weight', p.fc3Weight, [n - L, K], !!basis);
  shapeOf('basisBias', p.basisBias, [P], !!basis);
  shapeOf('tempBias', p.tempBias, [P], true);
  if (bn && o.training && B < 2)
    throw new ArgumentError(fn, 'x', 'more than 1 sample per batch for BatchNorm1d in training mode', x);

  const dims = [B, C, S, H, m, n, norm, L, K, start];
  const st = (t: Tensor | null | undefined) => (t ? t.storage : null);
  const [a, w] = native.kwAttentionForward(
    x.storage, dims, temperature, eps, momentum, p.fc1Weight.storage, st(p.fc1Bias), p.normWeight.storage,
    p.normBias.storage, st(p.runningMean), st(p.runningVar), p.fc2Weight.storage, st(p.fc2Bias), st(p.fc3Weight),
    st(p.basisBias), p.tempBias.storage);
  const alpha = wrap(a, [B * m, n]);
  const workspace = wrap(w, [native.storageInfo(w).numel]);
  const inputs = [x, p.fc1Weight, p.fc1Bias ?? null, p.normWeight, p.normBias, p.fc2Weight, p.fc2Bias ?? null,
    p.fc3Weight ?? null, p.basisBias ?? null];
  const kept = [p.fc1Weight, p.fc1Bias, p.normWeight, p.normBias, p.fc2Weight, p.fc2Bias, p.fc3Weight, p.basisBias];
  const present = kept.map((t) => !!t);
  const saved = [workspace, ...(kept.filter((t) => !!t) as Tensor[])];
  const out = record('kwAttention', inputs, alpha, saved, (dy, s) => {
    const params: (Tensor | null)[] = [];
    let k = 1;
    for (const has of present) params.push(has ? s[k++] : null);
    const [f1w, f1b, nw, nb, f2w, f2b, f3w, bb] = params.map((t) => (t ? t.storage : null));
    const grads = native.kwAttentionBackward(dy.storage, s[0].storage, dims, temperature, eps, momentum,
      f1w!, f1b, nw!, nb!, f2w!, f2b, f3w, bb);
    // Gradients of inputs that need none are disposed by backward().
    return grads.map((g, i) => (g ? wrap(g, inputs[i]!.shape) : null));
  });
  workspace.dispose();
  return out;
}

export interface KWAssemblyGeometry {
  /** m = groupsSpatial · groupsOutChannel · groupsInChannel. */
  groupsSpatial: number;
  groupsOutChannel: number;
  groupsInChannel: number;
  /** The layer's kernel size; its product is groupsSpatial · Π cell kernel. */
  kernelSize: readonly number[];
}

/**
 * Assembles per-sample kernels from attentions α [B·m, n] and warehouse cells
 * [n, co, ci, ...cellKernel]: W[b] = α_b·E written in the kernel layout
 * [B, goc·co, gic·ci, ...kernelSize] (upstream's permute (0,2,4,3,5,1,6,...)).
 * @example const w = kwAssemble(alpha, cells, { groupsSpatial: 9, groupsOutChannel: 1, groupsInChannel: 1, kernelSize: [3, 3] });
 */
export function kwAssemble(alpha: Tensor, cells: Tensor, g: KWAssemblyGeometry): Tensor {
  const fn = 'kwAssemble';
  checkTensor(fn, 'alpha', alpha);
  checkTensor(fn, 'cells', cells);
  if (cells.ndim < 3) throw new ArgumentError(fn, 'cells', 'a tensor [n, cellOut, cellIn, ...cellKernel]', cells);
  const gs = checkInt(fn, 'groupsSpatial', g.groupsSpatial, 1);
  const goc = checkInt(fn, 'groupsOutChannel', g.groupsOutChannel, 1);
  const gic = checkInt(fn, 'groupsInChannel', g.groupsInChannel, 1);
  const m = gs * goc * gic;
  const [n, co, ci] = cells.shape;
  const ck = numelOf(cells.shape.slice(3));
  if (!Array.isArray(g.kernelSize) || !g.kernelSize.every((k) => Number.isInteger(k) && k >= 1))
    throw new ArgumentError(fn, 'kernelSize', 'an array of positive integers', g.kernelSize);
  if (numelOf(g.kernelSize) !== gs * ck)
    throw new ArgumentError(fn, 'kernelSize', `a kernel of ${gs}·${ck} = ${gs * ck} positions`, g.kernelSize);
  if (alpha.ndim !== 2 || alpha.shape[1] !== n || alpha.shape[0] % m !== 0 || alpha.shape[0] === 0)
    throw new ArgumentError(fn, 'alpha', `a tensor [batch·${m}, ${n}]`, alpha);
  const B = alpha.shape[0] / m;
  const dims = [B, m, n, gs, goc, gic, co, ci, ck];
  const shape = [B, goc * co, gic * ci, ...g.kernelSize];
  const w = wrap(native.kwAssemble(alpha.storage, cells.storage, dims), shape);
  return record('kwAssemble', [alpha, cells], w, [alpha, cells], (dy, [sa, sc]) => {
    const [da, dc] = native.kwAssembleBackward(dy.storage, sa.storage, sc.storage, dims, alpha.requiresGrad,
      cells.requiresGrad);
    return [da ? wrap(da, alpha.shape) : null, dc ? wrap(dc, cells.shape) : null];
  });
}
