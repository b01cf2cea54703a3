// Seedable random tensors. A Generator is (seed, offset): each draw of n numbers uses the
// counters [offset, offset + n) and advances the offset, so a run is reproducible from the
// seed alone, for any thread count.
import { checkInt, checkShape } from './errors';
import { native } from './native';
import { Device, numelOf, Tensor } from './tensor';

export class Generator {
  constructor(public seed = 0, public offset = 0) {
    checkInt('Generator', 'seed', seed, 0, Number.MAX_SAFE_INTEGER);
  }
  /** Reserves n counters and returns the first. */
  take(n: number): number {
    const o = this.offset;
    this.offset += n;
    if (this.offset > Number.MAX_SAFE_INTEGER) this.offset = 0;
    return o;
  }
  state(): { seed: number; offset: number } {
    return { seed: this.seed, offset: this.offset };
  }
  setState(s: { seed: number; offset: number }): void {
    this.seed = s.seed;
    this.offset = s.offset;
  }
}

export const defaultGenerator = new Generator(0);

/** Re-seeds the default generator. */
export function manualSeed(seed: number): void {
  checkInt('manualSeed', 'seed', seed, 0, Number.MAX_SAFE_INTEGER);
  defaultGenerator.seed = seed;
  defaultGenerator.offset = 0;
}

export interface RandomOptions {
  generator?: Generator;
  /** Where to draw (default cpu): the same counter-based stream on either device. */
  device?: Device;
}

/** Uniform in [low, high). @example const u = rand([2, 3]); */
export function rand(shape: readonly number[], opts: RandomOptions & { low?: number; high?: number } = {}): Tensor {
  const s = checkShape('rand', 'shape', [...shape]);
  const g = opts.generator ?? defaultGenerator;
  const n = numelOf(s);
  return new Tensor(native.uniform(n, g.seed, g.take(n), opts.low ?? 0, opts.high ?? 1, opts.device), s);
}

/** Normal with the given mean and std. @example const w = randn([64, 3, 3, 3], { std: 0.1 }); */
export function randn(shape: readonly number[], opts: RandomOptions & { mean?: number; std?: number } = {}): Tensor {
  const s = checkShape('randn', 'shape', [...shape]);
  const g = opts.generator ?? defaultGenerator;
  const n = numelOf(s);
  return new Tensor(native.normal(n, g.seed, g.take(n), opts.mean ?? 0, opts.std ?? 1, opts.device), s);
}

/** 1 with probability p, else 0. */
export function bernoulli(shape: readonly number[], p: number, opts: RandomOptions = {}): Tensor {
  const s = checkShape('bernoulli', 'shape', [...shape]);
  const g = opts.generator ?? defaultGenerator;
  const n = numelOf(s);
  return new Tensor(native.bernoulli(n, g.seed, g.take(n), p, opts.device), s);
}
