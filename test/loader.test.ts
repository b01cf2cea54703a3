// DataLoader: order, drop_last, determinism across worker counts, augmentation, errors.
import t from 'tap';
import { DataLoader, epochOrder, toShared } from '../lib/data/loader';
import { augmentInto } from '../lib/data/augment';

function dataset(n: number) {
  const images = new Uint8Array(n * 4 * 4);
  for (let i = 0; i < n; i++) images.fill(i, i * 16, (i + 1) * 16); // image i is all i
  const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
  return toShared(images, labels, [1, 4, 4], 10);
}
const plain = { size: 4, padding: 0, flip: 0, mean: [0], std: [1 / 255] }; // pixel values pass through

t.test('epoch order: a seeded permutation, different per epoch', async (t) => {
  const a = epochOrder(100, 3, 0, true), b = epochOrder(100, 3, 0, true), c = epochOrder(100, 3, 1, true);
  t.same(Array.from(a), Array.from(b));
  t.notSame(Array.from(a), Array.from(c));
  t.same([...a].sort((x, y) => x - y), [...Array(100).keys()]);
  t.same(Array.from(epochOrder(5, 0, 0, false)), [0, 1, 2, 3, 4]);
});

t.test('batches: content, labels, drop_last', async (t) => {
  const ds = dataset(10);
  const loader = new DataLoader(ds, { batchSize: 4, shuffle: false, dropLast: false, train: false, augment: plain, numWorkers: 2 });
  t.equal(loader.length, 3);
  const seen: number[][] = [];
  for await (const { x, y } of loader.epoch(0)) {
    const xs = x.data() as Float32Array;
    seen.push(Array.from(y.data() as Int32Array));
    t.equal(xs[0], seen[seen.length - 1][0], 'image i is filled with i (labels are i for i < 10)');
    t.same(x.shape.slice(1), [1, 4, 4]);
    x.dispose();
    y.dispose();
  }
  t.same(seen, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  const dropping = new DataLoader(ds, { batchSize: 4, shuffle: true, dropLast: true, train: false, augment: plain, numWorkers: 1 });
  let count = 0;
  for await (const { x, y } of dropping.epoch(0)) {
    const first = (x.data() as Float32Array)[0];
    t.equal(first % 10, (y.data() as Int32Array)[0], 'image and label come from the same sample');
    count++;
    x.dispose();
    y.dispose();
  }
  t.equal(count, 2);
  await loader.close();
  await dropping.close();
});

t.test('augmentation is the same for any worker count', async (t) => {
  const ds = dataset(20);
  const aug = { size: 4, padding: 2, flip: 0.5, mean: [0.5], std: [0.25] };
  const collect = async (workers: number) => {
    const l = new DataLoader(ds, { batchSize: 5, shuffle: true, dropLast: false, train: true, augment: aug, seed: 9, numWorkers: workers });
    const out: number[] = [];
    for await (const { x, y } of l.epoch(2)) {
      out.push(...(x.data() as Float32Array));
      x.dispose();
      y.dispose();
    }
    await l.close();
    return out;
  };
  t.same(await collect(1), await collect(2));
});

t.test('mixup in the workers: soft targets, deterministic', async (t) => {
  const ds = dataset(8);
  const mixup = { mixupAlpha: 0.8, cutmixAlpha: 1, prob: 1, switchProb: 0.5, labelSmoothing: 0.1, numClasses: 10 };
  const run = async (workers: number) => {
    const l = new DataLoader(ds, { batchSize: 4, shuffle: true, dropLast: true, train: true, augment: plain, seed: 1, numWorkers: workers, mixup });
    const ys: number[] = [];
    for await (const { x, y } of l.epoch(0)) {
      t.same(y.shape, [4, 10]);
      t.equal(y.dtype, 'float32');
      ys.push(...(y.data() as Float32Array));
      x.dispose();
      y.dispose();
    }
    await l.close();
    return ys;
  };
  const a = await run(1);
  t.same(a, await run(2), 'same soft targets for any worker count');
  for (let r = 0; r < a.length / 10; r++) t.ok(Math.abs(a.slice(r * 10, r * 10 + 10).reduce((s, v) => s + v, 0) - 1) < 1e-5, `row ${r} sums to 1`);
});

t.test('augmentInto: crop offsets, padding value, flip, normalisation', async (t) => {
  const src = Uint8Array.from([0, 51, 102, 153]); // 1×2×2
  const out = new Float32Array(4);
  const spec = { size: 2, padding: 1, flip: 1, mean: [0], std: [1] };
  // rng draws: top = floor(0·3) = 0, left = floor(0.99·3) = 2, flip (0 < 1)
  const draws = [0, 0.99, 0];
  augmentInto(src, 1, 2, 2, spec, () => draws.shift()!, out, 0);
  // padded 4×4 rows 0..1, cols 2..3 flipped: row0 = pad,pad ; row1 = (x=1..0 of src row0 shifted) → [pad, 51/255]... computed:
  // out[y][x] = padded[top+y][left+(1-x)]: y=0 → padded row 0 is padding → 0, 0
  // y=1 → padded[1][3] = pad (col 3 → src col 2, out of range) = 0, padded[1][2] = src[0][1] = 51/255
  t.same(Array.from(out), [0, 0, 0, 51 / 255].map(Math.fround));
  const centred = new Float32Array(4);
  augmentInto(src, 1, 2, 2, { size: 2, padding: 0, flip: 0, mean: [0.2], std: [0.5] }, null, centred, 0);
  t.same(Array.from(centred), [0, 51, 102, 153].map((v) => Math.fround((v / 255 - 0.2) / 0.5)));
});

t.test('bad options', async (t) => {
  const ds = dataset(4);
  t.throws(() => new DataLoader(ds, { batchSize: 0, shuffle: false, dropLast: false, train: false, augment: plain }), /batchSize/);
  t.throws(() => new DataLoader(ds, { batchSize: 2, shuffle: false, dropLast: false, train: false, augment: { ...plain, mean: [0, 0] } }), /one per channel/);
  const base = { batchSize: 2, shuffle: false, dropLast: false, train: false, augment: plain };
  t.throws(() => new DataLoader(ds, { ...base, numWorkers: 0 }), /'numWorkers' must be an integer ≥ 1, got 0/);
  t.throws(() => new DataLoader(ds, { ...base, prefetch: -1 }), /'prefetch' must be an integer ≥ 1/);
  t.throws(() => new DataLoader(ds, { ...base, seed: 1.5 }), /'seed' must be an integer ≥ 0/);
  t.throws(() => new DataLoader(ds, { ...base, augment: { ...plain, std: [0] } }), /'augment.std' must be positive numbers/);
  t.throws(() => new DataLoader(ds, { ...base, augment: { ...plain, size: 0 } }), /'augment.size' must be an integer ≥ 1/);
});
