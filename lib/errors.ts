// Uniform argument errors: which function, which parameter, what was expected, what came.
export class ArgumentError extends Error {
  constructor(fn: string, param: string, expected: string, got: unknown) {
    super(`${fn}: '${param}' must be ${expected}, got ${describe(got)}`);
    this.name = 'ArgumentError';
  }
}

export function describe(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(describe).join(', ')}]`;
  if (v !== null && typeof v === 'object' && 'shape' in (v as object)) {
    const t = v as { shape: readonly number[]; dtype?: string };
    return `tensor of shape [${t.shape.join(', ')}]${t.dtype ? ' ' + t.dtype : ''}`;
  }
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

export function checkShape(fn: string, param: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
    throw new ArgumentError(fn, param, 'an array of non-negative integers', shape);
  return shape as number[];
}

export function checkInt(fn: string, param: string, v: unknown, min = -Infinity, max = Infinity): number {
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max)
    throw new ArgumentError(fn, param, `an integer in [${min}, ${max}]`, v);
  return v as number;
}

export function checkNumber(fn: string, param: string, v: unknown): number {
  if (typeof v !== 'number' || Number.isNaN(v)) throw new ArgumentError(fn, param, 'a number', v);
  return v;
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

/** The candidate nearest to `name` (edit distance, case-insensitive), for "did you mean" messages. */
export function closestName(name: string, candidates: readonly string[]): string {
  let best = candidates[0] ?? '', bestD = Infinity;
  for (const c of candidates) {
    const dd = editDistance(name.toLowerCase(), c.toLowerCase());
    if (dd < bestD) [best, bestD] = [c, dd];
  }
  return best;
}

/**
 * Rejects an options argument that is not a plain object or has a key outside `known`, naming
 * the closest known key (a typo in an options object is otherwise silently ignored).
 */
export function checkOptions(fn: string, param: string, opts: unknown, known: readonly string[], required = false): Record<string, unknown> {
  if (opts === undefined && !required) return {};
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw new ArgumentError(fn, param, 'an options object', opts);
  for (const k of Object.keys(opts))
    if (!known.includes(k)) throw new Error(`${fn}: unknown option '${k}' in '${param}' (did you mean '${closestName(k, known)}'?)`);
  return opts as Record<string, unknown>;
}
