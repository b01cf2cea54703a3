// Reader and atomic writer for the safetensors format:
//   8-byte little-endian header length N | N bytes of JSON header | data
// The header maps tensor names to {dtype, shape, data_offsets: [begin, end]}
// (offsets relative to the start of the data) plus an optional
// "__metadata__" object of string values.
//
// Files are untrusted: every header field is validated before any buffer is
// sized from it, so a corrupt or hostile file yields an Error naming the file,
// never a huge allocation or a crash.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  DTYPE_BYTES, DType, RawTensor, checkedNumel, isDType, littleEndianBytes, typedArrayFromLittleEndian,
} from './raw-tensor';

export type { RawTensor, DType } from './raw-tensor';
export { toFloat32 } from './raw-tensor';

export interface SafetensorsContents {
  /** Tensors in header order. */
  tensors: Map<string, RawTensor>;
  /** The "__metadata__" entries ({} when the file has none). */
  metadata: Record<string, string>;
}

export interface ReadSafetensorsOptions {
  /** Name used in error messages when reading from a buffer. */
  label?: string;
}

/** The format's own cap on the JSON header (the reference implementation refuses more). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const METADATA_KEY = '__metadata__';

interface TensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

/** Reads and validates a safetensors file (path) or an in-memory copy of one (buffer). */
export function readSafetensors(source: string | Uint8Array, options: ReadSafetensorsOptions = {}): SafetensorsContents {
  if (typeof source === 'string') return readSafetensorsFile(source);
  const label = options.label ?? '<buffer>';
  const bytes = source;
  return parseSafetensors(label, bytes.length, (offset, length) => bytes.subarray(offset, offset + length));
}

function readSafetensorsFile(file: string): SafetensorsContents {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new Error(`safetensors file ${file}: cannot open (${(err as Error).message})`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    // Positional reads: only the header and the tensors' own bytes are ever
    // held in memory, and nothing is read before its extent has been checked.
    return parseSafetensors(file, size, (offset, length) => readExactly(fd, file, offset, length));
  } finally {
    fs.closeSync(fd);
  }
}

function readExactly(fd: number, file: string, offset: number, length: number): Uint8Array {
  const out = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, out, done, length - done, offset + done);
    if (n === 0) throw new Error(`safetensors file ${file}: unexpected end of file at byte ${offset + done}`);
    done += n;
  }
  return out;
}

function parseSafetensors(
  label: string,
  fileSize: number,
  read: (offset: number, length: number) => Uint8Array,
): SafetensorsContents {
  const fail = (what: string): never => {
    throw new Error(`safetensors file ${label}: ${what}`);
  };
  if (fileSize < 8) fail(`file is ${fileSize} bytes, too short for the 8-byte header length`);

  const lengthBytes = read(0, 8);
  const headerLength64 = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true);
  // Compare as bigint first: a length claiming terabytes must be refused before
  // it is turned into a number or used to size a buffer.
  if (headerLength64 > BigInt(fileSize - 8)) {
    fail(`header length ${headerLength64} exceeds the ${fileSize - 8} bytes after the length field`);
  }
  const headerLength = Number(headerLength64);
  if (headerLength > MAX_HEADER_BYTES) fail(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (headerLength < 2) fail(`header length ${headerLength} is too short for a JSON object`);

  const header = parseHeaderJson(read(8, headerLength), fail);
  const dataStart = 8 + headerLength;
  const dataLength = fileSize - dataStart;

  const metadata = parseMetadata(header[METADATA_KEY], fail);
  const entries: TensorEntry[] = [];
  for (const name of Object.keys(header)) {
    if (name === METADATA_KEY) continue;
    entries.push(parseTensorEntry(name, header[name], dataLength, fail));
  }
  checkOffsetsTileData(entries, dataLength, fail);

  const tensors = new Map<string, RawTensor>();
  for (const entry of entries) {
    const bytes = read(dataStart + entry.begin, entry.end - entry.begin);
    const data = typedArrayFromLittleEndian(entry.dtype, bytes);
    tensors.set(entry.name, { dtype: entry.dtype, shape: entry.shape, data } as RawTensor);
  }
  return { tensors, metadata };
}

function parseHeaderJson(bytes: Uint8Array, fail: (what: string) => never): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    return fail(`header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    return fail('header is not a JSON object');
  }
  return header as Record<string, unknown>;
}

function parseMetadata(value: unknown, fail: (what: string) => never): Record<string, string> {
  const metadata: Record<string, string> = {};
  if (value === undefined || value === null) return metadata;
  if (typeof value !== 'object' || Array.isArray(value)) return fail(`"${METADATA_KEY}" is not an object`);
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') fail(`"${METADATA_KEY}" entry ${JSON.stringify(key)} is not a string`);
    // defineProperty: a key named "__proto__" must stay data, not change the prototype.
    Object.defineProperty(metadata, key, { value: item, enumerable: true, writable: true, configurable: true });
  }
  return metadata;
}

function parseTensorEntry(name: string, value: unknown, dataLength: number, fail: (what: string) => never): TensorEntry {
  const where = `tensor ${JSON.stringify(name)}`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(`${where}: entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (!isDType(dtype)) return fail(`${where}: unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape)) return fail(`${where}: shape is not an array`);
  let numel: number;
  try {
    numel = checkedNumel(shape, where);
  } catch (err) {
    return fail((err as Error).message);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2) return fail(`${where}: data_offsets is not a [begin, end] pair`);
  const [begin, end] = offsets as unknown[];
  if (!isOffset(begin) || !isOffset(end)) return fail(`${where}: data_offsets ${JSON.stringify(offsets)} are not non-negative integers`);
  if (begin > end) return fail(`${where}: data_offsets ${JSON.stringify(offsets)} end before they begin`);
  if (end > dataLength) return fail(`${where}: data_offsets ${JSON.stringify(offsets)} run past the ${dataLength} data bytes`);
  const expected = numel * DTYPE_BYTES[dtype];
  if (end - begin !== expected) {
    return fail(`${where}: ${end - begin} data bytes but shape ${JSON.stringify(shape)} of ${dtype} needs ${expected}`);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

function isOffset(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * The format requires the tensors to cover the data region exactly: no
 * overlaps (two names aliasing the same bytes) and no holes (hidden payloads,
 * polyglot files).
 */
function checkOffsetsTileData(entries: TensorEntry[], dataLength: number, fail: (what: string) => never): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: TensorEntry | undefined;
  for (const entry of sorted) {
    if (entry.begin < cursor) {
      fail(`tensor ${JSON.stringify(entry.name)} data_offsets [${entry.begin}, ${entry.end}] overlap tensor ${JSON.stringify(previous?.name)}`);
    }
    if (entry.begin > cursor) fail(`data bytes ${cursor}..${entry.begin} belong to no tensor (gap before ${JSON.stringify(entry.name)})`);
    cursor = entry.end;
    previous = entry;
  }
  if (cursor !== dataLength) fail(`data bytes ${cursor}..${dataLength} belong to no tensor (trailing bytes)`);
}

/**
 * Writes tensors as a safetensors file, atomically: the bytes go to a
 * temporary file in the same folder, which is fsynced and then renamed over
 * `file`, so readers see either the old file or the complete new one.
 */
export function writeSafetensors(
  file: string,
  tensors: Map<string, RawTensor> | Record<string, RawTensor>,
  metadata?: Record<string, string>,
): void {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const { headerBytes, chunks } = encodeSafetensors(file, entries, metadata);

  const dir = path.dirname(path.resolve(file));
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(temp, 'wx', 0o644);
    const lengthField = Buffer.alloc(8);
    lengthField.writeBigUInt64LE(BigInt(headerBytes.length));
    writeAll(fd, lengthField);
    writeAll(fd, headerBytes);
    for (const chunk of chunks) writeAll(fd, chunk);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(temp, file);
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(temp, { force: true });
    throw new Error(`safetensors file ${file}: write failed (${(err as Error).message})`);
  }
  fsyncDirectoryBestEffort(dir);
}

function encodeSafetensors(
  file: string,
  entries: Array<[string, RawTensor]>,
  metadata: Record<string, string> | undefined,
): { headerBytes: Buffer; chunks: Uint8Array[] } {
  const fail = (what: string): never => {
    throw new Error(`safetensors file ${file}: cannot write, ${what}`);
  };
  const header: Record<string, unknown> = {};
  const define = (key: string, value: unknown) =>
    Object.defineProperty(header, key, { value, enumerable: true, writable: true, configurable: true });
  if (metadata !== undefined) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') fail(`metadata ${JSON.stringify(key)} is not a string`);
    }
    define(METADATA_KEY, metadata);
  }
  const chunks: Uint8Array[] = [];
  const seen = new Set<string>();
  let offset = 0;
  for (const [name, tensor] of entries) {
    const where = `tensor ${JSON.stringify(name)}`;
    if (name === METADATA_KEY) fail(`${where} uses the reserved name`);
    if (seen.has(name)) fail(`${where} appears twice`);
    seen.add(name);
    if (!isDType(tensor.dtype)) fail(`${where} has unknown dtype ${JSON.stringify(tensor.dtype)}`);
    const numel = checkedNumel(tensor.shape, `safetensors file ${file}: ${where}`);
    if (tensor.data.length !== numel) fail(`${where} has ${tensor.data.length} elements but shape ${JSON.stringify(tensor.shape)} needs ${numel}`);
    if (tensor.data.BYTES_PER_ELEMENT !== DTYPE_BYTES[tensor.dtype]) fail(`${where} data is not a ${tensor.dtype} array`);
    const bytes = littleEndianBytes(tensor.data);
    define(name, { dtype: tensor.dtype, shape: [...tensor.shape], data_offsets: [offset, offset + bytes.length] });
    chunks.push(bytes);
    offset += bytes.length;
  }
  // Pad with spaces (valid JSON whitespace) so the data starts 8-byte aligned,
  // as the reference writer does, letting mmap readers view it in place.
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  return { headerBytes: Buffer.from(json, 'utf8'), chunks };
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
}

/** Makes the rename itself durable; not every platform lets a folder be fsynced, hence best effort. */
function fsyncDirectoryBestEffort(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Windows and some filesystems refuse; the data itself is already synced.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
