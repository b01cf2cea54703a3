// The model summary: modelSummary() on built models, and `kw-train --summary [--json]` run as
// a process (the CLI source through ts-node). Run: npx tap test/summary.test.ts
import t from 'tap';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { createModel, modelSummary } from '../lib';
import { formatSummary } from '../lib/cli/summary';

const root = path.resolve(__dirname, '..');
const config = (rel: string) => path.join(root, 'configs', rel);

function kwTrain(args: string[]): { status: number | null; stdout: string; stderr: string } {
  // The same node flags as this test (tap's TypeScript loader), so the CLI runs from source.
  const r = spawnSync(process.execPath, [...process.execArgv, path.join(root, 'lib/cli/kw-train.ts'), ...args],
    { cwd: root, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('modelSummary: totals, warehouses and KW layers of a built model', async (t) => {
  const m = createModel('kw_resnet18', { cellNumRatio: 0.25, cellInplaneRatio: 0.5, cellOutplaneRatio: 0.5, sharingRange: 'layer_conv' });
  const s = modelSummary(m);
  t.equal(s.params, 4031768);
  t.equal(s.model, 'kw_resnet18');
  t.same(s.warehouses.map((w) => [w.name, w.cellShape, w.numCells]), [
    ['stage0_layer_conv', [32, 32, 1, 1], 56], ['stage1_layer_conv', [64, 64, 1, 1], 47],
    ['stage2_layer_conv', [128, 128, 1, 1], 47], ['stage3_layer_conv', [256, 256, 1, 1], 27],
  ]);
  t.same(s.warehouses[0].layers, ['layer1.0.conv1', 'layer1.0.conv2', 'layer1.1.conv1', 'layer1.1.conv2', 'layer2.0.downsample.0',
    'layer2.0.conv1'], 'the layers sharing warehouse 0, in reserve order');
  t.equal(s.kwLayers.length, 19);
  const first = s.kwLayers[0];
  t.same(first, { name: 'layer1.0.conv1', warehouse: 'stage0_layer_conv', weightShape: [64, 64, 3, 3], kernelCells: 36,
    cellRange: [0, 9], hiddenPlanes: 16, params: first.params });
  // Warehouse parameters + KW layer parameters + the rest add up to the total.
  const rest = m.namedParameters().filter(([k]) => !k.startsWith('warehouse_manager') && !k.includes('.attention.'))
    .reduce((n, [, p]) => n + p.numel, 0);
  t.equal(s.warehouses.reduce((n, w) => n + w.params, 0) + s.kwLayers.reduce((n, l) => n + l.params, 0) + rest, s.params);
  t.match(formatSummary(s), /trainable parameters: 4,031,768 \(4031768\)[\s\S]*stage3_layer_conv\s+256x256x1x1\s+27/);
  m.dispose();
  const plain = createModel('mobilenetv2_050');
  t.same(modelSummary(plain).warehouses, []);
  t.match(formatSummary(modelSummary(plain)), /warehouses: none/);
  plain.dispose();
});

t.test('kw-train --summary prints the parameter count and the tables', async (t) => {
  const r = kwTrain(['--kw_config', config('resnet18/kw1x_resnet18.json'), '--summary']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /trainable parameters: 11,932,148 \(11932148\)/);
  t.match(r.stdout, /warehouse\s+cell shape\s+cells/);
  t.match(r.stdout, /KW layer\s+warehouse\s+kernel/);
  t.match(r.stdout, /layer4\.1\.conv2\s+stage3_layer_conv\s+512x512x3x3/);
});

t.test('kw-train --summary --json prints one JSON object with an integer "params"', async (t) => {
  const r = kwTrain(['--kw_config', config('convnext/kw1x_convnext_tiny.json'), '--summary', '--json']);
  t.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  t.equal(s.params, 39370674);
  t.ok(Number.isInteger(s.params));
  t.equal(s.warehouses.length, 12);
  t.ok(s.kwLayers.every((l: { name: string }) => typeof l.name === 'string'));
  const n = kwTrain(['--kw_config', config('mobilenetv2_100/kw1d2x_mobilenetv2_100.json'), '--nb_classes', '10', '--summary', '--json']);
  t.equal(JSON.parse(n.stdout).numClasses, 10, 'command-line flags win over the config');
});

t.test('kw-train --summary errors are one line and a non-zero exit', async (t) => {
  const r = kwTrain(['--model', 'resnet19', '--summary']);
  t.equal(r.status, 2);
  t.match(r.stderr, /kw-train: unknown model 'resnet19'/);
  const c = kwTrain(['--kw_config', config('nope.json'), '--summary']);
  t.equal(c.status, 2);
  t.match(c.stderr, /nope\.json: cannot read/);
});
