// DataLoader: seeded shuffling, drop_last, and augmentation on worker threads with prefetch,
// so the next batches are being prepared while the model trains on this one.
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { ArgumentError } from '../errors';
import { tensor, Tensor } from '../tensor';
import { AugmentSpec } from './augment';
import { MixupSpec } from './mixup';

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
 * Iterates batches of a dataset. Use `for await (const { x, y } of loader.epoch(e))`; the
 * caller owns (and disposes) each batch's tensors. Call `close()` to stop the workers.
 * @example const loader = new DataLoader(ds, { batchSize: 64, shuffle: true, dropLast: true, train: true, augment });
 */
export class DataLoader {
  private workers: Worker[] = [];
  private nextId = 0;
  private waiting = new Map<number, { resolve: (b: { x: Float32Array; y: Int32Array | Float32Array }) => void; reject: (e: Error) => void }>();
  readonly opts: Required<LoaderOptions>;

  constructor(readonly dataset: ImageDataset, opts: LoaderOptions) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new ArgumentError('DataLoader', 'batchSize', 'a positive integer', opts.batchSize);
    const [c, h, w] = dataset.shape;
    if (dataset.images.length !== dataset.labels.length * c * h * w)
      throw new ArgumentError('DataLoader', 'dataset', `${dataset.labels.length} images of ${c}×${h}×${w} bytes`, `${dataset.images.length} bytes`);
    if (opts.augment.mean.length !== c || opts.augment.std.length !== c)
      throw new ArgumentError('DataLoader', 'augment.mean/std', `${c} values (one per channel)`, opts.augment.mean);
    this.opts = {
      seed: 0,
      numWorkers: Math.max(1, Math.min(2, os.cpus().length - 1)),
      prefetch: 2,
      mixup: null,
      ...opts,
    };
  }

  /** Number of batches in an epoch. */
  get length(): number {
    const n = this.dataset.labels.length;
    return this.opts.dropLast ? Math.floor(n / this.opts.batchSize) : Math.ceil(n / this.opts.batchSize);
  }

  private start(): void {
    if (this.workers.length) return;
    for (let i = 0; i < this.opts.numWorkers; i++) {
      const w = new Worker(workerScript());
      w.postMessage({
        init: {
          images: this.dataset.images.buffer,
          labels: this.dataset.labels.buffer,
          shape: this.dataset.shape,
          spec: this.opts.augment,
          train: this.opts.train,
          seed: this.opts.seed,
          mixup: this.opts.mixup,
        },
      });
      w.on('message', (m: { id: number; x: Float32Array; y: Int32Array | Float32Array }) => {
        const p = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (this.waiting.size === 0) for (const x of this.workers) x.unref();
        p?.resolve(m);
      });
      w.on('error', (e) => {
        for (const p of this.waiting.values()) p.reject(e);
        this.waiting.clear();
      });
      w.unref(); // an idle loader never keeps the process alive; requests ref it
      this.workers.push(w);
    }
    if (!(this.dataset.images.buffer instanceof SharedArrayBuffer))
      throw new Error('DataLoader: the dataset must live in shared memory (use toShared())');
  }

  private request(epoch: number, batch: number, indices: number[]): Promise<{ x: Float32Array; y: Int32Array | Float32Array }> {
    const id = this.nextId++;
    const worker = this.workers[id % this.workers.length];
    return new Promise((resolve, reject) => {
      if (this.waiting.size === 0) for (const w of this.workers) w.ref();
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ request: { id, epoch, batch, indices } });
    });
  }

  /** The batches of one epoch, in order, prepared ahead on the workers. */
  async *epoch(epoch: number): AsyncGenerator<Batch> {
    this.start();
    const { batchSize, shuffle, seed, augment } = this.opts;
    const order = epochOrder(this.dataset.labels.length, seed, epoch, shuffle);
    const batches = this.length;
    const ahead = this.workers.length * this.opts.prefetch;
    const pending: Promise<{ x: Float32Array; y: Int32Array | Float32Array }>[] = [];
    let issued = 0;
    const issue = () => {
      const lo = issued * batchSize;
      const idx = Array.from(order.subarray(lo, Math.min(lo + batchSize, order.length)));
      pending.push(this.request(epoch, issued, idx));
      issued++;
    };
    while (issued < Math.min(ahead, batches)) issue();
    for (let b = 0; b < batches; b++) {
      const { x, y } = await pending.shift()!;
      if (issued < batches) issue();
      const n = x.length / (this.dataset.shape[0] * augment.size * augment.size);
      const soft = y instanceof Float32Array;
      yield { x: tensor(x, [n, this.dataset.shape[0], augment.size, augment.size]), y: tensor(y, soft ? [n, this.dataset.numClasses] : [n]) };
    }
  }

  /** Stops the worker threads. */
  async close(): Promise<void> {
    const ws = this.workers;
    this.workers = [];
    await Promise.all(ws.map((w) => w.terminate()));
  }
}
