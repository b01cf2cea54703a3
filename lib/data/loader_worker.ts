// Data-loader worker: receives the shared dataset once, then batch requests (sample indices
// and the epoch); writes augmented float32 batches and transfers them back without copying.
import { parentPort } from 'worker_threads';
import { augmentInto, AugmentSpec, sampleRng } from './augment';
import { mixBatch, mixupActive, MixupSpec } from './mixup';

interface Init {
  images: SharedArrayBuffer;
  labels: SharedArrayBuffer;
  shape: [number, number, number];
  spec: AugmentSpec;
  train: boolean;
  seed: number;
  mixup: MixupSpec | null;
}
interface Request {
  id: number;
  epoch: number;
  batch: number;
  indices: number[];
}

let init: Init | null = null;
parentPort!.on('message', (msg: { init?: Init; request?: Request }) => {
  if (msg.init) {
    init = msg.init;
    return;
  }
  const req = msg.request!;
  const { shape, spec } = init!;
  const [c, h, w] = shape;
  const images = new Uint8Array(init!.images);
  const labels = new Uint8Array(init!.labels);
  const per = c * spec.size * spec.size;
  const x = new Float32Array(req.indices.length * per);
  const y = new Int32Array(req.indices.length);
  req.indices.forEach((idx, k) => {
    const rng = init!.train ? sampleRng(init!.seed, req.epoch, idx) : null;
    augmentInto(images.subarray(idx * c * h * w, (idx + 1) * c * h * w), c, h, w, spec, rng, x, k * per);
    y[k] = labels[idx];
  });
  if (init!.train && mixupActive(init!.mixup)) {
    // batch-level randomness: its own stream, keyed by the batch's position in the epoch
    const rand = sampleRng(init!.seed ^ 0x5bd1e995, req.epoch, req.batch);
    const soft = mixBatch(x, [req.indices.length, c, spec.size, spec.size], y, init!.mixup, rand);
    parentPort!.postMessage({ id: req.id, x, y: soft }, [x.buffer, soft.buffer as ArrayBuffer]);
    return;
  }
  parentPort!.postMessage({ id: req.id, x, y }, [x.buffer, y.buffer]);
});
