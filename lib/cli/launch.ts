// --nproc_per_node N: kw-train starts N ranks of itself on this machine through Open MPI's
// mpirun (the role torch.distributed.launch plays upstream) and turns a failed job into a
// message that says what happened and how to continue.
import { spawn, spawnSync } from 'child_process';
import * as os from 'os';

/** mpirun's absolute path, or null when it is not installed. */
export function findMpirun(): string | null {
  const r = spawnSync('sh', ['-c', 'command -v mpirun'], { encoding: 'utf8' });
  const p = r.status === 0 ? r.stdout.trim() : '';
  return p || null;
}

/** argv without --nproc_per_node and its value (the ranks must not relaunch themselves). */
export function withoutNproc(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--nproc_per_node' || a === '--nproc-per-node') {
      i++;
      continue;
    }
    if (a.startsWith('--nproc_per_node=') || a.startsWith('--nproc-per-node=')) continue;
    out.push(a);
  }
  return out;
}

/** The mpirun command line that starts n ranks of `script` with `argv`. */
export function mpirunArgs(n: number, script: string, argv: string[]): string[] {
  const a = ['-np', String(n)];
  if (n > os.cpus().length) a.push('--oversubscribe');
  if (process.getuid?.() === 0) a.push('--allow-run-as-root');
  // each rank sizes its thread pool to its share of the cores (lib/distributed/world.ts): no pinning
  a.push('--bind-to', 'none');
  return [...a, process.execPath, ...process.execArgv, script, ...withoutNproc(argv)];
}

/**
 * Runs kw-train as n MPI ranks and waits. mpirun stops every rank when one fails or is
 * killed; this adds what to do next.
 */
export async function relaunch(n: number, script: string, argv: string[], outputDir: string): Promise<number> {
  const mpirun = findMpirun();
  if (!mpirun) {
    console.error(`kw-train: --nproc_per_node ${n} starts the ranks with mpirun, which is not installed (apt-get install openmpi-bin libopenmpi-dev, then rebuild)`);
    return 1;
  }
  const args = mpirunArgs(n, script, argv);
  console.log(`kw-train: starting ${n} data-parallel ranks: mpirun ${args.join(' ')}`);
  const child = spawn(mpirun, args, { stdio: 'inherit' });
  const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
  const onInt = forward('SIGINT'), onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  const code = await new Promise<number>((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 + (os.constants.signals[sig] ?? 0) : 1))));
  process.off('SIGINT', onInt);
  process.off('SIGTERM', onTerm);
  if (code !== 0)
    console.error(
      `kw-train: the ${n}-rank job stopped (mpirun exit code ${code}): a rank failed or was killed and mpirun stopped the others (its report is above). ` +
        (outputDir ? `Run the same command again: auto-resume continues from the last checkpoint in ${outputDir}.` : 'Nothing was saved (no --output_dir).'),
    );
  return code;
}
