// Finite-difference gradient checking for ops. The loss is L = Σ f(inputs) · W with a fixed
// random W, accumulated in float64 in JS; analytic gradients come from backward().
import { Tensor, tensor, noGrad, sum, mul } from '../../lib';

export interface GradcheckOptions {
  eps?: number;
  rtol?: number;
  atol?: number;
  /** Indices of inputs to check (default: all float inputs). */
  check?: number[];
  /** Max elements probed per input (spread evenly), to bound test time. */
  maxProbes?: number;
}

// mulberry32: nearby seeds give unrelated streams (a plain LCG would not).
function lcg(seed: number): () => number {
  let s = (seed * 0x9e3779b9) >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random float32 data in [-1, 1) from a seed (test inputs, independent of the library's RNG). */
export function randomData(shape: number[], seed: number, scale = 1): Float32Array {
  const r = lcg(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

export function randomTensor(shape: number[], seed: number, scale = 1): Tensor {
  return tensor(randomData(shape, seed, scale), shape);
}

function weightedSum(out: Tensor, w: Float32Array): number {
  const d = out.data() as Float32Array;
  let acc = 0;
  for (let i = 0; i < d.length; i++) acc += d[i] * w[i];
  return acc;
}

export interface GradcheckResult {
  maxAbsErr: number;
  maxRelErr: number;
  worst: string;
  ok: boolean;
}

export function gradcheck(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradcheckOptions = {}): GradcheckResult {
  const eps = opts.eps ?? 1e-2;
  const rtol = opts.rtol ?? 2e-2;
  const atol = opts.atol ?? 2e-3;
  const check = opts.check ?? inputs.map((_, i) => i).filter((i) => inputs[i].dtype === 'float32');
  const leaves = inputs.map((x) => {
    const t = tensor(x.data(), [...x.shape], x.dtype);
    t.requiresGrad = check.includes(inputs.indexOf(x));
    return t;
  });
  const probe = f(...leaves);
  const w = randomData([...probe.shape], 12345);
  const wt = tensor(w, [...probe.shape]);
  const loss = sum(mul(probe, wt));
  loss.backward();
  let maxAbsErr = 0, maxRelErr = 0, worst = '';
  let ok = true;
  for (const i of check) {
    const analytic = leaves[i].grad!.data() as Float32Array;
    const base = leaves[i].data() as Float32Array;
    const n = base.length;
    const probes = Math.min(n, opts.maxProbes ?? 64);
    for (let p = 0; p < probes; p++) {
      const j = Math.floor((p * n) / probes);
      const eval1 = (delta: number): number => {
        const d = new Float32Array(base);
        d[j] += delta;
        const xs = leaves.map((l, k) => (k === i ? tensor(d, [...l.shape]) : l));
        return noGrad(() => {
          const out = f(...xs);
          const v = weightedSum(out, w);
          out.dispose();
          xs[i].dispose();
          return v;
        });
      };
      const numeric = (eval1(eps) - eval1(-eps)) / (2 * eps);
      const err = Math.abs(numeric - analytic[j]);
      const rel = err / Math.max(Math.abs(numeric), Math.abs(analytic[j]), 1e-6);
      if (err > maxAbsErr) { maxAbsErr = err; worst = `input ${i} element ${j}: numeric ${numeric} analytic ${analytic[j]}`; }
      if (err > atol) maxRelErr = Math.max(maxRelErr, rel);
      if (err > atol + rtol * Math.abs(numeric)) ok = false;
    }
  }
  for (const l of leaves) { l.grad?.dispose(); l.dispose(); }
  probe.dispose(); wt.dispose(); loss.dispose();
  return { maxAbsErr, maxRelErr, worst, ok };
}

/** max |a - b| over two arrays of equal length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
