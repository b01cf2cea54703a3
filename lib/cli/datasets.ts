// kw-train's datasets from upstream's --data_set / --data_path / --eval_data_path, plus IDX.
import * as fs from 'fs';
import * as path from 'path';
import { AugmentSpec } from '../data/augment';
import { loadCifar } from '../data/cifar';
import { loadIdxDataset } from '../data/idx';
import { DataLoader, ImageDataset, toShared } from '../data/loader';
import { MixupSpec } from '../data/mixup';
import { packageRoot } from '../native';

/** The dataset that ships with the package: a Fashion-MNIST subset (see data/). */
export const BUNDLED_DATA = path.join(packageRoot, 'data', 'fashion-mnist-small');

const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const INCEPTION = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
const FASHION = { mean: [0.286], std: [0.353] };

export interface Datasets {
  train: ImageDataset;
  val: ImageDataset | null;
  numClasses: number;
  inChans: number;
  mean: number[];
  std: number[];
  description: string;
}

export function buildDatasets(args: Record<string, unknown>): Datasets {
  const kind = String(args.data_set);
  const dataPath = String(args.data_path || '');
  const evalPath = (args.eval_data_path as string | null) || dataPath;
  const needEval = !args.disable_eval;
  if (kind === 'IDX') {
    const dir = dataPath || BUNDLED_DATA;
    const tr = loadIdxDataset(dir, 'train');
    const [n, h, w] = tr.images.shape;
    const train = toShared(tr.images.data, tr.labels, [1, h, w], 10);
    let val: ImageDataset | null = null;
    if (needEval) {
      const te = loadIdxDataset(evalPath || dir, 't10k');
      val = toShared(te.images.data, te.labels, [1, te.images.shape[1], te.images.shape[2]], 10);
    }
    const classes = Math.max(...train.labels) + 1;
    return { train, val, numClasses: Math.max(classes, 10), inChans: 1, ...FASHION, description: `IDX ${dir}: ${n} train${val ? ` / ${val.labels.length} test` : ''} images of ${h}×${w}` };
  }
  if (kind === 'CIFAR') {
    if (!dataPath) throw new Error('--data_set CIFAR needs --data_path (the folder holding cifar-100-binary/)');
    const classes = fs.existsSync(path.join(dataPath, 'cifar-10-batches-bin')) && !fs.existsSync(path.join(dataPath, 'cifar-100-binary')) ? 10 : 100;
    const tr = loadCifar(dataPath, classes, true);
    const train = toShared(tr.images, tr.labels, [3, 32, 32], classes);
    let val: ImageDataset | null = null;
    if (needEval) {
      const te = loadCifar(evalPath, classes, false);
      val = toShared(te.images, te.labels, [3, 32, 32], classes);
    }
    const norm = args.imagenet_default_mean_and_std ? IMAGENET : INCEPTION;
    return { train, val, numClasses: classes, inChans: 3, ...norm, description: `CIFAR-${classes} ${dataPath}: ${tr.labels.length} train images` };
  }
  throw new Error(`--data_set ${kind}: not supported by this version yet (supported: IDX, CIFAR)`);
}

export interface LoaderSet {
  train: DataLoader;
  val: DataLoader | null;
  mixup: boolean;
}

/** The small-input recipe (≤ 32 px): random crop with padding (--crop_padding, 4) and flips for training. */
export function buildLoaders(d: Datasets, args: Record<string, unknown>): LoaderSet {
  const size = Number(args.input_size);
  const [, h] = d.train.shape;
  if (size > 64) throw new Error(`--input_size ${size}: images of ${h}×${h} are trained at their own scale here; use --input_size ${h} (or ≤ 32)`);
  const trainAug: AugmentSpec = { size, padding: Number(args.crop_padding), flip: 0.5, mean: d.mean, std: d.std };
  const evalAug: AugmentSpec = { size, padding: Math.max(0, Math.ceil((size - h) / 2)), flip: 0, mean: d.mean, std: d.std };
  const mixupOn = Number(args.mixup) > 0 || Number(args.cutmix) > 0;
  const mixup: MixupSpec | null = mixupOn
    ? { mixupAlpha: Number(args.mixup), cutmixAlpha: Number(args.cutmix), prob: Number(args.mixup_prob), switchProb: Number(args.mixup_switch_prob), labelSmoothing: Number(args.smoothing), numClasses: d.numClasses }
    : null;
  const workers = Math.max(1, Math.min(Number(args.num_workers), 2));
  const batch = Number(args.batch_size);
  const seed = Number(args.seed);
  return {
    train: new DataLoader(d.train, { batchSize: batch, shuffle: true, dropLast: true, train: true, augment: trainAug, seed, numWorkers: workers, mixup }),
    val: d.val ? new DataLoader(d.val, { batchSize: Math.floor(1.5 * batch), shuffle: false, dropLast: false, train: false, augment: evalAug, seed, numWorkers: workers }) : null,
    mixup: mixupOn,
  };
}
