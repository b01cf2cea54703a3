// Module: names, state-dict order, loading (copies, strictness, errors by name), modes,
// containers; plain Linear/Conv layers against the ops. Run: npx tap test/module.test.ts
import t from 'tap';
import * as kw from '../lib';
import { Module, ModuleList, ParameterList, Sequential, Tensor, tensor, zeros } from '../lib';
import { maxAbsDiff, randomTensor } from './helpers/gradcheck';

class Leaf extends Module {
  constructor(seed: number) {
    super();
    this.registerParameter('weight', randomTensor([2, 3], seed));
    this.registerParameter('bias', null);
    this.registerBuffer('running', zeros([2]));
    this.registerBuffer('scratch', zeros([1]), false);
  }
}

class Tree extends Module {
  readonly a: Leaf;
  readonly list: ModuleList<Leaf>;
  constructor() {
    super();
    this.registerBuffer('count', zeros([], 'int64'));
    this.a = this.registerModule('a', new Leaf(1));
    this.registerParameter('scale', randomTensor([1], 2));
    this.list = this.registerModule('list', new ModuleList([new Leaf(3), new Leaf(4)]));
  }
}

t.test('state dict: names and PyTorch order (own params, own buffers, then children)', async (t) => {
  const net = new Tree();
  t.same([...net.stateDict().keys()], [
    'scale', 'count', 'a.weight', 'a.running', 'list.0.weight', 'list.0.running', 'list.1.weight', 'list.1.running',
  ]);
  t.same(net.namedParameters().map(([k]) => k), ['scale', 'a.weight', 'list.0.weight', 'list.1.weight']);
  t.same(net.namedBuffers().map(([k]) => k), ['count', 'a.running', 'a.scratch', 'list.0.running', 'list.0.scratch',
    'list.1.running', 'list.1.scratch'], 'non-persistent buffers are buffers but not saved');
  t.same(net.namedModules().map(([k]) => k), ['', 'a', 'list', 'list.0', 'list.1']);
  t.ok(net.parameters().every((p) => p.requiresGrad), 'parameters require grad');
  t.equal(net.get('list.1.weight'), net.list.at(1).getParameter('weight'));
  t.throws(() => net.get('list.7.weight'), /no module '7'/);
  t.throws(() => net.registerParameter('a', null), /already registered/);
  t.throws(() => net.registerModule('x.y', new Leaf(1)), /without dots/);
});

t.test('a parameter shared by two modules is listed once', async (t) => {
  const shared = randomTensor([2], 9);
  const m1 = new Module(), m2 = new Module(), root = new Module();
  m1.registerParameter('w', shared);
  m2.registerParameter('w', shared);
  root.registerModule('m1', m1);
  root.registerModule('m2', m2);
  t.same(root.namedParameters().map(([k]) => k), ['m1.w']);
  t.same([...root.stateDict().keys()], ['m1.w', 'm2.w'], 'the state dict keeps both names, as PyTorch');
});

t.test('train/eval reach every module', async (t) => {
  const net = new Tree();
  net.eval();
  t.ok(net.modules().every((m) => !m.training));
  net.train();
  t.ok(net.modules().every((m) => m.training));
});

t.test('loadStateDict copies values in place, checks names and shapes', async (t) => {
  const src = new Tree(), dst = new Tree();
  const wBefore = dst.a.getParameter('weight')!;
  const state = src.stateDict();
  state.set('count', tensor([7])); // float [1] into an int64 scalar: cast, as PyTorch loads 1-element tensors
  const r = dst.loadStateDict(state);
  t.same(r, { missingKeys: [], unexpectedKeys: [] });
  t.equal(dst.a.getParameter('weight'), wBefore, 'the module keeps its own tensor');
  t.equal(maxAbsDiff(wBefore.data() as Float32Array, src.a.getParameter('weight')!.data() as Float32Array), 0);
  t.same(Array.from(dst.getBuffer('count')!.data() as BigInt64Array), [7n]);
  kw.copyInto(src.a.getParameter('weight')!, zeros([2, 3]));
  t.not((wBefore.data() as Float32Array)[0], 0, 'no aliasing: changing the source later does not change the module');

  const fresh = new Tree();
  const before = Array.from(fresh.a.getParameter('weight')!.data() as Float32Array);
  const bad = new Map(src.stateDict());
  bad.delete('list.1.running');
  bad.set('extra.thing', zeros([1]));
  bad.set('a.weight', zeros([3, 2]));
  let msg = '';
  try {
    fresh.loadStateDict(bad);
  } catch (e) {
    msg = (e as Error).message;
  }
  t.match(msg, /size mismatch for 'a.weight'.*\[3, 2\].*\[2, 3\]/, 'shape mismatch named');
  t.match(msg, /missing keys: list.1.running/, 'missing key named');
  t.match(msg, /unexpected keys: extra.thing/, 'unexpected key named');
  t.same(Array.from(fresh.a.getParameter('weight')!.data() as Float32Array), before, 'nothing copied when it throws');

  bad.set('a.weight', zeros([2, 3]));
  const loose = fresh.loadStateDict(bad, { strict: false });
  t.same(loose, { missingKeys: ['list.1.running'], unexpectedKeys: ['extra.thing'] });
  t.same(Array.from(fresh.a.getParameter('weight')!.data() as Float32Array), [0, 0, 0, 0, 0, 0]);
  bad.set('a.weight', zeros([3, 2]));
  t.throws(() => fresh.loadStateDict(bad, { strict: false }), /size mismatch for 'a.weight'/, 'shapes are checked even when not strict');
});

t.test('containers, zeroGrad, apply', async (t) => {
  const pl = new ParameterList([randomTensor([2], 1), randomTensor([3], 2)]);
  t.same([...pl.stateDict().keys()], ['0', '1']);
  t.equal(pl.length, 2);
  const lin1 = new kw.Linear(3, 4), lin2 = new kw.Linear(4, 2, false);
  const seq = new Sequential(lin1, lin2);
  t.same([...seq.stateDict().keys()], ['0.weight', '0.bias', '1.weight']);
  const x = randomTensor([5, 3], 3);
  const y = seq.forward(x);
  const ref = kw.linear(kw.linear(x, lin1.weight, lin1.bias), lin2.weight);
  t.equal(maxAbsDiff(y.data() as Float32Array, ref.data() as Float32Array), 0);
  kw.sum(y).backward();
  t.ok(lin1.weight.grad && lin2.weight.grad);
  seq.zeroGrad();
  t.ok(seq.parameters().every((p) => p.grad === null));
  const seen: string[] = [];
  seq.apply((m) => seen.push(m.constructor.name));
  t.same(seen, ['Linear', 'Linear', 'Sequential'], 'children first');
});

t.test('plain Linear and Conv2d: PyTorch names, default init bounds, forward = the ops', async (t) => {
  const lin = new kw.Linear(50, 7);
  t.same([...lin.stateDict().keys()], ['weight', 'bias']);
  const bound = 1 / Math.sqrt(50);
  const wl = lin.weight.data() as Float32Array;
  t.ok(wl.every((v) => Math.abs(v) <= bound), 'U(-1/√fan_in, 1/√fan_in)');
  t.ok(Math.max(...wl) > 0.8 * bound, 'spread over the range');
  const conv = new kw.Conv2d(4, 6, 3, { stride: 2, padding: 1, groups: 2 });
  t.same(conv.weight.shape, [6, 2, 3, 3]);
  const cb = 1 / Math.sqrt(2 * 9);
  t.ok((conv.bias!.data() as Float32Array).every((v) => Math.abs(v) <= cb));
  const x = randomTensor([2, 4, 7, 7], 5);
  const y = conv.forward(x);
  const ref = kw.conv2d(x, conv.weight, conv.bias, { stride: 2, padding: 1, groups: 2 });
  t.same(y.shape, [2, 6, 4, 4]);
  t.equal(maxAbsDiff(y.data() as Float32Array, ref.data() as Float32Array), 0);
  t.throws(() => new kw.Conv2d(4, 6, 3, { groups: 3 }), /groups/);
  t.throws(() => conv.forward(randomTensor([4, 7, 7], 1)), /x/);
  t.same(new kw.Conv1d(3, 5, 2, { bias: false }).stateDict().size, 1);
  t.same(new kw.Conv3d(2, 2, [1, 2, 3]).weight.shape, [2, 2, 1, 2, 3]);
});

t.test('parameter() refuses non-leaf tensors', async (t) => {
  const a = randomTensor([2], 1);
  a.requiresGrad = true;
  const b = kw.mul(a, a);
  t.throws(() => kw.parameter(b), /leaf/);
  const m = new Module();
  t.throws(() => m.getParameter('nope'), /no parameter 'nope'/);
  t.ok(kw.tidy(() => kw.parameter(randomTensor([1], 1))) instanceof Tensor);
});
