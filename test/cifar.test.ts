// CIFAR binary readers on small files written here in the dataset's record format.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadCifar } from '../lib/data/cifar';

function records(labels: number[][], fill: (i: number) => number): Buffer {
  return Buffer.concat(labels.map((l, i) => Buffer.concat([Buffer.from(l), Buffer.alloc(3072, fill(i))])));
}

t.test('CIFAR-10: five train batches and a test batch', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'c10-'));
  const dir = path.join(root, 'cifar-10-batches-bin');
  fs.mkdirSync(dir);
  for (let b = 1; b <= 5; b++) fs.writeFileSync(path.join(dir, `data_batch_${b}.bin`), records([[b], [9]], (i) => b * 10 + i));
  fs.writeFileSync(path.join(dir, 'test_batch.bin'), records([[3]], () => 7));
  const train = loadCifar(root, 10, true);
  t.same(Array.from(train.labels), [1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
  t.equal(train.images.length, 10 * 3072);
  t.equal(train.images[3 * 3072], 21, 'record order kept: batch 2, record 1');
  const test = loadCifar(dir, 10, false);
  t.same(Array.from(test.labels), [3]);
  fs.writeFileSync(path.join(dir, 'test_batch.bin'), records([[10]], () => 0));
  t.throws(() => loadCifar(root, 10, false), /record 0 has label 10, expected < 10/);
  fs.writeFileSync(path.join(dir, 'test_batch.bin'), Buffer.alloc(100));
  t.throws(() => loadCifar(root, 10, false), /not a whole number of 3073-byte CIFAR records/);
  fs.unlinkSync(path.join(dir, 'data_batch_3.bin'));
  t.throws(() => loadCifar(root, 10, true), /missing CIFAR-10 file\(s\) data_batch_3.bin/);
});

t.test('CIFAR-100: the fine label is used', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'c100-'));
  fs.mkdirSync(path.join(root, 'cifar-100-binary'));
  fs.writeFileSync(path.join(root, 'cifar-100-binary', 'train.bin'), records([[4, 99], [0, 17]], (i) => i));
  const d = loadCifar(root, 100, true);
  t.same(Array.from(d.labels), [99, 17]);
  t.equal(d.numClasses, 100);
  t.throws(() => loadCifar(root, 100, false), /missing CIFAR-100 file test.bin/);
});
