// Seeded byte-level mutations of a valid file, shared by the reader fuzz tests: truncation,
// random byte flips (mostly in the first 32 bytes, where headers live), appended garbage, and a
// spliced-out run of bytes.
export function mutate(src: Uint8Array, rand: () => number): Uint8Array {
  const b = Buffer.from(src);
  const kind = Math.floor(rand() * 4);
  if (kind === 0) return b.subarray(0, Math.floor(rand() * b.length)); // truncate
  if (kind === 1) {
    const n = 1 + Math.floor(rand() * 8); // flip bytes, often in the header
    for (let i = 0; i < n; i++) b[Math.floor(rand() * Math.min(b.length, rand() < 0.7 ? 32 : b.length))] = Math.floor(rand() * 256);
    return b;
  }
  if (kind === 2) return Buffer.concat([b, Buffer.from(Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)))]);
  const at = Math.floor(rand() * b.length); // splice a run out
  return Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + Math.floor(rand() * 16)))]);
}
