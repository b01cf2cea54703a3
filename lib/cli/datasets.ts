// kw-train's datasets from upstream's --data_set / --data_path / --eval_data_path, plus IDX.
import * as fs from 'fs';
import * as path from 'path';
import { AugmentSpec } from '../data/augment';
import { loadCifar } from '../data/cifar';
import { loadIdxDataset } from '../data/idx';
import { scanImageFolder } from '../data/image_folder';
import { DataLoader, Dataset, ImageDataset, toShared } from '../data/loader';
import { DistributedSampler } from '../distributed/sampler';
import { World } from '../distributed/world';
import { MixupSpec } from '../data/mixup';
import { parseRandAugment } from '../data/randaugment';
import { Interpolation, TransformSpec } from '../data/transforms';
import { packageRoot } from '../native';

/** The dataset that ships with the package: a Fashion-MNIST subset (see data/). */
export const BUNDLED_DATA = path.join(packageRoot, 'data', 'fashion-mnist-small');

const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const INCEPTION = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
const FASHION = { mean: [0.286], std: [0.353] };

export interface Datasets {
  train: Dataset;
  val: Dataset | null;
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
  if (kind === 'image_folder' || kind === 'IMNET') {
    // upstream: IMNET reads <data_path>/train and <data_path>/val with 1000 classes;
    // image_folder reads data_path and eval_data_path and checks --nb_classes against the folders
    if (!dataPath) throw new Error(`--data_set ${kind} needs --data_path (${kind === 'IMNET' ? 'the folder holding train/ and val/' : 'a folder of class folders'})`);
    const trainRoot = kind === 'IMNET' ? path.join(dataPath, 'train') : dataPath;
    const evalRoot = kind === 'IMNET' ? path.join(dataPath, 'val') : evalPath;
    const train = scanImageFolder(trainRoot);
    const val = needEval ? scanImageFolder(evalRoot) : null;
    let numClasses = 1000;
    if (kind === 'image_folder') {
      numClasses = Number(args.nb_classes);
      if (train.numClasses !== numClasses) throw new Error(`--nb_classes ${numClasses}, but ${trainRoot} holds ${train.numClasses} class folders`);
    } else if (train.numClasses > numClasses) throw new Error(`--data_set IMNET: ${trainRoot} holds ${train.numClasses} class folders, more than ImageNet's 1000`);
    if (val && val.numClasses !== train.numClasses)
      throw new Error(`${evalRoot} holds ${val.numClasses} class folders but ${trainRoot} holds ${train.numClasses}: the labels would not match`);
    const norm = args.imagenet_default_mean_and_std || args.traditional_preprocess ? IMAGENET : INCEPTION;
    return { train: { ...train, numClasses }, val: val && { ...val, numClasses }, numClasses, inChans: 3, ...norm,
      description: `ImageFolder ${trainRoot}: ${train.files.length} train${val ? ` / ${val.files.length} eval` : ''} images in ${train.numClasses} classes` };
  }
  throw new Error(`--data_set ${kind}: not supported (supported: IDX, CIFAR, image_folder, IMNET)`);
}

export interface LoaderSet {
  train: DataLoader;
  val: DataLoader | null;
  mixup: boolean;
}

/**
 * Upstream's image pipeline for inputs > 32 px (datasets.py): RandomResizedCrop + flip + color
 * jitter or RandAugment + random erasing for training; resize by crop_pct + center crop (or a
 * warp at ≥ 384) for evaluation; --traditional_preprocess is MobileNetV2's 224 px recipe.
 */
export function buildTransformSpec(args: Record<string, unknown>, mean: number[], std: number[]): TransformSpec {
  const scale: [number, number] = [0.08, 1];
  const ratio: [number, number] = [3 / 4, 4 / 3];
  if (args.traditional_preprocess) {
    return {
      size: 224, mean: IMAGENET.mean, std: IMAGENET.std,
      train: { scale, ratio, interpolation: 'bilinear', flip: 0.5, colorJitter: null, autoAugment: null, reprob: 0, remode: 'pixel', recount: 1 },
      eval: { mode: 'crop', resize: 256 },
    };
  }
  const size = Number(args.input_size);
  const interp = String(args.train_interpolation);
  if (interp !== 'bicubic' && interp !== 'bilinear') throw new Error(`--train_interpolation ${interp}: supported are bicubic and bilinear`);
  const aaArg = args.aa == null ? '' : String(args.aa);
  const autoAugment = aaArg === '' || aaArg.toLowerCase() === 'none' ? null : aaArg;
  if (autoAugment && !autoAugment.startsWith('rand')) throw new Error(`--aa ${autoAugment}: only RandAugment ('rand-...') policies are supported`);
  if (autoAugment) parseRandAugment(autoAugment); // a bad policy fails here, not in a worker
  const remode = String(args.remode);
  if (!['pixel', 'rand', 'const', ''].includes(remode)) throw new Error(`--remode ${remode}: one of pixel, rand, const`);
  const cj = Number(args.color_jitter);
  const cropPct = args.crop_pct == null ? 224 / 256 : Number(args.crop_pct);
  return {
    size, mean, std,
    train: {
      scale, ratio, interpolation: interp as Interpolation, flip: 0.5,
      colorJitter: autoAugment || !(cj > 0) ? null : [cj, cj, cj],
      autoAugment, reprob: Number(args.reprob), remode, recount: Number(args.recount),
    },
    eval: size >= 384 ? { mode: 'warp', resize: size } : { mode: 'crop', resize: Math.trunc(size / cropPct) },
  };
}

/**
 * In-memory datasets and small image files (≤ 32 px): random crop with padding (--crop_padding, 4)
 * and flips for training; larger image files: upstream's pipeline (buildTransformSpec).
 */
export function buildLoaders(d: Datasets, args: Record<string, unknown>, world?: World): LoaderSet {
  const isFolder = 'kind' in d.train;
  const transform = isFolder && (Number(args.input_size) > 32 || args.traditional_preprocess) ? buildTransformSpec(args, d.mean, d.std) : null;
  const size = transform ? transform.size : Number(args.input_size);
  const mean = transform ? transform.mean : d.mean, std = transform ? transform.std : d.std;
  // image files of any size: a padding as large as the output centres (crops or pads) every image
  const h = 'kind' in d.train ? size : d.train.shape[1];
  if (!isFolder && size > 64) throw new Error(`--input_size ${size}: images of ${h}×${h} are trained at their own scale here; use --input_size ${h} (or ≤ 32)`);
  const trainAug: AugmentSpec = { size, padding: Number(args.crop_padding), flip: 0.5, mean, std };
  const evalAug: AugmentSpec = { size, padding: isFolder ? size : Math.max(0, Math.ceil((size - h) / 2)), flip: 0, mean, std };
  const mixupOn = Number(args.mixup) > 0 || Number(args.cutmix) > 0;
  const mixup: MixupSpec | null = mixupOn
    ? { mixupAlpha: Number(args.mixup), cutmixAlpha: Number(args.cutmix), prob: Number(args.mixup_prob), switchProb: Number(args.mixup_switch_prob), labelSmoothing: Number(args.smoothing), numClasses: d.numClasses }
    : null;
  const workers = Math.max(1, Math.min(Number(args.num_workers), 2));
  const batch = Number(args.batch_size);
  const seed = Number(args.seed);
  // data-parallel (upstream main.py): each rank its DistributedSampler share of the training set;
  // of the evaluation set too with --dist_eval, else every rank evaluates all of it
  const shard = (ds: Dataset, shuffle: boolean) =>
    world?.distributed ? new DistributedSampler(ds.labels.length, { numReplicas: world.size, rank: world.rank, shuffle, seed }) : null;
  const valSampler = d.val && args.dist_eval ? shard(d.val, false) : null;
  return {
    // augmentation and Mixup/CutMix draws seeded with seed + rank, as upstream seeds each rank
    // (the sampler keeps the shared seed for the order)
    train: new DataLoader(d.train, { batchSize: batch, shuffle: true, dropLast: true, train: true, augment: trainAug, seed: seed + (world?.rank ?? 0), numWorkers: workers, mixup, transform, sampler: shard(d.train, true) }),
    val: d.val ? new DataLoader(d.val, { batchSize: Math.floor(1.5 * batch), shuffle: false, dropLast: false, train: false, augment: evalAug, seed, numWorkers: workers, transform, sampler: valSampler }) : null,
    mixup: mixupOn,
  };
}
