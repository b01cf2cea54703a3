// ImageFolder as torchvision has it: root/<class>/<image>, classes in sorted order, images with
// torchvision's extensions in sorted order. Only the file list lives on the main thread; the
// data-loader workers decode each file (sharp/libvips) when a batch asks for it.
import * as fs from 'fs';
import * as path from 'path';
import { RGBImage } from './transforms';

/** torchvision's IMG_EXTENSIONS (matched case-insensitively, as torchvision does). */
export const IMG_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp'];

/** A dataset of image files, decoded on demand by the loader's workers. */
export interface FolderDataset {
  kind: 'folder';
  root: string;
  /** Absolute file paths, in torchvision's order (class by class, files sorted). */
  files: string[];
  labels: Int32Array;
  classes: string[];
  numClasses: number;
}

// Python sorts str by code point; JS's default sort compares UTF-16 units, which differs
// only outside the BMP, so compare code points.
function pyCompare(a: string, b: string): number {
  const x = Array.from(a), y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function listFiles(dir: string): string[] {
  // torchvision walks each class folder recursively (os.walk, followlinks) and sorts the names
  const out: string[] = [];
  for (const name of fs.readdirSync(dir).sort(pyCompare)) {
    const p = path.join(dir, name);
    const st = fs.statSync(p);
    if (st.isDirectory()) out.push(...listFiles(p));
    else if (IMG_EXTENSIONS.includes(path.extname(name).toLowerCase())) out.push(p);
  }
  return out;
}

/**
 * Scans root/<class>/<image> as torchvision.datasets.ImageFolder does.
 * @example const ds = scanImageFolder('imagenet/train'); ds.classes[ds.labels[0]];
 */
export function scanImageFolder(root: string): FolderDataset {
  const abs = path.resolve(root);
  if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) throw new Error(`ImageFolder: ${root} is not a folder (expected <root>/<class>/<image>)`);
  const classes = fs.readdirSync(abs).filter((d) => fs.statSync(path.join(abs, d)).isDirectory()).sort(pyCompare);
  if (classes.length === 0) throw new Error(`ImageFolder: ${root} holds no class folders (expected <root>/<class>/<image>)`);
  const files: string[] = [];
  const labels: number[] = [];
  classes.forEach((cls, i) => {
    const found = listFiles(path.join(abs, cls));
    if (found.length === 0) throw new Error(`ImageFolder: class folder ${path.join(root, cls)} holds no images (extensions: ${IMG_EXTENSIONS.join(' ')})`);
    for (const f of found) {
      files.push(f);
      labels.push(i);
    }
  });
  return { kind: 'folder', root: abs, files, labels: Int32Array.from(labels), classes, numClasses: classes.length };
}

type Sharp = typeof import('sharp');
let sharpModule: Sharp | null = null;
function loadSharp(): Sharp {
  if (!sharpModule) {
    try {
      sharpModule = require('sharp') as Sharp;
    } catch (e) {
      throw new Error(`ImageFolder needs the 'sharp' package to decode images (npm install sharp): ${(e as Error).message}`);
    }
    sharpModule.cache(false); // each file is read once per epoch; libvips' cache would only hold memory
    sharpModule.concurrency(1); // parallelism comes from the loader's workers
  }
  return sharpModule;
}

/**
 * The most pixels a file may claim in its header before decoding starts (8192×8192, about 200 MB
 * of RGB): a corrupt or hostile header claiming 100000×100000 is refused, not allocated. Large
 * ImageNet photos are about 20 Mpx; sharp's own default (16383², 800 MB per worker) is too much
 * for several loader workers at once.
 */
export const DECODE_PIXEL_LIMIT = 8192 * 8192;

/**
 * Decodes an image file to 8-bit RGB (PIL's convert('RGB'): gray is replicated, alpha dropped).
 * @example const { data, width, height } = await decodeImage('train/cat/001.jpg');
 */
export async function decodeImage(file: string): Promise<RGBImage> {
  const sharp = loadSharp();
  try {
    const { data, info } = await sharp(file, { failOn: 'error', limitInputPixels: DECODE_PIXEL_LIMIT })
      .removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  } catch (e) {
    let why = (e as Error).message.trim().replace(/\s*\n\s*/g, '; '); // libvips joins its messages with newlines
    if (/pixel limit/.test(why)) {
      // say what the header claims; reading it again costs nothing next to the failed decode
      const m = await sharp(file, { limitInputPixels: false }).metadata().catch(() => null);
      const size = m?.width && m?.height ? `${m.width}×${m.height} = ${(m.width * m.height).toLocaleString('en-US')} pixels` : 'too many pixels';
      why = `its header claims ${size}, more than the ${DECODE_PIXEL_LIMIT.toLocaleString('en-US')} (8192×8192) a file may have`;
    }
    throw new Error(`${file}: cannot decode image (${why})`);
  }
}
