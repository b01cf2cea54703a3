// The benchmark's command line, case resolution and FLOP count, and the JSON shape of one tiny
// case run as `npm run bench` would (no timing assertions: the bench is never a timed test).
// Run: npx tap test/bench_cli.test.ts
import t from 'tap';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as kw from '../lib';
import { parseBenchArgs } from '../bench/args';
import { main } from '../bench/bench';
import { DEFAULT_CASES, parseCase, resolveCase } from '../bench/cases';
import { countFlops } from '../bench/flops';
import { PEER_MODELS } from '../bench/peers';
import { listModels } from '../lib/models/registry';

const root = path.resolve(__dirname, '..');

t.test('arguments: defaults, --json, --case, --reps', async (t) => {
  const d = parseBenchArgs([]);
  t.equal(d.cases.length, DEFAULT_CASES.length);
  t.same(d.cases[1], { model: 'kw_resnet18', cellNumRatio: 1, batch: 64, size: 32, classes: 10 });
  t.same(d.cases[2], { model: 'resnet18', cellNumRatio: null, batch: 16, size: 224, classes: 1000 });
  t.ok(d.micro, 'the whole suite in table mode also runs the micro rows');
  t.ok(d.peer && d.ort);
  const j = parseBenchArgs(['--json', '--case', 'kw_resnet18:0.25:8:32', '--case=resnet18:-:4:224', '--reps', '2', '--no-peer']);
  t.same(j.cases, [
    { model: 'kw_resnet18', cellNumRatio: 0.25, batch: 8, size: 32, classes: 10 },
    { model: 'resnet18', cellNumRatio: null, batch: 4, size: 224, classes: 1000 },
  ]);
  t.equal(j.reps, 2);
  t.notOk(j.micro || j.peer || j.ort);
  t.equal(parseBenchArgs(['--case', 'resnet18:-:4:32', '--classes', '100']).cases[0].classes, 100);
  t.ok(parseBenchArgs(['--help']).help);
});

t.test('arguments: bad input names the valid forms', async (t) => {
  const forms = /expected <model>:<cell_num_ratio>:<batch>:<size>, e\.g\. kw_resnet18:1:64:32 or resnet18:-:64:32/;
  t.throws(() => parseBenchArgs(['--case', 'kw_resnet18:1:64']), { message: /3 field\(s\) instead of 4/ });
  t.throws(() => parseBenchArgs(['--case', 'kw_resnet18:1:64']), { message: forms });
  t.throws(() => parseBenchArgs(['--case', 'kw_resnet19:1:64:32']), { message: /unknown model 'kw_resnet19'.*Models: .*kw_resnet18/ });
  t.throws(() => parseBenchArgs(['--case', 'resnet18:1:64:32']), { message: /plain model: its ratio must be '-'/ });
  t.throws(() => parseBenchArgs(['--case', 'kw_resnet18:-:64:32']), { message: /KW model: its cell_num_ratio must be a positive number/ });
  t.throws(() => parseBenchArgs(['--case', 'kw_resnet18:0:64:32']), { message: /positive number, got '0'/ });
  t.throws(() => parseBenchArgs(['--case', 'kw_resnet18:1:6.5:32']), { message: /batch must be an integer/ });
  t.throws(() => parseBenchArgs(['--case', 'kw_resnet18:1:64:0']), { message: /size must be an integer/ });
  t.throws(() => parseBenchArgs(['--case']), { message: /--case: expected a value/ });
  t.throws(() => parseBenchArgs(['--reps', '0']), { message: /--reps: expected an integer/ });
  t.throws(() => parseBenchArgs(['--fast']), { message: /unknown argument '--fast'/ });
  t.throws(() => parseBenchArgs(['--case', 'resnet18:-:4:32', '--case', 'resnet18:-:4:32']), { message: /given twice/ });
});

t.test('cases: a KW ratio finds its official config', async (t) => {
  const q = resolveCase(parseCase('kw_resnet18:0.25:8:32'));
  t.equal(q.config, 'resnet18/kw1d4x_resnet18.json');
  t.match(q.options, { cellNumRatio: 0.25, cellInplaneRatio: 0.5, cellOutplaneRatio: 0.5, numClasses: 10, dropout: 0, dropPathRate: 0 });
  t.same(q.kwConfig, { reduction: 0.0625, cell_num_ratio: 0.25, cell_inplane_ratio: 0.5, cell_outplane_ratio: 0.5, sharing_range: 'layer_conv' });
  t.equal(resolveCase(parseCase('kw_resnet18:4:8:32')).config, 'resnet18/kw4x_resnet18.json');
  t.equal(resolveCase(parseCase('resnet18:-:8:32')).config, 'resnet18/resnet18.json');
  const none = resolveCase(parseCase('kw_resnet18:3:8:32'));
  t.equal(none.config, null, 'no official config has ratio 3');
  t.equal(none.options.cellNumRatio, 3);
});

t.test('peer models: the TS list is what torch_kw.py builds, and each is one of our models', async (t) => {
  // Read from the script's source, not by running it: this test must not need python or torch.
  const src = fs.readFileSync(path.join(root, 'bench', 'peer', 'torch_kw.py'), 'utf8');
  const tuple = (name: string): string[] => {
    const m = new RegExp(`^${name} = \\(([^)]*)\\)`, 'm').exec(src);
    t.ok(m, `torch_kw.py defines ${name}`);
    return m ? [...m[1].matchAll(/'([a-z0-9_]+)'/g)].map((x) => x[1]) : [];
  };
  const script = [...tuple('KW_MODELS'), ...tuple('PLAIN_MODELS')].sort();
  t.same([...PEER_MODELS].sort(), script);
  for (const m of ['kw_mobilenetv2_100', 'kw_mobilenetv2_050', 'mobilenetv2_100', 'mobilenetv2_050', 'kw_convnext_tiny', 'convnext_tiny'])
    t.ok(PEER_MODELS.includes(m), `${m} has a peer`);
  const ours = listModels();
  for (const m of PEER_MODELS) t.ok(ours.includes(m), `${m} is a model of ours`);
});

t.test('FLOP count: conv, linear and KW assembly from the shapes', async (t) => {
  // Conv2d 3→4, 3×3, pad 1 on 6×6, then Linear 4·6·6 → 5: counted by hand.
  class Net extends kw.Module {
    conv = this.registerModule('conv', new kw.Conv2d(3, 4, 3, { padding: 1 }));
    fc = this.registerModule('fc', new kw.Linear(144, 5));
    forward(x: kw.Tensor): kw.Tensor {
      const y = this.conv.forward(x);
      const f = kw.reshape(y, [x.shape[0], 144]);
      const out = this.fc.forward(f);
      y.dispose();
      f.dispose();
      return out;
    }
  }
  const net = new Net();
  const x = kw.randn([2, 3, 6, 6]);
  const f = countFlops(net, x);
  t.equal(f.conv * 1e9, 2 * (4 * 36) * (3 * 9) + 2 * 5 * 144);
  t.equal(f.assembly, 0);
  t.notOk(Object.prototype.hasOwnProperty.call(net.conv, 'forward'), 'the hooks are removed');
  x.dispose();
  net.dispose();

  // One KW 3×3 layer 8→8 alone in its warehouse (ratio 1): cells 8×8×1×1, m = n = 9.
  const wm = new kw.WarehouseManager({ cellNumRatio: 1, generator: new kw.Generator(1) });
  const holder = new kw.Module();
  holder.registerModule('warehouse_manager', wm);
  const layer = holder.registerModule('layer', wm.reserve({ inPlanes: 8, outPlanes: 8, kernelSize: 3, padding: 1, bias: false, warehouseName: 'w' }));
  wm.store();
  wm.allocate(holder);
  const xk = kw.randn([2, 8, 5, 5]);
  const fk = countFlops(layer, xk);
  t.equal(fk.assembly * 1e9, 2 * 9 * 9 * 64);
  t.equal(fk.conv * 1e9, 2 * (8 * 25) * (8 * 9));
  t.equal(fk.attention * 1e9, 2 * (8 * 16 + 16 * 9 * 10), 'fc1 8→16 (hidden at least 16), fc2 16→m·(n+1)');
  xk.dispose();
  holder.dispose();

  // The figure from the official model's shapes: KW-ResNet-18 1× assembles 0.770 GFLOP per sample.
  const r18 = kw.createModel('kw_resnet18', { ...resolveCase(parseCase('kw_resnet18:1:2:32')).options });
  const xr = kw.randn([2, 3, 32, 32]);
  t.equal(Number(countFlops(r18, xr).assembly.toFixed(3)), 0.770);
  xr.dispose();
  r18.dispose();
});

t.test('npm run bench -- --json on one tiny case: one JSON line with the fields', async (t) => {
  // tap's TypeScript loader, without type-checking each file again (tsc checks them): the bench
  // process and its case child each load the whole library from source.
  const run = (args: string[]) => spawnSync(process.execPath, [...process.execArgv, path.join(root, 'bench/bench.ts'), ...args],
    { cwd: root, encoding: 'utf8', timeout: 120_000, env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' } });
  const r = run(['--json', '--case', 'resnet_mini:-:4:16', '--reps', '1', '--no-peer']);
  t.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.equal(lines.length, 1, 'stdout holds only the JSON line');
  const o = JSON.parse(lines[0]) as Record<string, unknown>;
  t.match(o, { model: 'resnet_mini', cell_num_ratio: null, batch: 4, size: 16, classes: 10, train_reps: 1, eval_reps: 1 });
  t.same(o.notes, [], 'nothing failed or was skipped but the peers');
  for (const k of ['train_s', 'eval_s', 'peak_rss_mb', 'gflops', 'gemm_gflops', 'train_images_per_s', 'fwd_gflop_per_sample'])
    t.ok(typeof o[k] === 'number' && (o[k] as number) > 0, `${k} is a positive number`);
  t.match(r.stderr, /\[1\/1\] resnet_mini:-:4:16/, 'progress on stderr');
});

t.test('a bad --case exits 2 with the message on stderr', async (t) => {
  const err: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => err.push(String(s)) > 0) as typeof process.stderr.write;
  let status: number;
  try {
    status = main(['--json', '--case', 'resnet_mini:1:4:16']);
  } finally {
    process.stderr.write = write;
  }
  t.equal(status, 2);
  t.match(err.join(''), /plain model: its ratio must be '-'.*e\.g\. kw_resnet18:1:64:32 or resnet18:-:64:32/);
});
