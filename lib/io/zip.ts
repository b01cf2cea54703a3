// Minimal, read-only ZIP reader for archives written by torch.save
// (PyTorchStreamWriter/miniz: stored entries, data descriptors, ZIP64 for big
// files). The central directory is the authority; local headers are only used
// to find where each entry's data starts, and must agree with it.
//
// The archive is untrusted. Every offset and size is checked against the
// archive size before use, entries may not overlap, declared sizes bound every
// allocation (including inflation), names that could escape a folder are
// refused, and CRCs are verified. Nothing is ever written to disk.

import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { constants as bufferConstants } from 'node:buffer';

/** Random access to the archive bytes: an in-memory buffer or an open file. */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

export interface ZipEntry {
  readonly name: string;
  readonly method: number; // 0 stored, 8 deflate
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly localHeaderOffset: number;
  /** Start of the entry's (possibly compressed) bytes, from its local header. */
  readonly dataOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const EOCD_SIZE = 22;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;
const MAX_COMMENT = 0xffff;
/** Deflate cannot expand data more than ~1032:1, so a larger claim is a lie (a zip bomb). */
const MAX_DEFLATE_RATIO = 1032;

export function bufferSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    read: (offset, length) => bytes.subarray(offset, offset + length),
    close: () => undefined,
  };
}

export function fileSource(file: string): ByteSource {
  const fd = fs.openSync(file, 'r');
  let size: number;
  try {
    size = fs.fstatSync(fd).size;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return {
    size,
    read(offset, length) {
      const out = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const n = fs.readSync(fd, out, done, length - done, offset + done);
        if (n === 0) throw new Error(`unexpected end of file at byte ${offset + done}`);
        done += n;
      }
      return out;
    },
    close: () => fs.closeSync(fd),
  };
}

export class ZipReader {
  private readonly byName = new Map<string, ZipEntry>();

  private constructor(
    private readonly source: ByteSource,
    readonly label: string,
    readonly entries: readonly ZipEntry[],
  ) {
    for (const entry of entries) this.byName.set(entry.name, entry);
  }

  /** Opens a zip from a path (read lazily through a file descriptor) or from bytes. */
  static open(source: string | Uint8Array, label?: string): ZipReader {
    const name = label ?? (typeof source === 'string' ? source : '<buffer>');
    let bytes: ByteSource;
    try {
      bytes = typeof source === 'string' ? fileSource(source) : bufferSource(source);
    } catch (err) {
      throw new Error(`zip archive ${name}: cannot open (${(err as Error).message})`);
    }
    try {
      return new ZipReader(bytes, name, readDirectory(bytes, name));
    } catch (err) {
      bytes.close();
      throw err;
    }
  }

  close(): void {
    this.source.close();
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  entry(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /** The entry's uncompressed bytes, CRC-checked. */
  read(name: string): Uint8Array {
    const entry = this.byName.get(name);
    if (entry === undefined) throw new Error(`zip archive ${this.label}: no entry named ${JSON.stringify(name)}`);
    const fail = (what: string): never => {
      throw new Error(`zip archive ${this.label}: entry ${JSON.stringify(name)} ${what}`);
    };
    let raw: Uint8Array;
    try {
      raw = this.source.read(entry.dataOffset, entry.compressedSize);
    } catch (err) {
      return fail(`cannot be read (${(err as Error).message})`);
    }
    let data: Uint8Array;
    if (entry.method === 0) {
      data = raw;
    } else {
      try {
        data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
      } catch (err) {
        return fail(`does not inflate (${(err as Error).message})`);
      }
      if (data.length !== entry.uncompressedSize) fail(`inflates to ${data.length} bytes, not the declared ${entry.uncompressedSize}`);
    }
    const crc = crc32(data);
    if (crc !== entry.crc32) fail(`fails its CRC check (${hex(crc)} != ${hex(entry.crc32)})`);
    return data;
  }
}

function hex(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}

function readDirectory(source: ByteSource, label: string): ZipEntry[] {
  const fail = (what: string): never => {
    throw new Error(`zip archive ${label}: ${what}`);
  };
  const readChecked = (offset: number, length: number, what: string): DataView => {
    if (offset < 0 || length < 0 || offset + length > source.size) fail(`${what} at ${offset} (+${length}) lies outside the ${source.size}-byte file`);
    const bytes = source.read(offset, length);
    return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };

  const { eocdOffset, end } = findEndOfCentralDirectory(source, fail);
  let { entryCount, cdSize, cdOffset } = end;
  let cdLimit = eocdOffset; // the central directory must end before the record describing it
  if (entryCount === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const zip64 = readZip64End(eocdOffset, readChecked, fail);
    ({ entryCount, cdSize, cdOffset } = zip64);
    cdLimit = zip64.recordOffset;
  }
  if (cdOffset + cdSize > cdLimit) fail(`central directory (${cdOffset} +${cdSize}) overlaps the end records at ${cdLimit}`);
  if (entryCount * CENTRAL_SIZE > cdSize) fail(`${entryCount} entries cannot fit in a ${cdSize}-byte central directory`);

  const cdBytes = readChecked(cdOffset, cdSize, 'central directory');
  const cdRaw = new Uint8Array(cdBytes.buffer, cdBytes.byteOffset, cdBytes.byteLength);
  const entries: ZipEntry[] = [];
  const names = new Set<string>();
  let pos = 0;
  for (let i = 0; i < entryCount; i++) {
    if (pos + CENTRAL_SIZE > cdSize) fail(`central directory entry ${i} runs past the directory`);
    if (cdBytes.getUint32(pos, true) !== SIG_CENTRAL) fail(`central directory entry ${i} has a bad signature`);
    const flags = cdBytes.getUint16(pos + 8, true);
    const method = cdBytes.getUint16(pos + 10, true);
    const crc = cdBytes.getUint32(pos + 16, true);
    let compressedSize = cdBytes.getUint32(pos + 20, true);
    let uncompressedSize = cdBytes.getUint32(pos + 24, true);
    const nameLength = cdBytes.getUint16(pos + 28, true);
    const extraLength = cdBytes.getUint16(pos + 30, true);
    const commentLength = cdBytes.getUint16(pos + 32, true);
    const diskStart = cdBytes.getUint16(pos + 34, true);
    let localHeaderOffset = cdBytes.getUint32(pos + 42, true);
    const recordEnd = pos + CENTRAL_SIZE + nameLength + extraLength + commentLength;
    if (recordEnd > cdSize) fail(`central directory entry ${i} runs past the directory`);
    const name = decodeName(cdRaw.subarray(pos + CENTRAL_SIZE, pos + CENTRAL_SIZE + nameLength), flags, i, fail);
    const where = `entry ${JSON.stringify(name)}`;
    checkSafeName(name, where, fail);
    if (names.has(name)) fail(`${where} appears twice`);
    names.add(name);
    if (flags & 0x1) fail(`${where} is encrypted`);
    if (method !== 0 && method !== 8) fail(`${where} uses unsupported compression method ${method}`);
    if (diskStart !== 0 && diskStart !== 0xffff) fail(`${where} is on another disk (multi-part archives are not supported)`);

    const extra = cdRaw.subarray(pos + CENTRAL_SIZE + nameLength, pos + CENTRAL_SIZE + nameLength + extraLength);
    ({ compressedSize, uncompressedSize, localHeaderOffset } = applyZip64Extra(
      extra, { compressedSize, uncompressedSize, localHeaderOffset }, where, fail));

    if (method === 0 && compressedSize !== uncompressedSize) fail(`${where} is stored but its sizes differ (${compressedSize} vs ${uncompressedSize})`);
    if (method === 8 && uncompressedSize > Math.max(1024, compressedSize * MAX_DEFLATE_RATIO)) {
      fail(`${where} claims ${uncompressedSize} bytes from ${compressedSize} compressed bytes`);
    }
    if (uncompressedSize > bufferConstants.MAX_LENGTH) fail(`${where} is too large (${uncompressedSize} bytes)`);

    const dataOffset = readLocalHeader(localHeaderOffset, nameLength, name, where, readChecked, fail);
    if (dataOffset + compressedSize > cdOffset) fail(`${where} data (${dataOffset} +${compressedSize}) runs into the central directory`);
    entries.push({ name, method, crc32: crc, compressedSize, uncompressedSize, localHeaderOffset, dataOffset });
    pos = recordEnd;
  }
  checkNoOverlap(entries, fail);
  return entries;
}

interface EndRecord {
  entryCount: number;
  cdSize: number;
  cdOffset: number;
}

function findEndOfCentralDirectory(source: ByteSource, fail: (what: string) => never): { eocdOffset: number; end: EndRecord } {
  if (source.size < EOCD_SIZE) fail(`file is ${source.size} bytes, too short to be a zip archive`);
  const tailLength = Math.min(source.size, EOCD_SIZE + MAX_COMMENT);
  const tailStart = source.size - tailLength;
  const tail = source.read(tailStart, tailLength);
  const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  // Scan backwards; accept a signature only if its comment length reaches the
  // end of the file exactly, so a signature inside the comment cannot fool us.
  for (let i = tailLength - EOCD_SIZE; i >= 0; i--) {
    if (view.getUint32(i, true) !== SIG_EOCD) continue;
    if (i + EOCD_SIZE + view.getUint16(i + 20, true) !== tailLength) continue;
    const disk = view.getUint16(i + 4, true);
    const cdDisk = view.getUint16(i + 6, true);
    const entriesOnDisk = view.getUint16(i + 8, true);
    const entryCount = view.getUint16(i + 10, true);
    if ((disk !== 0 && disk !== 0xffff) || (cdDisk !== 0 && cdDisk !== 0xffff) || entriesOnDisk !== entryCount) {
      fail('multi-part archives are not supported');
    }
    return {
      eocdOffset: tailStart + i,
      end: { entryCount, cdSize: view.getUint32(i + 12, true), cdOffset: view.getUint32(i + 16, true) },
    };
  }
  return fail('no end-of-central-directory record (not a zip archive, or truncated)');
}

function readZip64End(
  eocdOffset: number,
  readChecked: (offset: number, length: number, what: string) => DataView,
  fail: (what: string) => never,
): EndRecord & { recordOffset: number } {
  if (eocdOffset < 20) fail('ZIP64 end locator is missing');
  const locator = readChecked(eocdOffset - 20, 20, 'ZIP64 end locator');
  if (locator.getUint32(0, true) !== SIG_ZIP64_LOCATOR) fail('ZIP64 end locator is missing');
  const recordOffset = safeNumber(locator.getBigUint64(8, true), 'ZIP64 end record offset', fail);
  if (recordOffset + 56 > eocdOffset - 20) fail(`ZIP64 end record offset ${recordOffset} is out of range`);
  const record = readChecked(recordOffset, 56, 'ZIP64 end record');
  if (record.getUint32(0, true) !== SIG_ZIP64_EOCD) fail('ZIP64 end record has a bad signature');
  return {
    recordOffset,
    entryCount: safeNumber(record.getBigUint64(32, true), 'ZIP64 entry count', fail),
    cdSize: safeNumber(record.getBigUint64(40, true), 'ZIP64 central directory size', fail),
    cdOffset: safeNumber(record.getBigUint64(48, true), 'ZIP64 central directory offset', fail),
  };
}

function safeNumber(value: bigint, what: string, fail: (what: string) => never): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${value} is out of range`);
  return Number(value);
}

/** Fields saturated at 0xffffffff in the central record are given, in order, by the 0x0001 extra block. */
function applyZip64Extra(
  extra: Uint8Array,
  fields: { compressedSize: number; uncompressedSize: number; localHeaderOffset: number },
  where: string,
  fail: (what: string) => never,
): typeof fields {
  const wanted = [
    fields.uncompressedSize === 0xffffffff,
    fields.compressedSize === 0xffffffff,
    fields.localHeaderOffset === 0xffffffff,
  ];
  if (!wanted.some(Boolean)) return fields;
  const view = new DataView(extra.buffer, extra.byteOffset, extra.byteLength);
  for (let p = 0; p + 4 <= extra.length;) {
    const id = view.getUint16(p, true);
    const size = view.getUint16(p + 2, true);
    if (p + 4 + size > extra.length) break;
    if (id === 0x0001) {
      const values: number[] = [];
      let q = p + 4;
      for (const need of wanted) {
        if (!need) {
          values.push(-1);
          continue;
        }
        if (q + 8 > p + 4 + size) fail(`${where} has a truncated ZIP64 extra field`);
        values.push(safeNumber(view.getBigUint64(q, true), `${where} ZIP64 value`, fail));
        q += 8;
      }
      return {
        uncompressedSize: wanted[0] ? values[0] : fields.uncompressedSize,
        compressedSize: wanted[1] ? values[1] : fields.compressedSize,
        localHeaderOffset: wanted[2] ? values[2] : fields.localHeaderOffset,
      };
    }
    p += 4 + size;
  }
  return fail(`${where} needs a ZIP64 extra field but has none`);
}

function readLocalHeader(
  offset: number,
  nameLength: number,
  name: string,
  where: string,
  readChecked: (offset: number, length: number, what: string) => DataView,
  fail: (what: string) => never,
): number {
  const header = readChecked(offset, LOCAL_SIZE, `${where} local header`);
  if (header.getUint32(0, true) !== SIG_LOCAL) fail(`${where} local header at ${offset} has a bad signature`);
  const localNameLength = header.getUint16(26, true);
  const localExtraLength = header.getUint16(28, true);
  if (localNameLength !== nameLength) fail(`${where} local header name differs from the central directory`);
  const nameView = readChecked(offset + LOCAL_SIZE, nameLength, `${where} local name`);
  const localName = Buffer.from(nameView.buffer, nameView.byteOffset, nameView.byteLength);
  if (!localName.equals(Buffer.from(name, 'utf8')) && !localName.equals(Buffer.from(name, 'latin1'))) {
    fail(`${where} local header name differs from the central directory`);
  }
  return offset + LOCAL_SIZE + localNameLength + localExtraLength;
}

function decodeName(bytes: Uint8Array, flags: number, index: number, fail: (what: string) => never): string {
  if (bytes.length === 0) fail(`central directory entry ${index} has an empty name`);
  if (flags & 0x800) {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      return fail(`central directory entry ${index} name is not valid UTF-8`);
    }
  }
  // Without the UTF-8 flag the name is CP437; torch only writes ASCII, so
  // latin1 is close enough and can never fail.
  return Buffer.from(bytes).toString('latin1');
}

/**
 * Refuses names that would point outside an extraction folder if anyone ever
 * extracted this archive ("../x", "/etc/x", "C:\\x", "\\\\server\\x") and
 * names with NUL bytes, which truncate in C APIs.
 */
export function checkSafeName(name: string, where: string, fail: (what: string) => never): void {
  if (name.includes('\0')) fail(`${where} has a NUL byte in its name`);
  if (name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:/.test(name)) fail(`${where} has an absolute path name`);
  if (name.split(/[\\/]/).some((part) => part === '..')) fail(`${where} has a path-traversal name ("..")`);
}

/** Overlapping entries are how "overlapping file" zip bombs and polyglots work; torch never writes them. */
function checkNoOverlap(entries: ZipEntry[], fail: (what: string) => never): void {
  const sorted = [...entries].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1];
    if (sorted[i].localHeaderOffset < previous.dataOffset + previous.compressedSize) {
      fail(`entries ${JSON.stringify(previous.name)} and ${JSON.stringify(sorted[i].name)} overlap`);
    }
  }
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (zip polynomial); uses node:zlib's native version where the Node release has one. */
export function crc32(bytes: Uint8Array): number {
  const native = (zlib as unknown as { crc32?: (data: Uint8Array) => number }).crc32;
  if (typeof native === 'function') return native(bytes) >>> 0;
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
