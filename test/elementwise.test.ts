// Elementwise ops: forward values by hand, gradients by finite differences, broadcasting.
import t from 'tap';
import * as kw from '../lib';
import { gradcheck, randomTensor, maxAbsDiff } from './helpers/gradcheck';

t.test('binary ops with broadcasting: forward values', async (t) => {
  const a = kw.tensor([[1, 2, 3], [4, 5, 6]]);
  const b = kw.tensor([10, 20, 30]);
  const c = kw.tensor([[2], [4]]);
  t.same(kw.add(a, b).toArray(), [[11, 22, 33], [14, 25, 36]]);
  t.same(kw.sub(a, c).toArray(), [[-1, 0, 1], [0, 1, 2]]);
  t.same(kw.mul(a, c).toArray(), [[2, 4, 6], [16, 20, 24]]);
  t.same(kw.div(a, kw.tensor([2])).toArray(), [[0.5, 1, 1.5], [2, 2.5, 3]]);
  t.same(kw.maximum(a, kw.tensor([3])).toArray(), [[3, 3, 3], [4, 5, 6]]);
  t.same(kw.minimum(a, kw.tensor([3])).toArray(), [[1, 2, 3], [3, 3, 3]]);
  // [2,1,3] + [4,1] -> [2,4,3]
  const x = kw.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 1, 3]);
  const y = kw.tensor(new Float32Array([0, 10, 20, 30]), [4, 1]);
  const z = kw.add(x, y);
  t.same(z.shape, [2, 4, 3]);
  t.same((z.toArray() as number[][][])[1][2], [24, 25, 26]);
  t.throws(() => kw.add(kw.zeros([2, 3]), kw.zeros([4])), /cannot be broadcast/);
});

t.test('unary ops: forward values', async (t) => {
  const x = kw.tensor([-2, -0.5, 0, 0.5, 3, 7]);
  const close = (got: kw.Tensor, want: number[]) => t.ok(maxAbsDiff(got.data() as Float32Array, want) < 1e-5, `${got.toArray()} vs ${want}`);
  close(kw.relu(x), [0, 0, 0, 0.5, 3, 7]);
  close(kw.relu6(x), [0, 0, 0, 0.5, 3, 6]);
  close(kw.abs(x), [2, 0.5, 0, 0.5, 3, 7]);
  close(kw.neg(x), [2, 0.5, -0, -0.5, -3, -7]);
  close(kw.sigmoid(x), [-2, -0.5, 0, 0.5, 3, 7].map((v) => 1 / (1 + Math.exp(-v))));
  close(kw.tanh(x), [-2, -0.5, 0, 0.5, 3, 7].map(Math.tanh));
  // GELU(x) = x·Φ(x); reference values of Φ from the normal table
  close(kw.gelu(kw.tensor([-1, 0, 1, 2])), [-1 * 0.15865525, 0, 0.84134475, 2 * 0.97724987]);
  close(kw.exp(kw.tensor([0, 1])), [1, Math.E]);
  close(kw.log(kw.tensor([1, Math.E])), [0, 1]);
  close(kw.sqrt(kw.tensor([4, 9])), [2, 3]);
  close(kw.pow(kw.tensor([2, 3]), 3), [8, 27]);
  close(kw.clamp(x, -1, 1), [-1, -0.5, 0, 0.5, 1, 1]);
  close(kw.affine(kw.tensor([1, 2]), 3, 1), [4, 7]);
});

const binaryCases: [string, (a: kw.Tensor, b: kw.Tensor) => kw.Tensor][] = [
  ['add', kw.add], ['sub', kw.sub], ['mul', kw.mul], ['maximum', kw.maximum], ['minimum', kw.minimum],
];

t.test('binary ops: gradients by finite differences, with broadcasting', async (t) => {
  for (const [name, f] of binaryCases)
    for (const [sa, sb] of [[[3, 4], [3, 4]], [[2, 3, 4], [4]], [[2, 1, 4], [3, 1]], [[5], []]] as number[][][]) {
      // maximum/minimum have a kink where a = b: a small step keeps the probe off it
      const r = gradcheck(f, [randomTensor(sa, 1), randomTensor(sb, 2)], { eps: name.startsWith('m') && name !== 'mul' ? 1e-4 : 1e-2, atol: 5e-3 });
      t.ok(r.ok, `${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}: ${r.worst}`);
    }
  // div needs a denominator away from zero
  const den = kw.addScalar(kw.abs(randomTensor([3, 4], 3)), 0.5);
  const r = gradcheck(kw.div, [randomTensor([2, 3, 4], 4), den]);
  t.ok(r.ok, `div: ${r.worst}`);
});

t.test('unary ops: gradients by finite differences', async (t) => {
  const cases: [string, (x: kw.Tensor) => kw.Tensor, kw.Tensor][] = [
    ['neg', kw.neg, randomTensor([10], 5)],
    ['exp', kw.exp, randomTensor([10], 5)],
    ['log', kw.log, kw.addScalar(kw.abs(randomTensor([10], 6)), 0.5)],
    ['sqrt', kw.sqrt, kw.addScalar(kw.abs(randomTensor([10], 7)), 0.5)],
    ['abs', kw.abs, randomTensor([10], 8)],
    ['relu', kw.relu, randomTensor([10], 9)],
    ['relu6', kw.relu6, randomTensor([10], 10, 8)],
    ['sigmoid', kw.sigmoid, randomTensor([10], 11, 3)],
    ['tanh', kw.tanh, randomTensor([10], 12, 2)],
    ['gelu', kw.gelu, randomTensor([10], 13, 3)],
    ['square', kw.square, randomTensor([10], 14)],
    ['pow 3', (x) => kw.pow(x, 3), randomTensor([10], 15)],
    ['clamp', (x) => kw.clamp(x, -0.5, 0.5), randomTensor([10], 16)],
    ['affine', (x) => kw.affine(x, -2, 3), randomTensor([10], 17)],
  ];
  for (const [name, f, x] of cases) {
    const r = gradcheck(f, [x], { eps: 1e-3 });
    t.ok(r.ok, `${name}: ${r.worst}`);
  }
});

t.test('bad input: clear errors', async (t) => {
  const a = kw.zeros([2]);
  const d = kw.zeros([2]);
  d.dispose();
  t.throws(() => kw.add(a, d), /disposed/);
  t.throws(() => kw.add(a, 3 as unknown as kw.Tensor), /'b' must be a Tensor/);
  t.throws(() => kw.relu(kw.zeros([2], 'int32')), /float32/);
});
