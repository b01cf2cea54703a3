// Image transforms against Pillow (torchvision's PIL backend, timm's RandAugment ops): the
// reference pixels in fixtures/pil_transforms.json come from Pillow 12 (pil_transforms.py).
// Also: flip, center crop, RandomResizedCrop boxes, normalisation, ColorJitter, RandomErasing,
// RandAugment's policy parsing and its effect on an image.
import t, { Test } from 'tap';
import * as P from '../lib/data/pil_ops';
import { centerCrop, crop, evalTransform, hflip, normalizeInto, randomResizedCropBox, resize, resizeShorter, RGBImage, TransformSpec } from '../lib/data/transforms';
import { applyOp, parseRandAugment, randAugment, RAND_INCREASING_TRANSFORMS } from '../lib/data/randaugment';
import { colorJitter, randomErasing, transformInto } from '../lib/data/pipeline';
import { sampleRng } from '../lib/data/augment';

const ref = require('./fixtures/pil_transforms.json');
const src: RGBImage = { data: Uint8Array.from(ref.src), width: ref.w, height: ref.h };
const expectPil = (t: Test, name: string, got: RGBImage) => {
  const c = ref.cases[name];
  t.same([got.width, got.height], [c.w, c.h], `${name}: size`);
  let bad = 0;
  for (let i = 0; i < c.data.length; i++) if (got.data[i] !== c.data[i]) bad++;
  t.equal(bad, 0, `${name}: every byte equals Pillow's`);
};
const fromSeq = (draws: number[]) => () => {
  if (!draws.length) throw new Error('test rng exhausted');
  return draws.shift()!;
};
const fill = [124, 116, 104]; // timm's img_mean for ImageNet's mean

t.test('resize, crop + resize, eval resize + center crop equal Pillow', async (t) => {
  expectPil(t, 'resize_bicubic_5x4', resize(src, 5, 4, 'bicubic'));
  expectPil(t, 'resize_bilinear_5x4', resize(src, 5, 4, 'bilinear'));
  expectPil(t, 'resize_bicubic_17x13', resize(src, 17, 13, 'bicubic'));
  expectPil(t, 'resize_bilinear_7x9', resize(src, 7, 9, 'bilinear'));
  expectPil(t, 'resized_crop_2_3_5_6_bicubic_8', resize(crop(src, 2, 3, 5, 6), 8, 8, 'bicubic'));
  expectPil(t, 'resized_crop_2_3_5_6_bilinear_8', resize(crop(src, 2, 3, 5, 6), 8, 8, 'bilinear'));
  const spec = { size: 8, eval: { mode: 'crop', resize: 10 } } as TransformSpec;
  expectPil(t, 'eval_resize10_crop8', evalTransform(src, spec));
  const warp = evalTransform(src, { ...spec, eval: { mode: 'warp', resize: 8 } });
  t.same([warp.width, warp.height], [8, 8]);
  t.same([resizeShorter(src, 10, 'bicubic').width, resizeShorter(src, 10, 'bicubic').height], [12, 10], 'shorter side 9 → 10, longer int(10·11/9) = 12');
});

t.test('RandAugment and ColorJitter ops equal Pillow', async (t) => {
  expectPil(t, 'autocontrast', P.autocontrast(src));
  expectPil(t, 'equalize', P.equalize(src)); // 99 pixels: Pillow's step is 0, the identity
  const src2: RGBImage = { data: Uint8Array.from(ref.src2.data), width: ref.src2.w, height: ref.src2.h };
  expectPil(t, 'equalize_40x30', P.equalize(src2));
  t.ok(P.equalize(src2).data.some((v, i) => v !== src2.data[i]), 'equalize acts on the larger image');
  expectPil(t, 'autocontrast_40x30', P.autocontrast(src2));
  expectPil(t, 'invert', P.invert(src));
  expectPil(t, 'posterize_2', P.posterize(src, 2));
  expectPil(t, 'solarize_100', P.solarize(src, 100));
  expectPil(t, 'solarize_add_60', P.solarizeAdd(src, 60));
  for (const f of [0.3, 1.7]) {
    expectPil(t, `color_${f}`, P.enhanceColor(src, f));
    expectPil(t, `contrast_${f}`, P.enhanceContrast(src, f));
    expectPil(t, `brightness_${f}`, P.enhanceBrightness(src, f));
    expectPil(t, `sharpness_${f}`, P.enhanceSharpness(src, f));
  }
  expectPil(t, 'rotate_17_bicubic', P.rotate(src, 17, 'bicubic', fill));
  expectPil(t, 'rotate_-23_bilinear', P.rotate(src, -23, 'bilinear', fill));
  expectPil(t, 'shearx_0.21_bicubic', P.affine(src, [1, 0.21, 0, 0, 1, 0], 'bicubic', fill));
  expectPil(t, 'sheary_-0.3_bilinear', P.affine(src, [1, 0, 0, -0.3, 1, 0], 'bilinear', fill));
  expectPil(t, 'translatex_0.3_bicubic', P.affine(src, [1, 0, 0.3 * 11, 0, 1, 0], 'bicubic', fill));
  expectPil(t, 'translatey_-0.25_bicubic', P.affine(src, [1, 0, 0, 0, 1, -0.25 * 9], 'bicubic', fill));
});

t.test('flip, center crop (and its zero padding), normalisation', async (t) => {
  const f = hflip(src);
  let ok = true;
  for (let y = 0; y < 9; y++) for (let x = 0; x < 11; x++) for (let c = 0; c < 3; c++) if (f.data[(y * 11 + x) * 3 + c] !== src.data[(y * 11 + 10 - x) * 3 + c]) ok = false;
  t.ok(ok, 'pixel (y, x) comes from (y, w − 1 − x)');
  // torchvision: top = round((9 − 5) / 2) = 2, left = round((11 − 5) / 2) = 3
  const cc = centerCrop(src, 5);
  t.same(Array.from(cc.data.subarray(0, 3)), Array.from(src.data.subarray((2 * 11 + 3) * 3, (2 * 11 + 3) * 3 + 3)));
  t.same(Array.from(cc.data.subarray(-3)), Array.from(src.data.subarray((6 * 11 + 7) * 3, (6 * 11 + 7) * 3 + 3)));
  // round(0.5) = 0 in Python: a 6-wide crop of 11 starts at column 2 (2.5 → 2)
  t.same(Array.from(centerCrop(src, 6).data.subarray(0, 3)), Array.from(src.data.subarray((round(1.5) * 11 + 2) * 3, (round(1.5) * 11 + 2) * 3 + 3)));
  const padded = centerCrop(src, 12); // pads left 0, top 1, right 1, bottom 2 (torchvision)
  t.same([padded.width, padded.height], [12, 12]);
  t.same(Array.from(padded.data.subarray(0, 36)), new Array(36).fill(0), 'the first row is padding');
  t.same(Array.from(padded.data.subarray(12 * 3, 12 * 3 + 3)), Array.from(src.data.subarray(0, 3)));
  const out = new Float32Array(3 * 99 + 2);
  normalizeInto(src, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], out, 2);
  const v = src.data[(4 * 11 + 5) * 3 + 1];
  t.equal(out[2 + 99 + 4 * 11 + 5], Math.fround(Math.fround(Math.fround(v / 255) - Math.fround(0.456)) / Math.fround(0.224)), 'CHW, (v/255 − mean)/std in float32');
});
function round(x: number) {
  return Math.round(x) - (Math.abs(x % 1) === 0.5 && Math.round(x) % 2 !== 0 ? 1 : 0);
}

t.test('RandomResizedCrop boxes: inside the image, area and aspect in range; fallback is central', async (t) => {
  const rng = sampleRng(1, 0, 0);
  for (let i = 0; i < 200; i++) {
    const [top, left, h, w] = randomResizedCropBox(rng, 50, 40, [0.08, 1], [3 / 4, 4 / 3]);
    if (!(top >= 0 && left >= 0 && top + h <= 40 && left + w <= 50)) t.fail(`box ${[top, left, h, w]} leaves the image`);
    if (!(w * h >= 0.08 * 2000 * 0.85 && w * h <= 2000 && w / h >= 0.7 && w / h <= 1.42)) t.fail(`box ${[h, w]} out of range`);
  }
  // scale 0.99..1, ratio 2..3 cannot fit a 10×10 image: fallback crops the largest 2:1 box, centred
  t.same(randomResizedCropBox(() => 0.5, 10, 10, [0.99, 1], [2, 3]), [2, 0, 5, 10]);
  // hand-checked draws: area (0.08 + 0.92·0.5)·2000 = 1080, ratio exp(0) = 1 → round(√1080) = 33 square;
  // top randint(0, 7) → floor(0.5·8) = 4, left randint(0, 17) → floor(0.5·18) = 9
  t.same(randomResizedCropBox(fromSeq([0.5, 0.5, 0.5, 0.5]), 50, 40, [0.08, 1], [3 / 4, 4 / 3]), [4, 9, 33, 33]);
});

t.test('ColorJitter: factors in range, random order, composed of the Pillow-checked enhancers', async (t) => {
  // permutation draws (Fisher-Yates from the end): 0.99 keeps 3, 0 swaps 2↔0, 0.99 keeps 1 → order [2, 1, 0, 3]
  const rng = fromSeq([0.99, 0, 0.99, 0.25, 0.5, 1]);
  const got = colorJitter(src, [0.4, 0.4, 0.4], rng);
  // brightness 0.6 + 0.8·0.25 = 0.8, contrast 1.0, saturation 1.4; order saturation, contrast, brightness
  const want = P.enhanceBrightness(P.enhanceContrast(P.enhanceColor(src, 1.4), 1.0), 0.8);
  t.same(Array.from(got.data), Array.from(want.data));
  t.same(Array.from(colorJitter(src, [0, 0, 0], fromSeq([0.1, 0.2, 0.3])).data), Array.from(src.data), 'zero strength is the identity');
});

t.test('RandomErasing fills one box with normal noise after normalisation', async (t) => {
  const x = new Float32Array(3 * 20 * 20).fill(7);
  randomErasing(x, 0, 3, 20, 20, 1, 'pixel', 1, sampleRng(5, 0, 0));
  const erased = [];
  for (let i = 0; i < 400; i++) if (x[i] !== 7) erased.push(i);
  t.ok(erased.length >= 0.02 * 400 * 0.5 && erased.length <= 400 / 3 * 1.3, `erased ${erased.length} of 400 pixels`);
  const ys = erased.map((i) => Math.floor(i / 20)), xs = erased.map((i) => i % 20);
  const h = Math.max(...ys) - Math.min(...ys) + 1, w = Math.max(...xs) - Math.min(...xs) + 1;
  t.equal(erased.length, h * w, 'a filled rectangle');
  for (let c = 1; c < 3; c++) t.ok(erased.every((i) => x[c * 400 + i] !== 7), `channel ${c} erased in the same box`);
  const zeros = new Float32Array(3 * 20 * 20).fill(7);
  randomErasing(zeros, 0, 3, 20, 20, 1, 'const', 1, sampleRng(5, 0, 0));
  t.ok(zeros.some((v) => v === 0) && zeros.every((v) => v === 0 || v === 7), "'const' fills zeros");
  const none = new Float32Array(12).fill(7);
  randomErasing(none, 0, 3, 2, 2, 0.25, 'pixel', 1, () => 0.9);
  t.ok(none.every((v) => v === 7), 'a draw above the probability erases nothing');
});

t.test('RandAugment: policy parsing, each op changes pixels and keeps the shape', async (t) => {
  t.same(parseRandAugment('rand-m9-mstd0.5-inc1'), { ops: RAND_INCREASING_TRANSFORMS, numLayers: 2, magnitude: 9, magnitudeStd: 0.5 });
  t.equal(parseRandAugment('rand-n3-m5').numLayers, 3);
  t.throws(() => parseRandAugment('augmix-m5'), /must start with 'rand'/);
  t.throws(() => parseRandAugment('rand-q5'), /unknown key 'q'/);
  const dim: RGBImage = { data: Uint8Array.from(ref.src2.data), width: ref.src2.w, height: ref.src2.h }; // low contrast: autocontrast/equalize act
  for (const op of RAND_INCREASING_TRANSFORMS) {
    const out = applyOp(dim, op, 9, () => 0.2, 'bicubic', fill);
    t.same([out.width, out.height, out.data.length], [40, 30, 3600], `${op}: shape kept`);
    t.ok(out.data.some((v, i) => v !== dim.data[i]), `${op}: changes pixels`);
  }
  // level 9 of the increasing ops (no negation at draw 0.2): Posterize keeps 4 − int(3.6) = 1 bit,
  // Solarize thresholds at 256 − int(230.4) = 26, SolarizeAdd adds int(99) = 99, Brightness 1 + 0.81
  t.same(Array.from(applyOp(src, 'PosterizeIncreasing', 9, () => 0.2, 'bicubic', fill).data), Array.from(P.posterize(src, 1).data));
  t.same(Array.from(applyOp(src, 'SolarizeIncreasing', 9, () => 0.2, 'bicubic', fill).data), Array.from(P.solarize(src, 26).data));
  t.same(Array.from(applyOp(src, 'SolarizeAdd', 9, () => 0.2, 'bicubic', fill).data), Array.from(P.solarizeAdd(src, 99).data));
  t.same(Array.from(applyOp(src, 'BrightnessIncreasing', 9, () => 0.2, 'bicubic', fill).data), Array.from(P.enhanceBrightness(src, 1.81).data));
  t.same(Array.from(applyOp(src, 'Rotate', 9, () => 0.7, 'bicubic', fill).data), Array.from(P.rotate(src, -27, 'bicubic', fill).data), 'a draw > 0.5 negates');
  const policy = parseRandAugment('rand-m9-mstd0.5-inc1');
  // op choice floor(0.2·15) = 3 (Rotate) twice; first skipped (0.6 > 0.5), second applied at magnitude 9 + 0.5·N
  const rng = fromSeq([0.2, 0.2, 0.6, 0.1, 1 - Math.exp(-0.5), 0, 0.2]);
  // gauss: u = exp(-0.5) → sqrt(−2 ln u) = 1, cos(0) = 1 → magnitude 9.5 → 28.5 degrees
  t.same(Array.from(randAugment(src, policy, rng, 'bicubic', [0.485, 0.456, 0.406]).data), Array.from(P.rotate(src, 28.5, 'bicubic', fill).data));
});

t.test('the whole train pipeline: shape, deterministic per sample generator', async (t) => {
  const spec: TransformSpec = {
    size: 8, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225],
    train: { scale: [0.08, 1], ratio: [3 / 4, 4 / 3], interpolation: 'bicubic', flip: 0.5, colorJitter: null, autoAugment: 'rand-m9-mstd0.5-inc1', reprob: 0.25, remode: 'pixel', recount: 1 },
    eval: { mode: 'crop', resize: 9 },
  };
  const a = new Float32Array(192), b = new Float32Array(192), c = new Float32Array(192);
  transformInto(src, spec, sampleRng(0, 1, 2), a, 0);
  transformInto(src, spec, sampleRng(0, 1, 2), b, 0);
  transformInto(src, spec, sampleRng(0, 1, 3), c, 0);
  t.same(Array.from(a), Array.from(b));
  t.notSame(Array.from(a), Array.from(c));
  t.ok(a.every(Number.isFinite));
});
