// The model zoo: registry, upstream state-dict names and shapes, forward/backward on small
// inputs (including the 28–32 px variants), temperature, drop-path and dropout settings,
// initialisation, seeding, createModelFromArgs and argument errors.
// Exact parameter counts: test/param_counts.test.ts; reference outputs: test/golden.test.ts.
// Run: npx tap test/models.test.ts
import t from 'tap';
import * as path from 'path';
import {
  createModel, createModelFromArgs, crossEntropy, DropPath, Dropout, Generator, Identity, KWAttention, KWConvNd, listModels,
  modelOptionsFromArgs, noGrad, randn, tensor, Tensor, ZooModel,
} from '../lib';
import { parseArgs } from '../lib/cli/args';

const configDir = path.resolve(__dirname, '..', 'configs');
const UPSTREAM = ['resnet18', 'resnet50', 'kw_resnet18', 'kw_resnet50', 'mobilenetv2_050', 'mobilenetv2_100',
  'kw_mobilenetv2_050', 'kw_mobilenetv2_100', 'kw1d2x_mobilenetv2_050', 'kw1d2x_mobilenetv2_100', 'convnext_tiny', 'kw_convnext_tiny'];

function withModel<T>(name: string, opts: Parameters<typeof createModel>[1], f: (m: ZooModel) => T): T {
  const m = createModel(name, opts);
  try {
    return f(m);
  } finally {
    m.dispose();
  }
}
const shapes = (m: ZooModel) => new Map([...m.stateDict()].map(([k, v]) => [k, [...v.shape]]));
const std = (x: Tensor) => {
  const d = x.data() as Float32Array;
  const mean = d.reduce((a, b) => a + b, 0) / d.length;
  return Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / d.length);
};

t.test('registry: every upstream name, the small variants, and a clear error otherwise', async (t) => {
  for (const n of [...UPSTREAM, 'resnet18_small', 'kw_resnet18_small']) t.ok(listModels().includes(n), n);
  t.throws(() => createModel('resnet19'), /unknown model 'resnet19' \(known: resnet18, /);
  t.throws(() => createModel('toString'), /unknown model/);
});

t.test('state dicts have upstream (torchvision / ConvNeXt) names and shapes', async (t) => {
  withModel('resnet18', {}, (m) => {
    const s = shapes(m);
    t.equal(s.size, 122, 'torchvision resnet18 has 122 entries');
    t.same([...s.keys()].slice(0, 7), ['conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var',
      'bn1.num_batches_tracked', 'layer1.0.conv1.weight']);
    t.same(s.get('layer2.0.downsample.0.weight'), [128, 64, 1, 1]);
    t.same(s.get('fc.weight'), [1000, 512]);
  });
  withModel('resnet50', {}, (m) => {
    const s = shapes(m);
    t.equal(s.size, 320, 'torchvision resnet50 has 320 entries');
    t.same(s.get('layer1.0.downsample.0.weight'), [256, 64, 1, 1]);
    t.same(s.get('layer4.2.conv3.weight'), [2048, 512, 1, 1]);
  });
  withModel('mobilenetv2_100', {}, (m) => {
    const s = shapes(m);
    t.equal(s.size, 314, 'torchvision mobilenet_v2 has 314 entries');
    t.same(s.get('features.0.0.weight'), [32, 3, 3, 3]);
    t.same(s.get('features.1.conv.0.0.weight'), [32, 1, 3, 3], 'expansion-1 block: depthwise first');
    t.same(s.get('features.2.conv.1.0.weight'), [96, 1, 3, 3]);
    t.same(s.get('features.18.0.weight'), [1280, 320, 1, 1]);
    t.same(s.get('classifier.1.weight'), [1000, 1280]);
  });
  withModel('convnext_tiny', {}, (m) => {
    const s = shapes(m);
    t.equal(s.size, 182, 'ConvNeXt-T has 182 entries');
    t.same([...s.keys()].slice(0, 4), ['downsample_layers.0.0.weight', 'downsample_layers.0.0.bias', 'downsample_layers.0.1.weight',
      'downsample_layers.0.1.bias']);
    t.same(s.get('stages.0.0.gamma'), [96]);
    t.same(s.get('stages.2.8.pwconv1.weight'), [1536, 384]);
    t.same([...s.keys()].slice(-4), ['norm.weight', 'norm.bias', 'head.weight', 'head.bias']);
  });
  withModel('kw_resnet50', {}, (m) => {
    const s = shapes(m);
    t.same(s.get('layer1.0.conv1.weight'), [64, 64, 1, 1], 'the first 1×1 conv stays plain');
    t.same(s.get('layer1.0.downsample.0.weight'), [256, 64, 1, 1], 'a stride-1 downsample stays plain');
    t.ok(s.has('layer2.0.downsample.0.attention.fc1.weight'), 'a strided downsample is KW');
    t.ok(s.has('layer1.0.conv2.attention.norm1.running_mean'), 'attention BatchNorm1d');
    t.notOk(s.has('layer1.0.conv2.weight'), 'a KW layer has no weight of its own');
    t.same([...s.keys()].filter((k) => k.startsWith('warehouse_manager.')).length, 4);
  });
  withModel('kw_convnext_tiny', {}, (m) => {
    const s = shapes(m);
    t.same(s.get('stages.0.0.gamma'), [1, 96, 1, 1], 'γ broadcasts over (N, C, H, W)');
    t.same(s.get('stages.0.0.dwconv.bias'), [96], 'KW layers reserved with a bias');
    t.ok(s.has('stages.0.0.pwconv1.attention.fc1.bias'), 'LayerNorm attention: fc1 has a bias');
    t.notOk(s.has('stages.0.0.pwconv1.attention.norm1.running_mean'), 'and no running statistics');
    t.same(s.get('downsample_layers.0.0.bias'), [96]);
  });
  withModel('kw_mobilenetv2_050', { sharingRange: ['layer', 'pwconv'] }, (m) => t.same(shapes(m).get('classifier.weight'), [1000, 1280]));
  withModel('kw1d2x_mobilenetv2_050', {}, (m) => {
    const s = shapes(m);
    t.ok(s.has('classifier.1.conv.attention.fc2.weight'), 'the KW linear classifier');
    t.same(s.get('features.2.conv.0.0.weight'), [48, 8, 1, 1], 'early 1×1 convs are plain');
    t.equal(m.warehouseManager!.plan.warehouses.length, 10);
  });
});

t.test('small-input variants: 3×3 stride-1 stem, no max pool, configurable channels', async (t) => {
  for (const name of ['resnet18_small', 'kw_resnet18_small']) {
    withModel(name, { inChans: 1, numClasses: 10, cellNumRatio: 0.5, cellInplaneRatio: 0.5, cellOutplaneRatio: 0.5, sharingRange: 'layer_conv' }, (m) => {
      t.same([...(m.get('conv1.weight') as Tensor).shape], [64, 1, 3, 3], `${name}: 1-channel 3×3 stem`);
      t.ok(m.get('maxpool') instanceof Identity, `${name}: no max pool`);
      const x = randn([2, 1, 28, 28], { generator: new Generator(1) });
      m.train();
      const y = m.forward(x);
      t.same(y.shape, [2, 10]);
      crossEntropy(y, tensor(new BigInt64Array([3n, 7n]), [2], 'int64')).backward();
      t.ok(m.parameters().every((p) => p.grad !== null), `${name}: every parameter gets a gradient`);
    });
  }
});

t.test('every upstream model runs forward on a small batch', async (t) => {
  const x = randn([2, 3, 32, 32], { generator: new Generator(2) });
  for (const name of UPSTREAM) {
    if (name.endsWith('resnet50') || name.endsWith('_100')) continue; // same code as their smaller siblings
    withModel(name, { numClasses: 7, sharingRange: name.startsWith('kw_') ? ['layer', 'conv'] : undefined }, (m) => {
      m.updateTemperature(0.5);
      m.eval();
      const y = noGrad(() => m.forward(x));
      t.same(y.shape, [2, 7], `${name}: [2, 7] logits`);
      t.ok((y.data() as Float32Array).every(Number.isFinite), `${name}: finite`);
      y.dispose();
    });
  }
});

t.test('updateTemperature reaches every KW attention in one call', async (t) => {
  withModel('kw_resnet18', { numClasses: 10 }, (m) => {
    m.updateTemperature(0.75);
    const atts = m.modules().filter((x): x is KWAttention => x instanceof KWAttention);
    t.equal(atts.length, m.modules().filter((x) => x instanceof KWConvNd).length, 'one attention per KW layer');
    t.ok(atts.length > 0 && atts.every((a) => a.tempValue === 0.75));
    t.throws(() => m.updateTemperature(NaN), /updateTemperature.*'t'/);
  });
  withModel('resnet18', { numClasses: 10 }, (m) => t.doesNotThrow(() => m.updateTemperature(1), 'a no-op on a plain model'));
});

t.test('drop path: rising linearly in ConvNeXt, constant in ResNet; dropout defaults', async (t) => {
  withModel('convnext_tiny', { dropPathRate: 0.3 }, (m) => {
    const rates = m.namedModules().filter(([k]) => k.endsWith('.drop_path')).map(([, d]) => (d instanceof DropPath ? d.p : 0));
    t.equal(rates.length, 18);
    rates.forEach((r, i) => t.ok(Math.abs(r - (0.3 * i) / 17) < 1e-7, `block ${i}: ${r}`));
  });
  withModel('kw_resnet18', { dropPathRate: 0.1 }, (m) => {
    const dps = m.namedModules().filter(([k]) => k.endsWith('.drop_path')).map(([, d]) => d);
    t.ok(dps.length === 8 && dps.every((d) => d instanceof DropPath && d.p === 0.1), 'every block at the rate');
    t.equal((m.get('dropout') as Dropout).p, 0.1, "KW-ResNet's own default dropout is 0.1");
  });
  withModel('kw1d2x_mobilenetv2_050', {}, (m) => t.equal((m.get('classifier.0') as Dropout).p, 0.1));
  const m = createModelFromArgs(parseArgs(['--kw_config', path.join(configDir, 'resnet18/kw1x_resnet18.json')]));
  t.equal((m.get('dropout') as Dropout).p, 0, 'main.py passes --dropout (default 0)');
  t.ok(m.namedModules().filter(([k]) => k.endsWith('.drop_path')).every(([, d]) => d instanceof DropPath && Math.abs(d.p - 0.1) < 1e-12), 'drop_path 0.1 from the config');
  m.dispose();
});

t.test("initialisation follows each upstream model's init", async (t) => {
  withModel('resnet18', { generator: new Generator(3) }, (m) => {
    t.ok(Math.abs(std(m.get('fc.weight') as Tensor) - 0.01) < 0.0005, 'fc ~ N(0, 0.01²)');
    t.same(Array.from((m.get('fc.bias') as Tensor).data() as Float32Array).every((v) => v === 0), true);
    t.ok(Math.abs(std(m.get('layer3.0.conv1.weight') as Tensor) - Math.sqrt(2 / (256 * 9))) < 0.02 * Math.sqrt(2 / (256 * 9)), 'kaiming fan_out');
  });
  withModel('kw_resnet18', { generator: new Generator(4) }, (m) => {
    const w = (m.get('fc.weight') as Tensor).data() as Float32Array;
    const bound = 1 / Math.sqrt(512);
    t.ok(w.every((v) => Math.abs(v) <= bound) && w.reduce((a, b) => Math.max(a, b), 0) > 0.9 * bound, "KW-ResNet's fc keeps nn.Linear's uniform init");
  });
  withModel('convnext_tiny', { headInitScale: 0.5, layerScaleInitValue: 0.25, generator: new Generator(5) }, (m) => {
    t.ok(Math.abs(std(m.get('head.weight') as Tensor) - 0.01) < 0.0005, 'head ~ trunc_normal(0.02) × head_init_scale');
    t.same(Array.from(((m.get('stages.1.1.gamma') as Tensor).data() as Float32Array)).every((v) => v === 0.25), true, 'γ = layer_scale_init_value');
  });
  withModel('convnext_tiny', { layerScaleInitValue: 0 }, (m) => t.notOk(m.stateDict().has('stages.0.0.gamma'), 'no γ when layer scale is 0'));
});

t.test('a generator makes construction reproducible', async (t) => {
  const a = createModel('kw_resnet18_small', { numClasses: 10, generator: new Generator(9) });
  const b = createModel('kw_resnet18_small', { numClasses: 10, generator: new Generator(9) });
  const c = createModel('kw_resnet18_small', { numClasses: 10, generator: new Generator(10) });
  const eq = (p: ZooModel, q: ZooModel) => {
    const qs = q.stateDict();
    return [...p.stateDict()].every(([k, v]) => {
      if (v.dtype !== 'float32') return true;
      const u = qs.get(k)!.data() as Float32Array;
      return (v.data() as Float32Array).every((x, i) => x === u[i]);
    });
  };
  t.ok(eq(a, b), 'same seed, same parameters');
  t.notOk(eq(a, c), 'another seed, other parameters');
  for (const m of [a, b, c]) m.dispose();
});

t.test('createModelFromArgs passes what main.py passes', async (t) => {
  const args = parseArgs(['--kw_config', path.join(configDir, 'resnet18/kw1d4x_resnet18.json'), '--nb_classes', '10',
    '--cell_num_ratio', '0.5']);
  t.same(modelOptionsFromArgs(args), {
    numClasses: 10, dropPathRate: 0, layerScaleInitValue: 1e-6, headInitScale: 1, dropout: 0, reduction: 0.0625,
    cellNumRatio: 0.5, cellInplaneRatio: 0.5, cellOutplaneRatio: 0.5, nonlocalBasisRatio: 1, sharingRange: 'layer_conv',
  }, 'the command line wins over the config; nulls are left out');
  const m = createModelFromArgs(args);
  t.equal(m.numClasses, 10);
  t.equal(m.warehouseManager!.plan.warehouses[0].cellNumRatio, 0.5);
  m.dispose();
  const small = createModelFromArgs(parseArgs(['--model', 'kw_resnet18_small', '--nb_classes', '10', '--sharing_range', 'layer', 'conv']), { inChans: 1 });
  t.same([...(small.get('conv1.weight') as Tensor).shape], [64, 1, 3, 3], 'extra options for what main.py has no flag for');
  small.dispose();
  t.throws(() => createModelFromArgs(parseArgs(['--model', 'kw_resnet18', '--nonlocal_basis_ratio', '0.5', '0.25'])), /nonlocal_basis_ratio/);
});

t.test('bad options are refused by name', async (t) => {
  t.throws(() => createModel('resnet18', { numClasses: 0 }), /resnet18: 'numClasses'/);
  t.throws(() => createModel('convnext_tiny', { dropPathRate: 1.5 }), /convnext_tiny: 'dropPathRate'/);
  t.throws(() => createModel('kw_resnet18', { inChans: -1 }), /kw_resnet18: 'inChans'/);
  t.throws(() => createModel('mobilenetv2_050', { dropout: -0.1 }), /'dropout'/);
  t.throws(() => createModel('kw_resnet18', { cellNumRatio: [1, 2] }), /cellNumRatio: expected one value or 4 values/);
  t.throws(() => createModel('kw_resnet18', { nonlocalBasisRatio: 0 }), /nonlocalBasisRatio/);
});
