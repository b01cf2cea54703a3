// The training loop on a tiny synthetic task: learning, logs, checkpoints, resume, errors.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as kw from '../lib';
import { parseArgs } from '../lib/cli/args';
import { DataLoader, toShared } from '../lib/data/loader';
import { train, evaluate, TrainArgs, TrainableModel } from '../lib/train/trainer';
import { loadCheckpoint, disposeCheckpoint } from '../lib/train/checkpoint';
import { Progress } from '../lib/train/progress';

// 4 classes: which quadrant of an 8×8 image is bright
function quadrants(n: number, seed: number) {
  const images = new Uint8Array(n * 64);
  const labels = new Uint8Array(n);
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  for (let i = 0; i < n; i++) {
    const c = i % 4;
    labels[i] = c;
    for (let p = 0; p < 64; p++) {
      const y = p >> 3, x = p & 7;
      const inQ = (y < 4) === (c < 2) && (x < 4) === (c % 2 === 0);
      images[i * 64 + p] = Math.min(255, (inQ ? 150 : 40) + Math.floor(rnd() * 60));
    }
  }
  return toShared(images, labels, [1, 8, 8], 4);
}

class TinyNet extends kw.Module implements TrainableModel {
  conv = this.registerModule('conv', new kw.Conv2d(1, 4, 3, { padding: 1, generator: new kw.Generator(1) }));
  fc = this.registerModule('fc', new kw.Linear(4 * 4 * 4, 4, true, { generator: new kw.Generator(2) }));
  forward(x: kw.Tensor): kw.Tensor {
    const h = kw.maxPool2d(kw.relu(this.conv.forward(x)), 2);
    return this.fc.forward(kw.flatten(h));
  }
}

const augment = { size: 8, padding: 0, flip: 0, mean: [0.5], std: [0.25] };
function loaders() {
  return {
    trainLoader: new DataLoader(quadrants(64, 1), { batchSize: 8, shuffle: true, dropLast: true, train: true, augment, numWorkers: 1 }),
    evalLoader: new DataLoader(quadrants(32, 2), { batchSize: 16, shuffle: false, dropLast: false, train: false, augment, numWorkers: 1 }),
  };
}
function args(extra: string[]): TrainArgs {
  return parseArgs(['--opt', 'sgd', '--lr', '0.05', '--warmup_epochs', '0', '--smoothing', '0', '--weight_decay', '0', ...extra]) as unknown as TrainArgs;
}
// no progress output from the tests
const quiet = { log: () => {}, progress: { update() {}, done() {} } as unknown as Progress };

t.test('trains, logs one JSON line per epoch, rotates checkpoints, resumes', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'train-'));
  const { trainLoader, evalLoader } = loaders();
  const model = new TinyNet();
  const before = await evaluate(model, evalLoader);
  const r = await train({ model, trainLoader, evalLoader, args: args(['--epochs', '4', '--output_dir', dir, '--save_ckpt_num', '2']), ...quiet });
  t.equal(r.history.length, 4);
  t.ok(r.history[3].train_loss < r.history[0].train_loss, `loss falls: ${r.history.map((h) => h.train_loss.toFixed(3))}`);
  t.ok(r.history[3].test_acc1! > before.acc1 && r.history[3].test_acc1! >= 90, `accuracy ${before.acc1} → ${r.history[3].test_acc1}`);
  const lines = fs.readFileSync(path.join(dir, 'log.txt'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.same(lines.map((l) => l.epoch), [0, 1, 2, 3]);
  t.same(Object.keys(lines[0]).sort(), ['epoch', 'n_parameters', 'test_acc1', 'test_acc5', 'test_loss', 'train_class_acc', 'train_loss', 'train_lr', 'train_min_lr', 'train_weight_decay'].sort());
  t.equal(lines[0].n_parameters, 4 * 9 + 4 + 64 * 4 + 4);
  const files = fs.readdirSync(dir).filter((f) => f.startsWith('checkpoint-')).sort();
  t.same(files, ['checkpoint-2.safetensors', 'checkpoint-3.safetensors', 'checkpoint-best.safetensors'], 'keeps save_ckpt_num checkpoints plus best');
  const ck = loadCheckpoint(path.join(dir, 'checkpoint-3.safetensors'));
  t.equal(ck.meta.epoch, 3);
  t.ok(ck.optimizer.has('0.momentum_buffer'), 'optimizer state saved');
  t.same([...ck.model.keys()], [...model.stateDict().keys()]);
  disposeCheckpoint(ck);

  // resuming with more epochs continues from epoch 4 and appends to the log
  const model2 = new TinyNet();
  const r2 = await train({ model: model2, trainLoader, evalLoader, args: args(['--epochs', '5', '--output_dir', dir, '--save_ckpt_num', '2']), ...quiet });
  t.same(r2.history.map((h) => h.epoch), [4]);
  t.same(model2.stateDict().get('conv.weight')!.shape, [4, 1, 3, 3]);
  const lines2 = fs.readFileSync(path.join(dir, 'log.txt'), 'utf8').trim().split('\n');
  t.equal(lines2.length, 5, 'every epoch once');
  await trainLoader.close();
  await evalLoader.close();
});

t.test('a run killed mid-epoch and auto-resumed ends with the same weights as an uninterrupted one', async (t) => {
  const run = async (dir: string, stopAfterEpochs: number | null) => {
    const { trainLoader, evalLoader } = loaders();
    const m = new TinyNet();
    let done = 0;
    const r = await train({
      model: m, trainLoader, evalLoader, args: args(['--epochs', '3', '--output_dir', dir]), ...quiet,
      onEpoch: () => done++,
      // stop at the first step of the next epoch: its in-memory updates are lost, as in a kill
      shouldStop: () => stopAfterEpochs !== null && done >= stopAfterEpochs,
    });
    await trainLoader.close();
    await evalLoader.close();
    return { r, w: Array.from(m.stateDict().get('fc.weight')!.data() as Float32Array) };
  };
  const a = await run(fs.mkdtempSync(path.join(os.tmpdir(), 'full-')), null);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'part-'));
  const first = await run(dir, 2);
  t.equal(first.r.stopped, true);
  const b = await run(dir, null);
  t.same(b.r.history.map((h) => h.epoch), [2], 'resumed at epoch 2');
  t.same(b.w, a.w, 'final weights agree bit for bit');
  t.same(b.r.history[0].train_loss, a.r.history[2].train_loss, 'same loss for the resumed epoch');
  const log = fs.readFileSync(path.join(dir, 'log.txt'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).epoch);
  t.same(log, [0, 1, 2], 'the log has every epoch once');
});

t.test('a non-finite loss stops with a clear message', async (t) => {
  const { trainLoader, evalLoader } = loaders();
  await t.rejects(train({ model: new TinyNet(), trainLoader, evalLoader, args: args(['--epochs', '1', '--lr', '1e30']), ...quiet }), /loss is (NaN|Infinity|-Infinity) at epoch 0, iteration \d+: stopping training/);
  await trainLoader.close();
  await evalLoader.close();
});
