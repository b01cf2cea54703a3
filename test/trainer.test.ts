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

// 4 classes: which quadrant of an 8×8 image is bright (test/helpers/quadrants.js)
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { quadrantImages } = require('./helpers/quadrants.js') as {
  quadrantImages: (n: number, seed: number) => { images: Uint8Array; labels: Uint8Array };
};
function quadrants(n: number, seed: number) {
  const { images, labels } = quadrantImages(n, seed);
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

t.test('a run stopped mid-epoch and auto-resumed ends with the same weights as an uninterrupted one', async (t) => {
  const run = async (dir: string, stopAfterEpochs: number | null) => {
    const { trainLoader, evalLoader } = loaders();
    const m = new TinyNet();
    let done = 0;
    const r = await train({
      model: m, trainLoader, evalLoader, args: args(['--epochs', '3', '--output_dir', dir]), ...quiet,
      onEpoch: () => done++,
      // stop after the first step of the next epoch: it is saved mid-epoch and resumed from there
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

t.test('SIGINT-style stop mid-epoch saves checkpoint-interrupted; auto-resume continues bit for bit', async (t) => {
  // update_freq 2: 8 batches = 4 optimizer steps per epoch; stop after the 2nd step of epoch 1
  const extra = ['--epochs', '3', '--update_freq', '2', '--momentum', '0.9'];
  const run = async (dir: string, stopAt: { epoch: number; step: number } | null) => {
    const { trainLoader, evalLoader } = loaders();
    const m = new TinyNet();
    let at = { epoch: -1, step: -1 };
    const r = await train({
      model: m, trainLoader, evalLoader, args: args([...extra, '--output_dir', dir]), ...quiet,
      onStep: (s) => (at = { epoch: s.epoch, step: s.step }),
      shouldStop: () => stopAt !== null && at.epoch === stopAt.epoch && at.step >= stopAt.step,
    });
    await trainLoader.close();
    await evalLoader.close();
    const sd = m.stateDict();
    return { r, w: [...sd.values()].map((v) => Array.from(v.data() as Float32Array)) };
  };
  const fullDir = fs.mkdtempSync(path.join(os.tmpdir(), 'full-'));
  const a = await run(fullDir, null);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sigint-'));
  const first = await run(dir, { epoch: 1, step: 3 }); // step 3 is odd: it waits for step 4's boundary
  t.equal(first.r.stopped, true);
  t.same(first.r.history.map((h) => h.epoch), [0]);
  const ckFile = path.join(dir, 'checkpoint-interrupted.safetensors');
  t.ok(fs.existsSync(ckFile), 'mid-epoch checkpoint written');
  const ck = loadCheckpoint(ckFile);
  t.equal(ck.meta.epoch, 1, 'records the epoch in progress');
  t.same((ck.meta.extra.interrupted as { iter: number }).iter, 4, 'stopped on an optimizer-step boundary (iteration 4 of 8)');
  disposeCheckpoint(ck);
  {
    // a different seed would replay a different order: refused, naming the file and the flag
    const { trainLoader, evalLoader } = loaders();
    await t.rejects(
      train({ model: new TinyNet(), trainLoader, evalLoader, args: args([...extra, '--output_dir', dir, '--seed', '7']), ...quiet }),
      /checkpoint-interrupted\.safetensors stopped mid-epoch with --seed 0, this run has --seed 7/,
    );
    await trainLoader.close();
    await evalLoader.close();
  }
  const b = await run(dir, null);
  t.same(b.r.history.map((h) => h.epoch), [1, 2], 'resumed inside epoch 1');
  t.same(b.w, a.w, 'final weights agree bit for bit with the uninterrupted run');
  t.same(b.r.history[0].train_loss, a.r.history[1].train_loss, 'the resumed epoch reports the whole epoch\'s loss');
  t.same(b.r.history[0].train_class_acc, a.r.history[1].train_class_acc);
  const log = (d: string) => fs.readFileSync(path.join(d, 'log.txt'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.same(log(dir), log(fullDir), 'log.txt identical to the uninterrupted run, every epoch once');
  t.notOk(fs.existsSync(ckFile), 'the interrupted checkpoint is removed once a later epoch checkpoint exists');
});

t.test('log.txt is repaired on resume after a kill between checkpoint save and log append', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logfix-'));
  const go = async (epochs: string) => {
    const { trainLoader, evalLoader } = loaders();
    await train({ model: new TinyNet(), trainLoader, evalLoader, args: args(['--epochs', epochs, '--output_dir', dir]), ...quiet });
    await trainLoader.close();
    await evalLoader.close();
  };
  await go('2');
  const logFile = path.join(dir, 'log.txt');
  const lines = fs.readFileSync(logFile, 'utf8').trim().split('\n');
  // the append of epoch 1 never happened, and a torn line plus a line of an epoch to be redone are there
  fs.writeFileSync(logFile, lines[0] + '\n' + '{"epoch": 2, "train_loss": 1}\n{"epo');
  await go('3');
  const epochs = fs.readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l).epoch);
  t.same(epochs, [0, 1, 2]);
  t.same(JSON.parse(fs.readFileSync(logFile, 'utf8').split('\n')[1]), JSON.parse(lines[1]), 'epoch 1 restored from its checkpoint');
});

t.test('a failed checkpoint save stops training, names the file, leaves the previous checkpoint intact', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fullsave-'));
  // a directory in the way makes the rename onto checkpoint-1 fail, as a full disk fails a write
  // (permissions cannot simulate it: the tests may run as root)
  fs.mkdirSync(path.join(dir, 'checkpoint-1.safetensors', 'x'), { recursive: true });
  const { trainLoader, evalLoader } = loaders();
  let saved0: Buffer | null = null;
  await t.rejects(
    train({
      model: new TinyNet(), trainLoader, evalLoader, args: args(['--epochs', '3', '--output_dir', dir]), ...quiet,
      onEpoch: (s) => {
        if (s.epoch === 0) saved0 = fs.readFileSync(path.join(dir, 'checkpoint-0.safetensors'));
      },
    }),
    /could not save checkpoint .*checkpoint-1\.safetensors: .*write failed.*Training stopped; the previous checkpoint .*checkpoint-0\.safetensors is intact/,
  );
  await trainLoader.close();
  await evalLoader.close();
  t.ok(saved0, 'epoch 0 was checkpointed');
  t.same(fs.readFileSync(path.join(dir, 'checkpoint-0.safetensors')), saved0, 'checkpoint-0 unchanged');
  const ck = loadCheckpoint(path.join(dir, 'checkpoint-0.safetensors'));
  t.equal(ck.meta.epoch, 0);
  disposeCheckpoint(ck);
  t.same(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temp file left behind');
  const epochs = fs.readFileSync(path.join(dir, 'log.txt'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).epoch);
  t.same(epochs, [0], 'the failed epoch is not logged');
});

t.test('a warmup longer than the run is cut to the run, with a note', async (t) => {
  const { trainLoader, evalLoader } = loaders();
  const notes: string[] = [];
  const r = await train({ model: new TinyNet(), trainLoader, evalLoader, args: args(['--epochs', '1', '--warmup_epochs', '20']), ...quiet, log: (s) => notes.push(s) });
  t.equal(r.history.length, 1);
  t.match(notes.join('\n'), /warmup \(20 epochs\) is longer than the run; warming up over all 1 epoch/);
  await trainLoader.close();
  await evalLoader.close();
});
