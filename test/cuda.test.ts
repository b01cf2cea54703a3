// The CUDA backend against the CPU backend (the specification), op family by op family, forward
// and backward, plus the failure modes a machine without a GPU must report in words.
//
// - "without a usable device" runs everywhere: the addon loads and the CPU path works whether or
//   not libkw_cuda.so was built or a driver exists; .to('cuda'), kw-train --device cuda and a
//   missing library fail with the reason.
// - "CUDA against CPU" runs only when cudaInfo().available (a GPU is visible); elsewhere it is
//   skipped and says why. Each case builds the same inputs on both devices from a seed, runs the
//   op, back-propagates a fixed random cotangent, and compares the output and every input
//   gradient with tolerances by dtype and op kind (integer results exactly).
// Run: npx tap test/cuda.test.ts   (scripts/gpu-check.sh runs it on a GPU machine)
import t from 'tap';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as kw from '../lib';
import { Device, Tensor } from '../lib';
import { native, packageRoot } from '../lib/native';
import { randomData } from './helpers/gradcheck';
import { runCli } from './helpers/cli';

const info = native.cudaInfo();
const root = packageRoot; // also right when this file runs compiled from .gpu/dist (scripts/gpu-check.sh)

t.test('without a usable device', async (t) => {
  t.test('the CPU path loads and runs', async (t) => {
    const x = kw.tensor([1, -2, 3]);
    t.equal(x.device, 'cpu');
    t.equal(x.to('cpu'), x, ".to('cpu') of a CPU tensor is the tensor itself");
    t.same(Array.from(kw.relu(x).data() as Float32Array), [1, 0, 3]);
    t.type(native.buildInfo().cuda, 'boolean', 'buildInfo says whether libkw_cuda.so was built');
    t.match(info.library, /libkw_cuda\.so$/, 'cudaInfo names where it looks for the library');
    t.throws(() => x.to('gpu' as Device), /Tensor\.to.*device/, 'an unknown device is an argument error');
  });

  t.test("a CUDA request fails with the reason", { skip: info.available ? 'a CUDA device is visible here' : false }, async (t) => {
    t.type(info.reason, 'string');
    // One of the three causes, in words (which one depends on the machine).
    t.match(info.reason!, /built without CUDA|libkw_cuda\.so not found|no CUDA device visible or the driver is too old \(cudaGetDeviceCount: .+\)|cannot load/);
    t.throws(() => kw.randn([2]).to('cuda'), { message: info.reason! }, "randn([2]).to('cuda') throws the reason");
    t.throws(() => kw.zeros([2], 'float32', 'cuda'), { message: info.reason! }, "zeros(..., 'cuda') throws the reason");
    t.throws(() => kw.randn([2], { device: 'cuda' }), { message: info.reason! }, "randn(..., { device: 'cuda' }) throws the reason");
    const net = kw.createModel('resnet_mini', { inChans: 1, numClasses: 10 });
    t.throws(() => net.to('cuda'), { message: info.reason! }, "model.to('cuda') throws the reason");
    t.equal(net.parameters()[0].device, 'cpu', 'a failed move leaves the model on the CPU');
    net.dispose();
    const cli = await runCli(['--device', 'cuda', '--model', 'resnet_mini']);
    t.equal(cli.code, 1, 'kw-train --device cuda exits non-zero');
    t.match(cli.err, `kw-train: --device cuda: ${info.reason}; use --device cpu`);
  });

  // The installed command itself (the compiled CLI that `npx kw-train` runs), as a process.
  const compiled = path.join(root, 'dist', 'lib', 'cli', 'kw-train.js');
  t.test('npx kw-train --device cuda, as a process', {
    skip: info.available ? 'a CUDA device is visible here' : !fs.existsSync(compiled) ? 'dist/ not built (npm run build:ts)' : false,
  }, async (t) => {
    const r = spawnSync(process.execPath, [compiled, '--device', 'cuda', '--model', 'resnet_mini'], { cwd: root, encoding: 'utf8' });
    t.equal(r.status, 1, 'exit status 1');
    t.match(r.stderr, /kw-train: --device cuda: device 'cuda' is not available: .+; use --device cpu/);
  });

  t.test('a missing library is named (KW_CUDA_LIB)', async (t) => {
    // A fresh process: the library is looked up once per process. Plain JS on the addon lib/ loads.
    const script = `const b = require('node-gyp-build')(${JSON.stringify(root)});
      try { b.toDevice(b.fromTypedArray(new Float32Array(2)), 'cuda'); console.log('moved'); } catch (e) { console.log(e.message); }`;
    const r = spawnSync(process.execPath, ['-e', script], {
      cwd: root, encoding: 'utf8', env: { ...process.env, KW_CUDA_LIB: '/nonexistent/libkw_cuda.so' },
    });
    t.equal(r.status, 0, r.stderr);
    t.match(r.stdout, "device 'cuda' is not available: libkw_cuda.so not found at /nonexistent/libkw_cuda.so");
  });

  t.test('the built library exports only its entry point and needs no CUDA runtime installed',
    { skip: native.buildInfo().cuda ? false : 'libkw_cuda.so was not built (no nvcc)' }, async (t) => {
      const nm = spawnSync('nm', ['-D', '--defined-only', info.library], { encoding: 'utf8' });
      t.equal(nm.status, 0, nm.stderr);
      const symbols = nm.stdout.split('\n').map((l) => l.trim().split(/\s+/)[2]).filter((s) => s && !s.startsWith('_'));
      t.same(symbols, ['kw_cuda_runtime']);
      const ldd = spawnSync('ldd', [info.library], { encoding: 'utf8' });
      t.notMatch(ldd.stdout, /libcudart/, 'the CUDA runtime is linked statically: only the driver is needed');
    });
});

// ---- CUDA against CPU ----

interface Input {
  shape: number[];
  scale?: number;
  /** Integer class labels in [0, classes): int64, no gradient. */
  classes?: number;
  /** Positive values (log, sqrt, pow). */
  positive?: boolean;
  grad?: boolean;
}

interface Tol {
  rtol: number;
  atol: number;
}
// float32 elementwise results differ by a few ulps at most (fast-math-free device libm);
// reductions and products add in another order, so their error grows with the length summed.
const ELEMENTWISE: Tol = { rtol: 1e-5, atol: 1e-6 };
const REDUCED: Tol = { rtol: 1e-4, atol: 1e-5 };
const PRODUCT: Tol = { rtol: 2e-4, atol: 2e-4 };

function makeInput(spec: Input, seed: number, device: Device): Tensor {
  let x: Tensor;
  if (spec.classes !== undefined) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const d = randomData([n], seed, 1);
    x = kw.tensor(BigInt64Array.from(d, (v) => BigInt(Math.floor(((v + 1) / 2) * spec.classes!) % spec.classes!)), spec.shape);
  } else {
    const d = randomData(spec.shape, seed, spec.scale ?? 1);
    if (spec.positive) for (let i = 0; i < d.length; i++) d[i] = Math.abs(d[i]) + 0.1;
    x = kw.tensor(d, spec.shape);
  }
  const moved = x.to(device);
  if (moved !== x) x.dispose();
  if (spec.classes === undefined && spec.grad !== false) moved.requiresGrad = true;
  return moved;
}

/** [output, ...input gradients] as host arrays, from one device. */
function runOn(device: Device, inputs: Input[], f: (...xs: Tensor[]) => Tensor, seed: number): ArrayLike<number | bigint>[] {
  const xs = inputs.map((s, i) => makeInput(s, seed + i, device));
  const y = f(...xs);
  const out: ArrayLike<number | bigint>[] = [y.data()];
  if (y.dtype === 'float32' && y.requiresGrad) {
    const w = kw.tensor(randomData([...y.shape], seed + 99, 1), [...y.shape]).to(device);
    kw.sum(kw.mul(y, w)).backward();
    xs.forEach((x) => {
      if (x.requiresGrad) out.push(x.grad ? x.grad.data() : new Float32Array(x.numel));
    });
  }
  return out;
}

function closeEnough(t: tap.Test, what: string, got: ArrayLike<number | bigint>, want: ArrayLike<number | bigint>, tol: Tol): void {
  if (got.length !== want.length) {
    t.fail(`${what}: ${got.length} elements vs ${want.length}`);
    return;
  }
  let worst = 0, at = -1;
  for (let i = 0; i < want.length; i++) {
    const a = Number(got[i]), b = Number(want[i]);
    const exactKind = typeof want[i] === 'bigint';
    const excess = exactKind ? (a === b ? 0 : Infinity)
      : Number.isNaN(b) ? (Number.isNaN(a) ? 0 : Infinity)
      : Math.abs(a - b) / (tol.atol + tol.rtol * Math.abs(b));
    if (!(excess <= worst)) {
      worst = Number.isNaN(excess) ? Infinity : excess;
      at = i;
    }
  }
  t.ok(worst <= 1, `${what}: worst ${worst.toFixed(3)} of the tolerance${at >= 0 ? ` at ${at} (cuda ${Number(got[at])}, cpu ${Number(want[at])})` : ''}`);
}

function compareOp(t: tap.Test, name: string, inputs: Input[], f: (...xs: Tensor[]) => Tensor, tol: Tol, seed = 1): void {
  t.test(name, async (t) => {
    const cpu = kw.tidy(() => runOn('cpu', inputs, f, seed));
    const gpu = kw.tidy(() => runOn('cuda', inputs, f, seed));
    t.equal(gpu.length, cpu.length, 'the same gradients reach the inputs');
    cpu.forEach((want, i) => closeEnough(t, i === 0 ? 'output' : `grad of input ${i - 1}`, gpu[i], want, tol));
  });
}

t.test('CUDA against CPU', { skip: info.available ? false : `no CUDA device: ${info.reason}` }, async (t) => {
  t.comment(`device: ${info.describe}`);
  const v = (shape: number[], extra: Partial<Input> = {}): Input => ({ shape, ...extra });

  t.test('storage and copies', async (t) => {
    const x = kw.tensor(randomData([1000], 3, 5), [1000]);
    const g = x.to('cuda');
    t.equal(g.device, 'cuda');
    t.same(g.data(), x.data(), 'host → device → host is exact');
    t.same(g.to('cpu').data(), x.data());
    const ints = kw.tensor(new Int32Array([1, -7, 2 ** 30]), [3]).to('cuda');
    t.same(Array.from(ints.data() as Int32Array), [1, -7, 2 ** 30], 'int32 survives the round trip');
    t.throws(() => kw.add(x, g), /'b' is on cuda but 'a' is on cpu: move both to the same device with \.to\(\)/);
    const before = native.cudaInfo().liveBytes!;
    kw.tidy(() => kw.relu(g));
    t.equal(native.cudaInfo().liveBytes, before, 'a disposed result returns its device memory to the cache');
    // A gradient crosses back to the device the leaf lives on.
    const leaf = kw.tensor([1, 2, 3]);
    leaf.requiresGrad = true;
    kw.sum(kw.mul(leaf.to('cuda'), kw.tensor([4, 5, 6]).to('cuda'))).backward();
    t.equal(leaf.grad!.device, 'cpu');
    t.same(Array.from(leaf.grad!.data() as Float32Array), [4, 5, 6]);
  });

  t.test('random: the same counter-based streams on both devices', async (t) => {
    const u = (d: Device) => kw.rand([4096], { generator: new kw.Generator(7), device: d }).data();
    t.same(u('cuda'), u('cpu'), 'uniform is bit-identical');
    const b = (d: Device) => kw.bernoulli([4096], 0.3, { generator: new kw.Generator(8), device: d }).data();
    t.same(b('cuda'), b('cpu'), 'bernoulli is bit-identical');
    const n = (d: Device) => kw.randn([4096], { generator: new kw.Generator(9), device: d }).data();
    closeEnough(t, 'normal (device libm)', n('cuda'), n('cpu'), { rtol: 1e-5, atol: 1e-5 });
  });

  t.test('elementwise', async (t) => {
    const a = v([3, 4, 5]), b = v([3, 4, 5]);
    compareOp(t, 'add', [a, b], kw.add, ELEMENTWISE);
    compareOp(t, 'mul, broadcast [3,1,5]·[4,1]', [v([3, 1, 5]), v([4, 1])], kw.mul, REDUCED);
    compareOp(t, 'div', [a, v([3, 4, 5], { positive: true })], kw.div, ELEMENTWISE);
    compareOp(t, 'maximum (broadcast scalar-like)', [a, v([1])], kw.maximum, REDUCED);
    for (const [name, f] of [['exp', kw.exp], ['tanh', kw.tanh], ['sigmoid', kw.sigmoid], ['relu', kw.relu], ['relu6', kw.relu6],
      ['gelu', kw.gelu], ['abs', kw.abs], ['neg', kw.neg]] as [string, (x: Tensor) => Tensor][])
      compareOp(t, name, [v([7, 9], { scale: 4 })], f, ELEMENTWISE);
    compareOp(t, 'log', [v([50], { positive: true })], kw.log, ELEMENTWISE);
    compareOp(t, 'sqrt', [v([50], { positive: true })], kw.sqrt, ELEMENTWISE);
    compareOp(t, 'pow 1.5', [v([50], { positive: true })], (x) => kw.pow(x, 1.5), ELEMENTWISE);
    compareOp(t, 'clamp', [v([50], { scale: 3 })], (x) => kw.clamp(x, -1, 0.5), ELEMENTWISE);
  });

  t.test('reductions, products, layout', async (t) => {
    compareOp(t, 'sum over the last axis (contiguous rows)', [v([6, 1000])], (x) => kw.sum(x, 1), REDUCED);
    compareOp(t, 'sum over a middle axis', [v([4, 33, 7])], (x) => kw.sum(x, 1), REDUCED);
    compareOp(t, 'mean of all', [v([5, 6, 7])], (x) => kw.mean(x), REDUCED);
    compareOp(t, 'max along an axis', [v([4, 9, 5])], (x) => kw.max(x, 1), ELEMENTWISE);
    compareOp(t, 'matmul 70×130 · 130×90', [v([70, 130]), v([130, 90])], kw.matmul, PRODUCT);
    compareOp(t, 'batched matmul with broadcast', [v([3, 17, 33]), v([33, 65])], kw.matmul, PRODUCT);
    compareOp(t, 'permute', [v([2, 3, 4, 5])], (x) => kw.permute(x, [3, 1, 0, 2]), ELEMENTWISE);
    compareOp(t, 'slice with step', [v([6, 10])], (x) => kw.slice(x, 1, 1, 9, 3), ELEMENTWISE);
    compareOp(t, 'concat', [v([2, 3]), v([2, 4])], (a, b) => kw.concat([a, b], 1), ELEMENTWISE);
    compareOp(t, 'cast to int32', [v([20], { scale: 50, grad: false })], (x) => kw.cast(x, 'int32'), ELEMENTWISE);
  });

  t.test('normalisation, pooling, softmax and losses', async (t) => {
    const bn = (training: boolean) => (x: Tensor, w: Tensor, b: Tensor) => {
      const rm = kw.zeros([6], 'float32', x.device), rv = kw.full([6], 1, x.device);
      return kw.batchNorm(x, rm, rv, w, b, { training });
    };
    compareOp(t, 'batch norm (train)', [v([4, 6, 5, 5], { scale: 3 }), v([6]), v([6])], bn(true), REDUCED);
    compareOp(t, 'batch norm (eval)', [v([4, 6, 5, 5], { scale: 3 }), v([6]), v([6])], bn(false), REDUCED);
    compareOp(t, 'layer norm, channels last', [v([5, 3, 16]), v([16]), v([16])], (x, w, b) => kw.layerNorm(x, w, b), REDUCED);
    compareOp(t, 'max pool 3×3 s2 p1', [v([2, 3, 11, 11])], (x) => kw.maxPool2d(x, 3, { stride: 2, padding: 1 }), ELEMENTWISE);
    compareOp(t, 'avg pool 3×3 s2 p1', [v([2, 3, 11, 11])], (x) => kw.avgPool2d(x, 3, { stride: 2, padding: 1 }), REDUCED);
    compareOp(t, 'adaptive avg pool to 3×2', [v([2, 3, 7, 5])], (x) => kw.adaptiveAvgPool2d(x, [3, 2]), REDUCED);
    compareOp(t, 'global avg pool', [v([2, 3, 7, 7])], (x) => kw.adaptiveAvgPool2d(x, 1), REDUCED);
    compareOp(t, 'softmax', [v([4, 10], { scale: 5 })], (x) => kw.softmax(x, 1), REDUCED);
    compareOp(t, 'log-softmax over a middle axis', [v([3, 10, 4], { scale: 5 })], (x) => kw.logSoftmax(x, 1), REDUCED);
    compareOp(t, 'cross-entropy with label smoothing', [v([8, 10], { scale: 3 }), v([8], { classes: 10 })],
      (x, y) => kw.crossEntropy(x, y, { labelSmoothing: 0.1 }), REDUCED);
    compareOp(t, 'cross-entropy, soft targets', [v([8, 10], { scale: 3 }), v([8, 10], { positive: true, grad: false })],
      (x, q) => kw.crossEntropy(x, q), REDUCED);
  });

  t.test('convolution', async (t) => {
    const conv = (o: kw.ConvOptions) => (x: Tensor, w: Tensor, b: Tensor) => kw.conv2d(x, w, b, o);
    compareOp(t, 'conv2d 3×3 s1 p1', [v([2, 4, 9, 9]), v([6, 4, 3, 3]), v([6])], conv({ padding: 1 }), PRODUCT);
    compareOp(t, 'conv2d 7×7 s2 p3', [v([2, 3, 16, 16]), v([5, 3, 7, 7]), v([5])], conv({ stride: 2, padding: 3 }), PRODUCT);
    compareOp(t, 'conv2d 1×1 (direct)', [v([2, 8, 5, 5]), v([4, 8, 1, 1]), v([4])], conv({}), PRODUCT);
    compareOp(t, 'conv2d groups 2, dilation 2', [v([2, 4, 9, 9]), v([6, 2, 3, 3]), v([6])], conv({ groups: 2, dilation: 2, padding: 2 }), PRODUCT);
    compareOp(t, "conv2d 'same' with an even kernel", [v([2, 3, 8, 8]), v([4, 3, 4, 4]), v([4])], conv({ padding: 'same' }), PRODUCT);
    compareOp(t, 'per-sample (KW) conv2d', [v([3, 4, 8, 8]), v([3, 6, 4, 3, 3]), v([6])], conv({ padding: 1 }), PRODUCT);
    compareOp(t, 'per-sample depthwise', [v([3, 4, 8, 8]), v([3, 4, 1, 3, 3]), v([4])], conv({ padding: 1, groups: 4 }), PRODUCT);
  });

  t.test('KernelWarehouse: the attention head and the cell assembly inside KW layers', async (t) => {
    // Whole KW models exercise the fused attention (BatchNorm1d and LayerNorm heads), the fused
    // assembly into the per-sample kernel layout, and the per-sample convolution together.
    for (const [name, opts] of [
      ['kw_resnet_mini', { inChans: 1, numClasses: 10 }],
      ['kw_resnet_mini, cell ratio 2, sharing layer_conv', { inChans: 1, numClasses: 10, cellNumRatio: 2, sharingRange: 'layer_conv' }],
    ] as [string, kw.CreateModelOptions][]) {
      t.test(name, async (t) => {
        const grads = (device: Device) => kw.tidy(() => {
          kw.manualSeed(0);
          const net = kw.createModel('kw_resnet_mini', opts).to(device);
          net.updateTemperature(0.5);
          const x = kw.tensor(randomData([4, 1, 28, 28], 5, 1), [4, 1, 28, 28]).to(device);
          const y = kw.tensor(BigInt64Array.from([1n, 3n, 5n, 7n]), [4]).to(device);
          const out = net.forward(x);
          const loss = kw.crossEntropy(out, y);
          loss.backward();
          const res: [string, ArrayLike<number>][] = [['logits', out.data() as Float32Array], ['loss', loss.data() as Float32Array]];
          for (const [k, p] of net.namedParameters()) if (p.grad) res.push([`grad.${k}`, p.grad.data() as Float32Array]);
          for (const [k, b] of net.namedBuffers()) if (b.dtype === 'float32') res.push([`after.${k}`, b.data() as Float32Array]);
          net.dispose();
          return res;
        });
        const cpu = grads('cpu'), gpu = grads('cuda');
        t.same(gpu.map(([k]) => k), cpu.map(([k]) => k), 'the same gradients and buffers');
        cpu.forEach(([k, want], i) => closeEnough(t, k, gpu[i][1], want, { rtol: 1e-3, atol: 1e-4 }));
      });
    }
  });

  t.test('optimizer updates', async (t) => {
    const step = (device: Device, make: (p: Tensor[]) => kw.Optimizer) => {
      const p = kw.tensor(randomData([257], 11, 1), [257]).to(device);
      p.requiresGrad = true;
      const opt = make([p]);
      for (let i = 0; i < 3; i++) {
        opt.zeroGrad();
        kw.sum(kw.mul(kw.mul(p, p), kw.tensor(randomData([257], 20 + i, 1), [257]).to(device))).backward();
        opt.step();
      }
      return p.data();
    };
    const sgd = (ps: Tensor[]) => new kw.SGD(ps, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-2 });
    const adamw = (ps: Tensor[]) => new kw.AdamW(ps, { lr: 0.01, weightDecay: 0.05 });
    closeEnough(t, 'SGD (nesterov, weight decay)', step('cuda', sgd), step('cpu', sgd), ELEMENTWISE);
    closeEnough(t, 'AdamW', step('cuda', adamw), step('cpu', adamw), { rtol: 1e-5, atol: 1e-5 });
    const g = kw.tensor(randomData([1000], 30, 2), [1000]);
    t.ok(Math.abs(native.sumSquares(g.to('cuda').storage) - native.sumSquares(g.storage)) < 1e-9 * native.sumSquares(g.storage),
      'sum of squares (gradient clipping) in double');
  });
});
