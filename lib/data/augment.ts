// Per-sample transforms on uint8 CHW images, run on data-loader worker threads. Each sample's
// randomness comes from (seed, epoch, index), so a batch is the same for any worker count and
// a resumed run sees the same augmentations as an uninterrupted one.

export interface AugmentSpec {
  /** Output side length (square crops). */
  size: number;
  /** Random crop with this zero padding (the small-input recipe uses 4); 0 = center. */
  padding: number;
  /** Probability of a horizontal flip. */
  flip: number;
  mean: number[];
  std: number[];
}

/** A small deterministic generator (mulberry32) keyed by seed, epoch and sample index. */
export function sampleRng(seed: number, epoch: number, index: number): () => number {
  let s = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(epoch + 1, 0xc2b2ae35) ^ Math.imul(index + 1, 0x27d4eb2f)) >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Writes one sample, normalised, into out[offset .. offset + C·size·size): a crop of the
 * zero-padded image at a random (train) or centred (eval) position, optionally flipped.
 */
export function augmentInto(src: Uint8Array, c: number, h: number, w: number, spec: AugmentSpec, rng: (() => number) | null, out: Float32Array, offset: number): void {
  const { size, padding } = spec;
  const ph = h + 2 * padding, pw = w + 2 * padding;
  let top: number, left: number, flip = false;
  if (rng) {
    top = Math.floor(rng() * (ph - size + 1));
    left = Math.floor(rng() * (pw - size + 1));
    flip = rng() < spec.flip;
  } else {
    top = Math.floor((ph - size) / 2);
    left = Math.floor((pw - size) / 2);
  }
  for (let ch = 0; ch < c; ch++) {
    const scale = 1 / (255 * spec.std[ch]);
    const shift = -spec.mean[ch] / spec.std[ch];
    const zero = shift; // a padded pixel is 0 before normalisation
    for (let y = 0; y < size; y++) {
      const sy = top + y - padding;
      const row = offset + (ch * size + y) * size;
      for (let x = 0; x < size; x++) {
        const sx = (flip ? size - 1 - x : x) + left - padding;
        out[row + x] = sy < 0 || sy >= h || sx < 0 || sx >= w ? zero : src[(ch * h + sy) * w + sx] * scale + shift;
      }
    }
  }
}
