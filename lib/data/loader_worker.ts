// Data-loader worker: receives the shared dataset once, then batch requests (sample indices
// and the epoch); writes augmented float32 batches and transfers them back without copying.
import { parentPort } from 'worker_threads';
import { augmentInto, AugmentSpec, sampleRng } from './augment';

interface Init {
  images: SharedArrayBuffer;
  labels: SharedArrayBuffer;
  shape: [number, number, number];
  spec: AugmentSpec;
  train: boolean;
  seed: number;
}
interface Request {
  id: number;
  epoch: number;
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
  parentPort!.postMessage({ id: req.id, x, y }, [x.buffer, y.buffer]);
});
