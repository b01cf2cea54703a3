import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensors, writeSafetensors, toFloat32 } from '../lib/io/safetensors';
import { DTYPE_BYTES, RawTensor } from '../lib/io/raw-tensor';

const GOLDEN_DIR = process.env.KW_GOLDEN_DIR ?? path.resolve(__dirname, '..', '..', 'shared', 'golden');

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-io-st-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function bytesOf(data: ArrayBufferView): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** An independent, minimal header parse, to cross-check the reader. */
function rawHeader(file: Buffer): { headerLength: number; header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> } {
  const headerLength = Number(file.readBigUInt64LE(0));
  return { headerLength, header: JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8')) };
}

/** Builds a safetensors file by hand, so tests can make it wrong on purpose. */
function handMade(header: unknown, data: Buffer, headerLengthOverride?: bigint): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(headerLengthOverride ?? BigInt(json.length));
  return Buffer.concat([length, json, data]);
}

t.test('reads every golden safetensors file consistently with its header and json', async (t) => {
  const files = fs.readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.safetensors')).sort();
  t.ok(files.length >= 10, `found ${files.length} golden safetensors files`);
  for (const name of files) {
    const file = path.join(GOLDEN_DIR, name);
    const bytes = fs.readFileSync(file);
    const { headerLength, header } = rawHeader(bytes);
    const { tensors, metadata } = readSafetensors(file);
    const expectedNames = Object.keys(header).filter((k) => k !== '__metadata__');
    t.same([...tensors.keys()], expectedNames, `${name}: tensor names in header order`);
    t.type(metadata, 'object');
    let dataBytes = 0;
    for (const [tensorName, tensor] of tensors) {
      const entry = header[tensorName];
      t.equal(tensor.dtype, 'F32', `${name}:${tensorName} is float32 (golden README)`);
      t.same(tensor.shape, entry.shape);
      const numel = tensor.shape.reduce((a, b) => a * b, 1);
      t.equal(tensor.data.length, numel, `${name}:${tensorName} numel`);
      t.equal(entry.data_offsets[1] - entry.data_offsets[0], numel * DTYPE_BYTES[tensor.dtype]);
      // The values are the file's bytes, bit for bit.
      const start = 8 + headerLength + entry.data_offsets[0];
      t.ok(bytesOf(tensor.data).equals(bytes.subarray(start, start + numel * 4)), `${name}:${tensorName} bytes`);
      dataBytes += numel * 4;
    }
    t.equal(8 + headerLength + dataBytes, bytes.length, `${name}: tensors cover the data exactly`);

    // Cross-check against the case description where it names shapes.
    const jsonFile = file.replace(/\.safetensors$/, '.json');
    if (!fs.existsSync(jsonFile)) continue;
    const desc = JSON.parse(fs.readFileSync(jsonFile, 'utf8'));
    if (Array.isArray(desc.warehouse_shapes) && desc.checkpoint === undefined) {
      desc.warehouse_shapes.forEach((shape: number[], i: number) => {
        t.same(tensors.get(`warehouse_manager.weights.${i}`)?.shape, shape, `${name}: warehouse ${i} shape`);
      });
    }
    for (const [tensorName, tensor] of tensors) {
      if (!tensorName.startsWith('grad.')) continue;
      const param = tensors.get(tensorName.slice('grad.'.length));
      if (param !== undefined) t.same(tensor.shape, param.shape, `${name}: ${tensorName} matches its parameter`);
    }
  }
});

t.test('write then read round-trips every dtype bit for bit, with metadata', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'round.safetensors');
  const f32 = new Float32Array([1.5, -0, Infinity, -Infinity, 3.4e38, 1e-45, 0.1]);
  new Uint32Array(f32.buffer)[6] = 0x7fc01234; // a NaN with a payload must survive too
  const tensors = new Map<string, RawTensor>([
    ['f32', { dtype: 'F32', shape: [7], data: f32 }],
    ['f64', { dtype: 'F64', shape: [2, 1], data: new Float64Array([Math.PI, -1e300]) }],
    ['f16', { dtype: 'F16', shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x7bff]) }],
    ['bf16', { dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0xbfc0]) }],
    ['i64', { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 62n), 7n]) }],
    ['i32', { dtype: 'I32', shape: [1, 2], data: new Int32Array([-5, 2 ** 31 - 1]) }],
    ['u8', { dtype: 'U8', shape: [3], data: new Uint8Array([0, 128, 255]) }],
    ['bool', { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) }],
    ['scalar', { dtype: 'F32', shape: [], data: new Float32Array([42]) }],
    ['empty', { dtype: 'F32', shape: [0, 3], data: new Float32Array(0) }],
  ]);
  // JSON.parse makes "__proto__" an own key, as a hostile header would.
  const metadata = JSON.parse('{"format":"pt","note":"ünïcode ✓","__proto__":"stays data"}');
  writeSafetensors(file, tensors, metadata);
  const back = readSafetensors(file);
  t.same([...back.tensors.keys()], [...tensors.keys()]);
  for (const [name, tensor] of tensors) {
    const read = back.tensors.get(name)!;
    t.equal(read.dtype, tensor.dtype, `${name} dtype`);
    t.same(read.shape, tensor.shape, `${name} shape`);
    t.ok(bytesOf(read.data).equals(bytesOf(tensor.data)), `${name} bytes identical`);
  }
  t.equal(back.metadata.format, 'pt');
  t.equal(back.metadata.note, 'ünïcode ✓');
  t.equal(Object.getPrototypeOf(back.metadata), Object.prototype, '"__proto__" metadata did not change the prototype');
  t.equal(Object.getOwnPropertyDescriptor(back.metadata, '__proto__')?.value, 'stays data');
  t.equal((8 + Number(fs.readFileSync(file).readBigUInt64LE(0))) % 8, 0, 'data starts 8-byte aligned');
  t.same(fs.readdirSync(dir), ['round.safetensors'], 'no temporary file left behind');

  // toFloat32 decodes the half formats exactly.
  t.same([...toFloat32(back.tensors.get('f16')!)], [1, -2, 65504]);
  t.same([...toFloat32(back.tensors.get('bf16')!)], [1, -1.5]);
  t.equal(toFloat32(back.tensors.get('f32')!), back.tensors.get('f32')!.data, 'F32 is returned without a copy');
});

t.test('rewriting a golden file keeps every tensor bit for bit; overwrite is atomic', async (t) => {
  const dir = tempDir();
  const source = path.join(GOLDEN_DIR, 'single_3x3_eval.safetensors');
  const original = readSafetensors(source);
  const file = path.join(dir, 'copy.safetensors');
  fs.writeFileSync(file, 'old contents');
  writeSafetensors(file, original.tensors);
  const copy = readSafetensors(file);
  t.equal(copy.tensors.size, original.tensors.size);
  for (const [name, tensor] of original.tensors) {
    t.ok(bytesOf(copy.tensors.get(name)!.data).equals(bytesOf(tensor.data)), `${name} identical`);
  }
  t.same(fs.readdirSync(dir), ['copy.safetensors']);
});

t.test('writer refuses bad input and leaves nothing behind', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'bad.safetensors');
  t.throws(() => writeSafetensors(file, { a: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }), /bad\.safetensors.*needs 3/);
  t.throws(() => writeSafetensors(file, { a: { dtype: 'F32', shape: [-1], data: new Float32Array(0) } }), /bad\.safetensors/);
  t.throws(() => writeSafetensors(file, { __metadata__: { dtype: 'F32', shape: [], data: new Float32Array(1) } }), /reserved/);
  t.throws(() => writeSafetensors(path.join(dir, 'missing', 'x.safetensors'), {}), /missing.*x\.safetensors.*write failed/);
  t.same(fs.readdirSync(dir), []);
});

t.test('corrupt files give errors that name the file and the problem', async (t) => {
  const dir = tempDir();
  const good = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } };
  const data = Buffer.alloc(12);
  const valid = handMade(good, data);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['tiny', Buffer.from([1, 2, 3]), /too short/],
    ['oversized-header', handMade(good, data, 2n ** 40n), /header length 1099511627776 exceeds/],
    ['max-u64-header', handMade(good, data, 2n ** 64n - 1n), /header length 18446744073709551615 exceeds/],
    ['truncated', valid.subarray(0, valid.length - 3), /run past|trailing|exceeds/],
    ['bad-json', handMade('x', data, undefined).fill(0x7b, 8, 9), /not valid JSON|not a JSON object/],
    ['not-object', handMade([1, 2], data), /not a JSON object/],
    ['unknown-dtype', handMade({ ...good, a: { ...good.a, dtype: 'F8' } }, data), /unknown dtype "F8"/],
    ['negative-shape', handMade({ ...good, a: { ...good.a, shape: [-2] } }, data), /not a non-negative integer/],
    ['fractional-shape', handMade({ ...good, a: { ...good.a, shape: [1.5] } }, data), /not a non-negative integer/],
    ['huge-shape', handMade({ ...good, a: { ...good.a, shape: [2 ** 40, 2 ** 40] } }, data), /too many elements/],
    ['offsets-out-of-range', handMade({ ...good, b: { ...good.b, data_offsets: [8, 16] } }, data), /run past/],
    ['offsets-reversed', handMade({ ...good, b: { ...good.b, data_offsets: [12, 8] } }, data), /end before they begin/],
    ['length-mismatch', handMade({ ...good, b: { ...good.b, shape: [2] } }, data), /needs 8/],
    ['overlap', handMade({ ...good, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] }, c: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, data), /overlap/],
    ['gap', handMade({ a: good.a, b: { dtype: 'F32', shape: [0], data_offsets: [8, 8] } }, data), /belong to no tensor/],
    ['metadata-not-string', handMade({ ...good, __metadata__: { n: 1 } }, data), /"__metadata__" entry "n" is not a string/],
    ['bad-utf8', Buffer.concat([valid.subarray(0, 8), Buffer.from([0xff]), valid.subarray(9)]), /UTF-8/],
  ];
  for (const [name, bytes, pattern] of cases) {
    const file = path.join(dir, `${name}.safetensors`);
    fs.writeFileSync(file, bytes);
    const err = t.throws(() => readSafetensors(file), pattern, name) as Error;
    t.match(err?.message ?? '', file, `${name}: message names the file`);
    // The same checks apply to buffers, labelled as asked.
    t.throws(() => readSafetensors(bytes, { label: `mem:${name}` }), new RegExp(`mem:${name}`));
  }
  t.throws(() => readSafetensors(path.join(dir, 'absent.safetensors')), /absent\.safetensors.*cannot open/);
  t.doesNotThrow(() => readSafetensors(valid), 'the unmodified file is fine');
});

/** Deterministic PRNG (mulberry32), so a failing mutation can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(source: Buffer, random: () => number, focusEnd: number): Buffer {
  const bytes = Buffer.from(source);
  const pick = (end: number) => Math.floor(random() * Math.max(1, end));
  switch (Math.floor(random() * 5)) {
    case 0: // flip a few bytes, mostly where the structure is
      for (let i = 0, n = 1 + pick(4); i < n; i++) bytes[pick(focusEnd)] ^= 1 + pick(255);
      return bytes;
    case 1: // truncate
      return bytes.subarray(0, pick(bytes.length));
    case 2: { // overwrite a byte with a structural character
      const specials = [0x22, 0x2c, 0x3a, 0x5b, 0x5d, 0x7b, 0x7d, 0x2d, 0x30, 0x39, 0x00, 0xff];
      bytes[pick(focusEnd)] = specials[pick(specials.length)];
      return bytes;
    }
    case 3: { // duplicate a slice (shifts everything after it)
      const at = pick(focusEnd);
      const len = 1 + pick(16);
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at, at + len), bytes.subarray(at)]);
    }
    default: { // random 64-bit little-endian integer somewhere in the structure
      const at = pick(Math.max(1, focusEnd - 8));
      bytes.writeUInt32LE(Math.floor(random() * 2 ** 32), at);
      bytes.writeUInt32LE(random() < 0.5 ? 0 : Math.floor(random() * 2 ** 32), at + 4);
      return bytes;
    }
  }
}

t.test('mutation fuzz: corrupted copies only ever throw plain Errors naming the source', async (t) => {
  const random = prng(0x5eed);
  const source = fs.readFileSync(path.join(GOLDEN_DIR, 'bias_dilation.safetensors'));
  const headerEnd = 8 + Number(source.readBigUInt64LE(0));
  const started = Date.now();
  let failures = 0;
  let accepted = 0;
  for (let i = 0; i < 400; i++) {
    const mutated = mutate(source, random, headerEnd + 16);
    try {
      const { tensors } = readSafetensors(mutated, { label: `fuzz#${i}` });
      for (const tensor of tensors.values()) {
        if (tensor.data.length !== tensor.shape.reduce((a, b) => a * b, 1)) throw new Error(`fuzz#${i}: inconsistent tensor`);
      }
      accepted++;
    } catch (err) {
      if (!(err instanceof Error) || err.constructor !== Error || !err.message.includes(`fuzz#${i}`)) {
        failures++;
        t.fail(`mutation ${i} threw ${String(err)}`);
      }
    }
  }
  t.equal(failures, 0, `no unexpected exceptions (${accepted} of 400 mutations were still valid files)`);
  t.ok(Date.now() - started < 10_000, 'fuzz loop stays fast');
});
