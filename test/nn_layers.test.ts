// nn layer modules against their functional ops and PyTorch's names and semantics:
// BatchNorm1d/2d (state, train/eval, running update, num_batches_tracked, cumulative momentum),
// LayerNorm (both layouts), activations, Identity, Flatten, Dropout, DropPath, pooling, the
// in-place initialisers, and Sequential freeing its intermediates. Run: npx tap test/nn_layers.test.ts
import t from 'tap';
import {
  AdaptiveAvgPool2d, BatchNorm1d, BatchNorm2d, DropPath, Dropout, Flatten, GELU, Identity, LayerNorm, Linear, MaxPool2d,
  ReLU, ReLU6, Sequential, Tensor, adaptiveAvgPool2d, batchNorm, constant_, full, gelu, kaimingNormal_, layerNorm, maxPool2d,
  memoryStats, noGrad, normal_, relu, relu6, scale_, sum, tensor, truncNormal_, zeros, Generator,
} from '../lib';
import { maxAbsDiff, randomTensor } from './helpers/gradcheck';

const data = (x: Tensor): number[] => Array.from(x.data() as Float32Array);

t.test('BatchNorm2d: PyTorch state names, train mode = batchNorm op with batch statistics', async (t) => {
  const bn = new BatchNorm2d(3);
  t.same([...bn.stateDict().keys()], ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
  t.same(bn.namedParameters().map(([k]) => k), ['weight', 'bias']);
  t.equal(bn.getBuffer('num_batches_tracked')!.dtype, 'int64');
  t.same(data(bn.weight!), [1, 1, 1]);
  t.same(data(bn.runningVar!), [1, 1, 1]);
  const x = randomTensor([4, 3, 5, 5], 1, 3);
  const rm = zeros([3]), rv = full([3], 1);
  const want = batchNorm(x, rm, rv, bn.weight, bn.bias, { training: true, momentum: 0.1, eps: 1e-5 });
  const y = bn.forward(x);
  t.equal(maxAbsDiff(data(y), data(want)), 0, 'same output as the op');
  t.equal(maxAbsDiff(data(bn.runningMean!), data(rm)), 0, 'running mean updated in place like the op');
  t.equal(maxAbsDiff(data(bn.runningVar!), data(rv)), 0, 'running var updated in place like the op');
  t.equal(Number(bn.getBuffer('num_batches_tracked')!.data()[0]), 1, 'num_batches_tracked counts train-mode batches');
  bn.forward(x);
  t.equal(Number(bn.getBuffer('num_batches_tracked')!.data()[0]), 2);
  bn.eval();
  const before = data(bn.runningMean!);
  bn.forward(x);
  t.same(data(bn.runningMean!), before, 'eval mode leaves the running statistics alone');
  t.equal(Number(bn.getBuffer('num_batches_tracked')!.data()[0]), 2, 'and does not count');
  bn.resetRunningStats();
  t.same([data(bn.runningMean!), data(bn.runningVar!), Number(bn.getBuffer('num_batches_tracked')!.data()[0])],
    [[0, 0, 0], [1, 1, 1], 0], 'resetRunningStats: 0, 1 and no batches');
});

t.test('BatchNorm eval mode normalises with the running statistics', async (t) => {
  const bn = new BatchNorm1d(2, { eps: 0 });
  bn.loadStateDict(new Map([
    ['weight', tensor([2, 3])], ['bias', tensor([1, -1])], ['running_mean', tensor([1, 2])], ['running_var', tensor([4, 9])],
    ['num_batches_tracked', tensor(new BigInt64Array([7n]), [], 'int64')],
  ]));
  bn.eval();
  const y = bn.forward(tensor([[3, 5], [-1, 2]]));
  // (x - mean) / sqrt(var) * w + b, by hand
  t.same(data(y), [(3 - 1) / 2 * 2 + 1, (5 - 2) / 3 * 3 - 1, (-1 - 1) / 2 * 2 + 1, (2 - 2) / 3 * 3 - 1]);
  const y3 = bn.forward(tensor([[[3, 3], [5, 5]], [[-1, -1], [2, 2]]]));
  t.same(data(y3), [3, 3, 2, 2, -1, -1, -1, -1], 'BatchNorm1d also takes [N, C, L]');
});

t.test('BatchNorm momentum null: cumulative average over num_batches_tracked', async (t) => {
  const bn = new BatchNorm1d(1, { momentum: null });
  const a = tensor([[1], [3]]), b = tensor([[5], [9]]);
  bn.forward(a); // mean 2
  bn.forward(b); // mean 7
  t.ok(Math.abs((bn.runningMean!.data() as Float32Array)[0] - 4.5) < 1e-6, 'mean of the batch means');
  // unbiased batch variances 2 and 8, averaged
  t.ok(Math.abs((bn.runningVar!.data() as Float32Array)[0] - 5) < 1e-5, 'mean of the unbiased batch variances');
});

t.test('BatchNorm rejects bad inputs and options by name', async (t) => {
  t.throws(() => new BatchNorm2d(0), /numFeatures/);
  t.throws(() => new BatchNorm2d(2, { eps: -1 }), /eps/);
  t.throws(() => new BatchNorm2d(2).forward(zeros([2, 3, 4, 4])), /BatchNorm2d\.forward.*'x'/);
  t.throws(() => new BatchNorm2d(2).forward(zeros([2, 2, 4])), /rank 4/);
  t.throws(() => new BatchNorm1d(2).forward(zeros([2, 2, 2, 2])), /rank 2 or 3/);
  const noStats = new BatchNorm1d(2, { trackRunningStats: false, affine: false });
  t.same([...noStats.stateDict().keys()], []);
  noStats.eval();
  const y = noStats.forward(tensor([[1, 2], [3, 6]]));
  t.ok(maxAbsDiff(data(y), [-1, -1, 1, 1]) < 1e-3, 'without running statistics eval mode uses batch statistics');
});

t.test('LayerNorm: nn.LayerNorm (channels-last) and ConvNeXt channels-first', async (t) => {
  const ln = new LayerNorm(4);
  t.same([...ln.stateDict().keys()], ['weight', 'bias']);
  t.equal(ln.eps, 1e-5, "nn.LayerNorm's default eps");
  const x = randomTensor([2, 3, 4], 2);
  t.equal(maxAbsDiff(data(ln.forward(x)), data(layerNorm(x, ln.weight, ln.bias, { eps: 1e-5 }))), 0);
  const cf = new LayerNorm(3, { eps: 1e-6, dataFormat: 'channels_first' });
  const x4 = randomTensor([2, 3, 2, 2], 3);
  t.equal(maxAbsDiff(data(cf.forward(x4)), data(layerNorm(x4, cf.weight, cf.bias, { eps: 1e-6, channelsFirst: true }))), 0);
  t.throws(() => new LayerNorm(3, { dataFormat: 'nchw' as never }), /dataFormat/);
});

t.test('activations, Identity, Flatten match their ops and keep gradients flowing', async (t) => {
  const x = randomTensor([2, 3, 4], 4, 8);
  t.same(data(new ReLU().forward(x)), data(relu(x)));
  t.same(data(new ReLU6().forward(x)), data(relu6(x)));
  t.same(data(new GELU().forward(x)), data(gelu(x)));
  const leaf = randomTensor([2, 3], 5);
  leaf.requiresGrad = true;
  const id = new Identity().forward(leaf);
  t.not(id, leaf, 'Identity returns a new tensor object');
  t.same(data(id), data(leaf));
  sum(id).backward();
  t.same(data(leaf.grad!), [1, 1, 1, 1, 1, 1], 'the gradient passes through Identity');
  t.same(new Flatten().forward(zeros([2, 3, 1, 1])).shape, [2, 3]);
});

t.test('Dropout and DropPath: identity in eval mode, masks in train mode', async (t) => {
  const x = full([200, 50], 1);
  const d = new Dropout(0.25, new Generator(3));
  const y = data(d.forward(x));
  const zerosFrac = y.filter((v) => v === 0).length / y.length;
  t.ok(Math.abs(zerosFrac - 0.25) < 0.02, `about a quarter dropped (${zerosFrac})`);
  t.ok(y.every((v) => v === 0 || Math.abs(v - 4 / 3) < 1e-6), 'kept values scaled by 1/(1-p)');
  d.eval();
  t.same(data(d.forward(x)), data(x));
  const dp = new DropPath(0.5, new Generator(4));
  const z = data(dp.forward(full([64, 3], 1)));
  for (let i = 0; i < 64; i++) t.ok(z[3 * i] === z[3 * i + 1] && z[3 * i] === z[3 * i + 2], `sample ${i} kept or dropped whole`);
  dp.eval();
  t.same(data(dp.forward(full([4, 3], 1))), new Array(12).fill(1));
  t.throws(() => new Dropout(1.5), /'p'/);
});

t.test('pooling layers match the ops', async (t) => {
  const x = randomTensor([2, 3, 7, 7], 6);
  t.same(data(new MaxPool2d(3, { stride: 2, padding: 1 }).forward(x)), data(maxPool2d(x, 3, { stride: 2, padding: 1 })));
  t.same(data(new AdaptiveAvgPool2d([1, 1]).forward(x)), data(adaptiveAvgPool2d(x, [1, 1])));
});

t.test('initialisers: in place, right statistics', async (t) => {
  const w = zeros([256, 64, 3, 3]);
  w.requiresGrad = true;
  const same = kaimingNormal_(w, { mode: 'fan_out', generator: new Generator(1) });
  t.equal(same, w, 'the same tensor, written in place');
  const v = data(w);
  const std = Math.sqrt(v.reduce((a, b) => a + b * b, 0) / v.length);
  t.ok(Math.abs(std - Math.sqrt(2 / (256 * 9))) < 0.01 * Math.sqrt(2 / (256 * 9)), `kaiming fan_out std ${std}`);
  const fanIn = kaimingNormal_(zeros([256, 64, 3, 3]), { generator: new Generator(2) });
  const si = Math.sqrt(data(fanIn).reduce((a, b) => a + b * b, 0) / fanIn.numel);
  t.ok(Math.abs(si - Math.sqrt(2 / (64 * 9))) < 0.01 * Math.sqrt(2 / (64 * 9)), `kaiming fan_in std ${si}`);
  const tn = truncNormal_(zeros([20000]), { std: 1, a: -0.5, b: 0.5, generator: new Generator(3) });
  t.ok(data(tn).every((x) => x >= -0.5 && x <= 0.5), 'trunc_normal_ stays within [a, b]');
  const n = normal_(zeros([20000]), { mean: 3, std: 0.01, generator: new Generator(4) });
  const mean = data(n).reduce((a, b) => a + b, 0) / n.numel;
  t.ok(Math.abs(mean - 3) < 1e-3, 'normal_ mean');
  t.same(data(constant_(zeros([3]), 2.5)), [2.5, 2.5, 2.5]);
  t.same(data(scale_(tensor([1, -2]), 3)), [3, -6]);
  t.throws(() => kaimingNormal_(zeros([3])), /at least 2 dims/);
});

t.test('Sequential frees its intermediates, not its input; backward still works', async (t) => {
  const net = new Sequential(new Linear(8, 16), new ReLU(), new Linear(16, 4));
  const x = randomTensor([5, 8], 7);
  const before = memoryStats().liveBlocks;
  const y = noGrad(() => net.forward(x));
  t.equal(memoryStats().liveBlocks - before, 1, 'without a graph only the output stays alive');
  t.notOk(x.isDisposed, "the input is the caller's");
  y.dispose();
  const z = net.forward(x);
  sum(z).backward();
  t.ok(net.parameters().every((p) => p.grad !== null), 'every parameter got a gradient');
});
