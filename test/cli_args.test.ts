// kw-train's flag parsing: upstream names and defaults, config merging, clear errors.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs, loadConfig } from '../lib/cli/args';

t.test('defaults are upstream main.py defaults', async (t) => {
  const a = parseArgs([]);
  t.equal(a.batch_size, 64);
  t.equal(a.lr, 4e-3);
  t.equal(a.opt, 'adamw');
  t.equal(a.model, 'convnext_tiny');
  t.equal(a.temp_epoch, 20);
  t.equal(a.auto_resume, true);
  t.equal(a.clip_grad, null);
});

t.test('config values beat defaults, command line beats config', async (t) => {
  const cfg = 'configs/mobilenetv2_050/kw1d2x_mobilenetv2_050.json';
  const a = parseArgs(['--kw_config', cfg]);
  t.equal(a.model, 'kw1d2x_mobilenetv2_050');
  t.equal(a.opt, 'sgd');
  t.equal(a.lr, 0.05);
  t.equal(a.aa, null);
  t.equal(a.traditional_preprocess, true);
  const b = parseArgs(['--kw_config', cfg, '--lr', '0.1', '--batch-size=32', '--use_amp', 'true', '--cell_num_ratio', '0.5', '1']);
  t.equal(b.lr, 0.1);
  t.equal(b.batch_size, 32);
  t.equal(b.use_amp, true);
  t.same(b.cell_num_ratio, [0.5, 1]);
  t.equal(b.warmup_steps, -1);
  t.equal(parseArgs(['--warmup_steps', '-1']).warmup_steps, -1);
  t.same(parseArgs(['--sharing_range', 'layer', 'conv']).sharing_range, ['layer', 'conv']);
});

t.test('bad flags and configs are reported before any work', async (t) => {
  t.throws(() => parseArgs(['--batchsize', '3']), /unknown flag --batchsize \(did you mean --batch_size\?\)/);
  t.throws(() => parseArgs(['--batch_size', 'x']), /--batch_size: expected an integer, got 'x'/);
  t.throws(() => parseArgs(['--model_ema', 'maybe']), /expected true or false/);
  t.throws(() => parseArgs(['--lr']), /--lr: expected a value/);
  t.throws(() => parseArgs(['--data_set', 'MNIST']), /one of CIFAR, IMNET, image_folder, IDX/);
  t.throws(() => parseArgs(['train']), /unexpected argument 'train'/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
  const write = (name: string, text: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };
  t.throws(() => loadConfig(write('a.json', '{"lrr": 1}')), /a.json: unknown key 'lrr' \(did you mean 'lr'\?\)/);
  t.throws(() => loadConfig(write('b.json', '{"epochs": 1.5}')), /b.json: 'epochs' must be an integer/);
  t.throws(() => loadConfig(write('c.json', '{"epochs": ')), /c.json: not valid JSON/);
  t.throws(() => loadConfig(write('d.json', '[1]')), /must hold a JSON object/);
  t.throws(() => loadConfig(path.join(dir, 'none.json')), /cannot read/);
});

t.test('every official config loads', async (t) => {
  for (const d of fs.readdirSync('configs'))
    for (const f of fs.readdirSync(path.join('configs', d))) {
      const a = parseArgs(['--kw_config', path.join('configs', d, f)]);
      t.ok(typeof a.model === 'string', `${d}/${f}: ${a.model}`);
    }
});
