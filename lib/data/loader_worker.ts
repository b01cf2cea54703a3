// Data-loader worker: receives the dataset description once, then batch requests (sample
// indices and the epoch; for image-file datasets also the files and labels). In-memory images
// are read from shared memory; files are decoded here (sharp) and transformed. The float32
// batch is transferred back without copying. A failure answers the request with its message.
import { parentPort } from 'worker_threads';
import { augmentInto, AugmentSpec, sampleRng } from './augment';
import { decodeImage } from './image_folder';
import { mixBatch, mixupActive, MixupSpec } from './mixup';
import { transformInto } from './pipeline';
import { RGBImage, TransformSpec } from './transforms';

interface Init {
  images: SharedArrayBuffer | null;
  labels: SharedArrayBuffer | null;
  shape: [number, number, number] | null;
  transform: TransformSpec | null;
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
  files?: string[];
  labels?: number[];
}

/** HWC RGB → CHW bytes (the layout augmentInto reads). */
function toCHW(img: RGBImage): Uint8Array {
  const n = img.width * img.height;
  const out = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    out[i] = img.data[i * 3];
    out[n + i] = img.data[i * 3 + 1];
    out[2 * n + i] = img.data[i * 3 + 2];
  }
  return out;
}

async function fromFiles(req: Request, ini: Init, x: Float32Array, per: number): Promise<Int32Array> {
  const images = await Promise.all(req.files!.map(decodeImage));
  images.forEach((img, k) => {
    const rng = ini.train ? sampleRng(ini.seed, req.epoch, req.indices[k]) : null;
    if (ini.transform) transformInto(img, ini.transform, rng, x, k * per);
    else augmentInto(toCHW(img), 3, img.height, img.width, ini.spec, rng, x, k * per);
  });
  return Int32Array.from(req.labels!);
}

function fromMemory(req: Request, ini: Init, x: Float32Array, per: number): Int32Array {
  const [c, h, w] = ini.shape!;
  const images = new Uint8Array(ini.images!);
  const labels = new Uint8Array(ini.labels!);
  const y = new Int32Array(req.indices.length);
  req.indices.forEach((idx, k) => {
    const rng = ini.train ? sampleRng(ini.seed, req.epoch, idx) : null;
    augmentInto(images.subarray(idx * c * h * w, (idx + 1) * c * h * w), c, h, w, ini.spec, rng, x, k * per);
    y[k] = labels[idx];
  });
  return y;
}

let init: Init | null = null;
parentPort!.on('message', async (msg: { init?: Init; request?: Request }) => {
  if (msg.init) {
    init = msg.init;
    return;
  }
  const req = msg.request!;
  const ini = init!;
  try {
    const c = ini.shape ? ini.shape[0] : 3;
    const size = ini.spec.size;
    const per = c * size * size;
    const x = new Float32Array(req.indices.length * per);
    const y = req.files ? await fromFiles(req, ini, x, per) : fromMemory(req, ini, x, per);
    if (ini.train && mixupActive(ini.mixup)) {
      // batch-level randomness: its own stream, keyed by the batch's position in the epoch
      const rand = sampleRng(ini.seed ^ 0x5bd1e995, req.epoch, req.batch);
      const soft = mixBatch(x, [req.indices.length, c, size, size], y, ini.mixup, rand);
      parentPort!.postMessage({ id: req.id, x, y: soft }, [x.buffer, soft.buffer as ArrayBuffer]);
      return;
    }
    parentPort!.postMessage({ id: req.id, x, y }, [x.buffer, y.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id: req.id, error: (e as Error).message });
  }
});
