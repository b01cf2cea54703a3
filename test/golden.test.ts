// Runs every reference case in KW_GOLDEN_DIR (default ../shared/golden), computed by the
// official PyTorch code: `layers` cases are built, loaded and run forward and backward and
// every output, gradient and running statistic compared; `invalid` cases must be rejected
// with an error; `model` cases build the official config's model (lib/models), load its
// parameters (from the safetensors, or from the case's torch.save .pth), and compare eval
// logits, train logits, loss, the listed gradients and the running statistics.
// Run: npm run test:golden   (KW_GOLDEN_DIR=/path/to/cases npm run test:golden)
import t from 'tap';
import * as fs from 'fs';
import * as path from 'path';
import {
  Module, ModuleList, Tensor, WarehouseManager, add, layerSpecFromUpstream, managerOptionsFromUpstream, mul, sum,
  tensor, updateTemperature,
} from '../lib';
import type { Layer } from '../lib';
import { testDevice } from './helpers/device';
import { runModelCase } from './helpers/golden_model';
import { packageRoot } from '../lib/native';
import { rawToTensor } from '../lib/io/checkpoint';
import { readSafetensors as readSafetensorsFile } from '../lib/io/safetensors';

/** Every tensor of a reference file, as float32 tensors (the golden files hold F32 only). */
function readSafetensors(file: string): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, raw] of readSafetensorsFile(file).tensors) out.set(k, rawToTensor(raw));
  return out;
}

// From packageRoot, not __dirname: scripts/gpu-check.sh runs this file compiled from .gpu/dist.
const goldenDir = process.env.KW_GOLDEN_DIR ?? path.resolve(packageRoot, '..', 'shared', 'golden');
const DEVICE = testDevice(); // KW_DEVICE=cuda: the same cases on the GPU
const TOLERANCE = 2e-4; // README: max|a − b| ≤ 2e-4 · max(1, max|b|)

type Json = Record<string, any>;

/** The network of a layers case: the manager, then the reserved layers under `layers`. */
class CaseNetwork extends Module {
  readonly manager: WarehouseManager;
  readonly layers: ModuleList<Module & Layer>;
  constructor(c: Json) {
    super();
    this.manager = this.registerModule('warehouse_manager', new WarehouseManager(managerOptionsFromUpstream(c.manager)));
    const reserved = (c.layers as Json[]).map((l) => this.manager.reserve(layerSpecFromUpstream(l)));
    this.layers = this.registerModule('layers', new ModuleList<Module & Layer>(reserved));
    this.manager.store();
    this.manager.allocate(this);
  }
}

const RESULT_PREFIXES = /^(in|out|gout|grad|after)\./;

interface Comparison {
  name: string;
  err: number;
  limit: number;
}

function compare(name: string, got: Tensor | null, want: Tensor): Comparison {
  const w = want.data() as Float32Array;
  let scale = 1;
  for (let i = 0; i < w.length; i++) scale = Math.max(scale, Math.abs(w[i]));
  if (got && got.shape.join() !== want.shape.join())
    return { name: `${name} (shape [${got.shape}] vs [${want.shape}])`, err: Infinity, limit: TOLERANCE * scale };
  const g = got ? (got.data() as Float32Array) : new Float32Array(w.length); // no gradient reached it: zeros
  let err = 0;
  for (let i = 0; i < w.length; i++) {
    const d = Math.abs(g[i] - w[i]);
    err = Number.isNaN(d) ? Infinity : Math.max(err, d);
  }
  return { name, err, limit: TOLERANCE * scale };
}

function runLayersCase(t: tap.Test, c: Json, file: string): void {
  const tensors = readSafetensors(file);
  const net = new CaseNetwork(c);
  const state = new Map([...tensors].filter(([k]) => !RESULT_PREFIXES.test(k)));
  net.loadStateDict(state, { strict: true });
  updateTemperature(net, c.temperature);
  net.to(DEVICE);
  if (c.mode === 'eval') net.eval();
  else if (c.mode === 'train') net.train();
  else throw new Error(`unknown mode ${JSON.stringify(c.mode)}`);

  const results: Comparison[] = [];
  const inputs: Tensor[] = [];
  let loss: Tensor | null = null;
  (c.layers as Json[]).forEach((_, k) => {
    const x = tensors.get(`in.${k}`);
    const want = tensors.get(`out.${k}`);
    const gout = tensors.get(`gout.${k}`);
    if (!x || !want || !gout) throw new Error(`${c.name}: in.${k}, out.${k} or gout.${k} is missing`);
    const xi = tensor(x.data(), [...x.shape]).to(DEVICE);  // a leaf on the device: no recorded copy
    xi.requiresGrad = true;
    inputs.push(xi);
    const y = net.layers.at(k).forward(xi);
    results.push(compare(`out.${k}`, y, want));
    const term = sum(mul(y, gout.to(DEVICE)));
    loss = loss ? add(loss, term) : term;
  });
  (loss as Tensor | null)?.backward();

  inputs.forEach((xi, k) => {
    const want = tensors.get(`grad.in.${k}`);
    if (want) results.push(compare(`grad.in.${k}`, xi.grad, want));
  });
  const params = new Map(net.namedParameters());
  const buffers = new Map(net.namedBuffers());
  for (const [name, p] of params) {
    const want = tensors.get(`grad.${name}`);
    t.ok(want, `reference has grad.${name}`);
    if (want) results.push(compare(`grad.${name}`, p.grad, want));
  }
  for (const [key, want] of tensors) {
    if (key.startsWith('grad.') && !key.startsWith('grad.in.'))
      t.ok(params.has(key.slice(5)), `${key} names a parameter of the network`);
    if (key.startsWith('after.')) {
      const b = buffers.get(key.slice(6));
      t.ok(b, `${key} names a buffer of the network`);
      if (b) results.push(compare(key, b, want));
    }
  }
  if (c.mode === 'train')
    t.ok([...tensors.keys()].some((k) => k.startsWith('after.')) || ![...buffers.keys()].some((k) => k.endsWith('running_mean')),
      'running statistics are checked after a training step');

  for (const r of results) t.ok(r.err <= r.limit, `${r.name}: max error ${r.err.toExponential(2)} (limit ${r.limit.toExponential(2)})`);
  const worst = results.reduce((a, b) => (b.err / b.limit > a.err / a.limit ? b : a));
  t.ok(results.every((r) => r.err <= r.limit),
    `${c.name}: ${results.length} tensors, worst ${worst.name} at ${worst.err.toExponential(2)} (limit ${worst.limit.toExponential(2)})`);
}

function runInvalidCase(t: tap.Test, c: Json): void {
  let error: unknown = null;
  try {
    new CaseNetwork(c);
  } catch (e) {
    error = e;
  }
  t.ok(error instanceof Error, `${c.name} is rejected with an Error`);
  const msg = error instanceof Error ? error.message : '';
  t.match(msg, /warehouse/, `the error names the warehouse: ${msg}`);
  t.match(msg, /\d/, 'the error gives the counts');
}

const configDir = path.join(packageRoot, 'configs');

const files = fs.existsSync(goldenDir) ? fs.readdirSync(goldenDir).filter((f) => f.endsWith('.json')).sort() : [];
t.ok(files.length > 0, `reference cases found in ${goldenDir}`);

for (const f of files) {
  const c = JSON.parse(fs.readFileSync(path.join(goldenDir, f), 'utf8')) as Json;
  if (typeof c.kind !== 'string') continue; // e.g. param_counts.json: not a case
  const name = c.name ?? f.replace(/\.json$/, '');
  if (c.kind === 'layers') {
    t.test(`layers case ${name}`, async (t) => runLayersCase(t, c, path.join(goldenDir, `${name}.safetensors`)));
  } else if (c.kind === 'invalid') {
    t.test(`invalid case ${name}`, async (t) => runInvalidCase(t, c));
  } else if (c.kind === 'model') {
    t.test(`model case ${name} (config ${c.config})`, async (t) => runModelCase(t, c, readSafetensors(path.join(goldenDir, `${name}.safetensors`)), goldenDir, configDir));
  } else {
    t.fail(`${f}: unknown case kind ${JSON.stringify(c.kind)}`);
  }
}
