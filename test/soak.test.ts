// A long run in small: hundreds of training steps of a KW ResNet through the real trainer and
// DataLoader, showing native memory flat after warm-up, RSS bounded, and no threads or file
// descriptors left behind once the loaders are closed.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as kw from '../lib';
import { parseArgs } from '../lib/cli/args';
import { DataLoader, toShared } from '../lib/data/loader';
import { train, TrainArgs, TrainableModel } from '../lib/train/trainer';
import { Progress } from '../lib/train/progress';

const SIZE = 16, N = 256, BATCH = 8, EPOCHS = 16; // 32 steps per epoch, 512 steps

function stripes(n: number, seed: number) {
  const images = new Uint8Array(n * SIZE * SIZE);
  const labels = new Uint8Array(n);
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 10;
    for (let p = 0; p < SIZE * SIZE; p++) images[i * SIZE * SIZE + p] = Math.floor(rnd() * 80) + ((p % SIZE) % 10 === labels[i] ? 150 : 0);
  }
  return toShared(images, labels, [1, SIZE, SIZE], 10);
}

const openFds = () => fs.readdirSync('/proc/self/fd').length;
const osThreads = () => Number(/^Threads:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]);
const workerHandles = () => (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo().filter((r) => /Worker|MessagePort/.test(r)).length;

t.test(`soak: ${EPOCHS * (N / BATCH)} steps of kw_resnet_mini at ${SIZE}×${SIZE}, batch ${BATCH}`, { skip: process.platform !== 'linux' ? 'reads /proc/self/fd' : false }, async (t) => {
  const fdsBefore = openFds();
  const workersBefore = workerHandles();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'soak-'));
  const augment = { size: SIZE, padding: 2, flip: 0.5, mean: [0.5], std: [0.25] };
  const trainLoader = new DataLoader(stripes(N, 1), { batchSize: BATCH, shuffle: true, dropLast: true, train: true, augment, numWorkers: 2 });
  const evalLoader = new DataLoader(stripes(64, 2), { batchSize: 32, shuffle: false, dropLast: false, train: false, augment, numWorkers: 1 });
  const model = kw.createModel('kw_resnet_mini', { inChans: 1, numClasses: 10, generator: new kw.Generator(0) }) as unknown as TrainableModel;
  // native thread pools start on first use: warm them up before counting threads
  kw.noGrad(() => kw.tidy(() => {
    model.forward(kw.zeros([BATCH, 1, SIZE, SIZE]));
  }));
  const threadsBefore = osThreads();
  let threadsDuring = 0;
  const args = parseArgs([
    '--opt', 'adamw', '--lr', '1e-3', '--warmup_epochs', '1', '--epochs', String(EPOCHS), '--temp_epoch', '3',
    '--clip_grad', '1', '--model_ema', 'true', '--model_ema_eval', 'true', '--output_dir', dir, '--save_ckpt_num', '1',
  ]) as unknown as TrainArgs;

  let workersDuring = 0;
  const live: number[] = [];
  const rss: number[] = [];
  const stepsPerEpoch = N / BATCH;
  const result = await train({
    model, trainLoader, evalLoader, args,
    createEmaModel: () => kw.createModel('kw_resnet_mini', { inChans: 1, numClasses: 10, generator: new kw.Generator(0) }) as unknown as TrainableModel,
    log: () => {},
    progress: { update() {}, done() {} } as unknown as Progress,
    onStep: (s) => {
      live.push(kw.memoryStats().liveBytes);
      workersDuring = Math.max(workersDuring, workerHandles());
      threadsDuring = Math.max(threadsDuring, osThreads());
      if (s.step === stepsPerEpoch) rss.push(process.memoryUsage().rss);
    },
  });
  t.equal(result.history.length, EPOCHS);
  t.equal(live.length, EPOCHS * stepsPerEpoch);
  // warm-up: the first epoch allocates the optimizer and EMA state and the first checkpoint
  const steady = live.slice(stepsPerEpoch);
  t.equal(Math.min(...steady), Math.max(...steady), `native live bytes flat over ${steady.length} steps (${steady[0]} bytes)`);
  // RSS after epoch 2 against the end: allocator caches settle by then; allow 48 MiB of slack
  const growth = (rss[rss.length - 1] - rss[1]) / 2 ** 20;
  t.ok(growth < 48, `RSS growth after warm-up ${growth.toFixed(1)} MiB (${rss.map((r) => (r / 2 ** 20).toFixed(0)).join(', ')} MiB per epoch)`);

  model.dispose();
  await trainLoader.close();
  await evalLoader.close();
  await new Promise((r) => setImmediate(r));
  t.ok(workersDuring > workersBefore, `the loaders' workers were seen while training (${workersDuring} handles)`);
  t.equal(workerHandles(), workersBefore, 'no worker handles or message ports left after close()');
  t.ok(threadsDuring >= threadsBefore + 3, `3 loader worker threads while training (${threadsBefore} → ${threadsDuring} OS threads)`);
  t.equal(osThreads(), threadsBefore, 'OS thread count back to its pre-training value after close()');
  t.equal(openFds(), fdsBefore, 'no file descriptors left open');
});
