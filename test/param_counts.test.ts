// Every official config builds (1000 classes) with exactly the trainable-parameter count of
// ../shared/golden/param_counts.json (computed by the official code), and the number of
// warehouses it lists. The models are built for real, as kw-train builds them from
// --kw_config, and freed after counting. Run: npx tap test/param_counts.test.ts
import t from 'tap';
import * as fs from 'fs';
import * as path from 'path';
import { createModelFromArgs } from '../lib';
import { parseArgs } from '../lib/cli/args';

const goldenDir = process.env.KW_GOLDEN_DIR ?? path.resolve(__dirname, '..', '..', 'shared', 'golden');
const configDir = path.resolve(__dirname, '..', 'configs');
const counts = JSON.parse(fs.readFileSync(path.join(goldenDir, 'param_counts.json'), 'utf8')) as
  Record<string, { model: string; params: number; warehouses: number }>;

t.equal(Object.keys(counts).length, 20, 'param_counts.json lists the 20 official configs');
for (const [config, want] of Object.entries(counts)) {
  t.test(config, async (t) => {
    const args = parseArgs(['--kw_config', path.join(configDir, config)]);
    t.equal(args.model, want.model, `model ${want.model}`);
    t.equal(args.nb_classes, 1000);
    const model = createModelFromArgs(args);
    try {
      const params = model.parameters().filter((p) => p.requiresGrad).reduce((n, p) => n + p.numel, 0);
      t.equal(params, want.params, `${params.toLocaleString('en')} trainable parameters`);
      const warehouses = model.warehouseManager ? model.warehouseManager.plan.warehouses.length : 0;
      t.equal(warehouses, want.warehouses, `${warehouses} warehouses`);
      if (model.warehouseManager) t.equal(model.warehouseManager.plan.params.total + nonKW(model), params, "the planner's count agrees");
    } finally {
      model.dispose();
    }
  });
}

/** Parameters outside the warehouse manager's plan (stem, norms, classifier, layer scales). */
function nonKW(model: ReturnType<typeof createModelFromArgs>): number {
  const planned = new Set<unknown>();
  for (const m of model.modules()) {
    const name = m.constructor.name;
    if (name === 'KWConv1d' || name === 'KWConv2d' || name === 'KWConv3d' || name === 'WarehouseManager') for (const p of m.parameters()) planned.add(p);
  }
  const plain = model.warehouseManager!.plan.layers.filter((l) => l.kind === 'plain').reduce((n, l) => n + l.tensors.reduce((k, s) => k + s.shape.reduce((a, b) => a * b, 1), 0), 0);
  return model.parameters().filter((p) => !planned.has(p)).reduce((n, p) => n + p.numel, 0) - plain;
}
