// The warehouse manager of a KW model: the caller's KW options over the model's defaults
// (timm's create_model drops None-valued arguments, so an absent option means the default).
import { ArgumentError } from '../errors';
import { WarehouseManager } from '../kw/manager';
import type { NormLayer } from '../kw/params';
import type { KWModelOptions, ModelOptions } from './common';

export type KWDefaults = Required<KWModelOptions> & { normLayer?: NormLayer };

export function warehouseManagerFor(opts: KWModelOptions & ModelOptions, defaults: KWDefaults): WarehouseManager {
  const nb = opts.nonlocalBasisRatio ?? defaults.nonlocalBasisRatio;
  if (typeof nb !== 'number' || !(nb > 0)) throw new ArgumentError('warehouseManager', 'nonlocalBasisRatio', 'a positive number', nb);
  return new WarehouseManager({
    reduction: opts.reduction ?? defaults.reduction,
    cellNumRatio: opts.cellNumRatio ?? defaults.cellNumRatio,
    cellInplaneRatio: opts.cellInplaneRatio ?? defaults.cellInplaneRatio,
    cellOutplaneRatio: opts.cellOutplaneRatio ?? defaults.cellOutplaneRatio,
    sharingRange: opts.sharingRange ?? defaults.sharingRange,
    nonlocalBasisRatio: nb,
    normLayer: defaults.normLayer,
    generator: opts.generator,
  });
}
