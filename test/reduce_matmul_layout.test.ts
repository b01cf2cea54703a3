// Reductions, matrix products and shape ops: forward by hand, gradients by finite differences.
import t from 'tap';
import * as kw from '../lib';
import { gradcheck, randomTensor, maxAbsDiff } from './helpers/gradcheck';

t.test('sum / mean / max forward', async (t) => {
  const x = kw.tensor([[1, 5, 3], [4, 2, 6]]);
  t.same(kw.sum(x).toArray(), 21);
  t.same(kw.sum(x, 0).toArray(), [5, 7, 9]);
  t.same(kw.sum(x, 1, { keepDims: true }).toArray(), [[9], [12]]);
  t.same(kw.sum(x, [0, 1]).shape, []);
  t.same(kw.mean(x, -1).toArray(), [3, 4]);
  t.same(kw.max(x, 1).toArray(), [5, 6]);
  t.same(kw.max(x, 0, { keepDims: true }).toArray(), [[4, 5, 6]]);
  t.throws(() => kw.sum(x, 2), /axis/);
});

t.test('reductions: gradients', async (t) => {
  const x = randomTensor([2, 3, 4], 21);
  for (const [name, f] of [
    ['sum all', (a: kw.Tensor) => kw.sum(a)],
    ['sum axis 1', (a: kw.Tensor) => kw.sum(a, 1)],
    ['sum axes [0,2] keepDims', (a: kw.Tensor) => kw.sum(a, [0, 2], { keepDims: true })],
    ['mean axis -1', (a: kw.Tensor) => kw.mean(a, -1)],
    ['mean all', (a: kw.Tensor) => kw.mean(a)],
    ['max axis 1', (a: kw.Tensor) => kw.max(a, 1)],
    ['max axis 2', (a: kw.Tensor) => kw.max(a, 2)],
  ] as [string, (a: kw.Tensor) => kw.Tensor][]) {
    const r = gradcheck(f, [x], { eps: 1e-3 });
    t.ok(r.ok, `${name}: ${r.worst}`);
  }
});

t.test('matmul and linear forward', async (t) => {
  const a = kw.tensor([[1, 2], [3, 4], [5, 6]]);
  const b = kw.tensor([[1, 0, 2], [0, 1, 3]]);
  t.same(kw.matmul(a, b).toArray(), [[1, 2, 8], [3, 4, 18], [5, 6, 28]]);
  const batched = kw.matmul(kw.reshape(kw.concat([a, a]), [2, 3, 2]), b);
  t.same(batched.shape, [2, 3, 3]);
  t.same((batched.toArray() as number[][][])[1][2], [5, 6, 28]);
  const y = kw.linear(kw.tensor([[1, 1]]), kw.tensor([[1, 2], [3, 4], [5, 6]]), kw.tensor([0.5, 0, -1]));
  t.same(y.toArray(), [[3.5, 7, 10]]);
  t.throws(() => kw.matmul(a, a), /inner dimensions differ/);
  t.throws(() => kw.linear(kw.zeros([2, 3]), kw.zeros([4, 2])), /last dimension must be 2/);
});

t.test('matmul and linear: gradients', async (t) => {
  const cases: [string, number[], number[]][] = [
    ['2d', [3, 4], [4, 5]],
    ['batched', [2, 3, 4], [2, 4, 5]],
    ['broadcast b', [2, 3, 4], [4, 5]],
    ['broadcast a', [3, 4], [2, 4, 5]],
  ];
  for (const [name, sa, sb] of cases) {
    const r = gradcheck(kw.matmul, [randomTensor(sa, 31), randomTensor(sb, 32)]);
    t.ok(r.ok, `matmul ${name}: ${r.worst}`);
  }
  const r = gradcheck((x, w, b) => kw.linear(x, w, b), [randomTensor([2, 3, 4], 33), randomTensor([5, 4], 34), randomTensor([5], 35)]);
  t.ok(r.ok, `linear: ${r.worst}`);
});

t.test('a large matmul agrees with a float64 reference', async (t) => {
  const a = randomTensor([67, 129], 36), b = randomTensor([129, 70], 37);
  const c = kw.matmul(a, b).data() as Float32Array;
  const ad = a.data() as Float32Array, bd = b.data() as Float32Array;
  const ref = new Float64Array(67 * 70);
  for (let i = 0; i < 67; i++) for (let k = 0; k < 129; k++) for (let j = 0; j < 70; j++) ref[i * 70 + j] += ad[i * 129 + k] * bd[k * 70 + j];
  t.ok(maxAbsDiff(c, ref) < 1e-4, `max diff ${maxAbsDiff(c, ref)}`);
});

t.test('shape ops forward', async (t) => {
  const x = kw.tensor(new Float32Array([...Array(24).keys()]), [2, 3, 4]);
  t.same(kw.reshape(x, [4, -1]).shape, [4, 6]);
  const p = kw.permute(x, [2, 0, 1]);
  t.same(p.shape, [4, 2, 3]);
  t.same((p.toArray() as number[][][])[1][1], [13, 17, 21]);
  t.same(kw.transpose(kw.tensor([[1, 2, 3]]), 0, 1).toArray(), [[1], [2], [3]]);
  t.same(kw.slice(kw.tensor([0, 1, 2, 3, 4, 5]), 0, 1, -1, 2).toArray(), [1, 3]);
  t.same(kw.slice(x, 2, -1).shape, [2, 3, 1]);
  t.same(kw.concat([kw.tensor([[1, 2]]), kw.tensor([[3, 4], [5, 6]])], 0).toArray(), [[1, 2], [3, 4], [5, 6]]);
  t.same(kw.flatten(x).shape, [2, 12]);
  t.same(kw.unsqueeze(x, 1).shape, [2, 1, 3, 4]);
  t.same(kw.squeeze(kw.zeros([2, 1]), 1).shape, [2]);
  t.same(kw.cast(kw.tensor([1.7, -2.2]), 'int32').toArray(), [1, -2]);
  t.throws(() => kw.reshape(x, [5, 5]), /24 elements/);
  t.throws(() => kw.permute(x, [0, 0, 1]), /permutation/);
  t.throws(() => kw.concat([kw.zeros([2, 3]), kw.zeros([3, 3])], 1), /differ outside axis/);
});

t.test('shape ops: gradients', async (t) => {
  const x = randomTensor([2, 3, 4], 41);
  const cases: [string, (...a: kw.Tensor[]) => kw.Tensor, kw.Tensor[]][] = [
    ['reshape', (a) => kw.reshape(a, [6, 4]), [x]],
    ['permute', (a) => kw.permute(a, [1, 2, 0]), [x]],
    ['transpose', (a) => kw.transpose(a, 0, 2), [x]],
    ['slice step 2', (a) => kw.slice(a, 2, 0, 4, 2), [x]],
    ['slice negative', (a) => kw.slice(a, 1, -2), [x]],
    ['concat', (a, b) => kw.concat([a, b], 1), [x, randomTensor([2, 5, 4], 42)]],
  ];
  for (const [name, f, inputs] of cases) {
    const r = gradcheck(f, inputs);
    t.ok(r.ok, `${name}: ${r.worst}`);
  }
});
