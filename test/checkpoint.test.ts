// lib/io/checkpoint.ts: our safetensors checkpoints (atomic save, bit-exact round trip),
// loading state dict files of either format into a model (strict by default, prefix and key
// selection), the official .pth checkpoint of a reference case, and refusal of hostile or
// damaged .pth files with errors naming the file. Run: npx tap test/checkpoint.test.ts
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  createModel, Generator, loadStateDictFile, noGrad, randn, readStateDictFile, saveStateDict, Tensor, ZooModel,
} from '../lib';
import { rawToTensor, tensorToRaw } from '../lib/io/checkpoint';
import { readSafetensors, writeSafetensors } from '../lib/io/safetensors';
import { crc32 } from '../lib/io/zip';

const goldenDir = process.env.KW_GOLDEN_DIR ?? path.resolve(__dirname, '..', '..', 'shared', 'golden');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-checkpoint-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const bits = (x: Tensor): Uint32Array => new Uint32Array((x.data() as Float32Array).slice().buffer);

function logits(m: ZooModel, x: Tensor): Tensor {
  m.eval();
  return noGrad(() => m.forward(x));
}

t.test('save, load into a fresh model: the same logits bit for bit', async (t) => {
  const opts = { numClasses: 10, inChans: 1, cellNumRatio: 0.5, cellInplaneRatio: 0.5, cellOutplaneRatio: 0.5, sharingRange: 'layer_conv' };
  const a = createModel('kw_resnet18_small', { ...opts, generator: new Generator(1) });
  const x = randn([3, 1, 28, 28], { generator: new Generator(2) });
  // Move the running statistics and counters off their initial values first.
  a.train();
  a.updateTemperature(0.3);
  noGrad(() => a.forward(x)).dispose();
  const file = path.join(dir, 'kw_resnet18_small.safetensors');
  saveStateDict(file, a, { model: 'kw_resnet18_small', epoch: '3' });
  t.same(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left behind');

  const b = createModel('kw_resnet18_small', { ...opts, generator: new Generator(99) });
  const r = loadStateDictFile(file, b);
  t.equal(r.format, 'safetensors');
  t.same(r.missingKeys, []);
  t.same(r.unexpectedKeys, []);
  t.same(r.metadata, { model: 'kw_resnet18_small', epoch: '3' });
  t.equal(Number((b.get('bn1.num_batches_tracked') as Tensor).data()[0]), 1, 'int64 counters survive');
  a.updateTemperature(0.3);
  b.updateTemperature(0.3);
  t.same(bits(logits(b, x)), bits(logits(a, x)), 'eval logits identical bit for bit');
  const saved = readSafetensors(file).tensors;
  t.same([...saved.keys()], [...a.stateDict().keys()], 'saved in state-dict order under the module names');
  t.equal(saved.get('bn1.num_batches_tracked')!.dtype, 'I64');
  a.dispose();
  b.dispose();
});

t.test('strict loading names missing, unexpected and mismatched keys; non-strict reports them', async (t) => {
  const small = createModel('resnet18_small', { numClasses: 10 });
  const file = path.join(dir, 'resnet18_small.safetensors');
  saveStateDict(file, small);
  const other = createModel('resnet18_small', { numClasses: 5 });
  t.throws(() => loadStateDictFile(file, other), /resnet18_small\.safetensors.*size mismatch for 'fc\.weight'/);
  const big = createModel('resnet50_small', { numClasses: 10 });
  t.throws(() => loadStateDictFile(file, big), /missing keys: .*layer1\.0\.conv3\.weight/);
  const r = loadStateDictFile(file, createModel('resnet18_small', { numClasses: 10 }), { strict: false });
  t.same(r.missingKeys, []);
  // Keys under a prefix (a DDP 'module.' dump) are selected and stripped with modelPrefix.
  const prefixed = new Map([...small.stateDict()].map(([k, v]) => [`module.${k}`, tensorToRaw(v)]));
  const pfile = path.join(dir, 'prefixed.safetensors');
  writeSafetensors(pfile, prefixed);
  t.throws(() => loadStateDictFile(pfile, other), /unexpected keys: module\.conv1\.weight/);
  const fresh = createModel('resnet18_small', { numClasses: 10, generator: new Generator(7) });
  t.same(loadStateDictFile(pfile, fresh, { modelPrefix: 'module.' }).unexpectedKeys, []);
  t.same(bits(fresh.get('conv1.weight') as Tensor), bits(small.get('conv1.weight') as Tensor));
  t.throws(() => loadStateDictFile(path.join(dir, 'absent.safetensors'), fresh), /absent\.safetensors: cannot open/);
  for (const m of [small, other, big, fresh]) m.dispose();
});

t.test("the reference case's torch.save checkpoint loads strictly into kw1d2x_mobilenetv2_050", async (t) => {
  const file = path.join(goldenDir, 'kw1d2x_mobilenetv2_050_c10.pth');
  const m = createModel('kw1d2x_mobilenetv2_050', { numClasses: 10, dropout: 0 });
  const r = loadStateDictFile(file, m, { strict: true });
  t.equal(r.format, 'pth');
  t.equal(r.modelKey, 'model', "upstream's default --model_key model|module picks 'model'");
  t.same(r.missingKeys, []);
  t.same(r.unexpectedKeys, []);
  const ref = readSafetensors(path.join(goldenDir, 'kw1d2x_mobilenetv2_050_c10.safetensors')).tensors;
  m.updateTemperature(0.5);
  const out = logits(m, rawToTensor(ref.get('in.0')!));
  const want = ref.get('out.eval')!.data as Float32Array;
  const err = (out.data() as Float32Array).reduce((e, v, i) => Math.max(e, Math.abs(v - want[i])), 0);
  t.ok(err <= 2e-4, `eval logits match the reference (max error ${err.toExponential(2)})`);
  // The same file read as a state dict, and loading with a key that is not there.
  const raw = readStateDictFile(file);
  t.equal(raw.state.size, m.stateDict().size);
  t.throws(() => loadStateDictFile(file, m, { modelKey: 'model_ema' }), /kw1d2x_mobilenetv2_050_c10\.pth: .*not a dict of tensors|missing keys/);
  m.dispose();
});

/** A stored (uncompressed) zip: enough to hand-build torch.save-shaped files. */
function zip(entries: [string, Uint8Array][]): Buffer {
  const parts: Buffer[] = [], central: Buffer[] = [];
  let offset = 0;
  for (const [n, data] of entries) {
    const name = Buffer.from(n), crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18); local.writeUInt32LE(data.length, 22); local.writeUInt16LE(name.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0); cd.writeUInt16LE(20, 4); cd.writeUInt16LE(20, 6); cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(data.length, 20); cd.writeUInt32LE(data.length, 24); cd.writeUInt16LE(name.length, 28); cd.writeUInt32LE(offset, 42);
    parts.push(local, name, Buffer.from(data));
    central.push(cd, name);
    offset += 30 + name.length + data.length;
  }
  const cdBytes = Buffer.concat(central), end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(entries.length, 8); end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdBytes.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cdBytes, end]);
}

t.test('a .pth naming a forbidden global is refused and nothing runs; damaged files name the file', async (t) => {
  const marker = path.join(dir, 'pwned');
  // pickle protocol 2: os.system('touch <marker>'), the classic checkpoint exploit.
  const cmd = Buffer.from(`touch ${marker}`);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(cmd.length);
  const pkl = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from('cos\nsystem\n'), Buffer.from([0x58]), len, cmd,
    Buffer.from([0x85, 0x52, 0x2e])]);
  const evil = path.join(dir, 'evil.pth');
  fs.writeFileSync(evil, zip([['archive/data.pkl', pkl], ['archive/version', Buffer.from('3\n')]]));
  const m = createModel('resnet18_small', { numClasses: 10 });
  const before = bits(m.get('conv1.weight') as Tensor);
  t.throws(() => loadStateDictFile(evil, m), /evil\.pth.*refusing global os\.system/);
  t.notOk(fs.existsSync(marker), 'no command was executed');
  t.same(bits(m.get('conv1.weight') as Tensor), before, 'the model is untouched');

  const golden = fs.readFileSync(path.join(goldenDir, 'kw1d2x_mobilenetv2_050_c10.pth'));
  const truncated = path.join(dir, 'truncated.pth');
  fs.writeFileSync(truncated, golden.subarray(0, golden.length >> 1));
  const kw = createModel('kw1d2x_mobilenetv2_050', { numClasses: 10 });
  t.throws(() => loadStateDictFile(truncated, kw), /truncated\.pth/);
  const corrupt = path.join(dir, 'corrupt.pth');
  const bytes = Buffer.from(golden);
  for (let i = 200; i < bytes.length; i += 997) bytes[i] ^= 0x5a;
  fs.writeFileSync(corrupt, bytes);
  t.throws(() => loadStateDictFile(corrupt, kw), /corrupt\.pth/);
  const junk = path.join(dir, 'junk.safetensors');
  fs.writeFileSync(junk, Buffer.from('definitely not a checkpoint'));
  t.throws(() => loadStateDictFile(junk, kw), /junk\.safetensors/);
  m.dispose();
  kw.dispose();
});
