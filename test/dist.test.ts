// Data-parallel training over MPI (issue 10). In-process: the DistributedSampler against torch's
// algorithm written out, the launcher helpers, a world of one. Under `mpirun -np 2` (skipped with
// the reason when mpirun or the MPI library is missing): the collectives against sums computed
// here, 2 ranks × batch b against 1 process × batch 2b through train(), and kw-train under 2
// ranks (rank 0 alone writes; a killed rank stops the job; the same command resumes).
import t from 'tap';
import * as cp from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { epochOrder } from '../lib/data/loader';
import { DistributedSampler } from '../lib/distributed/sampler';
import { commLibraryPath, initDistributed, launcherEnv, World } from '../lib/distributed/world';
import { mpirunArgs, withoutNproc, findMpirun } from '../lib/cli/launch';
import { smallIdx } from './helpers/cli';
import { native } from '../lib/native';
import * as kw from '../lib';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'dist', 'lib', 'cli', 'kw-train.js');
const rankScript = path.join(__dirname, 'fixtures', 'dist_rank.js');

t.test('DistributedSampler follows torch: same permutation, padded by its head, strided by rank', async (t) => {
  for (const [n, R, dropLast] of [[10, 3, false], [10, 3, true], [7, 2, false], [2, 4, false], [12, 4, false]] as const) {
    for (const epoch of [0, 1]) {
      const perm = Array.from(epochOrder(n, 5, epoch, true));
      // torch: indices += indices[:padding] (repeated as needed) or truncated, then indices[rank:total:R]
      let total: number[];
      if (dropLast) total = perm.slice(0, Math.floor(n / R) * R);
      else {
        const size = Math.ceil(n / R) * R;
        total = perm.slice();
        while (total.length < size) total = total.concat(perm.slice(0, size - total.length));
      }
      const seen = new Map<number, number>();
      for (let r = 0; r < R; r++) {
        const s = new DistributedSampler(n, { numReplicas: R, rank: r, seed: 5, dropLast });
        const mine = Array.from(s.indices(epoch));
        t.same(mine, total.filter((_, i) => i % R === r), `n=${n} R=${R} dropLast=${dropLast} epoch=${epoch} rank=${r}`);
        t.equal(s.numSamples, total.length / R);
        for (const i of mine) seen.set(i, (seen.get(i) ?? 0) + 1);
      }
      if (!dropLast) t.equal(seen.size, n, 'every sample is seen by some rank');
    }
  }
  const a = new DistributedSampler(100, { numReplicas: 2, rank: 0, seed: 1 });
  t.notSame(Array.from(a.indices(0)), Array.from(a.indices(1)), 'a new order each epoch');
  t.same(Array.from(new DistributedSampler(5, { numReplicas: 2, rank: 1, shuffle: false }).indices(3)), [1, 3, 0]);
  t.throws(() => new DistributedSampler(10, { numReplicas: 2, rank: 2 }), /rank/);
  t.throws(() => new DistributedSampler(10, { numReplicas: 0, rank: 0 }), /numReplicas/);
});

t.test('the DataLoader iterates its sampler\'s share', async (t) => {
  const images = new Uint8Array(10 * 4).map((_, i) => Math.floor(i / 4) * 10);
  const ds = kw.toShared(images, new Uint8Array(10), [1, 2, 2], 1);
  const augment = { size: 2, padding: 0, flip: 0, mean: [0], std: [1 / 255] };
  const sampler = new DistributedSampler(10, { numReplicas: 3, rank: 2, seed: 0, shuffle: false });
  const loader = new kw.DataLoader(ds, { batchSize: 2, shuffle: false, dropLast: false, train: false, augment, numWorkers: 1, sampler });
  t.equal(loader.length, 2);
  const firsts: number[] = [];
  for await (const { x, y } of loader.epoch(0)) {
    const v = x.data() as Float32Array;
    for (let i = 0; i < x.shape[0]; i++) firsts.push(Math.round(v[i * 4] / 10));
    x.dispose();
    y.dispose();
  }
  await loader.close();
  t.same(firsts, [2, 5, 8, 1], 'samples 2, 5, 8 and the padding sample 1 (the head repeated)');
  t.throws(() => new kw.DataLoader(ds, { batchSize: 2, shuffle: false, dropLast: false, train: false, augment, sampler: new DistributedSampler(9, { numReplicas: 1, rank: 0 }) }), /sampler/);
});

t.test('launcher detection, the mpirun command line, a world of one', async (t) => {
  t.same(launcherEnv({ OMPI_COMM_WORLD_RANK: '1', OMPI_COMM_WORLD_SIZE: '4' }), { rank: 1, size: 4, launcher: 'Open MPI' });
  t.same(launcherEnv({ PMI_RANK: '0', PMI_SIZE: '2' })?.size, 2);
  t.equal(launcherEnv({}), null);
  t.same(withoutNproc(['--nproc_per_node', '2', '--epochs', '1', '--nproc-per-node=3']), ['--epochs', '1']);
  const many = mpirunArgs(os.cpus().length + 1, 'x.js', ['--nproc_per_node', '9', '--lr', '0.1']);
  t.ok(many.includes('--oversubscribe'), 'more ranks than cores: --oversubscribe');
  t.notOk(mpirunArgs(1, 'x.js', []).includes('--oversubscribe'));
  t.same(many.slice(-3), ['x.js', '--lr', '0.1']);
  const w = World.single();
  const x = kw.tensor([1, 2, 3]);
  w.allReduce([x], { average: true });
  t.same(Array.from(x.data() as Float32Array), [1, 2, 3], 'collectives of a world of one change nothing');
  t.same(w.sumNumbers([1, 2]), [1, 2]);
  t.same(w.broadcastJSON({ a: 1 }), { a: 1 });
  x.dispose();
});

t.test('the addon does not link MPI; a missing communication library is a clean error', async (t) => {
  const addon = path.join(root, 'build', 'Release', 'kernelwarehouse.node');
  const ldd = cp.spawnSync('ldd', [addon], { encoding: 'utf8' });
  if (ldd.status === 0) t.notMatch(ldd.stdout, /libmpi/, 'no libmpi among the addon\'s dependencies');
  t.throws(() => native.commOpen('/nonexistent/libkw_comm_mpi.so'), /cannot open the communication library \/nonexistent/);
  t.throws(() => native.commAllreduce([], false, 16), /no communication library is open/);
});

t.test('started by mpirun on a build without the MPI library: an error that says how to fix it', async (t) => {
  const keys = ['OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE', 'KW_COMM_LIB'] as const;
  const saved = keys.map((k) => process.env[k]);
  Object.assign(process.env, { OMPI_COMM_WORLD_RANK: '1', OMPI_COMM_WORLD_SIZE: '2', KW_COMM_LIB: '/nonexistent/libkw_comm_mpi.so' });
  try {
    t.throws(() => initDistributed(), /rank 1 of 2, but this build has no libkw_comm_mpi\.so .*apt-get install libopenmpi-dev/);
  } finally {
    keys.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i])));
  }
  t.equal(launcherEnv(), null, 'environment restored');
});

// --- under mpirun -------------------------------------------------------------------------

function skipReason(): string | null {
  if (!findMpirun()) return 'mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)';
  if (!fs.existsSync(commLibraryPath())) return `${commLibraryPath()} was not built (install libopenmpi-dev and run npx cmake-js compile)`;
  if (!fs.existsSync(cli)) return `${cli} is not built (run: npx tsc -p tsconfig.json)`;
  const built = fs.statSync(cli).mtimeMs;
  for (const dir of ['lib/distributed', 'lib/train', 'lib/cli', 'lib/data'])
    for (const f of fs.readdirSync(path.join(root, dir)))
      if (fs.statSync(path.join(root, dir, f)).mtimeMs > built) return `${dir}/${f} is newer than dist/ (run: npx tsc -p tsconfig.json)`;
  return null;
}
const skip = skipReason();

// loopback only, and allowed as root (CI runs as root)
const mpiEnv = {
  ...process.env,
  OMPI_ALLOW_RUN_AS_ROOT: '1',
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1',
  OMPI_MCA_btl: 'self,tcp',
  OMPI_MCA_btl_tcp_if_include: 'lo',
  OMPI_MCA_oob_tcp_if_include: 'lo',
};
const MPIRUN = ['--oversubscribe', '--bind-to', 'none', '-np'];

interface Run {
  code: number | null;
  out: string;
}
function run(cmd: string, args: string[], opts: { onOutput?: (out: string, child: cp.ChildProcess) => void; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = cp.spawn(cmd, args, { env: mpiEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60000);
    const on = (b: Buffer) => {
      out += b.toString();
      opts.onOutput?.(out, child);
    };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

t.test('collectives on 2 ranks', { skip: skip ?? false }, async (t) => {
  const r = await run('mpirun', [...MPIRUN, '2', process.execPath, rankScript, 'collectives']);
  t.equal(r.code, 0, 'exits 0', { output: r.out.slice(-3000) });
  const results = r.out.split('\n').filter((l) => l.startsWith('RESULT ')).map((l) => JSON.parse(l.slice(7)));
  t.same(results.map((x) => x.rank).sort(), [0, 1]);
  const n = 2;
  for (const x of results) {
    t.equal(x.size, n);
    // rank r held (r+1)·100·(k+1) + i in storage k: the sum over ranks is 100(k+1)·n(n+1)/2 + n·i
    t.same(x.sums, [2, 5, 9].map((len, k) => Array.from({ length: len }, (_, i) => 100 * (k + 1) * (n * (n + 1)) / 2 + n * i)), `rank ${x.rank}: sums`);
    t.same(x.avg, [1.5, 3], 'average of [1, 2] and [2, 4]');
    t.same(x.broadcast, [1, 1, 1], 'rank 1 broadcast its values');
    t.same(x.json, { from: 'rank0', list: [1, 2, 3] });
    t.same(x.allgather, [0, 0, 1, 10]);
    t.same(x.gather, x.rank === 0 ? [0.5, 1.5] : [], 'gathered on rank 0 only');
    t.match(x.errors.notStorage, /'storages\[1\]' must be a storage handle/);
    t.match(x.errors.int32, /'storages\[0\]' must be float32/);
    t.match(x.errors.notBytes, /'bytes' must be a Uint8Array/);
    t.match(x.errors.badRoot, /'root' must be a rank below the world size \(2\), got 7/);
  }
});

function maxDiff(a: Record<string, number[]>, b: Record<string, number[]>): number {
  let d = 0;
  for (const k of Object.keys(a)) a[k].forEach((v, i) => (d = Math.max(d, Math.abs(v - b[k][i]))));
  return d;
}

t.test('2 ranks × batch 8 give the parameters of 1 process × batch 16 (LayerNorm net, 8 SGD steps)', { skip: skip ?? false }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dist-eq-'));
  const two = await run('mpirun', [...MPIRUN, '2', process.execPath, rankScript, 'equiv', '8', '8', path.join(dir, 'two')]);
  t.equal(two.code, 0, 'exits 0', { output: two.out.slice(-3000) });
  const one = await run(process.execPath, [rankScript, 'equiv', '16', '8', path.join(dir, 'one')]);
  t.equal(one.code, 0, 'exits 0', { output: one.out.slice(-3000) });
  const half = await run(process.execPath, [rankScript, 'equiv', '8', '8', path.join(dir, 'half')]);
  t.equal(half.code, 0, 'exits 0', { output: half.out.slice(-3000) });
  const read = (f: string) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  const r0 = read('two.rank0.json'), r1 = read('two.rank1.json'), ref = read('one.rank0.json'), small = read('half.rank0.json');
  t.equal(r0.steps, 8);
  t.equal(ref.steps, 8);
  t.equal(maxDiff(r0.params, r1.params), 0, 'both ranks hold the same weights (each started from its own initialisation)');
  const d = maxDiff(r0.params, ref.params);
  t.ok(d < 1e-5, `2 ranks vs 1 process: max |Δ| = ${d}`);
  t.ok(Math.abs(r0.trainLoss - ref.trainLoss) < 1e-5, `epoch loss summed over ranks: ${r0.trainLoss} vs ${ref.trainLoss}`);
  // the comparison can fail: one process with only batch 8 ends elsewhere
  const dSmall = maxDiff(small.params, ref.params);
  t.ok(dSmall > 1e-3, `batch 8 alone differs from batch 16 by ${dSmall}`);
  fs.rmSync(dir, { recursive: true, force: true });
});


/** Processes whose parent is pid (from /proc: no dependency on ps). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]); // after "comm) state"
      if (ppid === pid) out.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

const recipe = (data: string, out: string, epochs: number) => [
  '--model', 'kw_resnet_mini', '--data_set', 'IDX', '--data_path', data, '--input_size', '28', '--crop_padding', '0',
  '--epochs', String(epochs), '--batch_size', '16', '--opt', 'sgd', '--lr', '0.05', '--warmup_epochs', '0', '--smoothing', '0',
  '--mixup', '0', '--cutmix', '0', '--temp_epoch', '1', '--device', 'cpu', '--num_workers', '1', '--output_dir', out,
];

t.test('kw-train under mpirun -np 2: rank 0 alone prints and writes; a killed rank stops the job; the same command resumes', { skip: skip ?? false }, async (t) => {
  const data = smallIdx(256, 64, 'idx-dist-');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'dist-cli-'));
  const r = await run('mpirun', [...MPIRUN, '2', process.execPath, cli, ...recipe(data, out, 1), '--dist_url', 'tcp://x:1']);
  t.equal(r.code, 0, 'exits 0', { output: r.out.slice(-3000) });
  t.equal(r.out.split('model kw_resnet_mini:').length - 1, 1, 'one rank prints');
  t.match(r.out, /data-parallel: 2 ranks/);
  t.match(r.out, /--dist_url tcp:\/\/x:1 is ignored/);
  const lines = fs.readFileSync(path.join(out, 'log.txt'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.same(lines.map((l) => l.epoch), [0], 'one log line: rank 1 did not append');
  t.ok(lines[0].test_acc1 >= 0 && lines[0].test_acc1 <= 100 && Number.isFinite(lines[0].train_loss));
  t.ok(fs.existsSync(path.join(out, 'checkpoint-0.safetensors')));

  // --nproc_per_node: kw-train starts mpirun itself; kill rank 1 in epoch 2, after checkpoint-0
  const out2 = fs.mkdtempSync(path.join(os.tmpdir(), 'dist-kill-'));
  const argv = [cli, '--nproc_per_node', '2', ...recipe(data, out2, 2)];
  let killed = 0;
  const k = await run(process.execPath, argv, {
    onOutput: (_, child) => {
      if (killed || !fs.existsSync(path.join(out2, 'checkpoint-0.safetensors'))) return;
      // kw-train (our child) → mpirun → the ranks
      const ranks = childrenOf(child.pid!).flatMap(childrenOf);
      if (ranks.length < 2) return;
      killed = Math.max(...ranks); // started second: rank 1
      process.kill(killed, 'SIGKILL');
    },
  });
  t.ok(killed > 0, 'a rank was killed');
  t.not(k.code, 0, 'the job failed');
  t.match(k.out, /exited on signal 9/, "mpirun's report");
  t.match(k.out, /the 2-rank job stopped .* Run the same command again: auto-resume continues from the last checkpoint/s);
  const again = await run(process.execPath, argv);
  t.equal(again.code, 0, 'exits 0', { output: again.out.slice(-3000) });
  t.match(again.out, /resumed from .*checkpoint-0\.safetensors at epoch 1/);
  const lines2 = fs.readFileSync(path.join(out2, 'log.txt'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.same(lines2.map((l) => l.epoch), [0, 1], 'every epoch logged once');
  for (const d of [data, out, out2]) fs.rmSync(d, { recursive: true, force: true });
});
