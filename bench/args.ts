// Command line of `npm run bench` (bench.ts). Kept apart from the runner so the tests can check
// parsing without timing anything.
import { caseName, CASE_FORMS, DEFAULT_CASES, parseCase } from './cases';
import type { BenchCase } from './cases';

export interface BenchArgs {
  json: boolean;
  cases: BenchCase[];
  /** Timed repetitions per measurement (default: adaptive, see harness.timeSteps). */
  reps?: number;
  /** The PyTorch and onnxruntime-node peers (default: when found). */
  peer: boolean;
  ort: boolean;
  /** The GEMM / conv / single-KW-layer rows (default: with the default suite in table mode). */
  micro: boolean;
  help: boolean;
}

export const USAGE = `usage: npm run bench -- [--json] [--case <model>:<cell_num_ratio>:<batch>:<size>]... [--reps N]
                      [--classes N] [--no-peer] [--no-ort] [--micro | --no-micro]
  --case      one case (repeatable), ${CASE_FORMS}; default: the suite
              ${DEFAULT_CASES.join(' ')}
  --json      one JSON object per case per line on stdout (progress goes to stderr)
  --reps      timed repetitions per measurement (default: as many as fit in ~8 s, 3..25)
  --classes   classifier outputs (default: 10 for sizes <= 64, else 1000)
  --no-peer   skip the PyTorch peer (bench/peer/torch_kw.py) and the onnxruntime-node peer
  --no-ort    skip only the onnxruntime-node peer (found through KW_BENCH_ORT=<path to onnxruntime-node>)
  --micro     also run the GEMM / conv / KW-layer rows (default: with the whole suite, not in --json)`;

/** Parses argv (without node and script); throws an Error with a clear message on bad input. */
export function parseBenchArgs(argv: string[]): BenchArgs {
  const out: BenchArgs = { json: false, cases: [], peer: true, ort: true, micro: false, help: false };
  const specs: string[] = [];
  let classes: number | undefined;
  let micro: boolean | undefined;
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag}: expected a value\n${USAGE}`);
    return v;
  };
  const posInt = (s: string, flag: string, max: number): number => {
    if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > max) throw new Error(`${flag}: expected an integer in 1..${max}, got '${s}'`);
    return Number(s);
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const arg = (): string => {
      if (inline !== undefined) return inline;
      return value(i++, flag);
    };
    switch (flag) {
      case '--json': out.json = true; break;
      case '--case': specs.push(arg()); break;
      case '--reps': out.reps = posInt(arg(), '--reps', 1000); break;
      case '--classes': classes = posInt(arg(), '--classes', 100000); break;
      case '--no-peer': out.peer = false; out.ort = false; break;
      case '--no-ort': out.ort = false; break;
      case '--micro': micro = true; break;
      case '--no-micro': micro = false; break;
      case '--help': case '-h': out.help = true; break;
      default: throw new Error(`unknown argument '${argv[i]}'\n${USAGE}`);
    }
  }
  out.cases = (specs.length ? specs : DEFAULT_CASES).map((s) => parseCase(s, classes));
  const names = out.cases.map(caseName);
  const dup = names.find((n, k) => names.indexOf(n) !== k);
  if (dup) throw new Error(`--case ${dup} given twice`);
  out.micro = micro ?? (specs.length === 0 && !out.json);
  return out;
}
