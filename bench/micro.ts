// Micro rows of the benchmark: float32 GEMM through our binding against OpenBLAS called from plain
// C, and the conv of a ResNet-18 3×3 layer (shared and per-sample weights), forward and
// forward+backward, then the KernelWarehouse layer rows of bench/kw.ts; and gemmRate(), the
// machine's GEMM rate every case's GFLOP/s is compared with.
// Each row is the median of N timed repetitions after a warm-up.
// Run alone: npm run build:ts && node dist/bench/micro.js      (about a minute on 2 cores)
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as kw from '../lib';
import { median, printTable } from './harness';
import { benchKw } from './kw';
import { findUp } from './cases';

interface Row {
  name: string;
  ms: number | null;
  gflops: number | null;
  cores: number | null; // CPU time / wall time: below the thread count means contention or serial code
  note: string;
}

interface Timing {
  ms: number; // median wall time
  cores: number;
}

/** Median wall time in ms of fn over `reps` runs, after `warmup` untimed runs. */
function timeIt(fn: () => void, reps: number, warmup = 1): Timing {
  for (let i = 0; i < warmup; i++) fn();
  const t: number[] = [];
  const c0 = process.cpuUsage();
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const cpu = process.cpuUsage(c0);
  return { ms: median(t), cores: (cpu.user + cpu.system) / 1000 / t.reduce((a, b) => a + b, 0) };
}

function row(name: string, t: Timing | null, flop: number, note = ''): Row {
  return { name, ms: t ? t.ms : null, gflops: t ? flop / (t.ms * 1e6) : null, cores: t ? t.cores : null, note };
}

function printRows(rows: Row[]): void {
  const fmt = (v: number | null, d: number) => (v === null ? '-' : v.toFixed(d));
  printTable(['benchmark', 'median ms', 'GFLOP/s', 'cores', 'note'], rows.map((r) => [r.name, fmt(r.ms, 2), fmt(r.gflops, 1), fmt(r.cores, 2), r.note]));
}

/** Compiles and runs bench/gemm_ref.c; returns GFLOP/s per size, or a reason it could not. */
function openblasReference(sizes: number[], reps: number[]): Map<number, Timing> | string {
  const src = findUp(path.join('bench', 'gemm_ref.c'));
  if (!src) return 'bench/gemm_ref.c not found';
  const exe = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kw-bench-')), 'gemm_ref');
  try {
    execFileSync('cc', ['-O2', src, '-o', exe, '-I/usr/include/x86_64-linux-gnu/openblas-pthread', '-lopenblas'], { stdio: 'pipe' });
  } catch (e) {
    return `skipped: could not build the C reference (needs cc and libopenblas-dev): ${String((e as Error).message).split('\n')[0]}`;
  }
  const out = new Map<number, Timing>();
  try {
    for (let i = 0; i < sizes.length; i++) {
      const text = execFileSync(exe, [String(reps[i]), String(sizes[i])], { encoding: 'utf8' });
      for (const l of text.trim().split('\n')) {
        const [n, ms, cores] = l.split(' ');
        if (n !== 'threads') out.set(Number(n), { ms: Number(ms), cores: Number(cores) });
      }
    }
  } catch (e) {
    return `skipped: the C reference failed: ${String((e as Error).message).split('\n')[0]}`;
  } finally {
    fs.rmSync(path.dirname(exe), { recursive: true, force: true });
  }
  return out;
}

function gemmRows(rows: Row[]): void {
  const sizes = [1024, 2048], reps = [20, 8];
  const ours = new Map<number, number>();
  for (let i = 0; i < sizes.length; i++) {
    const n = sizes[i];
    const a = kw.randn([n, n]), b = kw.randn([n, n]);
    const tm = timeIt(() => kw.matmul(a, b).dispose(), reps[i]);
    ours.set(n, tm.ms);
    rows.push(row(`GEMM ${n}³ (kw.matmul)`, tm, 2 * n ** 3));
    a.dispose();
    b.dispose();
  }
  const ref = openblasReference(sizes, reps);
  for (const n of sizes) {
    if (typeof ref === 'string') {
      rows.push(row(`GEMM ${n}³ (OpenBLAS from C)`, null, 0, ref));
      continue;
    }
    const r = ref.get(n)!;
    const ratio = (r.ms / ours.get(n)!).toFixed(2); // speed ratio: their time / our time
    rows.push(row(`GEMM ${n}³ (OpenBLAS from C)`, r, 2 * n ** 3, `all cores; speed ours/OpenBLAS = ${ratio}`));
  }
}

function convRows(rows: Row[]): void {
  // ResNet-18 layer1 3×3 conv: 64→64 channels, 56×56, batch 16, padding 1.
  const B = 16, C = 64, H = 56;
  const flopFwd = 2 * B * C * C * 9 * H * H;
  const x = kw.randn([B, C, H, H]);
  const w = kw.mul(kw.randn([C, C, 3, 3]), kw.scalar(0.05));
  const wps = kw.mul(kw.randn([B, C, C, 3, 3]), kw.scalar(0.05));
  const dy = kw.randn([B, C, H, H]);
  for (const [label, weight] of [['shared', w], ['per-sample', wps]] as [string, kw.Tensor][]) {
    const fwd = timeIt(() => kw.noGrad(() => kw.conv2d(x, weight, null, { padding: 1 }).dispose()), 11);
    rows.push(row(`conv2d fwd ${label} [16,64,56,56]*[64,64,3,3]`, fwd, flopFwd));
    const fb = timeIt(() => {
      x.requiresGrad = weight.requiresGrad = true;
      const y = kw.conv2d(x, weight, null, { padding: 1 });
      y.backward(dy);
      y.dispose();
      x.grad?.dispose();
      weight.grad?.dispose();
      x.grad = weight.grad = null;
      x.requiresGrad = weight.requiresGrad = false;
    }, 9);
    rows.push(row(`conv2d fwd+bwd ${label} (dx, dw)`, fb, 3 * flopFwd, 'fwd + dX + dW'));
  }
  for (const t of [x, w, wps, dy]) t.dispose();
}

/**
 * The machine's float32 GEMM rate in GFLOP/s, now: kw.matmul on n³ (our binding's BLAS on all
 * threads), the median of 3 after a warm-up. Measured in the same run as the cases (and again in
 * each case's process), so a loaded machine lowers both.
 */
export function gemmRate(n = 2048): number {
  const a = kw.randn([n, n]), b = kw.randn([n, n]);
  const t = timeIt(() => kw.matmul(a, b).dispose(), 3);
  a.dispose();
  b.dispose();
  return (2 * n ** 3) / (t.ms * 1e6);
}

/** Prints the micro tables (GEMM, conv, KW layer). */
export function runMicro(): void {
  const rows: Row[] = [];
  const t0 = Date.now();
  gemmRows(rows);
  convRows(rows);
  printRows(rows);
  console.log('');
  benchKw();
  const mem = kw.memoryStats();
  console.log(`\nmicro rows: peak native memory ${(mem.peakBytes / 2 ** 20).toFixed(0)} MiB; ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

if (require.main === module) runMicro();
