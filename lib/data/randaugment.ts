// timm's RandAugment (auto_augment.py): a policy string such as 'rand-m9-mstd0.5-inc1' picks
// `n` ops per image (with replacement), each applied with probability 0.5 at a magnitude drawn
// from N(m, mstd) clipped to [0, 10]; the 'inc' set makes larger magnitudes always stronger.
import * as P from './pil_ops';
import { gauss, Interpolation, pyRound, RGBImage, Rng } from './transforms';

const MAX_LEVEL = 10;

export interface RandAugmentPolicy {
  ops: string[];
  numLayers: number;
  magnitude: number;
  magnitudeStd: number;
}

/** timm's _RAND_TRANSFORMS and _RAND_INCREASING_TRANSFORMS. */
export const RAND_TRANSFORMS = ['AutoContrast', 'Equalize', 'Invert', 'Rotate', 'Posterize', 'Solarize', 'SolarizeAdd', 'Color', 'Contrast', 'Brightness', 'Sharpness', 'ShearX', 'ShearY', 'TranslateXRel', 'TranslateYRel'];
export const RAND_INCREASING_TRANSFORMS = ['AutoContrast', 'Equalize', 'Invert', 'Rotate', 'PosterizeIncreasing', 'SolarizeIncreasing', 'SolarizeAdd', 'ColorIncreasing', 'ContrastIncreasing', 'BrightnessIncreasing', 'SharpnessIncreasing', 'ShearX', 'ShearY', 'TranslateXRel', 'TranslateYRel'];

/** Parses 'rand-m9-mstd0.5-inc1' (keys m, n, mstd, inc; timm's defaults m10, n2). */
export function parseRandAugment(config: string): RandAugmentPolicy {
  const parts = config.split('-');
  if (parts[0] !== 'rand') throw new Error(`RandAugment policy ${JSON.stringify(config)}: must start with 'rand'`);
  const policy: RandAugmentPolicy = { ops: RAND_TRANSFORMS, numLayers: 2, magnitude: MAX_LEVEL, magnitudeStd: 0 };
  for (const c of parts.slice(1)) {
    const m = /^([a-z]+)(\d.*)$/.exec(c);
    if (!m) continue; // timm skips parts without a value
    const [, key, val] = m;
    if (key === 'mstd') policy.magnitudeStd = Number(val);
    else if (key === 'inc') policy.ops = val ? RAND_INCREASING_TRANSFORMS : RAND_TRANSFORMS; // bool('0') is True in Python
    else if (key === 'm') policy.magnitude = parseInt(val, 10);
    else if (key === 'n') policy.numLayers = parseInt(val, 10);
    else throw new Error(`RandAugment policy ${JSON.stringify(config)}: unknown key '${key}' (supported: m, n, mstd, inc)`);
    if (!Number.isFinite(key === 'mstd' ? policy.magnitudeStd : key === 'm' ? policy.magnitude : policy.numLayers)) throw new Error(`RandAugment policy ${JSON.stringify(config)}: bad value in '${c}'`);
  }
  return policy;
}

const negate = (rng: Rng, v: number) => (rng() > 0.5 ? -v : v);

/** One op at a magnitude level (timm's level_to_arg then the op); fill is the mean colour. */
export function applyOp(img: RGBImage, name: string, level: number, rng: Rng, interp: Interpolation, fill: number[]): RGBImage {
  const enhance = (f: (i: RGBImage, x: number) => RGBImage, increasing: boolean) =>
    f(img, increasing ? 1 + negate(rng, (level / MAX_LEVEL) * 0.9) : (level / MAX_LEVEL) * 1.8 + 0.1);
  switch (name) {
    case 'AutoContrast': return P.autocontrast(img);
    case 'Equalize': return P.equalize(img);
    case 'Invert': return P.invert(img);
    case 'Rotate': return P.rotate(img, negate(rng, (level / MAX_LEVEL) * 30), interp, fill);
    case 'Posterize': return P.posterize(img, Math.trunc((level / MAX_LEVEL) * 4));
    case 'PosterizeIncreasing': {
      const bits = 4 - Math.trunc((level / MAX_LEVEL) * 4);
      return bits >= 8 ? img : P.posterize(img, bits);
    }
    case 'Solarize': return P.solarize(img, Math.trunc((level / MAX_LEVEL) * 256));
    case 'SolarizeIncreasing': return P.solarize(img, 256 - Math.trunc((level / MAX_LEVEL) * 256));
    case 'SolarizeAdd': return P.solarizeAdd(img, Math.trunc((level / MAX_LEVEL) * 110));
    case 'Color': return enhance(P.enhanceColor, false);
    case 'ColorIncreasing': return enhance(P.enhanceColor, true);
    case 'Contrast': return enhance(P.enhanceContrast, false);
    case 'ContrastIncreasing': return enhance(P.enhanceContrast, true);
    case 'Brightness': return enhance(P.enhanceBrightness, false);
    case 'BrightnessIncreasing': return enhance(P.enhanceBrightness, true);
    case 'Sharpness': return enhance(P.enhanceSharpness, false);
    case 'SharpnessIncreasing': return enhance(P.enhanceSharpness, true);
    case 'ShearX': return P.affine(img, [1, negate(rng, (level / MAX_LEVEL) * 0.3), 0, 0, 1, 0], interp, fill);
    case 'ShearY': return P.affine(img, [1, 0, 0, negate(rng, (level / MAX_LEVEL) * 0.3), 1, 0], interp, fill);
    case 'TranslateXRel': return P.affine(img, [1, 0, negate(rng, (level / MAX_LEVEL) * 0.45) * img.width, 0, 1, 0], interp, fill);
    case 'TranslateYRel': return P.affine(img, [1, 0, 0, 0, 1, negate(rng, (level / MAX_LEVEL) * 0.45) * img.height], interp, fill);
    default: throw new Error(`RandAugment: unknown op ${name}`);
  }
}

/**
 * RandAugment on one image: numLayers ops chosen uniformly with replacement, each applied with
 * probability 0.5 at magnitude N(m, mstd) clipped to [0, 10]. `mean` (0..1) gives the fill colour.
 */
export function randAugment(img: RGBImage, policy: RandAugmentPolicy, rng: Rng, interp: Interpolation, mean: number[]): RGBImage {
  const fill = mean.map((m) => Math.min(255, pyRound(255 * m)));
  const chosen = Array.from({ length: policy.numLayers }, () => policy.ops[Math.floor(rng() * policy.ops.length)]);
  for (const name of chosen) {
    if (rng() > 0.5) continue;
    let magnitude = policy.magnitude;
    if (policy.magnitudeStd > 0) magnitude = gauss(rng, magnitude, policy.magnitudeStd);
    magnitude = Math.min(MAX_LEVEL, Math.max(0, magnitude));
    img = applyOp(img, name, magnitude, rng, interp, fill);
  }
  return img;
}
