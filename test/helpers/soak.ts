// The soak run shared by test/soak.test.ts (512 steps, in `npm test`) and test/soak_long.ts
// (`npm run soak`, 3,072 steps): a KW ResNet trained through the real trainer and DataLoader
// workers (AdamW, EMA, clipping, a checkpoint every epoch), measuring native live bytes every
// step, RSS, OS threads and open file descriptors, and checking that nothing grows after
// warm-up and that the loaders leave no threads, handles or descriptors behind.
import type tap from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as kw from '../../lib';
import { parseArgs } from '../../lib/cli/args';
import { DataLoader, toShared } from '../../lib/data/loader';
import { train, TrainArgs, TrainableModel } from '../../lib/train/trainer';
import { Progress } from '../../lib/train/progress';

type T = Pick<typeof tap, 'equal' | 'ok' | 'same' | 'comment'>;

export interface SoakOptions {
  /** Training images (steps per epoch = images / batch). */
  images: number;
  epochs: number;
  batch: number;
  size: number;
  /** Steps whose figures are left out of the flatness checks (optimizer and EMA state, first checkpoint, caches). */
  warmupSteps: number;
  /** The most RSS in the last quarter may stand above its lowest in the first quarter after warm-up, MiB. */
  rssSlackMiB: number;
}

function stripes(n: number, size: number, seed: number) {
  const images = new Uint8Array(n * size * size);
  const labels = new Uint8Array(n);
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 10;
    for (let p = 0; p < size * size; p++) images[i * size * size + p] = Math.floor(rnd() * 80) + ((p % size) % 10 === labels[i] ? 150 : 0);
  }
  return toShared(images, labels, [1, size, size], 10);
}

const openFds = () => fs.readdirSync('/proc/self/fd').length;
const osThreads = () => Number(/^Threads:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]);
const workerHandles = () => (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo().filter((r) => /Worker|MessagePort/.test(r)).length;
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

/** Least-squares slope of ys over xs. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length, mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den ? num / den : 0;
}

export async function runSoak(t: T, o: SoakOptions): Promise<void> {
  const t0 = Date.now();
  const fdsBefore = openFds();
  const workersBefore = workerHandles();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'soak-'));
  const augment = { size: o.size, padding: 2, flip: 0.5, mean: [0.5], std: [0.25] };
  const trainLoader = new DataLoader(stripes(o.images, o.size, 1), { batchSize: o.batch, shuffle: true, dropLast: true, train: true, augment, numWorkers: 2 });
  const evalLoader = new DataLoader(stripes(64, o.size, 2), { batchSize: 32, shuffle: false, dropLast: false, train: false, augment, numWorkers: 1 });
  const make = () => kw.createModel('kw_resnet_mini', { inChans: 1, numClasses: 10, generator: new kw.Generator(0) }) as unknown as TrainableModel;
  const model = make();
  // native thread pools start on first use: warm them up before counting threads
  kw.noGrad(() => kw.tidy(() => {
    model.forward(kw.zeros([o.batch, 1, o.size, o.size]));
  }));
  const threadsBefore = osThreads();
  const args = parseArgs([
    '--opt', 'adamw', '--lr', '1e-3', '--warmup_epochs', '1', '--epochs', String(o.epochs), '--temp_epoch', '3',
    '--clip_grad', '1', '--model_ema', 'true', '--model_ema_eval', 'true', '--output_dir', dir, '--save_ckpt_num', '1',
  ]) as unknown as TrainArgs;

  const stepsPerEpoch = o.images / o.batch;
  const total = o.epochs * stepsPerEpoch;
  const live: number[] = [], rss: number[] = [], heap: number[] = [], fds: number[] = [], threads: number[] = [];
  let workersDuring = 0;
  const result = await train({
    model, trainLoader, evalLoader, args, createEmaModel: make,
    log: () => {},
    progress: { update() {}, done() {} } as unknown as Progress,
    onStep: () => {
      live.push(kw.memoryStats().liveBytes);
      const mem = process.memoryUsage();
      rss.push(mem.rss);
      heap.push(mem.heapUsed);
      fds.push(openFds());
      threads.push(osThreads());
      workersDuring = Math.max(workersDuring, workerHandles());
    },
  });
  const seconds = (Date.now() - t0) / 1000;
  t.equal(result.history.length, o.epochs);
  t.equal(live.length, total, `${total} steps in ${seconds.toFixed(0)} s`);
  const w = o.warmupSteps;
  const steady = { live: live.slice(w), rss: rss.slice(w), fds: fds.slice(w), threads: threads.slice(w) };
  const n = steady.live.length;
  t.equal(Math.min(...steady.live), Math.max(...steady.live), `native live bytes flat over ${n} steps after warm-up (${steady.live[0]} bytes)`);
  // RSS may fall after warm-up (the allocator hands pages back): growth is the highest point of
  // the last quarter of the run above the lowest point of the first quarter after warm-up
  const rssFloor = Math.min(...steady.rss.slice(0, Math.ceil(n / 4))), rssLate = Math.max(...steady.rss.slice(Math.floor(n * 3 / 4)));
  const half = steady.rss.slice(Math.floor(n / 2));
  const perK = slope(half.map((_, i) => i), half) * 1000 / 2 ** 20;
  t.ok(rssLate - rssFloor < o.rssSlackMiB * 2 ** 20,
    `RSS: lowest in the first quarter after warm-up ${mib(rssFloor)} MiB, highest in the last quarter ${mib(rssLate)} MiB (within ${o.rssSlackMiB} MiB); ` +
    `second-half trend ${perK.toFixed(2)} MiB per 1000 steps; JS heap ${mib(heap[w])} → ${mib(heap[heap.length - 1])} MiB`);
  t.comment(`RSS every ${Math.max(1, Math.floor(total / 16))} steps (MiB): ${rss.filter((_, i) => i % Math.max(1, Math.floor(total / 16)) === 0).map((r) => (r / 2 ** 20).toFixed(0)).join(' ')}`);
  t.same([Math.min(...steady.fds), Math.max(...steady.fds)], [steady.fds[0], steady.fds[0]], `open fds constant at every step after warm-up (${steady.fds[0]})`);
  t.same([Math.min(...steady.threads), Math.max(...steady.threads)], [steady.threads[0], steady.threads[0]], `OS threads constant at every step after warm-up (${steady.threads[0]})`);

  model.dispose();
  await trainLoader.close();
  await evalLoader.close();
  await new Promise((r) => setImmediate(r));
  t.ok(workersDuring > workersBefore, `the loaders' workers were seen while training (${workersDuring} handles)`);
  t.equal(workerHandles(), workersBefore, 'no worker handles or message ports left after close()');
  t.ok(Math.max(...threads) >= threadsBefore + 3, `3 loader worker threads while training (${threadsBefore} → ${Math.max(...threads)} OS threads)`);
  t.equal(osThreads(), threadsBefore, 'OS thread count back to its pre-training value after close()');
  t.equal(openFds(), fdsBefore, `no file descriptors left open (${fdsBefore})`);
  fs.rmSync(dir, { recursive: true, force: true });
}
