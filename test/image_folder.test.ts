// ImageFolder: torchvision's class and file order, decoding on the loader's workers (pixels equal
// the PNGs' sources), upstream's eval/train pipelines through the loader, errors naming the bad
// file, and kw-train on an ImageFolder of Fashion-MNIST PNGs (the must-show).
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { decodeImage, scanImageFolder } from '../lib/data/image_folder';
import { DataLoader } from '../lib/data/loader';
import { loadIdxDataset } from '../lib/data/idx';
import { BUNDLED_DATA, buildDatasets, buildLoaders, buildTransformSpec } from '../lib/cli/datasets';
import { runCli } from './helpers/cli';

const fashion = loadIdxDataset(BUNDLED_DATA, 'train');
const pix = (i: number) => fashion.images.data.subarray(i * 784, (i + 1) * 784);

async function writeGray(file: string, i: number): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(Buffer.from(pix(i)), { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(file);
}

/** An ImageFolder of Fashion-MNIST PNGs: n per class in class folders named after the labels. */
async function fashionFolder(perClass: number, offset: number): Promise<{ dir: string; sources: number[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imgfolder-'));
  const count = new Array(10).fill(0);
  const sources: number[] = [];
  for (let i = offset; sources.length < 10 * perClass; i++) {
    const y = fashion.labels[i];
    if (count[y] >= perClass) continue;
    await writeGray(path.join(dir, `class_${y}`, `img_${String(count[y]).padStart(3, '0')}.png`), i);
    count[y]++;
    sources.push(i);
  }
  return { dir, sources };
}

// (tap's deep comparison builds a diff of large arrays: compare plainly)
const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

async function collect(loader: DataLoader, epoch = 0): Promise<{ x: number[]; y: number[]; shape: number[] }> {
  const x: number[] = [], y: number[] = [];
  let shape: number[] = [];
  for await (const b of loader.epoch(epoch)) {
    x.push(...(b.x.data() as Float32Array));
    y.push(...Array.from(b.y.data() as Int32Array));
    shape = b.x.shape.slice();
    b.x.dispose();
    b.y.dispose();
  }
  await loader.close();
  return { x, y, shape };
}

t.test('class order, labels, file order (torchvision ImageFolder)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imgfolder-order-'));
  // Python sorts by code point: digits < upper case < lower case; '10' < '9'
  const names = ['b', 'a', 'C', '9', '10'];
  for (const [k, n] of names.entries()) {
    await writeGray(path.join(dir, n, 'z.PNG'), k);
    await writeGray(path.join(dir, n, 'B.jpeg.png'), k);
    await writeGray(path.join(dir, n, 'sub', 'a.png'), k);
    fs.writeFileSync(path.join(dir, n, 'notes.txt'), 'not an image: skipped as torchvision skips it');
  }
  fs.writeFileSync(path.join(dir, 'README'), 'a file at the root is not a class');
  const ds = scanImageFolder(dir);
  t.same(ds.classes, ['10', '9', 'C', 'a', 'b']);
  t.equal(ds.numClasses, 5);
  t.same(Array.from(ds.labels), [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
  t.same(ds.files.slice(0, 3).map((f) => path.relative(dir, f)), ['10/B.jpeg.png', '10/sub/a.png', '10/z.PNG']);
});

t.test('decoding: gray PNGs become RGB with the source pixels; JPEG decodes', async (t) => {
  const { dir, sources } = await fashionFolder(2, 0);
  const ds = scanImageFolder(dir);
  const img = await decodeImage(ds.files[0]);
  t.same([img.width, img.height], [28, 28]);
  const src = pix(sources.find((i) => fashion.labels[i] === 0)!);
  t.same(Array.from(img.data.filter((_, k) => k % 3 === 1)), Array.from(src), 'each channel is the gray value');
  const jpg = path.join(dir, 'x.jpg');
  await sharp({ create: { width: 5, height: 3, channels: 3, background: { r: 200, g: 10, b: 90 } } }).jpeg({ quality: 100 }).toFile(jpg);
  const j = await decodeImage(jpg);
  t.same([j.width, j.height], [5, 3]);
  t.ok(Math.abs(j.data[0] - 200) <= 2 && Math.abs(j.data[1] - 10) <= 2 && Math.abs(j.data[2] - 90) <= 2, `JPEG colour kept (${Array.from(j.data.subarray(0, 3))})`);
});

t.test('loader over an ImageFolder: pixels and labels in order, workers decode', async (t) => {
  const { dir, sources } = await fashionFolder(3, 100);
  const ds = scanImageFolder(dir);
  const plain = { size: 28, padding: 28, flip: 0, mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] }; // values pass through
  const { x, y, shape } = await collect(new DataLoader(ds, { batchSize: 7, shuffle: false, dropLast: false, train: false, augment: plain, numWorkers: 2 }));
  t.same(shape.slice(1), [3, 28, 28]);
  t.same(y, Array.from(ds.labels));
  const byClass = [...sources].sort((a, b) => fashion.labels[a] - fashion.labels[b] || sources.indexOf(a) - sources.indexOf(b));
  let ok = true;
  byClass.forEach((src, k) => {
    for (let c = 0; c < 3; c++) for (let p = 0; p < 784; p++) if (x[(k * 3 + c) * 784 + p] !== pix(src)[p]) ok = false;
  });
  t.ok(ok, 'every sample equals its source image in all three channels');
  // at 32 px the eval path centres the 28 px image in zeros
  const mean = [0, 0, 0], std = [1 / 255, 1 / 255, 1 / 255];
  const e32 = await collect(new DataLoader(ds, { batchSize: 30, shuffle: false, dropLast: false, train: false, augment: { size: 32, padding: 32, flip: 0, mean, std }, numWorkers: 1 }));
  t.same(e32.shape, [30, 3, 32, 32]);
  t.equal(e32.x[0], 0);
  t.equal(e32.x[2 * 32 + 2], pix(byClass[0])[0], 'the image starts at (2, 2)');
});

t.test('upstream pipelines through the loader: sizes, eval deterministic, train same for any worker count', async (t) => {
  const { dir } = await fashionFolder(2, 200);
  const ds = scanImageFolder(dir);
  const args = { input_size: 48, train_interpolation: 'bicubic', aa: 'rand-m9-mstd0.5-inc1', color_jitter: 0.4, crop_pct: null, reprob: 0.25, remode: 'pixel', recount: 1 };
  const spec = buildTransformSpec(args, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
  t.same(spec.eval, { mode: 'crop', resize: 54 }, 'resize to int(48 / 0.875) = 54, then crop 48');
  t.equal(spec.train.colorJitter, null, 'no color jitter when RandAugment is on (timm)');
  t.same(buildTransformSpec({ ...args, aa: 'none' }, [0, 0, 0], [1, 1, 1]).train.colorJitter, [0.4, 0.4, 0.4]);
  t.equal(buildTransformSpec({ ...args, input_size: 384 }, [0, 0, 0], [1, 1, 1]).eval.mode, 'warp');
  const trad = buildTransformSpec({ ...args, traditional_preprocess: true }, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]);
  t.same([trad.size, trad.eval.resize, trad.train.interpolation, trad.train.autoAugment, trad.train.reprob, trad.mean], [224, 256, 'bilinear', null, 0, [0.485, 0.456, 0.406]]);
  const augment = { size: 48, padding: 0, flip: 0, mean: spec.mean, std: spec.std };
  const ev = await collect(new DataLoader(ds, { batchSize: 8, shuffle: false, dropLast: false, train: false, augment, transform: spec, numWorkers: 2 }));
  t.same(ev.shape, [4, 3, 48, 48]);
  t.equal(ev.x.length, 20 * 3 * 48 * 48);
  const ev2 = await collect(new DataLoader(ds, { batchSize: 5, shuffle: false, dropLast: false, train: false, augment, transform: spec, numWorkers: 1 }));
  t.ok(same(ev.x, ev2.x), 'eval batches do not depend on batch size or workers');
  const train = (workers: number, epoch: number) =>
    collect(new DataLoader(ds, { batchSize: 6, shuffle: true, dropLast: true, train: true, augment, transform: spec, seed: 3, numWorkers: workers }), epoch);
  const a = await train(1, 1), b = await train(2, 1), c = await train(2, 2);
  t.ok(same(a.x, b.x), 'same augmented batches for 1 and 2 workers');
  t.notOk(same(a.x, c.x), 'another epoch, other augmentations');
  t.equal(a.x.length, 18 * 3 * 48 * 48);
});

t.test('bad files give errors naming the file', async (t) => {
  const { dir } = await fashionFolder(1, 300);
  const ds = scanImageFolder(dir);
  const bad = path.join(dir, 'class_0', 'broken.png');
  const good = fs.readFileSync(ds.files[0]);
  fs.writeFileSync(bad, good.subarray(0, good.length - 30)); // truncated PNG
  const notImage = path.join(dir, 'class_1', 'text.png');
  fs.writeFileSync(notImage, 'this is not a PNG');
  const plain = { size: 28, padding: 28, flip: 0, mean: [0, 0, 0], std: [1, 1, 1] };
  for (const file of [bad, notImage]) {
    const one = { ...scanImageFolder(dir) };
    const k = one.files.indexOf(file);
    const loader = new DataLoader({ ...one, files: [one.files[k]], labels: one.labels.subarray(k, k + 1) }, { batchSize: 1, shuffle: false, dropLast: false, train: false, augment: plain, numWorkers: 1 });
    await t.rejects(collect(loader), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot decode image`));
    await loader.close();
  }
  fs.mkdirSync(path.join(dir, 'class_empty'));
  t.throws(() => scanImageFolder(dir), /class folder .*class_empty holds no images/);
  t.throws(() => scanImageFolder(path.join(dir, 'nope')), /nope is not a folder/);
});

t.test('--data_set IMNET reads <data_path>/train and /val with 1000 classes; image_folder checks --nb_classes', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'imnet-'));
  for (const split of ['train', 'val']) for (const cls of ['n01', 'n02']) await writeGray(path.join(root, split, cls, 'a.png'), 0);
  const d = buildDatasets({ data_set: 'IMNET', data_path: root, imagenet_default_mean_and_std: true });
  t.equal(d.numClasses, 1000);
  t.match(d.description, /2 train \/ 2 eval images in 2 classes/);
  t.same(d.mean, [0.485, 0.456, 0.406]);
  const f = buildDatasets({ data_set: 'image_folder', data_path: path.join(root, 'train'), eval_data_path: path.join(root, 'val'), nb_classes: 2, imagenet_default_mean_and_std: false });
  t.same([f.numClasses, f.mean], [2, [0.5, 0.5, 0.5]]);
  t.throws(() => buildDatasets({ data_set: 'image_folder', data_path: '', nb_classes: 2 }), /needs --data_path/);
  const loaders = buildLoaders(f, { input_size: 64, train_interpolation: 'bilinear', aa: 'rand-m9-mstd0.5-inc1', color_jitter: 0.4, crop_pct: null, reprob: 0.25, remode: 'pixel', recount: 1, crop_padding: 4, mixup: 0, cutmix: 0, num_workers: 1, batch_size: 2, seed: 0 });
  const b = await collect(loaders.val!);
  t.same(b.shape, [2, 3, 64, 64]);
  await loaders.train.close();
  t.throws(() => buildLoaders(f, { input_size: 64, train_interpolation: 'lanczos', aa: null, crop_padding: 4 }), /--train_interpolation lanczos/);
  t.throws(() => buildLoaders(f, { input_size: 64, train_interpolation: 'bicubic', aa: 'rand-x9', remode: 'pixel' }), /unknown key 'x'/);
});

const run = runCli;

t.test('kw-train --data_set image_folder on Fashion-MNIST PNGs (kw1x_resnet18 at 32 px, 1 epoch)', async (t) => {
  const train = await fashionFolder(7, 1000); // 70 images
  const val = await fashionFolder(3, 2000); // 30 images
  const flags = ['--kw_config', 'configs/resnet18/kw1x_resnet18.json', '--data_set', 'image_folder', '--data_path', train.dir,
    '--eval_data_path', val.dir, '--nb_classes', '10', '--input_size', '32', '--epochs', '1', '--batch_size', '16', '--num_workers', '2'];
  const r = await run(flags);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /ImageFolder .*: 70 train \/ 30 eval images in 10 classes/);
  t.match(r.out, /epoch 1\/1: train loss [\d.]+, test loss [\d.]+, acc@1 [\d.]+%/);
  t.match(r.out, /the warmup \(20 epochs\) is longer than the run; warming up over all 1 epoch/, 'upstream\'s default warmup is cut to the run');
  const wrong = await run([...flags, '--nb_classes', '12']).catch((e: Error) => ({ code: 1, out: '', err: e.message }));
  t.match(wrong.err, /--nb_classes 12, but .* holds 10 class folders/);
});
