// IDX reader: the bundled dataset, the full Fashion-MNIST when present, and bad files.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { encodeIdx, loadIdxDataset, parseIdx, readIdx } from '../lib/data/idx';

const bundled = path.join(__dirname, '..', 'data', 'fashion-mnist-small');

t.test('the bundled Fashion-MNIST subset', async (t) => {
  const train = loadIdxDataset(bundled, 'train');
  const test = loadIdxDataset(bundled, 't10k');
  t.same(train.images.shape, [12000, 28, 28]);
  t.same(test.images.shape, [2000, 28, 28]);
  const counts = new Array(10).fill(0);
  for (const l of train.labels) counts[l]++;
  t.ok(counts.every((c) => c > 1000), `every class is well represented: ${counts}`);
});

t.test('the full dataset agrees with the subset', { skip: !fs.existsSync('../shared/data/fashion-mnist') && 'no ../shared/data' }, async (t) => {
  const full = loadIdxDataset(path.resolve(__dirname, '..', '..', 'shared', 'data', 'fashion-mnist'), 't10k');
  const sub = loadIdxDataset(bundled, 't10k');
  t.same(full.images.shape, [10000, 28, 28]);
  t.same(Buffer.from(full.images.data.subarray(0, 2000 * 784)).equals(Buffer.from(sub.images.data)), true);
});

t.test('bad files give errors naming the file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idx-'));
  const good = encodeIdx([2, 2, 2], new Uint8Array(8));
  t.same(parseIdx(good).shape, [2, 2, 2]);
  const write = (name: string, data: Uint8Array) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, data);
    return p;
  };
  t.throws(() => readIdx(write('trunc', good.subarray(0, good.length - 1))), /trunc: IDX header says 8 elements/);
  t.throws(() => readIdx(write('short', good.subarray(0, 3))), /short: too short/);
  const huge = Buffer.from(good);
  huge.writeUInt32BE(0xffffffff, 4);
  huge.writeUInt32BE(0xffffffff, 8);
  t.throws(() => readIdx(write('huge', huge)), /huge: IDX header claims .* 2 GiB limit/);
  const badType = Buffer.from(good);
  badType[2] = 0x0d;
  t.throws(() => readIdx(write('float', badType)), /element type 0xd is not supported/);
  t.throws(() => readIdx(write('gz', zlib.gzipSync(good).subarray(0, 12))), /gz: corrupt gzip/);
  t.throws(() => readIdx(path.join(dir, 'missing')), /missing: cannot read/);
  t.throws(() => loadIdxDataset(dir, 'train'), /no train-images-idx3-ubyte/);
});
