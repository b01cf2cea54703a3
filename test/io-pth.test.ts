import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { readPth, readPthStateDict, extractStateDict, PyDict } from '../lib/io/pth';
import { unpickle } from '../lib/io/pickle';
import { ZipReader, crc32 } from '../lib/io/zip';
import { readSafetensors } from '../lib/io/safetensors';
import { RawTensor, isRawTensor } from '../lib/io/raw-tensor';

const GOLDEN_DIR = process.env.KW_GOLDEN_DIR ?? path.resolve(__dirname, '..', '..', 'shared', 'golden');
const CASE = 'kw1d2x_mobilenetv2_050_c10';

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-io-pth-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// ------------------------------------------------------------ pickle builder
// Just enough protocol-2 opcodes to hand-build torch.save-like pickles.

type Bytes = number[];
const ascii = (s: string): Bytes => [...Buffer.from(s, 'latin1')];
const u32 = (n: number): Bytes => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const P = {
  proto: [0x80, 2],
  stop: [0x2e],
  mark: [0x28],
  tuple: [0x74],
  emptyTuple: [0x29],
  emptyDict: [0x7d],
  emptyList: [0x5d],
  setitem: [0x73],
  setitems: [0x75],
  appends: [0x65],
  reduce: [0x52],
  newobj: [0x81],
  build: [0x62],
  persid: [0x51],
  none: [0x4e],
  true: [0x88],
  false: [0x89],
  str: (s: string): Bytes => {
    const utf8 = [...Buffer.from(s, 'utf8')];
    return [0x58, ...u32(utf8.length), ...utf8];
  },
  int: (n: number): Bytes => (n >= 0 && n < 256 ? [0x4b, n] : [0x4a, ...u32(n)]),
  float: (x: number): Bytes => {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(x);
    return [0x47, ...b];
  },
  global: (module: string, name: string): Bytes => [0x63, ...ascii(`${module}\n${name}\n`)],
  put: (i: number): Bytes => [0x71, i],
  get: (i: number): Bytes => [0x68, i],
  ints: (values: number[]): Bytes => [0x28, ...values.flatMap((v) => P.int(v)), 0x74],
};

interface TensorSpec {
  storageType: string;
  key: string;
  numel: number;
  offset: number;
  size: number[];
  stride: number[];
}

function tensorPickle(spec: TensorSpec, asParameter = false): Bytes {
  const tensor = [
    ...P.global('torch._utils', '_rebuild_tensor_v2'),
    ...P.mark,
    ...P.mark, ...P.str('storage'), ...P.global('torch', spec.storageType), ...P.str(spec.key), ...P.str('cpu'), ...P.int(spec.numel), ...P.tuple,
    ...P.persid,
    ...P.int(spec.offset),
    ...P.ints(spec.size),
    ...P.ints(spec.stride),
    ...P.false,
    ...P.global('collections', 'OrderedDict'), ...P.emptyTuple, ...P.reduce,
    ...P.tuple,
    ...P.reduce,
  ];
  if (!asParameter) return tensor;
  return [
    ...P.global('torch._utils', '_rebuild_parameter'),
    ...P.mark, ...tensor, ...P.true, ...P.global('collections', 'OrderedDict'), ...P.emptyTuple, ...P.reduce, ...P.tuple,
    ...P.reduce,
  ];
}

function dictPickle(entries: Array<[string, Bytes]>): Bytes {
  return [...P.emptyDict, ...P.mark, ...entries.flatMap(([k, v]) => [...P.str(k), ...v]), ...P.setitems];
}

// --------------------------------------------------------------- zip builder

interface ZipInput {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
}

/** A torch.save-shaped zip: local headers, data, central directory, end record. */
function buildZip(entries: ZipInput[], options: { zip64?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const body = entry.deflate ? zlib.deflateRawSync(entry.data) : Buffer.from(entry.data);
    const crc = crc32(entry.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(entry.deflate ? 8 : 0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(entry.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(0x800, 8);
    cd.writeUInt16LE(entry.deflate ? 8 : 0, 10);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(body.length, 20);
    cd.writeUInt32LE(entry.data.length, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(offset, 42);
    let extra = Buffer.alloc(0);
    if (options.zip64) {
      // Saturate the 32-bit fields and give the real values in a ZIP64 extra block.
      cd.writeUInt32LE(0xffffffff, 20);
      cd.writeUInt32LE(0xffffffff, 24);
      cd.writeUInt32LE(0xffffffff, 42);
      extra = Buffer.alloc(28);
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(24, 2);
      extra.writeBigUInt64LE(BigInt(entry.data.length), 4);
      extra.writeBigUInt64LE(BigInt(body.length), 12);
      extra.writeBigUInt64LE(BigInt(offset), 20);
      cd.writeUInt16LE(extra.length, 30);
    }
    parts.push(local, name, body);
    central.push(cd, name, extra);
    offset += local.length + name.length + body.length;
  }
  const cdBytes = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdBytes.length, 12);
  end.writeUInt32LE(offset, 16);
  if (!options.zip64) return Buffer.concat([...parts, cdBytes, end]);
  const record = Buffer.alloc(56);
  record.writeUInt32LE(0x06064b50, 0);
  record.writeBigUInt64LE(44n, 4);
  record.writeBigUInt64LE(BigInt(entries.length), 24);
  record.writeBigUInt64LE(BigInt(entries.length), 32);
  record.writeBigUInt64LE(BigInt(cdBytes.length), 40);
  record.writeBigUInt64LE(BigInt(offset), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(0x07064b50, 0);
  locator.writeBigUInt64LE(BigInt(offset + cdBytes.length), 8);
  locator.writeUInt32LE(1, 16);
  end.writeUInt16LE(0xffff, 8);
  end.writeUInt16LE(0xffff, 10);
  end.writeUInt32LE(0xffffffff, 12);
  end.writeUInt32LE(0xffffffff, 16);
  return Buffer.concat([...parts, cdBytes, record, locator, end]);
}

function pthFile(pickle: Bytes, storages: Record<string, Uint8Array>, options: { deflate?: boolean; prefix?: string } = {}): Buffer {
  const prefix = options.prefix ?? 'archive';
  return buildZip([
    { name: `${prefix}/data.pkl`, data: Uint8Array.from(pickle), deflate: options.deflate },
    ...Object.entries(storages).map(([key, data]) => ({ name: `${prefix}/data/${key}`, data, deflate: options.deflate })),
    { name: `${prefix}/version`, data: Buffer.from('3\n') },
  ]);
}

const f32Bytes = (values: number[]): Uint8Array => new Uint8Array(new Float32Array(values).buffer);

/** A small valid checkpoint exercising strides, offsets, halves, longs, parameters and a Namespace. */
function smallCheckpoint(deflate = false): Buffer {
  const half = new Uint16Array([0x3c00, 0x4000, 0xc200, 0x0001]); // 1, 2, -3, smallest subnormal
  const bf16 = new Uint16Array([0x3f80, 0xc040]); // 1, -3
  const long = new BigInt64Array([5n, -7n, 2n ** 40n]);
  const model = dictPickle([
    // 2x3 matrix stored row-major, read back as its transpose (non-contiguous strides).
    ['transposed', tensorPickle({ storageType: 'FloatStorage', key: '0', numel: 6, offset: 0, size: [3, 2], stride: [1, 3] })],
    // A view into the middle of a storage.
    ['offset_view', tensorPickle({ storageType: 'FloatStorage', key: '0', numel: 6, offset: 2, size: [2], stride: [2] })],
    ['weight', tensorPickle({ storageType: 'FloatStorage', key: '0', numel: 6, offset: 0, size: [2, 3], stride: [3, 1] }, true)],
    ['half', tensorPickle({ storageType: 'HalfStorage', key: '1', numel: 4, offset: 0, size: [4], stride: [1] })],
    ['bhalf', tensorPickle({ storageType: 'BFloat16Storage', key: '2', numel: 2, offset: 0, size: [2], stride: [1] })],
    ['count', tensorPickle({ storageType: 'LongStorage', key: '3', numel: 3, offset: 1, size: [], stride: [] })],
    ['expanded', tensorPickle({ storageType: 'LongStorage', key: '3', numel: 3, offset: 0, size: [2, 3], stride: [0, 1] })],
  ]);
  const args = [
    ...P.global('argparse', 'Namespace'), ...P.emptyTuple, ...P.newobj,
    ...dictPickle([['lr', P.float(0.05)], ['model', P.str('kw1x_resnet18')], ['sharing_range', [...P.emptyList, ...P.mark, ...P.str('layer'), ...P.appends]], ['__proto__', P.str('data')]]),
    ...P.build,
  ];
  const pickle = [...P.proto, ...dictPickle([['model', model], ['epoch', P.int(3)], ['args', args]]), ...P.stop];
  return pthFile(pickle, {
    0: f32Bytes([0, 1, 2, 3, 4, 5]),
    1: new Uint8Array(half.buffer),
    2: new Uint8Array(bf16.buffer),
    3: new Uint8Array(long.buffer),
  }, { deflate });
}

// --------------------------------------------------------------------- tests

t.test('golden checkpoint: model state dict matches the case json and safetensors', async (t) => {
  const file = path.join(GOLDEN_DIR, `${CASE}.pth`);
  const desc = JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, `${CASE}.json`), 'utf8'));
  const { tensors } = readSafetensors(path.join(GOLDEN_DIR, `${CASE}.safetensors`));
  const checkpoint = readPth(file);

  t.ok(checkpoint instanceof PyDict, 'the checkpoint is a dict');
  const top = checkpoint as PyDict;
  t.same([...top.keys()], ['model', 'optimizer', 'epoch', 'scaler', 'args'], 'keys as upstream utils.save_model writes them');
  t.equal(typeof top.get('epoch'), 'number');

  const args = top.get('args') as Record<string, unknown>;
  t.equal(Object.getPrototypeOf(args), Object.prototype, 'args (argparse.Namespace) is a plain object');
  t.notOk(args instanceof Map);
  t.equal(args.model, desc.kw_config.model, 'args.model names the model of the case');

  const { stateDict, modelKey, skippedKeys } = extractStateDict(checkpoint);
  t.equal(modelKey, 'model', 'default --model_key "model|module" picks "model"');
  t.same(skippedKeys, []);
  t.ok((top.get('model') as PyDict).attributes?._metadata instanceof PyDict, 'the state dict keeps torch\'s _metadata aside');

  desc.warehouse_shapes.forEach((shape: number[], i: number) => {
    t.same(stateDict.get(`warehouse_manager.weights.${i}`)?.shape, shape, `warehouse ${i} shape`);
  });
  for (const [name, tensor] of tensors) {
    for (const prefix of ['grad.', 'after.']) {
      if (!name.startsWith(prefix)) continue;
      const own = stateDict.get(name.slice(prefix.length));
      t.ok(own, `${name} has a state dict entry`);
      t.same(own?.shape, tensor.shape, `${name} shape matches`);
    }
  }
  let numParams = 0;
  for (const [name, tensor] of stateDict) {
    t.equal(tensor.data.length, tensor.shape.reduce((a, b) => a * b, 1), `${name} numel`);
    if (name.endsWith('num_batches_tracked')) {
      t.equal(tensor.dtype, 'I64', `${name} is int64`);
      continue;
    }
    t.equal(tensor.dtype, 'F32', `${name} is float32`);
    if (!/running_(mean|var)$/.test(name)) numParams += tensor.data.length;
  }
  t.equal(numParams, desc.num_params, 'parameter count matches num_params');

  // The first warehouse is storage 0, contiguous: its values are the entry's bytes.
  const zip = ZipReader.open(file);
  const raw = zip.read(`${CASE}/data/0`);
  zip.close();
  const w0 = stateDict.get('warehouse_manager.weights.0')!;
  t.ok(Buffer.from(w0.data.buffer, w0.data.byteOffset, w0.data.byteLength).equals(Buffer.from(raw)), 'warehouse 0 bit for bit');

  // Optimizer state keeps Python's integer keys.
  const optimizer = top.get('optimizer') as PyDict;
  const state = optimizer.get('state') as PyDict;
  t.ok(state.has(0) && isRawTensor((state.get(0) as PyDict).get('momentum_buffer')), 'optimizer state is keyed by int');
});

t.test('extractStateDict follows upstream --model_key / --model_prefix', async (t) => {
  const tensor = (shape: number[]): RawTensor => ({ dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  const inner = new PyDict('collections.OrderedDict');
  inner.set('module.conv.weight', tensor([2]));
  inner.set('module.head.weight', tensor([3, 4]));
  inner.set('head.weight', tensor([10, 4]));
  inner.set('head.bias', tensor([10]));
  inner.set('other', 'not a tensor');
  const checkpoint = new PyDict();
  checkpoint.set('module', inner);
  checkpoint.set('model_ema', new PyDict());

  const first = extractStateDict(checkpoint);
  t.equal(first.modelKey, 'module', '"model" is absent so "module" is used');
  t.same([...first.stateDict.keys()], ['module.conv.weight', 'module.head.weight', 'head.weight', 'head.bias']);
  t.same(first.skippedKeys, ['other']);

  t.equal(extractStateDict(checkpoint, { modelKey: 'model_ema|module' }).modelKey, 'model_ema', 'first present alternative wins');

  const prefixed = extractStateDict(checkpoint, { modelPrefix: 'module.' });
  t.same([...prefixed.stateDict.keys()], ['conv.weight', 'head.weight'], 'prefix kept keys are stripped');
  t.same(prefixed.skippedKeys, ['head.weight', 'head.bias', 'other'], 'keys without the prefix are ignored, as upstream does');

  const whole = extractStateDict(inner, { modelKey: 'model' });
  t.equal(whole.modelKey, null, 'no key matches: the checkpoint itself is the state dict');

  const head = extractStateDict(checkpoint, { modelShapes: { 'head.weight': [1000, 4], 'head.bias': [10] } });
  t.same(head.removedKeys, ['head.weight'], 'head.weight with another class count is dropped');
  t.notOk(head.stateDict.has('head.weight'));
  t.ok(head.stateDict.has('head.bias'));

  const notDict = new PyDict();
  notDict.set('model', [1, 2]);
  t.throws(() => extractStateDict(notDict, { label: 'ckpt.pth' }), /ckpt\.pth: entry "model" is not a dict of tensors/);
  const scalar = pthFile([...P.proto, ...P.int(7), ...P.stop], {});
  t.throws(() => readPthStateDict(scalar, { label: 'scalar.pth' }), /scalar\.pth: is not a dict of tensors/);
  const golden = readPthStateDict(path.join(GOLDEN_DIR, `${CASE}.pth`), { modelPrefix: 'features.0.' });
  t.ok(golden.stateDict.has('1.running_mean'), 'readPthStateDict applies the prefix to the golden checkpoint');
  t.equal(golden.stateDict.size, 13, 'features.0.0.attention.* (8) and features.0.1.* (5)');
});

t.test('hand-built checkpoint: strides, offsets, halves, longs, parameters, Namespace, deflate', async (t) => {
  for (const deflate of [false, true]) {
    const top = readPth(smallCheckpoint(deflate), { label: 'small.pth' }) as PyDict;
    const model = top.get('model') as PyDict;
    const get = (name: string) => model.get(name) as RawTensor;
    t.same(get('transposed').shape, [3, 2]);
    t.same([...get('transposed').data], [0, 3, 1, 4, 2, 5], 'transpose copied out in logical order');
    t.same([...get('offset_view').data], [2, 4], 'storage offset and stride respected');
    t.same([...get('weight').data], [0, 1, 2, 3, 4, 5], '_rebuild_parameter yields its tensor');
    t.equal(get('half').dtype, 'F32', 'float16 becomes float32');
    t.same([...get('half').data], [1, 2, -3, 2 ** -24]);
    t.same([...get('bhalf').data], [1, -3]);
    t.equal(get('count').dtype, 'I64');
    t.same(get('count').shape, []);
    t.same([...get('count').data], [-7n], '0-dim tensor at an offset');
    t.same([...get('expanded').data], [5n, -7n, 2n ** 40n, 5n, -7n, 2n ** 40n], 'stride-0 expansion');
    const args = top.get('args') as Record<string, unknown>;
    t.same(Object.keys(args), ['lr', 'model', 'sharing_range', '__proto__']);
    t.equal(args.lr, 0.05);
    t.equal(args.model, 'kw1x_resnet18');
    t.same(args.sharing_range, ['layer']);
    t.equal(Object.getPrototypeOf(args), Object.prototype, 'an attribute named __proto__ does not change the prototype');
    t.equal(Object.getOwnPropertyDescriptor(args, '__proto__')?.value, 'data');
  }
  const kept = readPth(smallCheckpoint(), { keepHalf: true }) as PyDict;
  const half = (kept.get('model') as PyDict).get('half') as RawTensor;
  t.equal(half.dtype, 'F16', 'keepHalf keeps the bit patterns');

  // The archive folder may be named anything (torch uses the file's base name).
  const renamed = pthFile([...P.proto, ...P.int(1), ...P.stop], {}, { prefix: 'checkpoint-9' });
  t.equal(readPth(renamed), 1);
});

t.test('malformed checkpoints are refused with messages naming the file', async (t) => {
  const dir = tempDir();
  const write = (name: string, bytes: Uint8Array) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, bytes);
    return file;
  };
  const tensorOf = (spec: Partial<TensorSpec>, storages: Record<string, Uint8Array>) =>
    pthFile([...P.proto, ...tensorPickle({ storageType: 'FloatStorage', key: '0', numel: 2, offset: 0, size: [2], stride: [1], ...spec }), ...P.stop], storages);
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['not-zip.pth', Buffer.from('\x80\x02}q\x00.'), /too short to be a zip archive/],
    ['legacy.pth', Buffer.alloc(64, 0x80), /no end-of-central-directory record \(not a zip archive/],
    ['no-pkl.pth', buildZip([{ name: 'archive/other', data: Buffer.from('x') }]), /no <archive>\/data\.pkl/],
    ['out-of-range.pth', tensorOf({ size: [3] }, { 0: f32Bytes([1, 2]) }), /reach element 2 of a 2-element storage/],
    ['short-storage.pth', tensorOf({}, { 0: f32Bytes([1]) }), /storage 0 is 4 bytes but 2 x FloatStorage needs 8/],
    ['missing-storage.pth', tensorOf({}, {}), /storage 0 has no entry/],
    ['bad-key.pth', tensorOf({ key: '../0' }, {}), /storage key "\.\.\/0" is not a simple name/],
    ['negative-stride.pth', tensorOf({ stride: [-1] }, { 0: f32Bytes([1, 2]) }), /negative/],
    ['unknown-storage.pth', tensorOf({ storageType: 'ComplexFloatStorage' }, {}), /refusing global torch\.ComplexFloatStorage/],
    ['truncated.pth', smallCheckpoint().subarray(0, 500), /no end-of-central-directory/],
  ];
  for (const [name, bytes, pattern] of cases) {
    const file = write(name, bytes);
    const err = t.throws(() => readPth(file), pattern, name) as Error;
    t.match(err?.message ?? '', file, `${name}: message names the file`);
  }
  // A CRC mismatch is caught even though the structure is intact.
  const corrupt = Buffer.from(smallCheckpoint());
  corrupt[corrupt.indexOf(Buffer.from('archive/data.pkl')) + 'archive/data.pkl'.length + 2] ^= 0xff;
  t.throws(() => readPth(corrupt, { label: 'crc.pth' }), /crc\.pth.*CRC check/);
  // A claimed giant tensor from a stride-0 view hits the budget instead of allocating.
  const huge = tensorOf({ size: [2 ** 20, 2 ** 20], stride: [0, 0] }, { 0: f32Bytes([1, 2]) });
  t.throws(() => readPth(huge, { label: 'huge.pth' }), /huge\.pth.*byte budget/);
});

t.test('pickles naming dangerous globals are refused and nothing runs', async (t) => {
  const dir = tempDir();
  const marker = path.join(dir, 'pwned');
  const command = `touch ${marker}`;
  const call = (module: string, name: string): Bytes =>
    [...P.proto, ...P.global(module, name), ...P.str(command), 0x85 /* TUPLE1 */, ...P.reduce, ...P.stop];
  const evil: Array<[string, Bytes]> = [
    ['os.system', call('os', 'system')],
    ['posix.system', call('posix', 'system')],
    ['nt.system', call('nt', 'system')],
    ['subprocess.Popen', call('subprocess', 'Popen')],
    ['builtins.eval', call('builtins', 'eval')],
    ['__builtin__.eval', call('__builtin__', 'eval')],
    ['builtins.getattr', call('builtins', 'getattr')],
    ['torch.load', call('torch', 'load')],
    // Protocol 4 spelling: module and name come from the stack.
    ['os.system', [0x80, 4, ...P.str('os'), ...P.str('system'), 0x93, ...P.str(command), 0x85, ...P.reduce, ...P.stop]],
  ];
  for (const [global, bytes] of evil) {
    t.throws(() => unpickle(Uint8Array.from(bytes), { label: 'evil.pkl' }), new RegExp(`evil\\.pkl.*refusing global ${global.replace('.', '\\.')}`), global);
    const file = path.join(dir, 'evil.pth');
    fs.writeFileSync(file, pthFile(bytes, {}));
    t.throws(() => readPth(file), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}.*refusing global`), `${global} in a .pth`);
  }
  // INST (protocol 0) would instantiate os.system directly.
  const inst = [...P.mark, ...P.str(command), 0x69, ...ascii('os\nsystem\n'), ...P.stop];
  t.throws(() => unpickle(Uint8Array.from(inst), { label: 'inst.pkl' }), /inst\.pkl: refusing opcode INST/);
  // A dtype placeholder is inert data and cannot be called either.
  t.throws(() => unpickle(Uint8Array.from([...P.proto, ...P.global('torch', 'float32'), ...P.emptyTuple, ...P.reduce, ...P.stop])), /placeholder and cannot be called/);
  t.notOk(fs.existsSync(marker), 'no command was executed');
});

t.test('zip entries with unsafe names are refused', async (t) => {
  const good = { name: 'archive/data.pkl', data: Uint8Array.from([...P.proto, ...P.none, ...P.stop]) };
  for (const name of ['../evil', 'archive/../../evil', '/etc/passwd', 'C:\\evil', 'archive\\..\\evil']) {
    const bytes = buildZip([good, { name, data: Buffer.from('boom') }]);
    t.throws(() => ZipReader.open(bytes, 'traversal.zip'), /traversal\.zip.*(path-traversal|absolute)/, JSON.stringify(name));
    t.throws(() => readPth(bytes, { label: 'traversal.pth' }), /traversal\.pth/);
  }
  const zip64 = ZipReader.open(buildZip([good, { name: 'archive/x', data: Buffer.from('hello'), deflate: true }], { zip64: true }), 'zip64.zip');
  t.same(zip64.entries.map((e) => e.name), ['archive/data.pkl', 'archive/x'], 'ZIP64 end record and extra fields are followed');
  t.equal(Buffer.from(zip64.read('archive/x')).toString(), 'hello');
  const duplicate = buildZip([good, good]);
  t.throws(() => ZipReader.open(duplicate, 'dup.zip'), /appears twice/);
  t.equal(readPth(buildZip([good])), null, 'the same archive without the bad entry loads');
});

t.test('pickle limits bound nesting, integers and memo', async (t) => {
  const deep = [...P.proto, ...new Array(20_000).fill(0x28), ...P.stop];
  t.throws(() => unpickle(Uint8Array.from(deep), { label: 'deep' }), /MARK nesting exceeds/);
  const bigInt = [...P.proto, 0x8b, ...u32(0x7fffffff), ...P.stop];
  t.throws(() => unpickle(Uint8Array.from(bigInt), { label: 'long4' }), /exceeds the 1024-byte limit/);
  const hugeString = [...P.proto, 0x58, ...u32(0xffffffff), ...P.stop];
  t.throws(() => unpickle(Uint8Array.from(hugeString), { label: 'str' }), /truncated/);
  const memo = [...P.proto, ...P.none, ...P.put(1), ...P.put(2), ...P.put(3), ...P.stop];
  t.throws(() => unpickle(Uint8Array.from(memo), { label: 'memo', limits: { maxMemo: 2 } }), /memo exceeds 2/);
  t.throws(() => unpickle(Uint8Array.from([...P.proto, ...P.get(9), ...P.stop])), /memo entry 9 is not defined/);
  // A self-containing list is legal pickle; it is built without recursion.
  const cyclic = unpickle(Uint8Array.from([...P.proto, ...P.emptyList, ...P.put(0), ...P.get(0), 0x61, ...P.stop])) as unknown[];
  t.equal(cyclic[0], cyclic);
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

function mutate(source: Uint8Array, random: () => number): Buffer {
  const bytes = Buffer.from(source);
  const pick = (end: number) => Math.floor(random() * Math.max(1, end));
  switch (Math.floor(random() * 4)) {
    case 0:
      for (let i = 0, n = 1 + pick(4); i < n; i++) bytes[pick(bytes.length)] ^= 1 + pick(255);
      return bytes;
    case 1:
      return bytes.subarray(0, pick(bytes.length));
    case 2: {
      const at = pick(bytes.length);
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + pick(8))]);
    }
    default: {
      const at = pick(bytes.length - 4);
      bytes.writeUInt32LE(Math.floor(random() * 2 ** 32), Math.max(0, at));
      return bytes;
    }
  }
}

function expectOnlyPlainErrors(t: { fail(message: string): unknown }, label: string, run: () => void): boolean {
  try {
    run();
    return true;
  } catch (err) {
    if (err instanceof Error && err.constructor === Error && err.message.includes(label)) return false;
    t.fail(`${label} threw ${err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err)}`);
    return false;
  }
}

t.test('mutation fuzz: corrupted .pth files and pickles only ever throw plain Errors', async (t) => {
  const random = prng(0xc0ffee);
  const started = Date.now();
  const small = smallCheckpoint();
  const smallPickle = ZipReader.open(small).read('archive/data.pkl');
  const goldenZip = ZipReader.open(path.join(GOLDEN_DIR, `${CASE}.pth`));
  const goldenPickle = goldenZip.read(`${CASE}/data.pkl`);
  goldenZip.close();
  const storages = {
    0: f32Bytes([0, 1, 2, 3, 4, 5]),
    1: new Uint8Array(8),
    2: new Uint8Array(4),
    3: new Uint8Array(24),
  };
  let accepted = 0;
  for (let i = 0; i < 300; i++) {
    // Whole-file mutations exercise the zip layer (and its CRC check) ...
    if (expectOnlyPlainErrors(t, `zip#${i}`, () => readPth(mutate(small, random), { label: `zip#${i}` }))) accepted++;
    // ... pickle mutations re-zipped with a correct CRC reach the unpickler and tensor rebuild.
    const pickle = [...mutate(smallPickle, random)];
    if (expectOnlyPlainErrors(t, `pkl#${i}`, () => readPth(pthFile(pickle, storages), { label: `pkl#${i}` }))) accepted++;
  }
  // The golden pickle is large; mutate it and run the unpickler with a stand-in storage loader.
  for (let i = 0; i < 100; i++) {
    const label = `golden#${i}`;
    if (expectOnlyPlainErrors(t, label, () => unpickle(mutate(goldenPickle, random), { label, torch: { persistentLoad: () => ({}) } }))) accepted++;
  }
  t.pass(`${accepted} of 700 mutations still parsed`);
  t.ok(Date.now() - started < 10_000, `fuzz loop took ${Date.now() - started} ms`);
});
