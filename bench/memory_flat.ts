// Memory flatness over a long training run (issue 9: RSS at step 500 within 5% of step 50): trains
// one case's model on a fixed random batch (the same step as the benchmark: forward,
// cross-entropy, backward, SGD momentum) and samples the process RSS and the native allocator's
// live and cached bytes every N steps. Exit status 1 when RSS or live bytes grew more than 5%.
//   npm run build:ts && node dist/bench/memory_flat.js [--case kw_resnet18:1:4:32] [--steps 500] [--every 50] [--json]
//   node --expose-gc dist/bench/memory_flat.js --gc ...   # collect garbage before each sample
import * as kw from '../lib';
import { caseName, parseCase, resolveCase } from './cases';
import { printTable } from './harness';

interface Sample {
  step: number;
  rss_mb: number;
  native_live_mb: number;
  native_cached_mb: number;
  js_heap_mb: number;
  /** V8's external memory (ArrayBuffers and what addons report), outside the JS heap. */
  external_mb: number;
  s_per_step: number;
}

const USAGE = 'usage: node [--expose-gc] dist/bench/memory_flat.js [--case <model>:<ratio>:<batch>:<size>] [--steps N] [--every N] [--gc] [--no-yield] [--json]';

function parse(argv: string[]): { spec: string; steps: number; every: number; json: boolean; gc: boolean; yieldEachStep: boolean } {
  const o = { spec: 'kw_resnet18:1:4:32', steps: 500, every: 50, json: false, gc: false, yieldEachStep: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a}: expected a value\n${USAGE}`);
      return v;
    };
    const int = (v: string): number => {
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${a}: expected a positive integer, got '${v}'`);
      return Number(v);
    };
    if (a === '--case') o.spec = next();
    else if (a === '--steps') o.steps = int(next());
    else if (a === '--every') o.every = int(next());
    else if (a === '--json') o.json = true;
    else if (a === '--gc') o.gc = true;
    else if (a === '--no-yield') o.yieldEachStep = false;
    else throw new Error(`unknown argument '${a}'\n${USAGE}`);
  }
  if (o.gc && typeof (globalThis as { gc?: unknown }).gc !== 'function') throw new Error('--gc needs node --expose-gc');
  if (o.steps < 2 * o.every) throw new Error(`--steps ${o.steps}: needs at least two samples (2 × --every ${o.every})`);
  return o;
}

async function main(argv: string[]): Promise<number> {
  const o = parse(argv);
  const c = resolveCase(parseCase(o.spec));
  const g = new kw.Generator(0);
  const net = kw.createModel(c.model, { ...c.options, generator: g });
  net.updateTemperature(0.5);
  net.train();
  const x = kw.randn([c.batch, 3, c.size, c.size], { generator: g });
  const y = kw.tensor(new BigInt64Array(c.batch).map((_, i) => BigInt((i * 7) % c.classes)), [c.batch], 'int64');
  const opt = new kw.SGD(net.parameters(), { lr: 1e-3, momentum: 0.9, weightDecay: 1e-4 });
  const samples: Sample[] = [];
  const mb = (b: number) => b / 2 ** 20;
  let t0 = Date.now();
  for (let step = 1; step <= o.steps; step++) {
    kw.tidy(() => {
      kw.crossEntropy(net.forward(x), y).backward();
    });
    opt.step();
    opt.zeroGrad();
    // A turn of the event loop per step, as kw-train's loop gives (its data loader is async):
    // native finalizers run there, so a loop that never yields holds every step's handles.
    if (o.yieldEachStep) await new Promise((r) => setImmediate(r));
    if (step % o.every === 0) {
      // With --gc (node --expose-gc): collect first, so lazy GC is told apart from a leak.
      if (o.gc) (globalThis as { gc?: () => void }).gc!();
      const m = kw.memoryStats();
      const s: Sample = {
        step, rss_mb: mb(process.memoryUsage().rss), native_live_mb: mb(m.liveBytes), native_cached_mb: mb(m.cachedBytes),
        js_heap_mb: mb(process.memoryUsage().heapUsed), external_mb: mb(process.memoryUsage().external), s_per_step: (Date.now() - t0) / 1000 / o.every,
      };
      samples.push(s);
      t0 = Date.now();
      process.stderr.write(`memory_flat ${caseName(c)}: step ${step}/${o.steps}: RSS ${s.rss_mb.toFixed(1)} MB, ` +
        `native live ${s.native_live_mb.toFixed(1)} MB, cached ${s.native_cached_mb.toFixed(1)} MB, ${s.s_per_step.toFixed(2)} s/step\n`);
    }
  }
  const first = samples[0], last = samples[samples.length - 1];
  const rssGrowth = last.rss_mb / first.rss_mb - 1;
  const liveGrowth = last.native_live_mb / first.native_live_mb - 1;
  const flat = rssGrowth <= 0.05 && liveGrowth <= 0.05;
  const summary = {
    case: caseName(c), steps: o.steps, forced_gc: o.gc, yield_each_step: o.yieldEachStep, first_step: first.step, last_step: last.step,
    rss_first_mb: first.rss_mb, rss_last_mb: last.rss_mb, rss_growth_pct: 100 * rssGrowth,
    native_live_first_mb: first.native_live_mb, native_live_last_mb: last.native_live_mb, native_live_growth_pct: 100 * liveGrowth,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024, flat,
  };
  if (o.json) process.stdout.write(JSON.stringify({ ...summary, samples }) + '\n');
  else {
    printTable(['step', 'RSS MB', 'native live MB', 'native cached MB', 'JS heap MB', 'external MB', 's/step'],
      samples.map((s) => [String(s.step), s.rss_mb.toFixed(1), s.native_live_mb.toFixed(1), s.native_cached_mb.toFixed(1),
        s.js_heap_mb.toFixed(1), s.external_mb.toFixed(1), s.s_per_step.toFixed(2)]), [0]);
    console.log(`\n${caseName(c)}: RSS step ${first.step} → ${last.step}: ${first.rss_mb.toFixed(1)} → ${last.rss_mb.toFixed(1)} MB ` +
      `(${(100 * rssGrowth).toFixed(2)}%); native live ${first.native_live_mb.toFixed(1)} → ${last.native_live_mb.toFixed(1)} MB ` +
      `(${(100 * liveGrowth).toFixed(2)}%): ${flat ? 'flat (within 5%)' : 'GREW more than 5%'}`);
  }
  opt.dispose();
  net.dispose();
  x.dispose();
  y.dispose();
  return flat ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  }, (e) => {
    process.stderr.write(`memory_flat: ${(e as Error).message}\n`);
    process.exitCode = 2;
  });
}
