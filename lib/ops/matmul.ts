// Matrix products: matmul (2-D and batched with broadcast batch dims) and linear.
import { record } from '../autograd';
import { native } from '../native';
import { numelOf, Tensor } from '../tensor';
import { add } from './elementwise';
import { sumToShape } from './reduce';
import { checkTensor, wrap } from './util';

/** Raw C = op(A)·op(B) on [batch, ., .] operands (batch 1 broadcasts); no autograd. */
function bmmRaw(a: Tensor, ba: number, b: Tensor, bb: number, M: number, N: number, K: number, ta: boolean, tb: boolean, outShape: number[]): Tensor {
  return wrap(native.bmm(a.storage, b.storage, ba, bb, M, N, K, ta, tb), outShape);
}

/**
 * Matrix product. 2-D: [M, K]·[K, N] → [M, N]. N-D: leading dimensions are batch dimensions,
 * broadcast when one side has a single batch (or is 2-D).
 * @example matmul(randn([8, 3, 4]), randn([4, 5])) // [8, 3, 5]
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  checkTensor('matmul', 'a', a);
  checkTensor('matmul', 'b', b);
  if (a.ndim < 2 || b.ndim < 2) throw new Error(`matmul: both operands need at least 2 dimensions, got [${a.shape}] and [${b.shape}]`);
  const [M, K] = a.shape.slice(-2);
  const [K2, N] = b.shape.slice(-2);
  if (K !== K2) throw new Error(`matmul: inner dimensions differ: [${a.shape.join(', ')}] · [${b.shape.join(', ')}]`);
  const batchA = a.shape.slice(0, -2), batchB = b.shape.slice(0, -2);
  const ba = numelOf(batchA), bb = numelOf(batchB);
  if (ba !== bb && ba !== 1 && bb !== 1)
    throw new Error(`matmul: batch dimensions [${batchA}] and [${batchB}] do not broadcast (one side must have a single batch)`);
  const batchShape = ba >= bb ? batchA : batchB;
  const out = bmmRaw(a, ba, b, bb, M, N, K, false, false, [...batchShape, M, N]);
  return record('matmul', [a, b], out, [a, b], (dy, [sa, sb]) => {
    const batch = Math.max(ba, bb);
    // A broadcast operand gets the sum of its per-batch gradients.
    const toShape = (full: Tensor, n: number, shape: readonly number[]): Tensor => {
      const g = n === batch ? full.share(shape) : sumToShape(full, [1, ...full.shape.slice(1)]);
      const r = g.share(shape);
      g.dispose();
      full.dispose();
      return r;
    };
    return [
      a.requiresGrad ? toShape(bmmRaw(dy, batch, sb, bb, M, K, N, false, true, [batch, M, K]), ba, a.shape) : null, // dA = dY·Bᵀ
      b.requiresGrad ? toShape(bmmRaw(sa, ba, dy, batch, K, N, M, true, false, [batch, K, N]), bb, b.shape) : null, // dB = Aᵀ·dY
    ];
  });
}

/**
 * y = x·Wᵀ + b over the last dimension of x (PyTorch's F.linear layout: W is [out, in]).
 * @example linear(x, weight, bias) // x [B, in] → [B, out]
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  checkTensor('linear', 'x', x);
  checkTensor('linear', 'weight', weight);
  if (weight.ndim !== 2) throw new Error(`linear: weight must be [out, in], got [${weight.shape}]`);
  const [O, I] = weight.shape;
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== I)
    throw new Error(`linear: input's last dimension must be ${I}, got shape [${x.shape.join(', ')}]`);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== O)) throw new Error(`linear: bias must be [${O}], got [${bias.shape}]`);
  const rows = x.numel / I;
  const outShape = [...x.shape.slice(0, -1), O];
  const y = bmmRaw(x, 1, weight, 1, rows, O, I, false, true, outShape);
  const out = record('linear', [x, weight], y, [x, weight], (dy, [sx, sw]) => [
    x.requiresGrad ? bmmRaw(dy, 1, sw, 1, rows, I, O, false, false, [...x.shape]) : null,
    weight.requiresGrad ? bmmRaw(dy, 1, sx, 1, O, I, rows, true, false, [O, I]) : null,
  ]);
  if (!bias) return out;
  const biased = add(out, bias);
  out.dispose(); // the graph holds what it needs; without this the product lived until GC
  return biased;
}
