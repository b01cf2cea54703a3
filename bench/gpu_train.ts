// Training throughput of a zoo model built from an official KW config (default: KW-ResNet-18
// kw1x) on one device: synthetic 1000-class batches, SGD with momentum, forward + backward +
// step; prints one JSON line with images/s from the median step after warm-up, and with --plan
// writes the model's KW plan (layers, warehouses, cell grids) for scripts/kw_torch_bench.py, so
// the PyTorch side builds exactly the same warehouses the upstream way.
// Run: npm run build:ts && node dist/bench/gpu_train.js --device cuda --batch 128 --size 224 --steps 10
import * as fs from 'fs';
import * as path from 'path';
import * as kw from '../lib';
import { native, packageRoot } from '../lib/native';
import { parseArgs } from '../lib/cli/args';
import { createModelFromArgs } from '../lib/models/registry';
import { median } from './harness';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const device = flag('device', 'cuda') as kw.Device;
const batch = Number(flag('batch', '128'));
const size = Number(flag('size', '224'));
const steps = Number(flag('steps', '10'));
const warmup = Number(flag('warmup', '3'));
const config = flag('config', path.join(packageRoot, 'configs', 'resnet18', 'kw1x_resnet18.json'));
const planFile = flag('plan', '');

const args = parseArgs(['--kw_config', config]);
Object.assign(args, { nb_classes: 1000, drop_path: 0, dropout: 0 });
const model = createModelFromArgs(args);

if (planFile) {
  const plan = model.warehouseManager?.plan;
  const layers = (plan?.layers ?? []).map((l) => ({
    kind: l.kind, spec: l.spec, weightShape: l.weightShape,
    ...(l.kind === 'kw' ? { warehouseIndex: l.warehouseIndex, cellShape: l.cellShape, grid: l.grid, permute: l.permute,
      hidden: l.attention.hiddenPlanes, mixtures: l.attention.numMixtures, cells: l.attention.numCells,
      norm: l.attention.normLayer, tempBias: Array.from(l.tempBias) } : {}),
  }));
  const warehouses = (plan?.warehouses ?? []).map((w) => ({ name: w.name, shape: model.warehouseManager!.cells(w.index).shape }));
  fs.writeFileSync(planFile, JSON.stringify({ model: args.model, config: path.basename(config), numParameters: model.numParameters(), layers, warehouses }));
}

model.to(device);
model.train();
model.updateTemperature(0.5);
const opt = new kw.SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
const x = kw.randn([batch, 3, size, size], { device });
const labels = kw.tensor(BigInt64Array.from({ length: batch }, (_, i) => BigInt((i * 7919) % 1000)), [batch], 'int64').to(device);

const times: number[] = [];
let loss = NaN;
for (let i = 0; i < warmup + steps; i++) {
  const t0 = process.hrtime.bigint();
  loss = kw.tidy(() => {
    opt.zeroGrad();
    const l = kw.crossEntropy(model.forward(x), labels);
    l.backward();
    opt.step();
    return l.item(); // reads the loss back: the step has finished on the device
  });
  if (device === 'cuda') native.cudaSynchronize();
  if (i >= warmup) times.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
const ms = median(times);
const cuda = device === 'cuda' ? native.cudaInfo() : null;
console.log(JSON.stringify({
  impl: process.env.KW_CUDA_CONV === 'own' ? 'kernelwarehouse (own conv)' : 'kernelwarehouse', model: args.model, config: path.basename(config), device, batch, size, amp: false,
  stepMs: ms, imagesPerSec: (batch * 1000) / ms, loss, steps, warmup,
  peakDeviceMiB: cuda?.peakBytes ? cuda.peakBytes / 2 ** 20 : null, backend: cuda?.describe ?? native.buildInfo().gemm,
}));
