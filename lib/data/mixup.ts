// Mixup and CutMix with label smoothing, with timm's semantics (Mixup in 'batch' mode): one
// λ per batch, the batch mixed with its own reverse, targets mixed the same way. Runs on the
// loader's worker threads over the float batch; randomness comes from the batch's own seed.

export interface MixupSpec {
  mixupAlpha: number;
  cutmixAlpha: number;
  /** Probability that a batch is mixed at all. */
  prob: number;
  /** Probability of CutMix instead of Mixup when both are enabled. */
  switchProb: number;
  labelSmoothing: number;
  numClasses: number;
}

export function mixupActive(m: MixupSpec | null | undefined): m is MixupSpec {
  return !!m && (m.mixupAlpha > 0 || m.cutmixAlpha > 0);
}

/** A standard normal from two uniforms (Box-Muller). */
function normal(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** Gamma(shape, 1) by Marsaglia-Tsang (with the boost for shape < 1). */
function gamma(shape: number, rand: () => number): number {
  if (shape < 1) return gamma(shape + 1, rand) * Math.pow(rand(), 1 / shape);
  const d = shape - 1 / 3, c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number, v: number;
    do {
      x = normal(rand);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rand();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

export function beta(a: number, b: number, rand: () => number): number {
  const x = gamma(a, rand), y = gamma(b, rand);
  return x / (x + y);
}

/**
 * Mixes x ([B, C, H, W] floats) in place and returns soft targets [B, numClasses].
 * B must be even (as timm requires).
 */
export function mixBatch(x: Float32Array, shape: [number, number, number, number], labels: Int32Array, spec: MixupSpec, rand: () => number): Float32Array {
  const [B, C, H, W] = shape;
  if (B % 2 !== 0) throw new Error(`mixup/cutmix needs an even batch size, got ${B}`);
  let lam = 1;
  let cutmix = false;
  if (rand() < spec.prob) {
    if (spec.mixupAlpha > 0 && spec.cutmixAlpha > 0) {
      cutmix = rand() < spec.switchProb;
      lam = cutmix ? beta(spec.cutmixAlpha, spec.cutmixAlpha, rand) : beta(spec.mixupAlpha, spec.mixupAlpha, rand);
    } else if (spec.mixupAlpha > 0) lam = beta(spec.mixupAlpha, spec.mixupAlpha, rand);
    else {
      cutmix = true;
      lam = beta(spec.cutmixAlpha, spec.cutmixAlpha, rand);
    }
  }
  const per = C * H * W;
  if (lam !== 1) {
    const src = x.slice(); // the reversed batch reads the unmixed images
    if (cutmix) {
      // rand_bbox with margin 0, then lam corrected to the clipped box area
      const ratio = Math.sqrt(1 - lam);
      const cutH = Math.floor(H * ratio), cutW = Math.floor(W * ratio);
      const cy = Math.floor(rand() * H), cx = Math.floor(rand() * W);
      const clip = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
      const yl = clip(cy - Math.floor(cutH / 2), H), yh = clip(cy + Math.floor(cutH / 2), H);
      const xl = clip(cx - Math.floor(cutW / 2), W), xh = clip(cx + Math.floor(cutW / 2), W);
      for (let b = 0; b < B; b++) {
        const o = b * per, r = (B - 1 - b) * per;
        for (let c = 0; c < C; c++)
          for (let y = yl; y < yh; y++)
            for (let xx = xl; xx < xh; xx++) x[o + (c * H + y) * W + xx] = src[r + (c * H + y) * W + xx];
      }
      lam = 1 - ((yh - yl) * (xh - xl)) / (H * W);
    } else {
      for (let b = 0; b < B; b++) {
        const o = b * per, r = (B - 1 - b) * per;
        for (let i = 0; i < per; i++) x[o + i] = x[o + i] * lam + src[r + i] * (1 - lam);
      }
    }
  }
  const K = spec.numClasses;
  const off = spec.labelSmoothing / K, on = 1 - spec.labelSmoothing + off;
  const y = new Float32Array(B * K);
  for (let b = 0; b < B; b++) {
    const row = y.subarray(b * K, (b + 1) * K);
    row.fill(off);
    row[labels[b]] += (on - off) * lam;
    row[labels[B - 1 - b]] += (on - off) * (1 - lam);
    // off·lam + off·(1-lam) = off for every other class, as timm's y1·lam + y2·(1-lam)
  }
  return y;
}
