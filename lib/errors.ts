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
