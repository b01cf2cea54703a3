// Pillow's pixel operations on 8-bit RGB images, as timm's RandAugment and torchvision's
// ColorJitter call them: ImageOps (autocontrast, equalize, invert, posterize, solarize), point
// LUTs, ImageEnhance (Color, Contrast, Brightness, Sharpness) and affine transforms with
// Pillow's bilinear/bicubic sampling and fill colour. Each returns a new image.
import { Interpolation, RGBImage } from './transforms';

const like = (img: RGBImage, data: Uint8Array): RGBImage => ({ data, width: img.width, height: img.height });

/** Image.point with one 256-entry table per channel (or one for all). */
export function applyLut(img: RGBImage, lut: ArrayLike<number>): RGBImage {
  const per = lut.length === 768;
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = lut[(per ? (i % 3) * 256 : 0) + img.data[i]];
  return like(img, out);
}

function histograms(img: RGBImage): Int32Array {
  const h = new Int32Array(768);
  for (let i = 0; i < img.data.length; i++) h[(i % 3) * 256 + img.data[i]]++;
  return h;
}

/** ImageOps.autocontrast(img) (cutoff 0): each channel stretched to 0..255. */
export function autocontrast(img: RGBImage): RGBImage {
  const h = histograms(img);
  const lut: number[] = [];
  for (let c = 0; c < 3; c++) {
    let lo = 0, hi = 255;
    while (lo < 256 && !h[c * 256 + lo]) lo++;
    while (hi >= 0 && !h[c * 256 + hi]) hi--;
    if (hi <= lo) for (let i = 0; i < 256; i++) lut.push(i);
    else {
      const scale = 255 / (hi - lo), offset = -lo * scale;
      for (let i = 0; i < 256; i++) lut.push(Math.min(255, Math.max(0, Math.trunc(i * scale + offset))));
    }
  }
  return applyLut(img, lut);
}

/** ImageOps.equalize(img). */
export function equalize(img: RGBImage): RGBImage {
  const h = histograms(img);
  const lut: number[] = [];
  for (let c = 0; c < 3; c++) {
    const histo: number[] = [];
    for (let i = 0; i < 256; i++) if (h[c * 256 + i]) histo.push(h[c * 256 + i]);
    const step = histo.length <= 1 ? 0 : Math.floor((histo.reduce((a, b) => a + b, 0) - histo[histo.length - 1]) / 256);
    if (!step) for (let i = 0; i < 256; i++) lut.push(i);
    else {
      let n = Math.floor(step / 2);
      for (let i = 0; i < 256; i++) {
        lut.push(Math.min(255, Math.floor(n / step)));
        n += h[c * 256 + i];
      }
    }
  }
  return applyLut(img, lut);
}

const table = (f: (i: number) => number) => Array.from({ length: 256 }, (_, i) => f(i));
export const invert = (img: RGBImage): RGBImage => applyLut(img, table((i) => 255 - i));
/** ImageOps.posterize: keep the top `bits` bits. */
export const posterize = (img: RGBImage, bits: number): RGBImage => applyLut(img, table((i) => i & ~(2 ** (8 - bits) - 1) & 255));
/** ImageOps.solarize: invert values at or above the threshold. */
export const solarize = (img: RGBImage, threshold: number): RGBImage => applyLut(img, table((i) => (i < threshold ? i : 255 - i)));
/** timm's solarize_add: add to values below the threshold (clipped at 255). */
export const solarizeAdd = (img: RGBImage, add: number, threshold = 128): RGBImage => applyLut(img, table((i) => (i < threshold ? Math.min(255, i + add) : i)));

/** Image.blend(a, b, alpha) in Pillow's float arithmetic, truncated to bytes. */
export function blend(a: Uint8Array, b: Uint8Array, alpha: number): Uint8Array {
  const al = Math.fround(alpha);
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const v = Math.fround(a[i] + Math.fround(al * (b[i] - a[i])));
    out[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
  }
  return out;
}

/** convert('L'): ITU-R 601-2 luma in Pillow's fixed point. */
function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/** ImageEnhance.Color (saturation): blend with the gray image. */
export function enhanceColor(img: RGBImage, factor: number): RGBImage {
  const gray = new Uint8Array(img.data.length);
  for (let i = 0; i < gray.length; i += 3) gray[i] = gray[i + 1] = gray[i + 2] = luma(img.data[i], img.data[i + 1], img.data[i + 2]);
  return like(img, blend(gray, img.data, factor));
}

/** ImageEnhance.Contrast: blend with the mean gray level. */
export function enhanceContrast(img: RGBImage, factor: number): RGBImage {
  let sum = 0;
  for (let i = 0; i < img.data.length; i += 3) sum += luma(img.data[i], img.data[i + 1], img.data[i + 2]);
  const mean = Math.trunc(sum / (img.width * img.height) + 0.5);
  return like(img, blend(new Uint8Array(img.data.length).fill(mean), img.data, factor));
}

/** ImageEnhance.Brightness: blend with black. */
export function enhanceBrightness(img: RGBImage, factor: number): RGBImage {
  return like(img, blend(new Uint8Array(img.data.length), img.data, factor));
}

/** ImageEnhance.Sharpness: blend with ImageFilter.SMOOTH (3×3, centre 5, /13; the border is kept). */
export function enhanceSharpness(img: RGBImage, factor: number): RGBImage {
  const { width: w, height: h, data } = img;
  const smooth = data.slice();
  for (let y = 1; y < h - 1; y++)
    for (let x = 1; x < w - 1; x++)
      for (let c = 0; c < 3; c++) {
        let ss = 0;
        for (let dy = -1; dy <= 1; dy++)
          for (let dx = -1; dx <= 1; dx++) ss += data[((y + dy) * w + x + dx) * 3 + c] * Math.fround((dx || dy ? 1 : 5) / 13);
        smooth[(y * w + x) * 3 + c] = ss <= 0 ? 0 : ss >= 255 ? 255 : Math.trunc(ss + 0.5);
      }
  return like(img, blend(smooth, data, factor));
}

const clipX = (v: number, n: number) => (v < 0 ? 0 : v < n ? v : n - 1);

/**
 * Image.transform(size, AFFINE, [a, b, c, d, e, f], resample, fillcolor): output pixel (x, y)
 * samples the input at (a·x' + b·y' + c, d·x' + e·y' + f) with x' = x + 0.5, y' = y + 0.5;
 * outside the input it is the fill colour.
 */
export function affine(img: RGBImage, m: number[], interp: Interpolation, fill: number[]): RGBImage {
  const { width: w, height: h, data } = img;
  const out = new Uint8Array(data.length);
  const px = (yy: number, xx: number, c: number) => data[(yy * w + xx) * 3 + c];
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      let xin = m[0] * (x + 0.5) + m[1] * (y + 0.5) + m[2];
      let yin = m[3] * (x + 0.5) + m[4] * (y + 0.5) + m[5];
      if (xin < 0 || xin >= w || yin < 0 || yin >= h) {
        out[o] = fill[0];
        out[o + 1] = fill[1];
        out[o + 2] = fill[2];
        continue;
      }
      xin -= 0.5;
      yin -= 0.5;
      const xi = Math.floor(xin), yi = Math.floor(yin);
      const dx = xin - xi, dy = yin - yi;
      for (let c = 0; c < 3; c++) {
        let v: number;
        if (interp === 'bilinear') {
          const x0 = clipX(xi, w), x1 = clipX(xi + 1, w), y0 = clipX(yi, h);
          const v1 = px(y0, x0, c) + (px(y0, x1, c) - px(y0, x0, c)) * dx;
          const v2 = yi + 1 >= 0 && yi + 1 < h ? px(yi + 1, x0, c) + (px(yi + 1, x1, c) - px(yi + 1, x0, c)) * dx : v1;
          v = v1 + (v2 - v1) * dy;
        } else {
          const xs = [clipX(xi - 1, w), clipX(xi, w), clipX(xi + 1, w), clipX(xi + 2, w)];
          const cubic = (a: number, b: number, cc: number, d: number, t: number) => {
            const p2 = -a + cc, p3 = 2 * (a - b) + cc - d, p4 = -a + b - cc + d;
            return b + t * (p2 + t * (p3 + t * p4));
          };
          const row = (yy: number) => cubic(px(yy, xs[0], c), px(yy, xs[1], c), px(yy, xs[2], c), px(yy, xs[3], c), dx);
          const v1 = row(clipX(yi - 1, h));
          const v2 = yi >= 0 && yi < h ? row(yi) : v1;
          const v3 = yi + 1 >= 0 && yi + 1 < h ? row(yi + 1) : v2;
          const v4 = yi + 2 >= 0 && yi + 2 < h ? row(yi + 2) : v3;
          v = cubic(v1, v2, v3, v4, dy);
        }
        out[o + c] = v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
      }
    }
  return like(img, out);
}

// Python's round(x, 15)
const round15 = (v: number) => Math.round(v * 1e15) / 1e15;

/** Image.rotate(degrees, resample, fillcolor=fill) about the centre, same size (counter-clockwise). */
export function rotate(img: RGBImage, degrees: number, interp: Interpolation, fill: number[]): RGBImage {
  const angle = ((degrees % 360) + 360) % 360;
  if (angle === 0) return like(img, img.data.slice());
  const a = -(angle * Math.PI) / 180;
  const cx = img.width / 2, cy = img.height / 2;
  const m = [round15(Math.cos(a)), round15(Math.sin(a)), 0, round15(-Math.sin(a)), round15(Math.cos(a)), 0];
  m[2] = m[0] * -cx + m[1] * -cy + cx;
  m[5] = m[3] * -cx + m[4] * -cy + cy;
  return affine(img, m, interp, fill);
}
