// One sample through upstream's pipeline for inputs > 32 px, written as normalised CHW float32:
// train = RandomResizedCrop + flip + (ColorJitter | RandAugment) + normalize + RandomErasing,
// eval = resize + center crop + normalize (datasets.py build_transform / timm create_transform).
import { enhanceBrightness, enhanceColor, enhanceContrast } from './pil_ops';
import { parseRandAugment, randAugment, RandAugmentPolicy } from './randaugment';
import { evalTransform, gauss, normalizeInto, pyRound, randint, RGBImage, Rng, trainGeometry, TransformSpec, uniform } from './transforms';

/**
 * torchvision ColorJitter(brightness, contrast, saturation) on a PIL image: factors drawn from
 * [max(0, 1 − v), 1 + v], applied in a random order (a zero strength skips that adjustment).
 */
export function colorJitter(img: RGBImage, strength: [number, number, number], rng: Rng): RGBImage {
  const order = [0, 1, 2, 3];
  for (let i = 3; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const factors = strength.map((v) => (v > 0 ? uniform(rng, Math.max(0, 1 - v), 1 + v) : null));
  const ops = [enhanceBrightness, enhanceContrast, enhanceColor];
  for (const k of order) if (k < 3 && factors[k] !== null) img = ops[k](img, factors[k]!); // 3 = hue, unused
  return img;
}

/**
 * timm RandomErasing on a normalised CHW sample: with probability `prob`, `count` boxes (area
 * 2–33% split among them, aspect 0.3–3.3) filled per pixel with N(0, 1) ('pixel'), one normal
 * colour per channel ('rand') or zeros ('const').
 */
export function randomErasing(x: Float32Array, offset: number, c: number, h: number, w: number, prob: number, mode: string, maxCount: number, rng: Rng): void {
  if (rng() > prob) return;
  const area = h * w;
  const count = maxCount <= 1 ? 1 : randint(rng, 1, maxCount);
  const logAspect = [Math.log(0.3), Math.log(1 / 0.3)];
  for (let n = 0; n < count; n++) {
    for (let attempt = 0; attempt < 10; attempt++) {
      const target = (uniform(rng, 0.02, 1 / 3) * area) / count;
      const aspect = Math.exp(uniform(rng, logAspect[0], logAspect[1]));
      const eh = pyRound(Math.sqrt(target * aspect)), ew = pyRound(Math.sqrt(target / aspect));
      if (ew < w && eh < h) {
        const top = randint(rng, 0, h - eh), left = randint(rng, 0, w - ew);
        const colour = mode === 'rand' ? Array.from({ length: c }, () => gauss(rng)) : null;
        for (let ch = 0; ch < c; ch++)
          for (let y = top; y < top + eh; y++)
            for (let xx = left; xx < left + ew; xx++)
              x[offset + (ch * h + y) * w + xx] = mode === 'pixel' ? gauss(rng) : colour ? colour[ch] : 0;
        break;
      }
    }
  }
}

const policies = new Map<string, RandAugmentPolicy>();

/** Writes one transformed sample (3·size·size floats) at out[offset]; rng null = evaluation. */
export function transformInto(img: RGBImage, spec: TransformSpec, rng: Rng | null, out: Float32Array, offset: number): void {
  if (!rng) {
    normalizeInto(evalTransform(img, spec), spec.mean, spec.std, out, offset);
    return;
  }
  const t = spec.train;
  img = trainGeometry(img, spec, rng);
  if (t.autoAugment) {
    let policy = policies.get(t.autoAugment);
    if (!policy) policies.set(t.autoAugment, (policy = parseRandAugment(t.autoAugment)));
    img = randAugment(img, policy, rng, t.interpolation, spec.mean);
  } else if (t.colorJitter) img = colorJitter(img, t.colorJitter, rng);
  normalizeInto(img, spec.mean, spec.std, out, offset);
  if (t.reprob > 0) randomErasing(out, offset, 3, spec.size, spec.size, t.reprob, t.remode, t.recount, rng);
}
