// A full disk during a checkpoint save, for real: a small tmpfs is mounted for the test (we may
// run as root; skipped with the reason where mount is refused), so the kernel itself answers
// ENOSPC part-way through the write. The previous checkpoint must stay intact, no partial or
// temp file may be left, and kw-train must stop with a message that names the file and says
// what to do; after space is freed, the same command resumes and ends as an uninterrupted run.
import t from 'tap';
import * as cp from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { smallIdx } from './helpers/cli';
import { readSafetensors, writeSafetensors } from '../lib/io/safetensors';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'dist', 'lib', 'cli', 'kw-train.js');

/** Mounts a tmpfs of `bytes` on a fresh folder; a string says why it could not. */
function mountTmpfs(bytes: number): string | { dir: string } {
  if (process.platform !== 'linux') return 'tmpfs needs Linux';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fulldisk-'));
  try {
    cp.execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    fs.rmdirSync(dir);
    return `cannot mount a tmpfs here (${String((e as { stderr?: Buffer }).stderr ?? e).trim()})`;
  }
  return { dir };
}

function unmount(dir: string): void {
  cp.execFileSync('umount', [dir], { stdio: 'pipe' });
  fs.rmdirSync(dir);
}

const freeBytes = (dir: string): number => {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
};

/** Fills dir's filesystem with one file until only `leave` bytes are free. */
function fillLeaving(dir: string, leave: number): void {
  fs.writeFileSync(path.join(dir, 'filler'), Buffer.alloc(Math.max(0, freeBytes(dir) - leave), 7));
}

const probe = mountTmpfs(1 << 20);
const skip = typeof probe === 'string' ? probe : false;
if (typeof probe !== 'string') unmount(probe.dir);

t.test('writeSafetensors on a nearly full disk: ENOSPC mid-write, old file intact, nothing left behind', { skip }, async (t) => {
  const m = mountTmpfs(1 << 20) as { dir: string };
  t.teardown(() => unmount(m.dir));
  const file = path.join(m.dir, 'checkpoint-0.safetensors');
  const small = { w: { dtype: 'F32' as const, shape: [25000], data: Float32Array.from({ length: 25000 }, (_, i) => i) } };
  writeSafetensors(file, small, { epoch: '0' });
  const before = fs.readFileSync(file);
  // 64 KiB free: the header and the first tensor bytes go in, then the kernel refuses
  fillLeaving(m.dir, 64 << 10);
  const free = freeBytes(m.dir);
  const big = { w: { dtype: 'F32' as const, shape: [100000], data: new Float32Array(100000).fill(1) } };
  let err: Error | null = null;
  try {
    writeSafetensors(file, big, { epoch: '1' });
  } catch (e) {
    err = e as Error;
  }
  t.ok(err, 'the save throws');
  t.match(err?.message, /safetensors file .*checkpoint-0\.safetensors: write failed \(ENOSPC: no space left on device, write\)/, 'names the file and the cause: a write call ran out of space');
  t.same(fs.readFileSync(file), before, 'the previous file is byte for byte intact');
  t.same(readSafetensors(file).metadata, { epoch: '0' }, 'and still reads');
  t.same(fs.readdirSync(m.dir).sort(), ['checkpoint-0.safetensors', 'filler'], 'no temp file left');
  t.equal(freeBytes(m.dir), free, 'the partial temp file\'s space was given back');
  // a first save of a new file fails the same way and leaves no file of that name
  t.throws(() => writeSafetensors(path.join(m.dir, 'new.safetensors'), big), /new\.safetensors: write failed \(ENOSPC/);
  t.notOk(fs.existsSync(path.join(m.dir, 'new.safetensors')), 'no partial new file');
});


function runCli(argv: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = cp.spawn(process.execPath, [cli, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

const cliSkip = skip || (!fs.existsSync(cli) ? `${cli} is not built (run: npx tsc -p tsconfig.json)` : false);
t.test('kw-train on a disk that fills up: stops naming the file, resumes once space is freed', { skip: cliSkip }, async (t) => {
  const data = smallIdx(128, 32, 'idx-full-');
  const flags = (out: string) => [
    '--model', 'kw_resnet_mini', '--data_set', 'IDX', '--data_path', data, '--input_size', '28', '--batch_size', '32',
    '--opt', 'sgd', '--lr', '0.05', '--momentum', '0.9', '--warmup_epochs', '0', '--mixup', '0', '--cutmix', '0',
    '--temp_epoch', '1', '--device', 'cpu', '--num_workers', '1', '--disable_eval', 'true', '--save_ckpt_num', '3',
    '--seed', '5', '--epochs', '2', '--output_dir', out,
  ];
  const ref = fs.mkdtempSync(path.join(os.tmpdir(), 'fulldisk-ref-'));
  t.teardown(() => [ref, data].forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const r0 = await runCli(flags(ref));
  t.equal(r0.code, 0, 'the reference run exits 0' + (r0.code ? `\n${r0.out}` : ''));
  const size = fs.statSync(path.join(ref, 'checkpoint-0.safetensors')).size;

  // room for checkpoint-0, log.txt and about half of checkpoint-1
  const m = mountTmpfs(Math.ceil((size * 1.5 + (64 << 10)) / 4096) * 4096);
  if (typeof m === 'string') return t.fail(m);
  t.teardown(() => unmount(m.dir));
  const out = path.join(m.dir, 'run');
  const full = await runCli(flags(out));
  t.equal(full.code, 1, 'the run stops with exit code 1');
  t.comment(`checkpoint ${size} bytes on a ${fs.statfsSync(m.dir).blocks * fs.statfsSync(m.dir).bsize}-byte tmpfs; kw-train said: ${full.out.trim().split('\n').pop()}`);
  t.match(full.out, /kw-train: could not save checkpoint .*run\/checkpoint-1\.safetensors: .*ENOSPC: no space left on device, write.*Training stopped; the previous checkpoint .*run\/checkpoint-0\.safetensors is intact and auto-resume continues from it \(free disk space and run the same command again\)/,
    'names the file, the cause, the intact checkpoint and what to do');
  t.same(fs.readdirSync(out).sort(), ['checkpoint-0.safetensors', 'log.txt'], 'no partial checkpoint-1, no temp file');
  t.same(fs.readFileSync(path.join(out, 'checkpoint-0.safetensors')).subarray(-Math.floor(size / 2)), fs.readFileSync(path.join(ref, 'checkpoint-0.safetensors')).subarray(-Math.floor(size / 2)),
    'checkpoint-0 holds the same tensors as the reference run (only the output_dir in its args differs)');

  // free space (grow the tmpfs in place) and run the same command: it resumes from checkpoint-0
  cp.execFileSync('mount', ['-o', `remount,size=${4 * size + (1 << 20)}`, m.dir], { stdio: 'pipe' });
  const resumed = await runCli(flags(out));
  t.equal(resumed.code, 0, 'the resumed run exits 0' + (resumed.code ? `\n${resumed.out}` : ''));
  t.match(resumed.out, /resumed from .*checkpoint-0\.safetensors at epoch 1/);
  const model = (dir: string) => [...readSafetensors(path.join(dir, 'checkpoint-1.safetensors')).tensors]
    .filter(([k]) => k.startsWith('model.')).map(([k, v]) => [k, Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength)]);
  t.same(model(out), model(ref), 'final weights bit-identical to the run that never hit a full disk');
  const log = (dir: string) => fs.readFileSync(path.join(dir, 'log.txt'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).train_loss);
  t.same(log(out), log(ref), 'the same loss curve');
});
