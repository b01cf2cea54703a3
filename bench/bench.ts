// `npm run bench`: the benchmark suite of issue 9. Per case (model, KW cell_num_ratio, batch,
// size), each in its own child process: median train step (forward + cross-entropy + backward +
// SGD momentum step) and eval forward, images/s, peak RSS, and GFLOP/s against the machine's
// GEMM rate measured in this run; beside it the PyTorch peer (bench/peer/torch_kw.py, the
// official KW algorithm) and onnxruntime-node (eval, KW_BENCH_ORT) when found, with speedups.
//   npm run build:ts && npm run bench                       # the suite, tables (several minutes)
//   npm run bench -- --json --case kw_resnet18:1:64:32      # one case, one JSON line
// Progress goes to stderr. See README "Benchmarks" for the fields.
import * as os from 'os';
import * as kw from '../lib';
import { parseBenchArgs, USAGE } from './args';
import type { BenchArgs } from './args';
import type { OursResult } from './case_child';
import { caseName, resolveCase } from './cases';
import type { BenchCase, ResolvedCase } from './cases';
import { runOurs } from './children';
import type { ChildResult } from './children';
import { printTable } from './harness';
import { ISSUE_REFERENCE } from './reference';
import { gemmRate, runMicro } from './micro';
import {
  exportOnnx, findOrt, findTorchPython, PEER_MODELS, runOrtPeer, runTorchPeer, torchSelfCheck,
} from './peers';
import type { OrtResult, SelfCheck, TorchResult } from './peers';

/** One case's JSON line. Times in seconds (medians), memory in MB (2^20 bytes), rates in GFLOP/s. */
export interface CaseRecord {
  case: string;
  model: string;
  cell_num_ratio: number | null;
  batch: number;
  size: number;
  classes: number;
  config?: string | null;
  params?: number;
  threads?: number;
  train_s?: number;
  eval_s?: number;
  train_images_per_s?: number;
  eval_images_per_s?: number;
  peak_rss_mb?: number;
  native_peak_mb?: number;
  fwd_gflop_per_sample?: number;
  assembly_gflop_per_sample?: number;
  train_gflop?: number;
  /** Train-step GFLOP/s (3 × forward FLOPs / train_s). */
  gflops?: number;
  eval_gflops?: number;
  gemm_gflops: number;
  /** gflops / gemm_gflops, in %. gemm_gflops: kw.matmul 1024³ in the case's process just before it (else the run's 2048³). */
  train_pct_of_gemm?: number;
  eval_pct_of_gemm?: number;
  /** train_s over the FLOP floor (train_gflop / gemm_gflops). */
  train_vs_floor?: number;
  train_reps?: number;
  eval_reps?: number;
  peer?: string;
  peer_train_s?: number;
  peer_eval_s?: number;
  peer_peak_rss_mb?: number;
  peer_params?: number;
  /** The peer's parameter count for this config at 1000 classes equals shared/golden/param_counts.json. */
  peer_params_golden_ok?: boolean;
  /** Peer time / our time: above 1, ours is faster. */
  train_speedup_vs_peer?: number;
  eval_speedup_vs_peer?: number;
  /** Our peak RSS / the peer's. */
  rss_vs_peer?: number;
  ort_peer?: string;
  ort_eval_s?: number;
  eval_speedup_vs_ort?: number;
  /** The issue's figures for the official code (idle machine; bench/reference.ts), and our speedups over them. */
  ref_train_s?: number;
  ref_eval_s?: number;
  ref_ort_eval_s?: number;
  ref_peak_rss_mb?: number;
  train_speedup_vs_ref?: number;
  eval_speedup_vs_ref_ort?: number;
  /** Why a side did not run or failed. */
  notes: string[];
}

interface Peers {
  python: string | null;
  selfCheck: SelfCheck | null;
  ort: string | null;
}

const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

function findPeers(args: BenchArgs): Peers {
  const peers: Peers = { python: null, selfCheck: null, ort: null };
  if (!args.peer) return peers;
  if (!args.cases.some((c) => PEER_MODELS.includes(c.model))) return peers;
  const py = findTorchPython();
  if (!py.python) {
    log(`PyTorch peer: skipped, no python with torch and torchvision (tried ${py.tried.join(', ')}; set KW_BENCH_PYTHON)`);
    return peers;
  }
  peers.python = py.python;
  const sc = torchSelfCheck(py.python);
  if (sc.ok) {
    peers.selfCheck = sc.value;
    const counts = Object.entries(sc.value.param_counts).map(([k, v]) => `${k} ${v.peer}${v.ok ? '' : ` != golden ${v.golden}`}`);
    log(`PyTorch peer (${py.python}): parameter counts ${Object.values(sc.value.param_counts).every((v) => v.ok) ? 'equal the golden counts' : 'DIFFER from the golden counts'}: ${counts.join(', ')}`);
    const e = (v?: number) => (v === undefined ? '-' : v.toExponential(1));
    for (const g of sc.value.golden ?? [sc.value.golden_forward]) {
      const errs = g.max_abs_err_out !== undefined ? `out ${e(g.max_abs_err_out)}, grad in ${e(g.max_abs_err_grad_in)}`
        : `eval ${e(g.max_abs_err_eval)}, train ${e(g.max_abs_err_train)}`;
      log(`PyTorch peer: golden ${g.case} forward max |err| ${errs}: ${g.ok ? 'ok' : 'MISMATCH'}`);
    }
  } else log(`PyTorch peer: self-check failed: ${sc.error}`);
  if (args.ort) {
    const o = findOrt();
    peers.ort = o.path;
    if (!o.path) log(`onnxruntime-node peer: skipped: ${o.why}`);
  }
  return peers;
}

function round(x: number, digits = 4): number {
  return Number(x.toPrecision(digits));
}

function record(c: ResolvedCase, gemm: number, ours: ChildResult<OursResult>, peer: ChildResult<TorchResult> | null,
  ort: ChildResult<OrtResult> | null, selfCheck: SelfCheck | null, notes: string[]): CaseRecord {
  const r: CaseRecord = {
    case: caseName(c), model: c.model, cell_num_ratio: c.cellNumRatio, batch: c.batch, size: c.size, classes: c.classes,
    config: c.config, gemm_gflops: round(gemm), notes,
  };
  if (ours.ok) {
    const o = ours.value;
    const fwd = o.fwd_gflop_per_sample * c.batch;
    gemm = o.gemm_gflops; // measured by the case's own process, just before it
    r.gemm_gflops = round(gemm);
    Object.assign(r, {
      params: o.params, threads: o.threads, train_s: round(o.train_s), eval_s: round(o.eval_s),
      train_images_per_s: round(c.batch / o.train_s), eval_images_per_s: round(c.batch / o.eval_s),
      peak_rss_mb: round(o.peak_rss_mb), native_peak_mb: round(o.native_peak_mb),
      fwd_gflop_per_sample: round(o.fwd_gflop_per_sample), assembly_gflop_per_sample: round(o.assembly_gflop_per_sample),
      train_gflop: round(3 * fwd), gflops: round((3 * fwd) / o.train_s), eval_gflops: round(fwd / o.eval_s),
      train_pct_of_gemm: round((100 * 3 * fwd) / o.train_s / gemm, 3), eval_pct_of_gemm: round((100 * fwd) / o.eval_s / gemm, 3),
      train_vs_floor: round(o.train_s / ((3 * fwd) / gemm), 3), train_reps: o.train_reps, eval_reps: o.eval_reps,
    });
  } else notes.push(`ours: ${ours.error}`);
  if (peer?.ok) {
    const p = peer.value;
    r.peer = p.peer;
    r.peer_train_s = p.train_s === undefined ? undefined : round(p.train_s);
    r.peer_eval_s = round(p.eval_s);
    r.peer_peak_rss_mb = round(p.peak_rss_mb);
    r.peer_params = p.params;
    const golden = c.config ? selfCheck?.param_counts[c.config] : undefined;
    if (golden) r.peer_params_golden_ok = golden.ok;
    if (ours.ok) {
      if (p.train_s !== undefined) r.train_speedup_vs_peer = round(p.train_s / ours.value.train_s, 3);
      r.eval_speedup_vs_peer = round(p.eval_s / ours.value.eval_s, 3);
      r.rss_vs_peer = round(ours.value.peak_rss_mb / p.peak_rss_mb, 3);
      if (p.params !== ours.value.params) notes.push(`parameter counts differ: ours ${ours.value.params}, peer ${p.params}`);
    }
  } else if (peer) notes.push(`peer: ${peer.error}`);
  if (ort?.ok) {
    r.ort_peer = ort.value.peer;
    r.ort_eval_s = round(ort.value.eval_s);
    if (ours.ok) r.eval_speedup_vs_ort = round(ort.value.eval_s / ours.value.eval_s, 3);
  } else if (ort) notes.push(`onnxruntime: ${ort.error}`);
  const ref = ISSUE_REFERENCE[r.case];
  if (ref) {
    Object.assign(r, { ref_train_s: ref.train_s, ref_eval_s: ref.eval_s, ref_ort_eval_s: ref.ort_eval_s, ref_peak_rss_mb: ref.peak_rss_mb });
    if (ours.ok && ref.train_s) r.train_speedup_vs_ref = round(ref.train_s / ours.value.train_s, 3);
    if (ours.ok && ref.ort_eval_s) r.eval_speedup_vs_ref_ort = round(ref.ort_eval_s / ours.value.eval_s, 3);
  }
  return r;
}

function runCase(c: BenchCase, args: BenchArgs, gemm: number, peers: Peers, k: number, n: number): CaseRecord {
  const rc = resolveCase(c);
  const name = caseName(c);
  const notes: string[] = [];
  log(`[${k}/${n}] ${name} (${c.classes} classes${rc.config ? `, ${rc.config}` : ''}): ours...`);
  const ours = runOurs(c, args.reps);
  let peer: ChildResult<TorchResult> | null = null;
  let ort: ChildResult<OrtResult> | null = null;
  if (peers.python && PEER_MODELS.includes(c.model)) {
    log(`[${k}/${n}] ${name}: PyTorch peer...`);
    peer = runTorchPeer(peers.python, rc, args.reps);
    if (peers.ort) {
      const onnx = exportOnnx(peers.python, rc);
      if (onnx.ok) {
        log(`[${k}/${n}] ${name}: onnxruntime-node peer...`);
        ort = runOrtPeer(peers.ort, onnx.value, rc, args.reps);
      } else ort = { ok: false, error: `ONNX export failed: ${onnx.error}` };
    }
  } else if (args.peer && !PEER_MODELS.includes(c.model)) notes.push(`no peer for ${c.model} (peers: ${PEER_MODELS.join(', ')})`);
  const r = record(rc, gemm, ours, peer, ort, peers.selfCheck, notes);
  const x = (v?: number) => (v === undefined ? '-' : `${v.toFixed(2)}×`);
  log(`[${k}/${n}] ${name}: train ${r.train_s ?? '-'} s, eval ${r.eval_s ?? '-'} s, ${r.gflops?.toFixed(1) ?? '-'} GFLOP/s ` +
    `(${r.train_pct_of_gemm?.toFixed(0) ?? '-'}% of GEMM), RSS ${r.peak_rss_mb?.toFixed(0) ?? '-'} MB; ` +
    `vs PyTorch train ${x(r.train_speedup_vs_peer)} eval ${x(r.eval_speedup_vs_peer)}; vs ORT eval ${x(r.eval_speedup_vs_ort)}` +
    (notes.length ? `; ${notes.join('; ')}` : ''));
  return r;
}

function printTables(records: CaseRecord[]): void {
  const f = (v: number | undefined, d: number) => (v === undefined ? '-' : v.toFixed(d));
  console.log('\nours (median per step; train = forward + cross-entropy + backward + SGD momentum step)');
  printTable(['case', 'train s', 'img/s', 'GFLOP/s', '% GEMM', '× floor', 'eval s', 'img/s', 'GFLOP/s', 'peak RSS MB', 'GFLOP/img'],
    records.map((r) => [r.case, f(r.train_s, 3), f(r.train_images_per_s, 1), f(r.gflops, 1), f(r.train_pct_of_gemm, 0),
      f(r.train_vs_floor, 2), f(r.eval_s, 3), f(r.eval_images_per_s, 1), f(r.eval_gflops, 1), f(r.peak_rss_mb, 0),
      f(r.fwd_gflop_per_sample, 3)]), [0]);
  const withPeer = records.filter((r) => r.peer || r.ort_peer);
  if (withPeer.length) {
    console.log('\npeers (speedup = peer time / our time; RSS ratio = ours / peer)');
    printTable(['case', 'PyTorch train s', 'speedup', 'PyTorch eval s', 'speedup', 'PyTorch RSS MB', 'RSS ratio', 'ORT eval s', 'speedup'],
      withPeer.map((r) => [r.case, f(r.peer_train_s, 3), f(r.train_speedup_vs_peer, 2), f(r.peer_eval_s, 3),
        f(r.eval_speedup_vs_peer, 2), f(r.peer_peak_rss_mb, 0), f(r.rss_vs_peer, 2), f(r.ort_eval_s, 3), f(r.eval_speedup_vs_ort, 2)]), [0]);
  }
  const withRef = records.filter((r) => r.ref_train_s);
  if (withRef.length) {
    console.log("\nthe issue's figures for the official code (idle machine; speedup = their time / ours now)");
    printTable(['case', 'official train s', 'speedup', 'official RSS MB', 'ORT eval s', 'speedup'],
      withRef.map((r) => [r.case, f(r.ref_train_s, 2), f(r.train_speedup_vs_ref, 2), f(r.ref_peak_rss_mb, 0),
        f(r.ref_ort_eval_s, 3), f(r.eval_speedup_vs_ref_ort, 2)]), [0]);
  }
  const notes = records.filter((r) => r.notes.length);
  if (notes.length) {
    console.log('');
    for (const r of notes) console.log(`note ${r.case}: ${r.notes.join('; ')}`);
  }
}

export function main(argv: string[]): number {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(argv);
  } catch (e) {
    log(`bench: ${(e as Error).message}`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const say = args.json ? log : (s: string) => console.log(s);
  const info = kw.buildInfo();
  say(`kernelwarehouse ${info.version}  threads=${info.threads}  gemm=${info.gemm}  cpu: ${os.cpus()[0]?.model ?? 'unknown'} × ${os.cpus().length}`);
  const t0 = Date.now();
  if (args.micro) {
    if (args.json) log('bench: --micro prints tables; skipped with --json');
    else runMicro();
  }
  const gemm = gemmRate();
  say(`machine GEMM rate (kw.matmul 2048³, now): ${gemm.toFixed(1)} GFLOP/s`);
  const peers = findPeers(args);
  const records: CaseRecord[] = [];
  args.cases.forEach((c, i) => {
    const r = runCase(c, args, gemm, peers, i + 1, args.cases.length);
    records.push(r);
    if (args.json) process.stdout.write(JSON.stringify(r) + '\n');
  });
  if (!args.json) printTables(records);
  log(`bench: ${records.length} case(s) in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return records.every((r) => r.train_s !== undefined) ? 0 : 1;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
