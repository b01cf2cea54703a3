// Seeded mutation fuzzing of image decoding through the real path: an ImageFolder dataset, the
// DataLoader's worker decoding the file with sharp and running upstream's train transform.
// Every mutated PNG/JPEG must either decode to a finite batch or reject with an error naming the
// file; no crash, no hang (each case has a deadline), and memory stays bounded: a header that
// claims 100000×100000 pixels is refused before anything is allocated.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import sharp from 'sharp';
import { DECODE_PIXEL_LIMIT, scanImageFolder } from '../lib/data/image_folder';
import { DataLoader } from '../lib/data/loader';
import { buildTransformSpec } from '../lib/cli/datasets';
import { sampleRng } from '../lib/data/augment';
import { mutate } from './helpers/mutate';

const CASES = 1000; // per format (about 3 s in all)
const DEADLINE_MS = 10_000;

/** Recomputes every chunk's CRC, so a mutated PNG reaches the decoder instead of failing its checksum. */
function fixPngCrcs(b: Buffer): Buffer {
  for (let at = 8; at + 12 <= b.length;) {
    const len = b.readUInt32BE(at);
    if (at + 12 + len > b.length) break;
    b.writeUInt32BE(zlib.crc32(b.subarray(at + 4, at + 8 + len)), at + 8 + len);
    at += 12 + len;
  }
  return b;
}

/** A PNG whose IHDR claims w×h (checksum fixed: the claim itself is what is tested). */
function pngClaiming(png: Buffer, w: number, h: number): Buffer {
  const b = Buffer.from(png);
  b.writeUInt32BE(w >>> 0, 16);
  b.writeUInt32BE(h >>> 0, 20);
  return fixPngCrcs(b);
}

/** A JPEG whose start-of-frame claims w×h. */
function jpegClaiming(jpg: Buffer, w: number, h: number): Buffer {
  const b = Buffer.from(jpg);
  let at = 2;
  while (at + 9 < b.length && !(b[at] === 0xff && b[at + 1] >= 0xc0 && b[at + 1] <= 0xc2)) at++;
  b.writeUInt16BE(h, at + 5);
  b.writeUInt16BE(w, at + 7);
  return b;
}

interface Format {
  ext: string;
  valid: Buffer;
  mutants: (rand: () => number) => Buffer;
  headers: [string, Buffer, RegExp | null][];
}

async function formats(): Promise<Format[]> {
  // a photo-like 40×32 image (not flat: the encoders keep real entropy-coded data)
  const raw = Buffer.alloc(40 * 32 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919 + (i >> 5) * 31) % 251;
  const src = () => sharp(raw, { raw: { width: 40, height: 32, channels: 3 } });
  const png = await src().png().toBuffer();
  const jpg = await src().jpeg({ quality: 90 }).toBuffer();
  const refused = /its header claims \d+×\d+ = [\d,]+ pixels, more than the 67,108,864 \(8192×8192\)/;
  return [
    {
      ext: '.png', valid: png,
      // half the mutants keep valid checksums so that they get past the CRC check into the decoder
      mutants: (rand) => (rand() < 0.5 ? fixPngCrcs(Buffer.from(mutate(png, rand))) : Buffer.from(mutate(png, rand))),
      headers: [
        ['100000×100000', pngClaiming(png, 100000, 100000), /its header claims 100000×100000 = 10,000,000,000 pixels/],
        ['just over the limit', pngClaiming(png, 8193, 8192), refused],
        ['2³¹−1 × 1', pngClaiming(png, 2 ** 31 - 1, 1), null],
        ['1 × 30000 (few pixels, extreme shape)', pngClaiming(png, 1, 30000), null],
        ['zero width', pngClaiming(png, 0, 32), null],
      ],
    },
    {
      ext: '.jpg', valid: jpg,
      mutants: (rand) => Buffer.from(mutate(jpg, rand)),
      headers: [
        ['65500×65500', jpegClaiming(jpg, 65500, 65500), /its header claims 65500×65500 = 4,290,250,000 pixels/],
        ['just over the limit', jpegClaiming(jpg, 8193, 8192), refused],
        ['9000 × 100', jpegClaiming(jpg, 9000, 100), null],
        ['zero width', jpegClaiming(jpg, 0, 32), null],
      ],
    },
  ];
}

t.test(`image decoding fuzz: ${CASES} mutations per format plus hostile headers, through ImageFolder and the loader`, async (t) => {
  t.equal(DECODE_PIXEL_LIMIT, 8192 * 8192);
  const spec = buildTransformSpec({ input_size: 24, train_interpolation: 'bicubic', aa: 'rand-m9-mstd0.5-inc1', color_jitter: 0.4, crop_pct: null, reprob: 0.25, remode: 'pixel', recount: 1 },
    [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
  const augment = { size: 24, padding: 0, flip: 0, mean: spec.mean, std: spec.std };
  let rssPeak = 0;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 10);
  t.teardown(() => clearInterval(sampler));

  for (const f of await formats()) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fuzz-img-'));
    t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
    const file = path.join(root, 'cls', `case${f.ext}`);
    fs.mkdirSync(path.dirname(file));
    fs.writeFileSync(file, f.valid);
    const loader = new DataLoader(scanImageFolder(root), { batchSize: 1, shuffle: false, dropLast: false, train: true, augment, transform: spec, numWorkers: 1 });

    /** Decodes the file as it is now through the loader: 'ok', or the error's message. */
    let epoch = 0;
    const decode = async (): Promise<string> => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${DEADLINE_MS} ms`)), DEADLINE_MS)));
      const run = async () => {
        for await (const { x, y } of loader.epoch(epoch++)) {
          const ok = x.shape.join() === '1,3,24,24' && Array.from(x.data() as Float32Array).every(Number.isFinite);
          x.dispose();
          y.dispose();
          if (!ok) return 'a batch of the wrong shape or with non-finite values';
        }
        return 'ok';
      };
      try {
        return await Promise.race([run(), deadline]);
      } catch (e) {
        return (e as Error).message;
      } finally {
        clearTimeout(timer);
      }
    };
    const named = new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot decode image \\(.+\\)$`);
    t.equal(await decode(), 'ok', `${f.ext}: the valid file decodes`);
    // the worker thread, libvips and its first decode take ~200 MiB of RSS: measure from here
    const rssStart = rssPeak = process.memoryUsage().rss;

    const rand = sampleRng(f.ext === '.png' ? 11 : 12, 0, 0);
    let decoded = 0, refused = 0;
    const t0 = Date.now();
    for (let i = 0; i < CASES; i++) {
      fs.writeFileSync(file, f.mutants(rand));
      const r = await decode();
      if (r === 'ok') decoded++;
      else if (named.test(r)) refused++;
      else {
        t.fail(`${f.ext} case ${i}: ${r}`);
        break;
      }
    }
    t.equal(decoded + refused, CASES, `${f.ext}: ${CASES} mutations → ${refused} errors naming the file, ${decoded} still decode (${Date.now() - t0} ms)`);

    for (const [what, bytes, expect] of f.headers) {
      fs.writeFileSync(file, bytes);
      const r = await decode();
      if (expect) t.match(r, expect, `${f.ext} header claiming ${what}: refused before decoding (${r})`);
      else t.ok(r === 'ok' || named.test(r), `${f.ext} header claiming ${what}: ${r}`);
    }
    await loader.close();
    const grew = (rssPeak - rssStart) / 2 ** 20;
    // one decode may hold at most DECODE_PIXEL_LIMIT RGB pixels (192 MiB); the refused headers
    // claimed up to 30 GB
    t.ok(grew < 256, `${f.ext}: peak RSS growth over the fuzz ${grew.toFixed(0)} MiB`);
  }
});
