// One sample through upstream's pipeline for inputs > 32 px, written as normalised CHW float32:
// train = RandomResizedCrop + flip + (ColorJitter | RandAugment) + normalize + RandomErasing,
// eval = resize + center crop + normalize (datasets.py build_transform / timm create_transform).
import { evalTransform, normalizeInto, RGBImage, Rng, trainGeometry, TransformSpec } from './transforms';

/** Writes one transformed sample (3·size·size floats) at out[offset]; rng null = evaluation. */
export function transformInto(img: RGBImage, spec: TransformSpec, rng: Rng | null, out: Float32Array, offset: number): void {
  if (!rng) {
    normalizeInto(evalTransform(img, spec), spec.mean, spec.std, out, offset);
    return;
  }
  const t = trainGeometry(img, spec, rng);
  normalizeInto(t, spec.mean, spec.std, out, offset);
}
