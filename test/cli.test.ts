// kw-train end to end, in-process: errors and exit codes, --doctor, and a short training run
// on a small IDX dataset cut from the bundled one (checkpoints, log.txt, auto-resume, --eval).
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli, smallIdx } from './helpers/cli';

const run = runCli;


t.test('errors exit non-zero with a clear message', async (t) => {
  const bad = await run(['--bacth_size', '3']);
  t.equal(bad.code, 2);
  t.match(bad.err, /unknown flag --bacth_size \(did you mean --batch_size\?\)/);
  const cuda = await run(['--device', 'cuda', '--model', 'resnet_mini']);
  t.equal(cuda.code, 1);
  // Whichever reason applies here (no CUDA build, no libkw_cuda.so, no device/driver), in words.
  t.match(cuda.err, /--device cuda: device 'cuda' is not available: .+; use --device cpu/);
  const help = await run(['--help']);
  t.equal(help.code, 0);
  t.match(help.out, /--kw_config/);
});

t.test('--doctor --json', async (t) => {
  const r = await run(['--doctor', '--json']);
  t.equal(r.code, 0);
  const j = JSON.parse(r.out);
  t.same(j.backends, ['cpu']);
  t.match(j.gemm, /OpenBLAS|builtin/);
  t.match(j.mpi, /^(built \(.*libkw_comm_mpi\.so\)|not built)/);
});

t.test('a short KW training run: checkpoints, log.txt, auto-resume, --eval', async (t) => {
  const data = smallIdx(256, 128, 'idx-small-');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'kwtrain-'));
  const flags = ['--model', 'kw_resnet_mini', '--data_set', 'IDX', '--data_path', data, '--input_size', '28', '--batch_size', '32',
    '--opt', 'sgd', '--lr', '0.05', '--warmup_epochs', '0', '--mixup', '0', '--cutmix', '0', '--smoothing', '0.1', '--temp_epoch', '1',
    '--sharing_range', 'layer', 'conv', '--device', 'cpu', '--num_workers', '1', '--output_dir', out];
  const r = await run([...flags, '--epochs', '1']);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /kw_resnet_mini: [\d,]+ parameters/);
  t.match(r.out, /epoch 1\/1: train loss [\d.]+, test loss [\d.]+, acc@1 [\d.]+%/);
  t.ok(fs.existsSync(path.join(out, 'checkpoint-0.safetensors')));
  const r2 = await run([...flags, '--epochs', '2']);
  t.match(r2.out, /resumed from .*checkpoint-0.safetensors at epoch 1/);
  const log = fs.readFileSync(path.join(out, 'log.txt'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.same(log.map((l) => l.epoch), [0, 1]);
  const ev = await run([...flags, '--eval', 'true', '--resume', path.join(out, 'checkpoint-1.safetensors')]);
  t.equal(ev.code, 0, ev.err);
  t.match(ev.out, /\* Acc@1 [\d.]+ Acc@5 [\d.]+ loss [\d.]+/);
  const acc = Number(/Acc@1 ([\d.]+)/.exec(ev.out)![1]);
  t.ok(Math.abs(acc - log[1].test_acc1) < 1e-9, `eval of the saved model reproduces the logged accuracy (${acc} vs ${log[1].test_acc1})`);
});
