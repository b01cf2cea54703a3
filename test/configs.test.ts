// The official KernelWarehouse configs shipped in configs/: present, valid JSON, and spelled
// with upstream's training flags only. Run: npx tap test/configs.test.ts
import t from 'tap';
import * as fs from 'fs';
import * as path from 'path';
import { managerOptionsFromUpstream } from '../lib/kw/plan';

const configDir = path.resolve(__dirname, '..', 'configs');
const goldenDir = process.env.KW_GOLDEN_DIR ?? path.resolve(__dirname, '..', '..', 'shared', 'golden');

// Upstream's configs/ folder (OSVAI/KernelWarehouse).
const OFFICIAL = [
  'convnext/convnext_tiny.json',
  'convnext/kw1x_convnext_tiny.json',
  'mobilenetv2_050/kw1d2x_mobilenetv2_050.json',
  'mobilenetv2_050/kw1x_mobilenetv2_050.json',
  'mobilenetv2_050/kw4x_mobilenetv2_050.json',
  'mobilenetv2_050/mobilenetv2_050.json',
  'mobilenetv2_100/kw1d2x_mobilenetv2_100.json',
  'mobilenetv2_100/kw1x_mobilenetv2_100.json',
  'mobilenetv2_100/kw4x_mobilenetv2_100.json',
  'mobilenetv2_100/mobilenetv2_100.json',
  'resnet18/kw1d2x_resnet18.json',
  'resnet18/kw1d4x_resnet18.json',
  'resnet18/kw1x_resnet18.json',
  'resnet18/kw2x_resnet18.json',
  'resnet18/kw4x_resnet18.json',
  'resnet18/resnet18.json',
  'resnet50/kw1d2x_resnet50.json',
  'resnet50/kw1x_resnet50.json',
  'resnet50/kw4x_resnet50.json',
  'resnet50/resnet50.json',
];

// The training flags of upstream's main.py (DESIGN.md appendix).
const FLAGS = new Set([
  'batch_size', 'epochs', 'update_freq', 'model', 'drop_path', 'dropout', 'input_size', 'layer_scale_init_value',
  'model_ema', 'model_ema_eval', 'model_ema_decay', 'opt', 'opt_eps', 'opt_betas', 'clip_grad', 'momentum',
  'weight_decay', 'weight_decay_end', 'lr', 'layer_decay', 'min_lr', 'warmup_epochs', 'warmup_steps',
  'color_jitter', 'aa', 'smoothing', 'train_interpolation', 'crop_pct', 'reprob', 'remode', 'recount',
  'mixup', 'cutmix', 'mixup_prob', 'mixup_switch_prob', 'mixup_mode', 'finetune', 'model_key', 'model_prefix',
  'head_init_scale', 'data_path', 'eval_data_path', 'nb_classes', 'data_set', 'imagenet_default_mean_and_std',
  'output_dir', 'log_dir', 'device', 'seed', 'resume', 'auto_resume', 'save_ckpt', 'save_ckpt_freq',
  'save_ckpt_num', 'start_epoch', 'eval', 'disable_eval', 'num_workers', 'use_amp', 'traditional_preprocess',
  'temp_epoch', 'temp_init_value', 'reduction', 'sharing_range', 'cell_num_ratio', 'cell_inplane_ratio',
  'cell_outplane_ratio', 'nonlocal_basis_ratio',
]);

// Models registered by upstream's models/__init__.py.
const MODELS = new Set([
  'resnet18', 'resnet50', 'kw_resnet18', 'kw_resnet50', 'convnext_tiny', 'kw_convnext_tiny',
  'mobilenetv2_100', 'mobilenetv2_050', 'kw_mobilenetv2_100', 'kw_mobilenetv2_050',
  'kw1d2x_mobilenetv2_100', 'kw1d2x_mobilenetv2_050',
]);

const load = (rel: string): Record<string, unknown> =>
  JSON.parse(fs.readFileSync(path.join(configDir, rel), 'utf8')) as Record<string, unknown>;

t.test('every official config is present and parses', async (t) => {
  t.equal(OFFICIAL.length, 20);
  for (const rel of OFFICIAL) {
    t.ok(fs.existsSync(path.join(configDir, rel)), `${rel} exists`);
    const cfg = load(rel);
    t.type(cfg, 'object', `${rel} is a JSON object`);
    const unknown = Object.keys(cfg).filter((k) => !FLAGS.has(k));
    t.same(unknown, [], `${rel}: only upstream flag names`);
    t.ok(MODELS.has(cfg.model as string), `${rel}: model ${String(cfg.model)} is an upstream model`);
    t.doesNotThrow(() => managerOptionsFromUpstream(cfg), `${rel}: KW options are well-formed`);
  }
});

t.test('configs agree with the reference parameter-count table', async (t) => {
  const file = path.join(goldenDir, 'param_counts.json');
  t.ok(fs.existsSync(file), `${file} exists`);
  const table = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, { model: string }>;
  t.same(Object.keys(table).sort(), [...OFFICIAL].sort(), 'the same 20 configs');
  for (const [rel, entry] of Object.entries(table)) t.equal(load(rel).model, entry.model, `${rel}: model`);
});

t.test('a few values, as upstream writes them', async (t) => {
  t.same(load('resnet18/kw1d4x_resnet18.json'), {
    model: 'kw_resnet18', reduction: 0.0625, cell_num_ratio: 0.25, cell_inplane_ratio: 0.5,
    cell_outplane_ratio: 0.5, sharing_range: 'layer_conv', drop_path: 0.0, dropout: 0.0, mixup: 0, cutmix: 0,
  });
  t.equal(load('resnet50/kw1d2x_resnet50.json').nonlocal_basis_ratio, 0.0625);
  t.same(load('mobilenetv2_050/kw4x_mobilenetv2_050.json').sharing_range, ['layer']);
  t.equal(load('mobilenetv2_050/kw1d2x_mobilenetv2_050.json').aa, null);
  t.equal(load('convnext/kw1x_convnext_tiny.json').sharing_range, 'layer_pwconv');
});

t.test('configs equal the contents recorded in the reference model cases', async (t) => {
  const cases = fs.readdirSync(goldenDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(goldenDir, f), 'utf8')) as Record<string, unknown>)
    .filter((c) => c.kind === 'model' && typeof c.config === 'string');
  t.ok(cases.length > 0, 'there are model cases');
  for (const c of cases) t.same(load(c.config as string), c.kw_config, `${String(c.config)}`);
});
