// Reference KernelWarehouse attention and assembly composed of the library's basic ops
// (linear, mean, abs, concat, permute, ...), written from upstream's forward line by line:
// the fused native kernels are checked against these, forward and backward.
import {
  Tensor, abs, add, addScalar, concat, div, linear, matmul, mean, mul, mulScalar, noGrad, permute,
  relu, reshape, slice, sqrt, square, sub, sum, transpose,
} from '../../lib';
import type { KWAttentionOptions, KWAttentionParams, KWAssemblyGeometry } from '../../lib';

export interface ReferenceAttention {
  alpha: Tensor;
  /** Running statistics after a BatchNorm1d training step (null otherwise). */
  runningMean: Float32Array | null;
  runningVar: Float32Array | null;
}

export function referenceAttention(x: Tensor, p: KWAttentionParams, o: KWAttentionOptions): ReferenceAttention {
  const B = x.shape[0], C = x.shape[1];
  const m = o.mixtures, n = o.cells, P = n + 1;
  const eps = o.eps ?? 1e-5, mom = o.momentum ?? 0.1, tau = o.temperature;
  const pooled = mean(reshape(x, [B, C, -1]), 2);
  const h = linear(pooled, p.fc1Weight, p.fc1Bias ?? null);
  let xhat: Tensor;
  let runningMean: Float32Array | null = null, runningVar: Float32Array | null = null;
  if (o.norm === 'layernorm') {
    const mu = mean(h, 1, { keepDims: true });
    const c = sub(h, mu);
    xhat = div(c, sqrt(addScalar(mean(square(c), 1, { keepDims: true }), eps)));
  } else if (o.training) {
    const mu = mean(h, 0, { keepDims: true });
    const c = sub(h, mu);
    const v = mean(square(c), 0, { keepDims: true });
    xhat = div(c, sqrt(addScalar(v, eps)));
    const rm = p.runningMean!.data() as Float32Array, rv = p.runningVar!.data() as Float32Array;
    const mu1 = mu.data() as Float32Array, v1 = v.data() as Float32Array;
    runningMean = rm.map((r, j) => (1 - mom) * r + mom * mu1[j]);
    runningVar = rv.map((r, j) => (1 - mom) * r + mom * v1[j] * B / (B - 1));
  } else {
    xhat = div(sub(h, p.runningMean!), sqrt(addScalar(p.runningVar!, eps)));
  }
  const a = relu(add(mul(xhat, p.normWeight), p.normBias));
  const f = linear(a, p.fc2Weight, p.fc2Bias ?? null);
  let z: Tensor;
  if (o.basis) {
    const { numLocal: L, numBasis: K, start } = o.basis;
    const f2 = reshape(f, [B * m, L + K + 1]);
    const local = slice(f2, 1, 0, L), nonlocal = slice(f2, 1, L, L + K), zero = slice(f2, 1, L + K);
    const nl = matmul(nonlocal, transpose(p.fc3Weight!, 0, 1));
    const st = Math.min(start, n - L);
    const joined = concat([slice(nl, 1, 0, st), local, slice(nl, 1, st), zero], 1);
    z = reshape(add(reshape(joined, [B, m * P]), p.basisBias!), [B * m, P]);
  } else {
    z = reshape(f, [B * m, P]);
  }
  const q = div(z, addScalar(sum(abs(z), 1, { keepDims: true }), 1e-3));
  const mixed = add(mulScalar(reshape(q, [B, m * P]), 1 - tau), mulScalar(p.tempBias, tau));
  return { alpha: slice(reshape(mixed, [B * m, P]), 1, 0, n), runningMean, runningVar };
}

export function referenceAssemble(alpha: Tensor, cells: Tensor, g: KWAssemblyGeometry): Tensor {
  const [n, co, ci] = cells.shape;
  const ck = cells.shape.slice(3);
  const m = g.groupsSpatial * g.groupsOutChannel * g.groupsInChannel;
  const B = alpha.shape[0] / m;
  const w = matmul(alpha, reshape(cells, [n, -1]));
  const grid = reshape(w, [B, g.groupsSpatial, g.groupsOutChannel, g.groupsInChannel, co, ci, ...ck]);
  const perm = [0, 2, 4, 3, 5, 1, ...ck.map((_, d) => 6 + d)];
  return reshape(permute(grid, perm), [B, g.groupsOutChannel * co, g.groupsInChannel * ci, ...g.kernelSize]);
}

export { noGrad };
