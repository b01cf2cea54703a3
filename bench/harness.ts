// Shared benchmark helpers: medians and plain-text tables.
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Prints rows of cells under a header; columns listed in `left` are left-aligned. */
export function printTable(head: string[], cells: string[][], left: number[] = [0, head.length - 1]): void {
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((s, i) => (left.includes(i) ? s.padEnd(width[i]) : s.padStart(width[i]))).join('  ');
  console.log(line(head));
  console.log(width.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
}
