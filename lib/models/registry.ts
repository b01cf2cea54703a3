// The model registry: upstream's model names (timm's @register_model) → constructors, and
// createModelFromArgs, which builds a model from parsed kw-train flags the way upstream
// main.py's create_model(...) call does.
//
//   const net = createModel('kw_resnet18', { cellNumRatio: 0.5, sharingRange: 'layer_conv', numClasses: 10 });
//   const net2 = createModelFromArgs(parseArgs(['--kw_config', 'configs/resnet18/kw1x_resnet18.json']));
import type { Args } from '../cli/args';
import type { PerWarehouse } from '../kw/sharing';
import type { CreateModelOptions, ZooModel } from './common';
import { ArgumentError, checkOptions, closestName } from '../errors';
import { Generator } from '../random';
import { convnext_tiny } from './convnext';
import { kw1d2x_mobilenetv2_050, kw1d2x_mobilenetv2_100 } from './kw1d2x_mobilenetv2';
import { kw_convnext_tiny } from './kw_convnext';
import { kw_mobilenetv2_050, kw_mobilenetv2_100 } from './kw_mobilenetv2';
import { kw_resnet18, kw_resnet18_small, kw_resnet50, kw_resnet50_small, kw_resnet_mini } from './kw_resnet';
import { mobilenetv2_050, mobilenetv2_100 } from './mobilenetv2';
import { resnet18, resnet18_small, resnet50, resnet50_small, resnet_mini } from './resnet';

export type ModelFactory = (opts?: CreateModelOptions) => ZooModel;

const MODELS: Record<string, ModelFactory> = {
  resnet18, resnet50, kw_resnet18, kw_resnet50,
  mobilenetv2_050, mobilenetv2_100, kw_mobilenetv2_050, kw_mobilenetv2_100,
  kw1d2x_mobilenetv2_050, kw1d2x_mobilenetv2_100,
  convnext_tiny, kw_convnext_tiny,
  // this package's own: small-input variants for 28–32 px images
  resnet18_small, resnet50_small, kw_resnet18_small, kw_resnet50_small, resnet_mini, kw_resnet_mini,
};

/** Every registered model name. */
export function listModels(): string[] {
  return Object.keys(MODELS);
}

/** Whether `name` is a KW model (owns a warehouse manager). */
export function isKWModel(name: string): boolean {
  return name.startsWith('kw');
}

/**
 * Builds a registered model by upstream's name.
 * @example const net = createModel('resnet18_small', { inChans: 1, numClasses: 10 });
 */
export function createModel(name: string, opts: CreateModelOptions = {}): ZooModel {
  if (typeof name !== 'string') throw new ArgumentError('createModel', 'name', 'a model name (a string)', name);
  const factory = Object.prototype.hasOwnProperty.call(MODELS, name) ? MODELS[name] : undefined;
  if (!factory) throw new Error(`unknown model '${name}' (known: ${listModels().join(', ')}); did you mean '${closestName(name, listModels())}'?`);
  return factory(checkModelOptions(name, opts));
}

const MODEL_OPTION_KEYS = [
  'numClasses', 'inChans', 'dropout', 'dropPathRate', 'layerScaleInitValue', 'headInitScale', 'generator',
  'reduction', 'cellNumRatio', 'cellInplaneRatio', 'cellOutplaneRatio', 'sharingRange', 'nonlocalBasisRatio',
] as const;

/** Option names and the types every model shares; the ranges each model checks itself. */
function checkModelOptions(name: string, opts: unknown): CreateModelOptions {
  const o = checkOptions(`createModel('${name}')`, 'opts', opts, MODEL_OPTION_KEYS);
  const fn = `createModel('${name}')`;
  for (const k of ['reduction', 'cellNumRatio', 'cellInplaneRatio', 'cellOutplaneRatio'] as const) {
    const v = o[k];
    if (v === undefined) continue;
    const ok = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0;
    if (!(ok(v) || (Array.isArray(v) && v.length > 0 && v.every(ok))))
      throw new ArgumentError(fn, k, 'a positive number or a non-empty list of positive numbers (one per warehouse)', v);
  }
  const nb = o.nonlocalBasisRatio;
  if (nb !== undefined && !(typeof nb === 'number' && Number.isFinite(nb) && nb > 0)) throw new ArgumentError(fn, 'nonlocalBasisRatio', 'a positive number', nb);
  const sr = o.sharingRange;
  if (sr !== undefined && typeof sr !== 'string' && !(Array.isArray(sr) && sr.every((x) => typeof x === 'string')))
    throw new ArgumentError(fn, 'sharingRange', 'a string or a list of strings', sr);
  if (o.generator !== undefined && !(o.generator instanceof Generator)) throw new ArgumentError(fn, 'generator', 'a Generator', o.generator);
  for (const k of ['dropout', 'layerScaleInitValue', 'headInitScale'] as const) {
    const v = o[k];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v))) throw new ArgumentError(fn, k, 'a finite number', v);
  }
  return o as CreateModelOptions;
}

function perWarehouse(args: Args, key: string): PerWarehouse<number> | undefined {
  const v = args[key];
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'number' || (Array.isArray(v) && v.every((x) => typeof x === 'number'))) return v as PerWarehouse<number>;
  throw new Error(`--${key}: expected a number or a list of numbers, got ${JSON.stringify(v)}`);
}

/**
 * The CreateModelOptions upstream main.py passes for parsed args: nb_classes, drop_path,
 * layer_scale_init_value, head_init_scale, the KW options and dropout, with null values left
 * out (timm's create_model drops None, so the model's defaults apply).
 */
export function modelOptionsFromArgs(args: Args): CreateModelOptions {
  const num = (key: string): number | undefined => {
    const v = args[key];
    if (v === null || v === undefined) return undefined;
    if (typeof v !== 'number') throw new Error(`--${key}: expected a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const opts: CreateModelOptions = {
    numClasses: num('nb_classes'),
    dropPathRate: num('drop_path'),
    layerScaleInitValue: num('layer_scale_init_value'),
    headInitScale: num('head_init_scale'),
    dropout: num('dropout'),
    reduction: perWarehouse(args, 'reduction'),
    cellNumRatio: perWarehouse(args, 'cell_num_ratio'),
    cellInplaneRatio: perWarehouse(args, 'cell_inplane_ratio'),
    cellOutplaneRatio: perWarehouse(args, 'cell_outplane_ratio'),
  };
  const nb = perWarehouse(args, 'nonlocal_basis_ratio');
  if (nb !== undefined) {
    if (Array.isArray(nb) && nb.length !== 1)
      throw new Error(`--nonlocal_basis_ratio: one value applies to every warehouse, got ${JSON.stringify(nb)}`);
    opts.nonlocalBasisRatio = Array.isArray(nb) ? nb[0] : (nb as number);
  }
  const sr = args.sharing_range;
  if (typeof sr === 'string' || (Array.isArray(sr) && sr.every((x) => typeof x === 'string'))) opts.sharingRange = sr as string | string[];
  else if (sr !== null && sr !== undefined) throw new Error(`--sharing_range: expected strings, got ${JSON.stringify(sr)}`);
  for (const k of Object.keys(opts) as (keyof CreateModelOptions)[]) if (opts[k] === undefined) delete opts[k];
  return opts;
}

/**
 * Builds args.model as upstream main.py does (create_model(args.model, num_classes=args.nb_classes, ...)).
 * `extra` adds what main.py has no flag for (inChans for 1-channel data, a generator).
 * @example const net = createModelFromArgs(parseArgs(['--kw_config', 'configs/resnet18/kw1d4x_resnet18.json', '--nb_classes', '10']));
 */
export function createModelFromArgs(args: Args, extra: CreateModelOptions = {}): ZooModel {
  if (typeof args.model !== 'string') throw new Error(`--model: expected a model name, got ${JSON.stringify(args.model)}`);
  return createModel(args.model, { ...modelOptionsFromArgs(args), ...extra });
}
