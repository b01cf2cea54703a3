// The benchmark cases: `<model>:<cell_num_ratio>:<batch>:<size>` specs, the default suite (issue 9's
// table plus KW 1/4×, 4× and KW-ConvNeXt at 32 px), and how a spec becomes model options: a KW
// ratio is looked up among the official configs (configs/<family>/*.json), so `kw_resnet18:0.25`
// gets kw1d4x_resnet18.json's cell in/out-plane ratios too, as upstream trains it.
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from '../lib/cli/args';
import { isKWModel, listModels, modelOptionsFromArgs } from '../lib/models/registry';
import type { CreateModelOptions } from '../lib/models/common';

export interface BenchCase {
  model: string;
  /** null for a plain model. */
  cellNumRatio: number | null;
  batch: number;
  size: number;
  classes: number;
}

/** What the child process needs to build the model: options and the config they came from. */
export interface ResolvedCase extends BenchCase {
  /** Path under configs/ (e.g. resnet18/kw1x_resnet18.json), or null when none matched. */
  config: string | null;
  /** The config's KW keys as upstream spells them (for the PyTorch peer). */
  kwConfig: Record<string, unknown>;
  options: CreateModelOptions;
}

/** The table first, then KW 1/4× and 4×, then KW-ConvNeXt (batch 16: its per-sample 768×3072 kernels are large). */
export const DEFAULT_CASES = [
  'resnet18:-:64:32',
  'kw_resnet18:1:64:32',
  'resnet18:-:16:224',
  'kw_resnet18:1:16:224',
  'kw_mobilenetv2_100:1:64:32',
  'kw_resnet18:0.25:64:32',
  'kw_resnet18:4:64:32',
  'kw_convnext_tiny:1:16:32',
];

export const CASE_FORMS = 'expected <model>:<cell_num_ratio>:<batch>:<size>, e.g. kw_resnet18:1:64:32 or resnet18:-:64:32 ' +
  "('-' as the ratio of a plain model)";

/** 10 classes at CIFAR-like sizes, 1000 at ImageNet sizes, as the table. */
export function defaultClasses(size: number): number {
  return size <= 64 ? 10 : 1000;
}

/** Parses and checks a case spec; throws an Error naming the valid forms. */
export function parseCase(spec: string, classes?: number): BenchCase {
  const bad = (why: string): Error => new Error(`--case '${spec}': ${why}; ${CASE_FORMS}. Models: ${listModels().join(', ')}`);
  if (typeof spec !== 'string') throw bad('not a string');
  const parts = spec.split(':');
  if (parts.length !== 4) throw bad(`${parts.length} field(s) instead of 4`);
  const [model, ratio, batch, size] = parts;
  if (!listModels().includes(model)) throw bad(`unknown model '${model}'`);
  let cellNumRatio: number | null = null;
  if (isKWModel(model)) {
    cellNumRatio = Number(ratio);
    if (ratio === '' || ratio === '-' || !Number.isFinite(cellNumRatio) || cellNumRatio <= 0)
      throw bad(`'${model}' is a KW model: its cell_num_ratio must be a positive number, got '${ratio}'`);
  } else if (ratio !== '-') throw bad(`'${model}' is a plain model: its ratio must be '-', got '${ratio}'`);
  const int = (s: string, what: string, max: number): number => {
    const v = Number(s);
    if (!/^\d+$/.test(s) || v < 1 || v > max) throw bad(`${what} must be an integer in 1..${max}, got '${s}'`);
    return v;
  };
  const b = int(batch, 'batch', 4096);
  const sz = int(size, 'size', 4096);
  return { model, cellNumRatio, batch: b, size: sz, classes: classes ?? defaultClasses(sz) };
}

export function caseName(c: BenchCase): string {
  return `${c.model}:${c.cellNumRatio ?? '-'}:${c.batch}:${c.size}`;
}

/** The repository's file or folder `rel`, searched upward from this file (dist/bench or bench). */
export function findUp(rel: string): string | null {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const p = path.join(dir, rel);
    if (fs.existsSync(p)) return p;
    if (path.dirname(dir) === dir) return null;
  }
}

/** The official config of `model` with this cell_num_ratio (a plain model: its config without KW keys). */
export function findConfig(model: string, cellNumRatio: number | null): string | null {
  const root = findUp('configs');
  if (!root) return null;
  for (const family of fs.readdirSync(root).sort()) {
    const dir = path.join(root, family);
    if (!fs.statSync(dir).isDirectory()) continue;
    for (const f of fs.readdirSync(dir).sort()) {
      if (!f.endsWith('.json')) continue;
      const cfg = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Record<string, unknown>;
      if (cfg.model !== model) continue;
      const r = cfg.cell_num_ratio;
      if (cellNumRatio === null ? r === undefined : (r ?? 1) === cellNumRatio) return `${family}/${f}`;
    }
  }
  return null;
}

const KW_KEYS = ['reduction', 'cell_num_ratio', 'cell_inplane_ratio', 'cell_outplane_ratio', 'sharing_range', 'nonlocal_basis_ratio'];

/**
 * Model options for a case: the matching official config's KW options (or the model's defaults
 * with this cell_num_ratio), with dropout and drop path 0 so that both sides run the same work.
 */
export function resolveCase(c: BenchCase): ResolvedCase {
  const config = findConfig(c.model, c.cellNumRatio);
  const kwConfig: Record<string, unknown> = {};
  let options: CreateModelOptions = {};
  if (config) {
    const file = path.join(findUp('configs')!, config);
    const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    for (const k of KW_KEYS) if (raw[k] !== undefined) kwConfig[k] = raw[k];
    options = modelOptionsFromArgs(parseArgs(['--kw_config', file]));
  } else if (c.cellNumRatio !== null) {
    kwConfig.cell_num_ratio = c.cellNumRatio;
    options.cellNumRatio = c.cellNumRatio;
  }
  options = { ...options, numClasses: c.classes, dropout: 0, dropPathRate: 0 };
  return { ...c, config, kwConfig, options };
}
