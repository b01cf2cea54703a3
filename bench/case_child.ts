// One benchmark case in its own process, so that its peak RSS is its own: builds the model, counts
// its FLOPs, times the train step (forward + cross-entropy + backward + SGD momentum step) and
// the eval forward, and prints one JSON line on stdout. bench.ts starts it; run alone:
//   node dist/bench/case_child.js '{"case":"kw_resnet18:1:64:32","reps":3}'
import * as kw from '../lib';
import { parseCase, resolveCase } from './cases';
import { countFlops } from './flops';
import { timeSteps } from './harness';
import { gemmRate } from './micro';

export interface OursResult {
  params: number;
  config: string | null;
  threads: number;
  /** Per sample, GFLOP of one forward, and its assembly part. */
  fwd_gflop_per_sample: number;
  assembly_gflop_per_sample: number;
  conv_gflop_per_sample: number;
  train_s: number;
  eval_s: number;
  train_reps: number;
  eval_reps: number;
  peak_rss_mb: number;
  native_peak_mb: number;
  /** Native live bytes after the run (the model, its optimizer state and the inputs). */
  native_live_mb: number;
  loss: number;
  /** The GEMM rate (kw.matmul 1024³) measured in this process just before the case. */
  gemm_gflops: number;
}

function run(spec: string, reps: number | undefined, classes: number | undefined): OursResult {
  const c = resolveCase(parseCase(spec, classes));
  // The load on a shared machine drifts over a long suite: rate this case against the GEMM rate
  // of its own moment. 1024³ keeps the scratch (12 MB) small beside the case's peak RSS.
  const gemm = gemmRate(1024);
  const g = new kw.Generator(0);
  const net = kw.createModel(c.model, { ...c.options, generator: g });
  net.updateTemperature(0.5); // mid-anneal: both attention terms live, as in most of training
  const x = kw.randn([c.batch, 3, c.size, c.size], { generator: g });
  const labels = new BigInt64Array(c.batch).map((_, i) => BigInt((i * 7) % c.classes));
  const y = kw.tensor(labels, [c.batch], 'int64');
  const flops = countFlops(net, x);
  const opt = new kw.SGD(net.parameters(), { lr: 1e-3, momentum: 0.9, weightDecay: 1e-4 });

  let loss = NaN;
  net.train();
  const train = timeSteps(() => {
    loss = kw.tidy(() => {
      const l = kw.crossEntropy(net.forward(x), y);
      l.backward();
      return l.item();
    });
    opt.step();
    opt.zeroGrad();
  }, reps);
  net.eval();
  const evalT = timeSteps(() => kw.noGrad(() => net.forward(x).dispose()), reps);
  const mem = kw.memoryStats();
  const result: OursResult = {
    params: net.numParameters(),
    config: c.config,
    threads: kw.numThreads(),
    fwd_gflop_per_sample: flops.forward,
    assembly_gflop_per_sample: flops.assembly,
    conv_gflop_per_sample: flops.conv,
    train_s: train.median,
    eval_s: evalT.median,
    train_reps: train.reps,
    eval_reps: evalT.reps,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    native_peak_mb: mem.peakBytes / 2 ** 20,
    native_live_mb: mem.liveBytes / 2 ** 20,
    loss,
    gemm_gflops: gemm,
  };
  opt.dispose();
  net.dispose();
  x.dispose();
  y.dispose();
  return result;
}

if (require.main === module) {
  const req = JSON.parse(process.argv[2] ?? '{}') as { case: string; reps?: number; classes?: number };
  process.stdout.write(JSON.stringify(run(req.case, req.reps, req.classes)) + '\n');
}
