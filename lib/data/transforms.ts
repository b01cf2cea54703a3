// Upstream's image transforms (torchvision on PIL images, timm's create_transform) on 8-bit RGB
// images, run on the data-loader workers. Resampling follows Pillow's algorithms (separable
// fixed-point convolution for resize), so a pipeline gives the pixels torchvision would.
// Randomness comes from the sample's generator (augment.ts sampleRng): same batch for any
// worker count.

/** An 8-bit RGB image, interleaved (HWC), as decoded. */
export interface RGBImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export type Interpolation = 'bilinear' | 'bicubic';
export type Rng = () => number;

/** The per-image pipeline for inputs > 32 px (upstream build_transform / build_transform_tradition). */
export interface TransformSpec {
  /** Output side length. */
  size: number;
  mean: number[];
  std: number[];
  /** Training: RandomResizedCrop + flip (+ color jitter or RandAugment, + random erasing). */
  train: {
    scale: [number, number];
    ratio: [number, number];
    interpolation: Interpolation;
    flip: number;
    /** ColorJitter (brightness, contrast, saturation); null when RandAugment is used or none. */
    colorJitter: [number, number, number] | null;
    /** A timm RandAugment string such as 'rand-m9-mstd0.5-inc1', or null. */
    autoAugment: string | null;
    reprob: number;
    remode: string;
    recount: number;
  };
  /** Evaluation: 'crop' resizes the shorter side to `resize` then center-crops; 'warp' resizes to size×size. */
  eval: { mode: 'crop' | 'warp'; resize: number };
}

/** Python's round(): halves to even. */
export function pyRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export const uniform = (rng: Rng, a: number, b: number): number => a + (b - a) * rng();
/** random.randint(a, b): inclusive. */
export const randint = (rng: Rng, a: number, b: number): number => a + Math.min(b - a, Math.floor(rng() * (b - a + 1)));
/** A standard normal draw (Box-Muller). */
export function gauss(rng: Rng, mu = 0, sigma = 1): number {
  const u = 1 - rng();
  return mu + sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

// ---- Pillow's resample (Resample.c): filters, coefficients, two passes, 22-bit fixed point ----

const PRECISION_BITS = 32 - 8 - 2;
const FILTERS: Record<Interpolation, { support: number; f: (x: number) => number }> = {
  bilinear: { support: 1, f: (x) => (x < 0 ? -x : x) < 1 ? 1 - Math.abs(x) : 0 },
  bicubic: {
    support: 2,
    f: (x) => {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
};

function coefficients(inSize: number, outSize: number, interp: Interpolation): { ksize: number; bounds: Int32Array; kk: Float64Array } {
  const filter = FILTERS[interp];
  const scale = inSize / outSize;
  const filterscale = Math.max(1, scale);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Float64Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    const w = new Float64Array(xmax);
    for (let x = 0; x < xmax; x++) {
      w[x] = filter.f((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? w[x] / ww : w[x];
      // normalize_coeffs_8bpc: to fixed point, rounding away from zero
      kk[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * (1 << PRECISION_BITS)) : Math.trunc(0.5 + k * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(ss: number): number {
  const v = Math.floor(ss / (1 << PRECISION_BITS));
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** PIL Image.resize((width, height), filter) of an RGB image. */
export function resize(img: RGBImage, width: number, height: number, interp: Interpolation): RGBImage {
  let cur = img;
  if (width !== cur.width) {
    const { ksize, bounds, kk } = coefficients(cur.width, width, interp);
    const out = new Uint8Array(width * cur.height * 3);
    for (let y = 0; y < cur.height; y++) {
      const row = y * cur.width * 3;
      for (let xx = 0; xx < width; xx++) {
        const xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1], k = xx * ksize;
        for (let c = 0; c < 3; c++) {
          let ss = 1 << (PRECISION_BITS - 1);
          for (let x = 0; x < xmax; x++) ss += cur.data[row + (x + xmin) * 3 + c] * kk[k + x];
          out[(y * width + xx) * 3 + c] = clip8(ss);
        }
      }
    }
    cur = { data: out, width, height: cur.height };
  }
  if (height !== cur.height) {
    const { ksize, bounds, kk } = coefficients(cur.height, height, interp);
    const out = new Uint8Array(width * height * 3);
    const stride = width * 3;
    for (let yy = 0; yy < height; yy++) {
      const ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1], k = yy * ksize;
      for (let i = 0; i < stride; i++) {
        let ss = 1 << (PRECISION_BITS - 1);
        for (let y = 0; y < ymax; y++) ss += cur.data[(y + ymin) * stride + i] * kk[k + y];
        out[yy * stride + i] = clip8(ss);
      }
    }
    cur = { data: out, width, height };
  }
  return cur === img ? { data: img.data.slice(), width, height } : cur;
}

/** PIL Image.crop((left, top, left + w, top + h)); pixels outside the image are 0. */
export function crop(img: RGBImage, top: number, left: number, h: number, w: number): RGBImage {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const sy = top + y;
    if (sy < 0 || sy >= img.height) continue;
    for (let x = 0; x < w; x++) {
      const sx = left + x;
      if (sx < 0 || sx >= img.width) continue;
      const o = (y * w + x) * 3, s = (sy * img.width + sx) * 3;
      out[o] = img.data[s];
      out[o + 1] = img.data[s + 1];
      out[o + 2] = img.data[s + 2];
    }
  }
  return { data: out, width: w, height: h };
}

/** torchvision Resize(size): the shorter side becomes `size`, the longer keeps the aspect (truncated). */
export function resizeShorter(img: RGBImage, size: number, interp: Interpolation): RGBImage {
  const { width: w, height: h } = img;
  const [short, long] = w <= h ? [w, h] : [h, w];
  const newLong = Math.trunc((size * long) / short);
  return w <= h ? resize(img, size, newLong, interp) : resize(img, newLong, size, interp);
}

/** torchvision CenterCrop(size) (zero-pads first when the image is smaller, as torchvision does). */
export function centerCrop(img: RGBImage, size: number): RGBImage {
  if (size > img.width || size > img.height) {
    const dw = Math.max(0, size - img.width), dh = Math.max(0, size - img.height);
    const pl = Math.floor(dw / 2), pt = Math.floor(dh / 2), pr = Math.floor((dw + 1) / 2), pb = Math.floor((dh + 1) / 2);
    img = crop(img, -pt, -pl, img.height + pt + pb, img.width + pl + pr);
    if (img.width === size && img.height === size) return img;
  }
  const top = pyRound((img.height - size) / 2), left = pyRound((img.width - size) / 2);
  return crop(img, top, left, size, size);
}

/** Horizontal flip. */
export function hflip(img: RGBImage): RGBImage {
  const { width: w, height: h } = img;
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) out[(y * w + x) * 3 + c] = img.data[(y * w + (w - 1 - x)) * 3 + c];
  return { data: out, width: w, height: h };
}

/** RandomResizedCrop's box (timm/torchvision get_params): [top, left, h, w]. */
export function randomResizedCropBox(rng: Rng, width: number, height: number, scale: [number, number], ratio: [number, number]): [number, number, number, number] {
  const area = width * height;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = uniform(rng, scale[0], scale[1]) * area;
    const aspect = Math.exp(uniform(rng, logRatio[0], logRatio[1]));
    const w = pyRound(Math.sqrt(targetArea * aspect));
    const h = pyRound(Math.sqrt(targetArea / aspect));
    if (w > 0 && h > 0 && w <= width && h <= height) return [randint(rng, 0, height - h), randint(rng, 0, width - w), h, w];
  }
  const inRatio = width / height;
  let w: number, h: number;
  if (inRatio < Math.min(...ratio)) {
    w = width;
    h = pyRound(w / Math.min(...ratio));
  } else if (inRatio > Math.max(...ratio)) {
    h = height;
    w = pyRound(h * Math.max(...ratio));
  } else {
    w = width;
    h = height;
  }
  return [Math.floor((height - h) / 2), Math.floor((width - w) / 2), h, w];
}

/** ToTensor + Normalize into out[offset ..] as CHW float32 (torch's float32 steps). */
export function normalizeInto(img: RGBImage, mean: number[], std: number[], out: Float32Array, offset: number): void {
  const n = img.width * img.height;
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(mean[c]), s = Math.fround(std[c]);
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / s);
    const base = offset + c * n;
    for (let i = 0; i < n; i++) out[base + i] = lut[img.data[i * 3 + c]];
  }
}

/** The evaluation pipeline: resize (shorter side, or warp) + center crop. */
export function evalTransform(img: RGBImage, spec: TransformSpec): RGBImage {
  if (spec.eval.mode === 'warp') return resize(img, spec.size, spec.size, 'bicubic');
  return centerCrop(resizeShorter(img, spec.eval.resize, 'bicubic'), spec.size);
}

/** The geometric part of training: RandomResizedCrop then a horizontal flip with probability spec.train.flip. */
export function trainGeometry(img: RGBImage, spec: TransformSpec, rng: Rng): RGBImage {
  const t = spec.train;
  const [top, left, h, w] = randomResizedCropBox(rng, img.width, img.height, t.scale, t.ratio);
  let out = resize(crop(img, top, left, h, w), spec.size, spec.size, t.interpolation);
  if (t.flip > 0 && rng() < t.flip) out = hflip(out);
  return out;
}
