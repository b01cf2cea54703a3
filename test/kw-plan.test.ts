// The tensor-free warehouse planner against upstream's reference cases and hand-computed
// examples. Run: npx tap test/kw-plan.test.ts  (KW_GOLDEN_DIR overrides the golden folder).
import t from 'tap';
import * as fs from 'fs';
import * as path from 'path';
import {
  WarehouseLayoutError,
  WarehousePlanner,
  fuseWarehouseName,
  layerSpecFromUpstream,
  managerOptionsFromUpstream,
  planNetwork,
  sharingEntries,
} from '../lib/kw/plan';
import type { KWLayerPlan, KWPlan, LayerPlan, LayerSpec } from '../lib/kw/plan';
import { cellGeometry, initTemperature, storeMixtures, warehouseCellCount } from '../lib/kw/cells';
import { attentionShape } from '../lib/kw/params';
import { perWarehouse } from '../lib/kw/sharing';

const goldenDir = process.env.KW_GOLDEN_DIR ?? path.resolve(__dirname, '..', '..', 'shared', 'golden');

type Json = Record<string, any>;

function kw(l: LayerPlan): KWLayerPlan {
  if (l.kind !== 'kw') throw new Error(`layer ${l.index} is not a KW layer`);
  return l;
}

/** Tensor names and shapes of a safetensors header, in file order. */
function safetensorsHeader(file: string): [string, number[]][] {
  const buf = fs.readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Json;
  return Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .map(([k, v]) => [k, v.shape as number[]]);
}

function planFromCase(c: Json): KWPlan {
  return planNetwork(managerOptionsFromUpstream(c.manager), (c.layers as Json[]).map(layerSpecFromUpstream));
}

t.test('golden cases', async (t) => {
  t.ok(fs.existsSync(goldenDir), `golden folder ${goldenDir} exists`);
  const files = fs.readdirSync(goldenDir).filter((f) => f.endsWith('.json')).sort();
  const cases = files
    .map((f) => JSON.parse(fs.readFileSync(path.join(goldenDir, f), 'utf8')) as Json)
    .filter((c) => c.kind === 'layers' || c.kind === 'invalid');
  t.ok(cases.some((c) => c.kind === 'layers'), 'there are layers cases');
  t.ok(cases.some((c) => c.kind === 'invalid'), 'there are invalid cases');

  for (const c of cases.filter((c) => c.kind === 'layers')) {
    t.test(`${c.name}`, async (t) => {
      const plan = planFromCase(c);
      t.same(plan.warehouses.map((w) => w.shape), c.warehouse_shapes, 'warehouse shapes');
      t.equal(plan.params.total, c.num_params, 'trainable parameter count');
      if (c.temp_bias) {
        for (const [k, expected] of Object.entries(c.temp_bias as Record<string, number[]>)) {
          t.same(Array.from(kw(plan.layers[Number(k)]).tempBias), expected, `temp_bias of layer ${k}`);
        }
      }
      // The state dict under upstream's names: the reference file holds exactly these
      // tensors (besides inputs, outputs, gradients and after-forward buffers), in this order.
      const st = path.join(goldenDir, `${c.name}.safetensors`);
      if (fs.existsSync(st)) {
        const state = safetensorsHeader(st).filter(([k]) => !/^(in|out|gout|grad|after)\./.test(k));
        const expected: [string, number[]][] = [
          ...plan.managerTensors.map((s): [string, number[]] => [`warehouse_manager.${s.name}`, s.shape]),
          ...plan.layers.flatMap((l) => l.tensors.map((s): [string, number[]] => [`layers.${l.index}.${s.name}`, s.shape])),
        ];
        t.same(expected, state, 'state-dict names, shapes and order');
      }
    });
  }

  for (const c of cases.filter((c) => c.kind === 'invalid')) {
    t.test(`${c.name} is rejected`, async (t) => {
      let error: unknown;
      try {
        planFromCase(c);
      } catch (e) {
        error = e;
      }
      t.type(error, WarehouseLayoutError, 'a layout error');
      const e = error as WarehouseLayoutError;
      const names = new Set((c.layers as Json[]).map((l) =>
        fuseWarehouseName(l.warehouse_name, sharingEntries(c.manager.sharing_range))));
      t.ok(e.mismatches.length > 0, 'at least one warehouse mismatches');
      for (const m of e.mismatches) {
        t.ok(names.has(m.warehouse), `${m.warehouse} is one of the case's warehouses`);
        t.match(e.message, `'${m.warehouse}'`, 'the message names the warehouse');
        t.match(e.message, `holds ${m.held} cells`, 'and its size');
        t.match(e.message, `assigns ${m.claimed}`, 'and what the layers claim');
        t.not(m.claimed, m.held);
      }
    });
  }
});

t.test('sharing names', async (t) => {
  t.equal(fuseWarehouseName('stage1_layer0_conv1', ['layer', 'conv']), 'stage1_layer_conv');
  t.equal(fuseWarehouseName('stage1_layer1_conv0', ['layer', 'conv']), 'stage1_layer_conv');
  t.equal(fuseWarehouseName('stage0_layer0_dwconv0', ['layer', 'pwconv']), 'stage0_layer_dwconv0', 'prefix match only');
  t.equal(fuseWarehouseName('stage0_layer0_pwconv2', ['layer', 'pwconv']), 'stage0_layer_pwconv');
  t.equal(fuseWarehouseName('stage0_layer0_conv0', []), 'stage0_layer0_conv0', 'no sharing');
  t.equal(fuseWarehouseName('stage0_layer0_conv0', ['layer', 'l']), 'stage0_l_conv0', 'entries re-match a replacement');
  t.equal(fuseWarehouseName('stage0_layer0_conv0', ['l', 'layer']), 'stage0_l_conv0', 'and order matters');
  t.equal(fuseWarehouseName('stage1_layer0_conv1', [...'layer_conv']), 'stage1_l_c', 'character entries');
  t.same(sharingEntries('layer_conv'), ['layer', 'conv']);
  t.same(sharingEntries(['layer']), ['layer']);
  t.same(sharingEntries(undefined), []);

  // Upstream iterates a config's string character by character (and kw1d2x MobileNetV2 uses
  // tuple("layer")); for each official model's names and range that groups layers exactly as
  // splitting on '_' does. Differing groupings would change warehouse counts and shapes.
  const partition = (fused: string[]): number[] => fused.map((f) => fused.indexOf(f));
  const families: [string, string[]][] = [
    ['layer_conv', ['stage0_layer0_conv0', 'stage0_layer0_conv1', 'stage0_layer1_conv0', 'stage0_layer3_conv0',
      'stage0_layer2_conv0', 'stage1_layer0_conv1', 'stage1_layer1_conv0', 'stage1_layer1_conv2', 'stage3_layer0_conv2']],
    ['layer_pwconv', ['stagestem_conv0', 'stage0_layerds_conv0', 'stage1_layerds_conv0', 'stage0_layer0_dwconv0',
      'stage0_layer1_dwconv0', 'stage0_layer0_pwconv1', 'stage0_layer2_pwconv2', 'stage1_layer0_pwconv1']],
    ['layer', ['stage0_conv0', 'stage1_layer0_dwconv0', 'stage1_layer0_pwconv1', 'stage1_layer1_pwconv0',
      'stage2_layer0_pwconv0', 'stage2_layer1_dwconv0', 'stage6_layer3_pwconv1', 'classifier']],
  ];
  for (const [range, names] of families) {
    t.same(
      partition(names.map((n) => fuseWarehouseName(n, sharingEntries(range)))),
      partition(names.map((n) => fuseWarehouseName(n, [...range]))),
      `"${range}": words and characters group alike`);
  }
  // ...but not for every name: characters fold conv0 and conv1 together.
  t.not(fuseWarehouseName('s_conv0', sharingEntries('layer_pwconv')), fuseWarehouseName('s_conv1', sharingEntries('layer_pwconv')));
  t.equal(fuseWarehouseName('s_conv0', [...'layer_pwconv']), fuseWarehouseName('s_conv1', [...'layer_pwconv']));
});

t.test('per-warehouse options', async (t) => {
  t.same(perWarehouse(0.5, 3, 'x'), [0.5, 0.5, 0.5]);
  t.same(perWarehouse([0.5], 2, 'x'), [0.5, 0.5]);
  t.same(perWarehouse([1, 2], 2, 'x'), [1, 2]);
  t.throws(() => perWarehouse([1, 2], 3, 'cellNumRatio'), /cellNumRatio: expected one value or 3 values/);
  const p = new WarehousePlanner({ cellNumRatio: [1, 2] });
  p.reserve({ inPlanes: 8, outPlanes: 8, kernelSize: 3, warehouseName: 'a' });
  t.throws(() => p.store(), /cellNumRatio/, 'a list that fits no warehouse count is rejected');
});

t.test('cell arithmetic, by hand', async (t) => {
  // gcds 32 and 16, 1x1 cells: a 32x16x3x3 kernel is 9 cells.
  const g = cellGeometry([[32, 16, 3, 3]], 1, 1, true, 'w');
  t.same([g.cellOutPlane, g.cellInPlane, g.cellKernelSize], [32, 16, [1, 1]]);
  t.equal(storeMixtures([32, 16, 3, 3], g), 9);
  // Halved cells over two layers: gcd(32, 32) = 32 -> 16, gcd(16, 32) = 16 -> 8;
  // 2*2*9 + 2*4*9 = 108 cells, halved -> 54.
  const h = cellGeometry([[32, 16, 3, 3], [32, 32, 3, 3]], 0.5, 0.5, true, 'w');
  t.same([h.cellOutPlane, h.cellInPlane], [16, 8]);
  t.equal(storeMixtures([32, 16, 3, 3], h) + storeMixtures([32, 32, 3, 3], h), 108);
  t.equal(warehouseCellCount(108, 0.5), 54);
  // int() truncation, then at least 1.
  const q = cellGeometry([[3, 3, 1, 1]], 0.25, 0.25, true, 'w');
  t.same([q.cellOutPlane, q.cellInPlane], [1, 1]);
  t.equal(warehouseCellCount(3, 0.25), 1);
  t.equal(warehouseCellCount(9, 0.5), 4);
  // store() evaluates out // co * in // ci left to right: ((8 // 3) * 3) // 2 = 3, not 2 * 1.
  t.equal(storeMixtures([8, 3, 1], { outPlaneGcd: 8, inPlaneGcd: 3, cellOutPlane: 3, cellInPlane: 2, cellKernelSize: [1] }), 3);
  // Without spatial partition the cell keeps the kernel, and kernels must agree.
  t.same(cellGeometry([[8, 8, 3, 3], [16, 8, 3, 3]], 1, 1, false, 'w').cellKernelSize, [3, 3]);
  t.throws(() => cellGeometry([[8, 8, 3, 3], [8, 8, 1, 1]], 1, 1, false, 'wh'), /warehouse 'wh'.*spatial_partition/);
});

t.test('temperature initialisation, by hand', async (t) => {
  // ratio 1: mixture j points at cell start + j.
  const a = initTemperature(3, 3, 0, 1);
  t.same(Array.from(a.tempBias), [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]);
  t.equal(a.endCellIdx, 3);
  // ratio 4: every 4th cell.
  const b = initTemperature(2, 8, 0, 4);
  t.same(Array.from(b.tempBias), [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
  t.equal(b.endCellIdx, 8);
  // ratio 1/2 (k = 2): mixtures 0 and 3 (j % 2 == (j // 2) % 2) get cells, 1 and 2 the zero slot.
  const c = initTemperature(4, 2, 0, 0.5);
  t.same(Array.from(c.tempBias), [1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0]);
  t.equal(c.endCellIdx, 2);
  t.notOk(c.overflow);
  // A later layer starts where the previous one ended.
  const d = initTemperature(1, 3, 2, 1);
  t.same(Array.from(d.tempBias), [0, 0, 1, 0]);
  t.equal(d.endCellIdx, 3);
  t.ok(initTemperature(2, 1, 0, 1).overflow, 'more cells claimed than held');
});

t.test('attention sizes and parameter count, by hand', async (t) => {
  t.equal(attentionShape(16, 0.0625, 9, 9, 1, 1, 'batchnorm1d').hiddenPlanes, 16, 'int(16/16) = 1 -> at least 16');
  t.equal(attentionShape(512, 0.0625, 9, 9, 1, 1, 'batchnorm1d').hiddenPlanes, 32);
  const nb = attentionShape(16, 0.0625, 27, 9, 1, 0.5, 'batchnorm1d');
  // 9 local cells, 27 - 9 = 18 non-local, basis max(int(18 * 0.5), 16) = 16, fc2 (9 + 16 + 1) * 9.
  t.same(nb.basis, { numLocalCell: 9, numNonlocalCell: 18, numBasis: 16, fc2Out: 234 });
  t.equal(nb.kwPlanes, 252);

  // One 16->32 3x3 layer: warehouse 9*32*16 = 4608, fc1 16*16 = 256, BN 2*16 = 32,
  // fc2 16*90 + 90 = 1530; total 6426.
  const plan = planNetwork({}, [{ inPlanes: 16, outPlanes: 32, kernelSize: 3, padding: 1, bias: false }]);
  t.same(plan.params, { warehouses: 4608, attentions: 1818, kwBiases: 0, plainLayers: 0, total: 6426 });
  const l = kw(plan.layers[0]);
  t.same([l.grid.groupsSpatial, l.grid.groupsOutChannel, l.grid.groupsInChannel], [9, 1, 1]);
  t.same(l.permute, [0, 2, 4, 3, 5, 1, 6, 7]);
  t.same(l.sliceInit, { fanOut: 288, std: 1 / 12 }, 'kaiming fan_out = 9 cells * 32 out-planes');
  t.same(l.tensors.map((s) => s.name), ['attention.fc1.weight', 'attention.norm1.weight', 'attention.norm1.bias',
    'attention.norm1.running_mean', 'attention.norm1.running_var', 'attention.norm1.num_batches_tracked',
    'attention.fc2.weight', 'attention.fc2.bias']);

  // A 16->8 linear is one [8, 16, 1] cell (m = n = 1, so fc2 has 2 outputs). LayerNorm gives
  // fc1 a bias: 16*16 + 16 + 2*16 + 16*2 + 2 = 338; warehouse 8*16 = 128; bias 8; total 474.
  const ln = planNetwork({ normLayer: 'layernorm' },
    [{ inPlanes: 16, outPlanes: 8, layerType: 'linear', warehouseName: 'fc' }]);
  t.same(ln.params, { warehouses: 128, attentions: 338, kwBiases: 8, plainLayers: 0, total: 474 });
  t.same(ln.layers[0].tensors.map((s) => s.name).slice(0, 3), ['conv.bias', 'conv.attention.fc1.weight', 'conv.attention.fc1.bias']);

  // Plain layers keep their own weights: 3*64*7*7 = 9408; 512*1000 + 1000 = 513000.
  const plain = planNetwork({}, [
    { inPlanes: 3, outPlanes: 64, kernelSize: 7, bias: false, enabled: false },
    { inPlanes: 512, outPlanes: 1000, layerType: 'linear', enabled: false },
  ]);
  t.same(plain.params, { warehouses: 0, attentions: 0, kwBiases: 0, plainLayers: 522408, total: 522408 });
  t.same(plain.warehouses, []);
});

t.test('allocation order decides cells and temp_bias', async (t) => {
  // A 1x1 (1 cell) and a 3x3 (9 cells) layer of one warehouse of 10 cells.
  const layers: LayerSpec[] = [
    { inPlanes: 16, outPlanes: 16, kernelSize: 1, warehouseName: 's0_layer0_conv0' },
    { inPlanes: 16, outPlanes: 16, kernelSize: 3, warehouseName: 's0_layer1_conv0' },
  ];
  const inOrder = planNetwork({ sharingRange: ['layer'] }, layers);
  t.same([kw(inOrder.layers[0]).startCellIdx, kw(inOrder.layers[1]).startCellIdx], [0, 1]);
  const swapped = planNetwork({ sharingRange: ['layer'] }, layers, [1, 0]);
  const a = kw(swapped.layers[0]);
  t.same([a.startCellIdx, a.endCellIdx, kw(swapped.layers[1]).startCellIdx], [9, 10, 0]);
  t.same(Array.from(a.tempBias), [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
  t.same(swapped.allocationOrder, [1, 0]);
  t.throws(() => planNetwork({}, layers, [0]), /each KW layer index exactly once/);
});

t.test('rejected layouts and arguments', async (t) => {
  // Hand-computed: a 24x4x3x3 grouped kernel is 9 cells of [24, 4]; at ratio 1/2 the warehouse
  // holds int(4.5) = 4 cells, but mixtures 0, 3, 4, 7, 8 each claim one: 5.
  const p = new WarehousePlanner({ cellNumRatio: 0.5, sharingRange: 'layer_conv' });
  p.reserve({ inPlanes: 12, outPlanes: 24, kernelSize: 3, groups: 3, warehouseName: 'stage0_layer0_conv0' });
  p.reserve({ inPlanes: 32, outPlanes: 32, kernelSize: 1, warehouseName: 'stage1_layer0_conv0' });
  t.throws(() => p.allocate(), /allocate\(\) before store\(\)/);
  p.store();
  t.throws(() => p.reserve({ inPlanes: 8, outPlanes: 8 }), /reserve\(\) after store\(\)/);
  try {
    p.allocate();
    t.fail('expected a layout error');
  } catch (e) {
    t.type(e, WarehouseLayoutError);
    const err = e as WarehouseLayoutError;
    t.same(err.mismatches, [{ warehouse: 'stage0_layer_conv', index: 0, claimed: 5, held: 4 }],
      'the second warehouse (32 cells of 1x1 at ratio 1/2: 16 held, 16 claimed) is fine');
    t.match(err.message, /warehouse 'stage0_layer_conv' \(#0\) holds 4 cells .* assigns 5/);
  }
  t.throws(() => new WarehousePlanner().reserve({ inPlanes: 6, outPlanes: 8, groups: 4 }), /groups: 4 must divide/);
  t.throws(() => new WarehousePlanner().reserve({ inPlanes: 0, outPlanes: 8 }), /inPlanes: expected a positive integer/);
  t.throws(() => new WarehousePlanner().reserve({ inPlanes: 8, outPlanes: 8, kernelSize: [3, 3, 3] }),
    /kernelSize: expected one value or 2 values/);
  // Cells that do not tile a kernel: gcd 9 * 0.5 -> 4 out-planes, and 9 is not a multiple of 4.
  t.throws(() => planNetwork({ cellOutplaneRatio: 0.5 }, [{ inPlanes: 8, outPlanes: 9 }]),
    /warehouse 'default': layer 0's kernel \[9, 8, 1, 1\] does not split into whole cells \[4, 8, 1, 1\]/);
  t.throws(() => planNetwork({}, [
    { inPlanes: 8, outPlanes: 8, layerType: 'conv1d', warehouseName: 'w' },
    { inPlanes: 8, outPlanes: 8, layerType: 'conv2d', warehouseName: 'w' },
  ]), /warehouse 'w': its layers mix convolutions of different dimensions/);
});
