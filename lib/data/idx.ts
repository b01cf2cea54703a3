// IDX files (MNIST, Fashion-MNIST): big-endian header [0, 0, type, ndim], ndim uint32 sizes,
// then the data. Gzipped files (.gz, or a gzip magic number) are inflated first.
import * as fs from 'fs';
import * as zlib from 'zlib';

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

// Only unsigned bytes occur in (Fashion-)MNIST; other IDX types are refused with a clear error.
const UBYTE = 0x08;
const MAX_BYTES = 2 ** 31;

export function readIdx(file: string): IdxArray {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as Error).message})`);
  }
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = zlib.gunzipSync(buf, { maxOutputLength: MAX_BYTES });
    } catch (e) {
      throw new Error(`${file}: corrupt gzip data (${(e as Error).message})`);
    }
  }
  return parseIdx(buf, file);
}

export function parseIdx(buf: Uint8Array, label = 'IDX data'): IdxArray {
  if (buf.length < 4) throw new Error(`${label}: too short for an IDX header (${buf.length} bytes)`);
  if (buf[0] !== 0 || buf[1] !== 0) throw new Error(`${label}: not an IDX file (bad magic number)`);
  if (buf[2] !== UBYTE) throw new Error(`${label}: IDX element type 0x${buf[2].toString(16)} is not supported (only unsigned bytes)`);
  const ndim = buf[3];
  if (ndim < 1 || ndim > 4) throw new Error(`${label}: IDX rank ${ndim} is out of range 1..4`);
  const header = 4 + 4 * ndim;
  if (buf.length < header) throw new Error(`${label}: truncated IDX header`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const shape: number[] = [];
  let n = 1;
  for (let i = 0; i < ndim; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    shape.push(d);
    n *= d;
  }
  if (n > MAX_BYTES) throw new Error(`${label}: IDX header claims ${n} elements, more than the 2 GiB limit`);
  if (buf.length !== header + n)
    throw new Error(`${label}: IDX header says ${n} elements of data but the file holds ${buf.length - header} bytes`);
  return { shape, data: new Uint8Array(buf.buffer, buf.byteOffset + header, n) };
}

/** Encodes unsigned bytes as an IDX file (used to write the bundled dataset and test fixtures). */
export function encodeIdx(shape: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * shape.length);
  header[2] = UBYTE;
  header[3] = shape.length;
  shape.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

export interface IdxDataset {
  images: IdxArray; // [N, H, W]
  labels: Uint8Array; // [N]
}

/**
 * Loads `{prefix}-images-idx3-ubyte[.gz]` and `{prefix}-labels-idx1-ubyte[.gz]` from a folder
 * (prefix `train` or `t10k`, as in the MNIST distribution).
 * @example const train = loadIdxDataset('../shared/data/fashion-mnist', 'train');
 */
export function loadIdxDataset(dir: string, prefix: 'train' | 't10k'): IdxDataset {
  const find = (kind: string): string => {
    for (const name of [`${prefix}-${kind}`, `${prefix}-${kind}.gz`]) {
      const p = `${dir}/${name}`;
      if (fs.existsSync(p)) return p;
    }
    throw new Error(`${dir}: no ${prefix}-${kind}[.gz] file (an IDX dataset folder holds train-/t10k- images and labels)`);
  };
  const imgFile = find('images-idx3-ubyte');
  const lblFile = find('labels-idx1-ubyte');
  const images = readIdx(imgFile);
  const labels = readIdx(lblFile);
  if (images.shape.length !== 3) throw new Error(`${imgFile}: images must be [N, H, W], got [${images.shape}]`);
  if (labels.shape.length !== 1 || labels.shape[0] !== images.shape[0])
    throw new Error(`${lblFile}: ${labels.shape[0]} labels for ${images.shape[0]} images`);
  return { images, labels: labels.data };
}
