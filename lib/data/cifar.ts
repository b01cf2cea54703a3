// CIFAR-10 and CIFAR-100 in their binary distributions:
//   cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin  records of [label, 3072 bytes]
//   cifar-100-binary/{train,test}.bin                        records of [coarse, fine, 3072 bytes]
// Images are 3×32×32, channel-major, as the dataset stores them.
import * as fs from 'fs';
import * as path from 'path';

export interface CifarData {
  images: Uint8Array; // [N, 3, 32, 32]
  labels: Uint8Array;
  numClasses: number;
}

const PIXELS = 3 * 32 * 32;

function readRecords(file: string, labelBytes: number, labelIndex: number, numClasses: number): { images: Uint8Array; labels: Uint8Array } {
  const buf = fs.readFileSync(file);
  const rec = labelBytes + PIXELS;
  if (buf.length === 0 || buf.length % rec !== 0)
    throw new Error(`${file}: ${buf.length} bytes is not a whole number of ${rec}-byte CIFAR records`);
  const n = buf.length / rec;
  const images = new Uint8Array(n * PIXELS);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const label = buf[i * rec + labelIndex];
    if (label >= numClasses) throw new Error(`${file}: record ${i} has label ${label}, expected < ${numClasses}`);
    labels[i] = label;
    images.set(buf.subarray(i * rec + labelBytes, (i + 1) * rec), i * PIXELS);
  }
  return { images, labels };
}

function concat(parts: { images: Uint8Array; labels: Uint8Array }[], numClasses: number): CifarData {
  const n = parts.reduce((s, p) => s + p.labels.length, 0);
  const images = new Uint8Array(n * PIXELS), labels = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    images.set(p.images, o * PIXELS);
    labels.set(p.labels, o);
    o += p.labels.length;
  }
  return { images, labels, numClasses };
}

/**
 * Loads the train or test split of CIFAR-10 or CIFAR-100 from `root`, which may be the
 * extracted folder itself or its parent.
 * @example loadCifar('/data/cifar', 100, true)
 */
export function loadCifar(root: string, classes: 10 | 100, train: boolean): CifarData {
  const sub = classes === 10 ? 'cifar-10-batches-bin' : 'cifar-100-binary';
  const dir = fs.existsSync(path.join(root, sub)) ? path.join(root, sub) : root;
  if (classes === 10) {
    const names = train ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin'];
    const missing = names.filter((f) => !fs.existsSync(path.join(dir, f)));
    if (missing.length) throw new Error(`${dir}: missing CIFAR-10 file(s) ${missing.join(', ')}`);
    return concat(names.map((f) => readRecords(path.join(dir, f), 1, 0, 10)), 10);
  }
  const file = path.join(dir, train ? 'train.bin' : 'test.bin');
  if (!fs.existsSync(file)) throw new Error(`${dir}: missing CIFAR-100 file ${path.basename(file)}`);
  return concat([readRecords(file, 2, 1, 100)], 100);
}
