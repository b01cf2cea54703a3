// A minimal safetensors reader for the reference cases: 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets}}, then the raw little-endian data.
// Only F32 tensors (everything the golden files hold). The full reader is lib/io/safetensors.ts.
import * as fs from 'fs';
import { Tensor, tensor } from '../../lib';

export function readSafetensors(file: string): Map<string, Tensor> {
  const buf = fs.readFileSync(file);
  if (buf.length < 8) throw new Error(`${file}: too short for a safetensors file`);
  const len = Number(buf.readBigUInt64LE(0));
  if (8 + len > buf.length) throw new Error(`${file}: header length ${len} runs past the end of the file`);
  const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Record<string, unknown>;
  const base = 8 + len;
  const out = new Map<string, Tensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: offsets } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (dtype !== 'F32') throw new Error(`${file}: '${name}' is ${dtype}; this reader handles F32 only`);
    const count = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = offsets;
    if (end - begin !== count * 4 || base + end > buf.length)
      throw new Error(`${file}: '${name}' has offsets [${begin}, ${end}) for shape [${shape}]`);
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = buf.readFloatLE(base + begin + 4 * i);
    out.set(name, tensor(data, shape));
  }
  return out;
}
