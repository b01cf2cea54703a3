// DataLoader: seeded shuffling, drop_last, and augmentation on worker threads with prefetch,
// so the next batches are being prepared while the model trains on this one.
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import type { DistributedSampler } from '../distributed/sampler';
import { ArgumentError } from '../errors';
import { tensor, Tensor } from '../tensor';
import { AugmentSpec } from './augment';
import { FolderDataset } from './image_folder';
import { MixupSpec } from './mixup';
import { TransformSpec } from './transforms';

/** An in-memory dataset of uint8 CHW images and integer labels. */
export interface ImageDataset {
  /** [N, C, H, W] as one byte buffer, shared with the workers without copying. */
  images: Uint8Array;
  labels: Uint8Array;
  shape: [number, number, number];
  numClasses: number;
}

/** Copies a dataset into shared memory (done once; workers then read it in place). */
export function toShared(images: Uint8Array, labels: Uint8Array, shape: [number, number, number], numClasses: number): ImageDataset {
  const img = new Uint8Array(new SharedArrayBuffer(images.length));
  img.set(images);
  const lbl = new Uint8Array(new SharedArrayBuffer(labels.length));
  lbl.set(labels);
  return { images: img, labels: lbl, shape, numClasses };
}

/** In-memory images, or image files decoded by the workers (ImageFolder; always 3 channels). */
export type Dataset = ImageDataset | FolderDataset;

/** Channels of a dataset's samples. */
export function channelsOf(ds: Dataset): number {
  return 'kind' in ds ? 3 : ds.shape[0];
}

export interface LoaderOptions {
  batchSize: number;
  shuffle: boolean;
  dropLast: boolean;
  augment: AugmentSpec;
  /** Random crops and flips (training) or a centred crop (evaluation). */
  train: boolean;
  seed?: number;
  numWorkers?: number;
  /** Batches prepared ahead per worker. */
  prefetch?: number;
  /** Mixup/CutMix for training batches: targets become soft [B, classes] float32. */
  mixup?: MixupSpec | null;
  /**
   * For image-file datasets: upstream's pipeline for inputs > 32 px (RandomResizedCrop, ..., or
   * resize + center crop). Without it, files are decoded and go through `augment` (crop with padding).
   */
  transform?: TransformSpec | null;
  /** Data-parallel runs: this rank's share of each epoch (replaces `shuffle`'s own order). */
  sampler?: DistributedSampler | null;
}

export interface Batch {
  x: Tensor;
  y: Tensor;
}

/** The sample order of an epoch: a seeded Fisher-Yates shuffle (or 0..n-1). */
export function epochOrder(n: number, seed: number, epoch: number, shuffle: boolean): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (!shuffle) return order;
  let s = (Math.imul(seed + 0x632be5ab, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca77)) >>> 0;
  const rand = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const tmp = order[i];
    order[i] = order[j];
    order[j] = tmp;
  }
  return order;
}

function workerScript(): string {
  // Runs from compiled JS (dist/) or, in tests, from the TS sources under a TS loader.
  return path.join(__dirname, `loader_worker${path.extname(__filename)}`);
}

/**
 * Iterates batches of a dataset (in memory, or image files that the workers decode). Use `for await (const { x, y } of loader.epoch(e))`; the
 * caller owns (and disposes) each batch's tensors. Call `close()` to stop the workers.
 * @example const loader = new DataLoader(ds, { batchSize: 64, shuffle: true, dropLast: true, train: true, augment });
 */
export class DataLoader {
  private workers: Worker[] = [];
  private nextId = 0;
  private waiting = new Map<number, { resolve: (b: { x: Float32Array; y: Int32Array | Float32Array }) => void; reject: (e: Error) => void }>();
  readonly opts: Required<LoaderOptions>;
  private readonly channels: number;

  constructor(readonly dataset: Dataset, opts: LoaderOptions) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new ArgumentError('DataLoader', 'batchSize', 'a positive integer', opts.batchSize);
    const c = channelsOf(dataset);
    if ('kind' in dataset) {
      if (dataset.files.length !== dataset.labels.length)
        throw new ArgumentError('DataLoader', 'dataset', `one label per file (${dataset.files.length})`, `${dataset.labels.length} labels`);
    } else {
      const [, h, w] = dataset.shape;
      if (dataset.images.length !== dataset.labels.length * c * h * w)
        throw new ArgumentError('DataLoader', 'dataset', `${dataset.labels.length} images of ${c}×${h}×${w} bytes`, `${dataset.images.length} bytes`);
      if (opts.transform) throw new ArgumentError('DataLoader', 'transform', 'null for an in-memory dataset (use augment)', 'a TransformSpec');
    }
    if (opts.augment.mean.length !== c || opts.augment.std.length !== c)
      throw new ArgumentError('DataLoader', 'augment.mean/std', `${c} values (one per channel)`, opts.augment.mean);
    if (opts.transform && opts.transform.size !== opts.augment.size)
      throw new ArgumentError('DataLoader', 'transform.size', `augment.size (${opts.augment.size})`, opts.transform.size);
    const posInt = (name: string, v: unknown, min: number) => {
      if (v !== undefined && (!Number.isInteger(v) || (v as number) < min))
        throw new ArgumentError('DataLoader', name, `an integer ≥ ${min}`, v);
    };
    posInt('numWorkers', opts.numWorkers, 1);
    posInt('prefetch', opts.prefetch, 1);
    posInt('seed', opts.seed, 0);
    posInt('augment.size', opts.augment.size, 1);
    posInt('augment.padding', opts.augment.padding, 0);
    if (!opts.augment.std.every((v) => typeof v === 'number' && v > 0))
      throw new ArgumentError('DataLoader', 'augment.std', 'positive numbers', opts.augment.std);
    if (!(opts.augment.flip >= 0 && opts.augment.flip <= 1))
      throw new ArgumentError('DataLoader', 'augment.flip', 'a probability in [0, 1]', opts.augment.flip);
    if (opts.sampler && opts.sampler.datasetSize !== dataset.labels.length)
      throw new ArgumentError('DataLoader', 'sampler', `a sampler over ${dataset.labels.length} samples`, `one over ${opts.sampler.datasetSize}`);
    this.channels = c;
    this.opts = {
      seed: 0,
      numWorkers: Math.max(1, Math.min(2, os.cpus().length - 1)),
      prefetch: 2,
      mixup: null,
      transform: null,
      sampler: null,
      ...opts,
    };
  }

  /** Number of batches in an epoch. */
  get length(): number {
    const n = this.opts.sampler ? this.opts.sampler.numSamples : this.dataset.labels.length;
    return this.opts.dropLast ? Math.floor(n / this.opts.batchSize) : Math.ceil(n / this.opts.batchSize);
  }

  private start(): void {
    if (this.workers.length) return;
    for (let i = 0; i < this.opts.numWorkers; i++) {
      const w = new Worker(workerScript());
      const ds = this.dataset;
      w.postMessage({
        init: {
          images: 'kind' in ds ? null : ds.images.buffer,
          labels: 'kind' in ds ? null : ds.labels.buffer,
          shape: 'kind' in ds ? null : ds.shape,
          transform: this.opts.transform,
          spec: this.opts.augment,
          train: this.opts.train,
          seed: this.opts.seed,
          mixup: this.opts.mixup,
        },
      });
      w.on('message', (m: { id: number; x: Float32Array; y: Int32Array | Float32Array; error?: string }) => {
        const p = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (this.waiting.size === 0) for (const x of this.workers) x.unref();
        if (m.error !== undefined) p?.reject(new Error(m.error));
        else p?.resolve(m);
      });
      w.on('error', (e) => {
        for (const p of this.waiting.values()) p.reject(e);
        this.waiting.clear();
      });
      w.unref(); // an idle loader never keeps the process alive; requests ref it
      this.workers.push(w);
    }
    if (!('kind' in this.dataset) && !(this.dataset.images.buffer instanceof SharedArrayBuffer))
      throw new Error('DataLoader: the dataset must live in shared memory (use toShared())');
  }

  private request(epoch: number, batch: number, indices: number[]): Promise<{ x: Float32Array; y: Int32Array | Float32Array }> {
    const id = this.nextId++;
    const worker = this.workers[id % this.workers.length];
    return new Promise((resolve, reject) => {
      if (this.waiting.size === 0) for (const w of this.workers) w.ref();
      this.waiting.set(id, { resolve, reject });
      const ds = this.dataset;
      // image files travel with each request (a path per sample), not as one big list per worker
      const files = 'kind' in ds ? { files: indices.map((i) => ds.files[i]), labels: indices.map((i) => ds.labels[i]) } : {};
      worker.postMessage({ request: { id, epoch, batch, indices, ...files } });
    });
  }

  /** The batches of one epoch, in order, prepared ahead on the workers. */
  async *epoch(epoch: number): AsyncGenerator<Batch> {
    this.start();
    const { batchSize, shuffle, seed, augment } = this.opts;
    const order = this.opts.sampler ? this.opts.sampler.indices(epoch) : epochOrder(this.dataset.labels.length, seed, epoch, shuffle);
    const batches = this.length;
    const ahead = this.workers.length * this.opts.prefetch;
    const pending: Promise<{ x: Float32Array; y: Int32Array | Float32Array }>[] = [];
    const c = this.channels;
    let issued = 0;
    const issue = () => {
      const lo = issued * batchSize;
      const idx = Array.from(order.subarray(lo, Math.min(lo + batchSize, order.length)));
      pending.push(this.request(epoch, issued, idx));
      issued++;
    };
    while (issued < Math.min(ahead, batches)) issue();
    try {
      for (let b = 0; b < batches; b++) {
        const { x, y } = await pending.shift()!;
        if (issued < batches) issue();
        const n = x.length / (c * augment.size * augment.size);
        const soft = y instanceof Float32Array;
        yield { x: tensor(x, [n, c, augment.size, augment.size]), y: tensor(y, soft ? [n, this.dataset.numClasses] : [n]) };
      }
    } finally {
      // batches still in flight (an error, or the caller stopped early) must not reject unobserved
      for (const p of pending) p.catch(() => undefined);
    }
  }

  /** Stops the worker threads. */
  async close(): Promise<void> {
    const ws = this.workers;
    this.workers = [];
    await Promise.all(ws.map((w) => w.terminate()));
  }
}
