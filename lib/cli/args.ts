// kw-train's flags: upstream main.py's names, types and defaults, so commands from the KW
// README work unchanged. A --kw_config JSON's keys replace the defaults and command-line flags
// win over both (argparse with a pre-filled namespace). kebab-case aliases are accepted.
import * as fs from 'fs';
import { closestName } from '../errors';

type Kind = 'int' | 'float' | 'str' | 'bool' | 'floats' | 'strs' | 'flag';
interface Spec {
  kind: Kind;
  default: unknown;
  help: string;
  nullable?: boolean;
  choices?: string[];
}

const s = (kind: Kind, def: unknown, help: string, extra: Partial<Spec> = {}): Spec => ({ kind, default: def, help, ...extra });

/** Every flag kw-train accepts, upstream's first, then this package's own. */
export const FLAGS: Record<string, Spec> = {
  batch_size: s('int', 64, 'per-process batch size'),
  epochs: s('int', 300, 'training epochs'),
  update_freq: s('int', 1, 'gradient accumulation steps'),
  model: s('str', 'convnext_tiny', 'model name (see --help models)'),
  drop_path: s('float', 0, 'drop path rate'),
  dropout: s('float', 0, 'dropout rate'),
  input_size: s('int', 224, 'image input size'),
  layer_scale_init_value: s('float', 1e-6, 'ConvNeXt layer scale initial value'),
  model_ema: s('bool', false, 'keep an exponential moving average of the weights'),
  model_ema_decay: s('float', 0.9999, 'EMA decay'),
  model_ema_force_cpu: s('bool', false, 'accepted for compatibility'),
  model_ema_eval: s('bool', false, 'also evaluate the EMA model'),
  opt: s('str', 'adamw', 'optimizer: sgd (Nesterov), momentum, adam, adamw'),
  opt_eps: s('float', 1e-8, 'optimizer epsilon'),
  opt_betas: s('floats', null, 'optimizer betas', { nullable: true }),
  clip_grad: s('float', null, 'clip gradient norm', { nullable: true }),
  momentum: s('float', 0.9, 'SGD momentum'),
  weight_decay: s('float', 0.05, 'weight decay'),
  weight_decay_end: s('float', null, 'final weight decay (cosine schedule)', { nullable: true }),
  lr: s('float', 4e-3, 'learning rate'),
  layer_decay: s('float', 1.0, 'layer-wise lr decay (ConvNeXt)'),
  min_lr: s('float', 1e-6, 'lower lr bound of the cosine schedule'),
  warmup_epochs: s('int', 20, 'lr warmup epochs'),
  warmup_steps: s('int', -1, 'lr warmup steps (overrides warmup_epochs when > 0)'),
  color_jitter: s('float', 0.4, 'color jitter factor'),
  aa: s('str', 'rand-m9-mstd0.5-inc1', 'RandAugment policy', { nullable: true }),
  smoothing: s('float', 0.1, 'label smoothing'),
  train_interpolation: s('str', 'bicubic', 'training interpolation'),
  crop_pct: s('float', null, 'eval crop ratio', { nullable: true }),
  reprob: s('float', 0.25, 'random erase probability'),
  remode: s('str', 'pixel', 'random erase mode'),
  recount: s('int', 1, 'random erase count'),
  resplit: s('bool', false, 'do not random erase the first split'),
  mixup: s('float', 0.8, 'mixup alpha (enabled if > 0)'),
  cutmix: s('float', 1.0, 'cutmix alpha (enabled if > 0)'),
  cutmix_minmax: s('floats', null, 'cutmix min/max ratio', { nullable: true }),
  mixup_prob: s('float', 1.0, 'probability of mixup or cutmix'),
  mixup_switch_prob: s('float', 0.5, 'probability of cutmix when both are enabled'),
  mixup_mode: s('str', 'batch', 'batch, pair or elem'),
  finetune: s('str', '', 'finetune from checkpoint'),
  head_init_scale: s('float', 1.0, 'classifier head initial scale'),
  model_key: s('str', 'model|module', 'which key to load from a checkpoint'),
  model_prefix: s('str', '', 'prefix of the model keys in a checkpoint'),
  data_path: s('str', '', 'dataset path'),
  eval_data_path: s('str', null, 'evaluation dataset path', { nullable: true }),
  nb_classes: s('int', 1000, 'number of classes'),
  imagenet_default_mean_and_std: s('bool', true, 'normalise with ImageNet mean/std'),
  data_set: s('str', 'IMNET', 'dataset kind', { choices: ['CIFAR', 'IMNET', 'image_folder', 'IDX'] }),
  output_dir: s('str', '', 'where to save checkpoints and logs (empty: no saving)'),
  log_dir: s('str', null, 'TensorBoard log folder', { nullable: true }),
  device: s('str', 'cuda', 'cpu or cuda'),
  seed: s('int', 0, 'random seed'),
  resume: s('str', '', 'resume from checkpoint'),
  auto_resume: s('bool', true, 'resume from the latest checkpoint in output_dir'),
  save_ckpt: s('bool', true, 'save checkpoints'),
  save_ckpt_freq: s('int', 1, 'save every N epochs'),
  save_ckpt_num: s('int', 3, 'checkpoints to keep'),
  start_epoch: s('int', 0, 'start epoch'),
  eval: s('bool', false, 'evaluate only'),
  dist_eval: s('bool', true, 'distributed evaluation'),
  disable_eval: s('bool', false, 'no evaluation during training'),
  num_workers: s('int', 10, 'data loading workers'),
  pin_mem: s('bool', true, 'accepted for compatibility'),
  world_size: s('int', 1, 'number of distributed processes'),
  local_rank: s('int', -1, 'accepted for compatibility'),
  dist_on_itp: s('bool', false, 'accepted for compatibility'),
  dist_url: s('str', 'env://', 'accepted for compatibility'),
  use_amp: s('bool', false, 'mixed precision (GPU only)'),
  enable_wandb: s('bool', false, 'accepted for compatibility'),
  project: s('str', 'convnext', 'accepted for compatibility'),
  wandb_ckpt: s('bool', false, 'accepted for compatibility'),
  kw_config: s('str', null, 'path of a KernelWarehouse config JSON', { nullable: true }),
  temp_epoch: s('int', 20, 'epochs over which the temperature anneals to 0'),
  temp_init_value: s('float', 1.0, 'initial temperature'),
  reduction: s('floats', null, 'attention reduction ratio', { nullable: true }),
  traditional_preprocess: s('bool', false, 'MobileNetV2 traditional preprocessing'),
  sharing_range: s('strs', [], 'warehouse sharing range, e.g. layer conv'),
  cell_num_ratio: s('floats', null, 'cells in a warehouse / cells of its layers', { nullable: true }),
  cell_inplane_ratio: s('floats', null, 'cell in-planes / gcd of in-planes', { nullable: true }),
  cell_outplane_ratio: s('floats', null, 'cell out-planes / gcd of out-planes', { nullable: true }),
  nonlocal_basis_ratio: s('floats', 1.0, 'non-local basis ratio (enabled if < 1)'),
  // this package's own
  nproc_per_node: s('int', 1, 'start N data-parallel ranks on this machine through mpirun (torch.distributed.launch\'s flag)'),
  crop_padding: s('int', 4, 'zero padding of the random crop for small (≤ 32 px) inputs'),
  summary: s('flag', false, 'print the model summary and exit'),
  json: s('flag', false, 'print machine-readable JSON'),
  doctor: s('flag', false, 'print the installation report and exit'),
  help: s('flag', false, 'print this help'),
};

export type Args = Record<string, unknown>;

export function closestFlag(name: string): string {
  return closestName(name, Object.keys(FLAGS));
}

function unknownFlag(name: string): Error {
  return new Error(`unknown flag --${name} (did you mean --${closestFlag(name)}?)`);
}

function convert(name: string, spec: Spec, raw: string): unknown {
  const bad = (what: string) => new Error(`--${name}: expected ${what}, got '${raw}'`);
  switch (spec.kind) {
    case 'int': {
      if (!/^-?\d+$/.test(raw)) throw bad('an integer');
      return Number(raw);
    }
    case 'float':
    case 'floats': {
      const v = Number(raw);
      if (raw.trim() === '' || Number.isNaN(v)) throw bad('a number');
      return v;
    }
    case 'bool': {
      const l = raw.toLowerCase();
      if (['yes', 'true', 't', 'y', '1'].includes(l)) return true;
      if (['no', 'false', 'f', 'n', '0'].includes(l)) return false;
      throw bad('true or false');
    }
    default:
      if (spec.choices && !spec.choices.includes(raw)) throw bad(`one of ${spec.choices.join(', ')}`);
      return raw;
  }
}

/** Checks a value that came from a config file against the flag's type. */
function checkConfigValue(name: string, spec: Spec, v: unknown, file: string): unknown {
  const bad = (what: string) => new Error(`${file}: '${name}' must be ${what}, got ${JSON.stringify(v)}`);
  if (v === null) {
    if (spec.nullable || spec.default === null) return null;
    throw bad('set (null is not allowed)');
  }
  switch (spec.kind) {
    case 'int':
      if (!Number.isInteger(v)) throw bad('an integer');
      return v;
    case 'float':
      if (typeof v !== 'number') throw bad('a number');
      return v;
    case 'bool':
      if (typeof v === 'boolean') return v;
      if (typeof v === 'string') return convert(name, spec, v);
      throw bad('a boolean');
    case 'floats':
      if (typeof v === 'number') return v;
      if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return v;
      throw bad('a number or a list of numbers');
    case 'strs':
      if (typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string'))) return v;
      throw bad('a string or a list of strings');
    default:
      if (typeof v !== 'string') throw bad('a string');
      if (spec.choices && !spec.choices.includes(v)) throw bad(`one of ${spec.choices.join(', ')}`);
      return v;
  }
}

export function loadConfig(file: string): Args {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`--kw_config ${file}: cannot read (${(e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`--kw_config ${file}: not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error(`--kw_config ${file}: must hold a JSON object`);
  const out: Args = {};
  for (const [k, v] of Object.entries(json as object)) {
    const spec = FLAGS[k];
    if (!spec || spec.kind === 'flag') throw new Error(`${file}: unknown key '${k}' (did you mean '${closestFlag(k)}'?)`);
    out[k] = checkConfigValue(k, spec, v, file);
  }
  return out;
}

/**
 * Parses argv (without node and script). Defaults < --kw_config values < command line.
 * @example parseArgs(['--kw_config', 'configs/resnet18/kw1x_resnet18.json', '--batch_size', '32'])
 */
export function parseArgs(argv: string[]): Args {
  const cli: Args = {};
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i];
    if (!tok.startsWith('--')) throw new Error(`unexpected argument '${tok}' (flags start with --)`);
    let [name, inline] = tok.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    name = name.replace(/-/g, '_');
    const spec = FLAGS[name];
    if (!spec) throw unknownFlag(name);
    if (spec.kind === 'flag') {
      if (inline !== undefined) throw new Error(`--${name} takes no value`);
      cli[name] = true;
      continue;
    }
    const values: string[] = [];
    if (inline !== undefined) values.push(inline);
    else {
      const multi = spec.kind === 'floats' || spec.kind === 'strs';
      while (i + 1 < argv.length && !argv[i + 1].startsWith('--')) {
        values.push(argv[++i]);
        if (!multi) break;
      }
    }
    if (values.length === 0) throw new Error(`--${name}: expected a value`);
    const conv = values.map((v) => convert(name, spec, v));
    cli[name] = spec.kind === 'floats' || spec.kind === 'strs' ? (conv.length === 1 ? conv[0] : conv) : conv[0];
    if (spec.kind !== 'floats' && spec.kind !== 'strs' && values.length > 1) throw new Error(`--${name}: expected one value`);
  }
  const args: Args = {};
  for (const [k, spec] of Object.entries(FLAGS)) args[k] = spec.default;
  const configPath = (cli.kw_config as string | undefined) ?? null;
  if (configPath) Object.assign(args, loadConfig(configPath));
  Object.assign(args, cli);
  return args;
}

export function helpText(): string {
  const lines = ['usage: kw-train [--kw_config <config.json>] [--flag value ...]', '', 'flags (upstream main.py names; kebab-case also accepted):'];
  for (const [k, spec] of Object.entries(FLAGS))
    lines.push(`  --${k.padEnd(30)} ${spec.help}${spec.kind === 'flag' ? '' : ` (default: ${JSON.stringify(spec.default)})`}`);
  return lines.join('\n');
}
