// onnxruntime-node peer in its own process: times the eval forward of an ONNX model (CPU, 2 intra-op
// threads, full graph optimisation) with the protocol of harness.timeSteps, and prints one JSON line.
//   node dist/bench/ort_child.js '{"ort":"<onnxruntime-node path>","onnx":"m.onnx","shape":[64,3,32,32]}'
import * as fs from 'fs';
import * as path from 'path';
import { median } from './harness';

interface OrtTensor {
  dispose?(): void;
}
interface OrtSession {
  inputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release?(): Promise<void>;
}
interface OrtModule {
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
  InferenceSession: { create(path: string, opts: Record<string, unknown>): Promise<OrtSession> };
  env?: { versions?: { common?: string } };
}

async function timeStepsAsync(fn: () => Promise<void>, reps?: number): Promise<{ median: number; reps: number }> {
  const now = () => Number(process.hrtime.bigint()) / 1e9;
  let warmup = 0, last = 0;
  const w0 = now();
  do {
    const t0 = now();
    await fn();
    last = now() - t0;
    warmup++;
  } while (now() - w0 < 1 && warmup < 5);
  const n = reps ?? Math.min(25, Math.max(3, Math.ceil(8 / Math.max(last, 1e-3))));
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    await fn();
    times.push(now() - t0);
  }
  return { median: median(times), reps: n };
}

/** The version of the package that holds `file` (its nearest package.json). */
function packageVersion(file: string): string {
  for (let dir = path.dirname(file); path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    const p = path.join(dir, 'package.json');
    if (fs.existsSync(p)) return (JSON.parse(fs.readFileSync(p, 'utf8')) as { version?: string }).version ?? '?';
  }
  return '?';
}

async function main(): Promise<void> {
  const req = JSON.parse(process.argv[2] ?? '{}') as { ort: string; onnx: string; shape: number[]; reps?: number };
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const ort = require(req.ort) as OrtModule;
  const threads = 2;
  const session = await ort.InferenceSession.create(req.onnx, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const n = req.shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(i * 12.9898) * 0.5; // any finite input: timing only
  const input = new ort.Tensor('float32', data, req.shape);
  const t = await timeStepsAsync(async () => {
    const out = await session.run({ [session.inputNames[0]]: input });
    for (const v of Object.values(out)) v.dispose?.();
  }, req.reps);
  await session.release?.();
  const version = packageVersion(require.resolve(req.ort));
  process.stdout.write(JSON.stringify({
    peer: `onnxruntime-node ${version}`, threads, eval_s: t.median, eval_reps: t.reps,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  }) + '\n');
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
