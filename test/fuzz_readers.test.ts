// Seeded mutation fuzzing of the IDX, CIFAR and config readers: every mutated file must give a
// clean Error that names the file (or parse), never a crash, a hang or a huge allocation.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { encodeIdx, readIdx } from '../lib/data/idx';
import { loadCifar } from '../lib/data/cifar';
import { loadConfig } from '../lib/cli/args';
import { sampleRng } from '../lib/data/augment';
import { mutate } from './helpers/mutate';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuzz-'));

type Reporter = Pick<typeof t, 'equal' | 'fail'>;

/** Writes `count` mutations of `valid` to `file` and reads each; errors must name the file. */
function fuzz(t: Reporter, file: string, valid: Uint8Array, count: number, read: (file: string) => void, seed: number): void {
  const rand = sampleRng(seed, 0, 0);
  let errors = 0, parsed = 0;
  const name = path.basename(file);
  for (let i = 0; i < count; i++) {
    fs.writeFileSync(file, mutate(valid, rand));
    try {
      read(file);
      parsed++;
    } catch (e) {
      if (!(e instanceof Error) || !e.message.includes(name)) {
        t.fail(`case ${i}: ${e instanceof Error ? e.message : String(e)} does not name the file`);
        return;
      }
      errors++;
    }
  }
  t.equal(errors + parsed, count, `${name}: ${count} mutations → ${errors} clean errors, ${parsed} still valid`);
}

t.test('IDX (raw and gzipped)', async (t) => {
  const data = Uint8Array.from({ length: 4 * 28 * 28 }, (_, i) => i % 251);
  const idx = encodeIdx([4, 28, 28], data);
  fuzz(t, path.join(dir, 'images.idx'), idx, 1000, (f) => readIdx(f), 1);
  fuzz(t, path.join(dir, 'images.idx.gz'), zlib.gzipSync(idx), 500, (f) => readIdx(f), 2);
});

t.test('CIFAR-10 batches', async (t) => {
  const root = path.join(dir, 'cifar-10-batches-bin');
  fs.mkdirSync(root, { recursive: true });
  const rec = Buffer.concat([0, 1, 2].map((l) => Buffer.concat([Buffer.from([l]), Buffer.alloc(3072, l)])));
  fuzz(t, path.join(root, 'test_batch.bin'), rec, 1000, () => loadCifar(dir, 10, false), 3);
});

t.test('config JSON', async (t) => {
  const valid = fs.readFileSync('configs/mobilenetv2_050/kw1d2x_mobilenetv2_050.json');
  fuzz(t, path.join(dir, 'config.json'), valid, 1000, (f) => loadConfig(f), 4);
});
