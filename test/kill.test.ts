// Real process faults against the compiled CLI (dist/lib/cli/kw-train.js): SIGKILL mid-epoch
// then the same command again, and Ctrl-C (SIGINT) then the same command again, each ends with
// the same weights and log.txt as one uninterrupted run with the same seed.
import t from 'tap';
import * as cp from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { smallIdx } from './helpers/cli';
import { readSafetensors } from '../lib/io/safetensors';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'dist', 'lib', 'cli', 'kw-train.js');

// the compiled CLI must exist and be newer than every source it is built from
function staleReason(): string | null {
  if (!fs.existsSync(cli)) return `${cli} is not built (run: npx tsc -p tsconfig.json)`;
  const built = fs.statSync(cli).mtimeMs;
  const walk = (dir: string): string | null => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        const r = walk(p);
        if (r) return r;
      } else if (p.endsWith('.ts') && fs.statSync(p).mtimeMs > built) return `${p} is newer than dist/ (run: npx tsc -p tsconfig.json)`;
    }
    return null;
  };
  return walk(path.join(root, 'lib'));
}


interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
}

/** Runs kw-train; when `at` appears in its output, sends `signal` (once). */
function runCli(argv: string[], interrupt?: { at: RegExp; signal: NodeJS.Signals }): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = cp.spawn(process.execPath, [cli, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let sent = false;
    const onData = (b: Buffer) => {
      out += b.toString();
      if (interrupt && !sent && interrupt.at.test(out)) {
        sent = true;
        child.kill(interrupt.signal);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, out }));
  });
}

const skip = staleReason();
t.test('kw-train survives SIGKILL and SIGINT mid-epoch', { skip: skip ?? false }, async (t) => {
  const data = smallIdx(256, 64, 'idx-kill-');
  const flags = (out: string) => [
    '--model', 'kw_resnet_mini', '--data_set', 'IDX', '--data_path', data, '--input_size', '28', '--batch_size', '32',
    '--opt', 'sgd', '--lr', '0.05', '--momentum', '0.9', '--warmup_epochs', '0', '--mixup', '0', '--cutmix', '0',
    '--temp_epoch', '2', '--sharing_range', 'layer', 'conv', '--drop_path', '0.1', '--device', 'cpu', '--num_workers', '1',
    '--seed', '3', '--epochs', '3', '--output_dir', out,
  ];
  const weights = (dir: string) => {
    const { tensors } = readSafetensors(path.join(dir, 'checkpoint-2.safetensors'));
    return new Map([...tensors].filter(([k]) => k.startsWith('model.')).map(([k, v]) => [k, Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength)]));
  };
  const log = (dir: string) => fs.readFileSync(path.join(dir, 'log.txt'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

  const ref = fs.mkdtempSync(path.join(os.tmpdir(), 'kill-ref-'));
  const r0 = await runCli(flags(ref));
  t.equal(r0.code, 0, 'the uninterrupted run exits 0' + (r0.code ? `\n${r0.out}` : ''));
  const refWeights = weights(ref);
  t.ok(refWeights.size > 10, 'reference run saved its model');

  // the first progress line of epoch 2 is printed after epoch 1's checkpoint and first step
  const midEpoch2 = /epoch 2\/3 \[1\//;

  await t.test('SIGKILL mid-epoch, then the same command', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kill-'));
    const killed = await runCli(flags(dir), { at: midEpoch2, signal: 'SIGKILL' });
    t.equal(killed.signal, 'SIGKILL', 'the process was killed');
    t.ok(fs.existsSync(path.join(dir, 'checkpoint-0.safetensors')), 'epoch 1 checkpoint on disk');
    t.notOk(fs.existsSync(path.join(dir, 'checkpoint-1.safetensors')), 'killed before epoch 2 finished');
    t.same(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temp files');
    const resumed = await runCli(flags(dir));
    t.equal(resumed.code, 0, 'the resumed run exits 0' + (resumed.code ? `\n${resumed.out}` : ''));
    t.match(resumed.out, /resumed from .*checkpoint-0\.safetensors at epoch 1/);
    t.same(log(dir), log(ref), 'log.txt: every epoch once, the same numbers as the uninterrupted run');
    t.same(weights(dir), refWeights, 'final weights bit-identical to the uninterrupted run');
  });

  await t.test('SIGINT mid-epoch stops after the step with a checkpoint, then the same command', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sigint-'));
    const stopped = await runCli(flags(dir), { at: midEpoch2, signal: 'SIGINT' });
    t.equal(stopped.code, 130, 'Ctrl-C exits 130' + (stopped.code !== 130 ? `\n${stopped.out}` : ''));
    t.match(stopped.out, /interrupted: stopping after this step and saving a checkpoint/);
    t.match(stopped.out, /stopped in epoch 2\/3 after iteration \d+\/8: saved .*checkpoint-interrupted\.safetensors/);
    t.ok(fs.existsSync(path.join(dir, 'checkpoint-interrupted.safetensors')));
    const resumed = await runCli(flags(dir));
    t.equal(resumed.code, 0, 'the resumed run exits 0' + (resumed.code ? `\n${resumed.out}` : ''));
    t.match(resumed.out, /resumed from .*checkpoint-interrupted\.safetensors at epoch 1, iteration \d+/);
    t.same(log(dir), log(ref), 'log.txt: every epoch once, the same numbers as the uninterrupted run');
    t.same(weights(dir), refWeights, 'final weights bit-identical to the uninterrupted run');
    t.notOk(fs.existsSync(path.join(dir, 'checkpoint-interrupted.safetensors')), 'interrupted checkpoint cleaned up');
  });
});
