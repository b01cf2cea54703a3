// Running one measurement in a child process (ours, the PyTorch peer, the onnxruntime-node peer):
// each child prints one JSON line last on stdout; its peak RSS is then its own case's.
import { spawnSync } from 'child_process';
import * as path from 'path';
import type { OursResult } from './case_child';
import type { BenchCase } from './cases';
import { caseName, findUp } from './cases';

export type ChildResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** Per child, seconds (KW_BENCH_TIMEOUT_S): the official-style KW 4× peer step alone takes tens of seconds. */
const TIMEOUT_S = Number(process.env.KW_BENCH_TIMEOUT_S ?? 1800);

export function runChild<T>(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildResult<T> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: TIMEOUT_S * 1000, maxBuffer: 64 << 20, env });
  const tail = (s: string | null) => (s ?? '').trim().split('\n').slice(-4).join(' | ');
  if (r.error) return { ok: false, error: `${path.basename(cmd)}: ${r.error.message}` };
  if (r.status !== 0) {
    const why = r.signal ? `killed by ${r.signal}${r.signal === 'SIGTERM' ? ` (timeout ${TIMEOUT_S} s?)` : ''}` : `exit ${r.status}`;
    return { ok: false, error: `${path.basename(cmd)} ${why}: ${tail(r.stderr) || tail(r.stdout)}` };
  }
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return { ok: true, value: JSON.parse(last) as T };
  } catch {
    return { ok: false, error: `${path.basename(cmd)}: no JSON result in its output: ${tail(r.stdout)}` };
  }
}

/**
 * `node <this folder>/<name>` as this process runs: from dist/ a .js file; from the .ts sources
 * (tap) the same loader flags (execArgv) and the .ts file.
 */
export function nodeScript(name: string): string[] {
  return [...process.execArgv, path.join(__dirname, `${name}${path.extname(__filename)}`)];
}

export function runOurs(c: BenchCase, reps?: number): ChildResult<OursResult> {
  return runChild<OursResult>(process.execPath, [...nodeScript('case_child'),
    JSON.stringify({ case: caseName(c), reps, classes: c.classes })]);
}

/** The repository root (where configs/ is), for the Python scripts. */
export function repoRoot(): string {
  const configs = findUp('configs');
  return configs ? path.dirname(configs) : process.cwd();
}
