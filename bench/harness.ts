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

export interface StepTiming {
  /** Median seconds. */
  median: number;
  reps: number;
  warmup: number;
  times: number[];
}

/**
 * The timing protocol every side of the benchmark uses (bench/peer/torch_kw.py copies it): warm up
 * once, and keep warming while the warm-up has taken under 1 s (at most 5 runs) so caches and
 * allocators reach their steady state; then `reps` timed runs (default: as many as fit in about
 * 8 s, between 3 and 25) and their median.
 */
export function timeSteps(fn: () => void, reps?: number): StepTiming {
  const now = () => Number(process.hrtime.bigint()) / 1e9;
  let warmup = 0, last = 0;
  const w0 = now();
  do {
    const t0 = now();
    fn();
    last = now() - t0;
    warmup++;
  } while (now() - w0 < 1 && warmup < 5);
  const n = reps ?? Math.min(25, Math.max(3, Math.ceil(8 / Math.max(last, 1e-3))));
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    fn();
    times.push(now() - t0);
  }
  return { median: median(times), reps: n, warmup, times };
}
