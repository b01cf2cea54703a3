// The model summary of `kw-train --summary`: total trainable parameters, the warehouses
// (name, cell shape, number of cells, the layers sharing each) and the KW layers (warehouse,
// kernel shape, kernel cells, the warehouse cells it initialises, attention size). `--json`
// prints the same as one JSON object with a top-level integer "params".
//
//   npx kw-train --kw_config configs/resnet18/kw1x_resnet18.json --summary
//   npx kw-train --kw_config configs/resnet18/kw1x_resnet18.json --summary --json
import { KWConvNd } from '../kw/layers';
import type { WarehouseManager } from '../kw/manager';
import type { Module } from '../nn/module';
import { createModelFromArgs } from '../models/registry';
import type { Args } from './args';

export interface WarehouseSummary {
  index: number;
  /** The fused warehouse name (after sharing_range). */
  name: string;
  /** [cell_out, cell_in, ...cell_kernel]. */
  cellShape: number[];
  numCells: number;
  /** Parameters of the warehouse itself (numCells × cell size). */
  params: number;
  /** Module names of the KW layers drawing from it. */
  layers: string[];
}

export interface KWLayerSummary {
  /** Module name, e.g. layer1.0.conv1 (a KW linear layer's is its `.conv`). */
  name: string;
  warehouse: string;
  /** [out, in/groups, ...kernel]. */
  weightShape: number[];
  /** m: cells one kernel is assembled from. */
  kernelCells: number;
  /** The warehouse cells [start, end) this layer's temperature one-hot points at. */
  cellRange: [number, number];
  hiddenPlanes: number;
  /** Attention parameters plus the layer's bias. */
  params: number;
}

export interface ModelSummary {
  model: string;
  numClasses: number | null;
  /** Total trainable parameters (upstream's n_parameters). */
  params: number;
  warehouses: WarehouseSummary[];
  kwLayers: KWLayerSummary[];
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * The summary of a built model (its warehouses come from its WarehouseManager, if any).
 * @example const s = modelSummary(createModel('kw_resnet18')); s.params // 11932148
 */
export function modelSummary(model: Module & { modelName?: string; numClasses?: number; warehouseManager?: WarehouseManager | null }): ModelSummary {
  const params = model.parameters().filter((p) => p.requiresGrad).reduce((n, p) => n + p.numel, 0);
  const wm = model.warehouseManager ?? null;
  const names = new Map<number, string>();
  for (const [name, m] of model.namedModules()) if (m instanceof KWConvNd) names.set(m.layerIndex, name);
  const warehouses: WarehouseSummary[] = [];
  const kwLayers: KWLayerSummary[] = [];
  if (wm) {
    const plan = wm.plan;
    for (const w of plan.warehouses) {
      warehouses.push({
        index: w.index, name: w.name, cellShape: w.shape.slice(1), numCells: w.shape[0], params: numel(w.shape),
        layers: w.layerIndices.filter((i) => plan.layers[i].kind === 'kw').map((i) => names.get(i) ?? `#${i}`),
      });
    }
    for (const i of plan.allocationOrder) {
      const l = plan.layers[i];
      if (l.kind !== 'kw') continue;
      const own = l.tensors.filter((s) => s.role === 'parameter').reduce((n, s) => n + numel(s.shape), 0);
      kwLayers.push({
        name: names.get(i) ?? `#${i}`, warehouse: l.warehouseName, weightShape: l.weightShape, kernelCells: l.grid.numMixtures,
        cellRange: [l.startCellIdx, l.endCellIdx], hiddenPlanes: l.attention.hiddenPlanes, params: own,
      });
    }
  }
  return { model: model.modelName ?? model.constructor.name, numClasses: model.numClasses ?? null, params, warehouses, kwLayers };
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((v, c) => (c === r.length - 1 ? v : v.padEnd(widths[c]))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

/** The summary as text: the totals, then the warehouse and KW layer tables. */
export function formatSummary(s: ModelSummary): string {
  const out = [`model: ${s.model}${s.numClasses !== null ? ` (${s.numClasses} classes)` : ''}`,
    `trainable parameters: ${s.params.toLocaleString('en')} (${s.params})`];
  if (s.warehouses.length === 0) {
    out.push('warehouses: none (a plain model)');
    return out.join('\n');
  }
  const inWarehouses = s.warehouses.reduce((n, w) => n + w.params, 0);
  out.push(`warehouses: ${s.warehouses.length} holding ${inWarehouses.toLocaleString('en')} parameters; KW layers: ${s.kwLayers.length}`, '');
  out.push(...table(['#', 'warehouse', 'cell shape', 'cells', 'params', 'layers'], s.warehouses.map((w) => [
    String(w.index), w.name, w.cellShape.join('x'), String(w.numCells), String(w.params), `${w.layers.length}: ${w.layers.join(', ')}`])));
  out.push('');
  out.push(...table(['KW layer', 'warehouse', 'kernel', 'kernel cells', 'warehouse cells', 'hidden', 'params'], s.kwLayers.map((l) => [
    l.name, l.warehouse, l.weightShape.join('x'), String(l.kernelCells), `${l.cellRange[0]}..${l.cellRange[1]}`, String(l.hiddenPlanes), String(l.params)])));
  return out.join('\n');
}

/**
 * Builds args.model as kw-train would (createModelFromArgs), prints its summary (text, or one
 * JSON object with "params" when json is true), frees the model and returns the summary.
 * @example printSummary(parseArgs(['--kw_config', 'configs/resnet18/kw1x_resnet18.json']), true);
 */
export function printSummary(args: Args, json: boolean, write: (s: string) => void = (s) => console.log(s)): ModelSummary {
  const model = createModelFromArgs(args);
  try {
    const s = modelSummary(model);
    write(json ? JSON.stringify(s) : formatSummary(s));
    return s;
  } finally {
    model.dispose();
  }
}
