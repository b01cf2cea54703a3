// Warehouse naming and option expansion, as upstream's Warehouse_Manager does it
// (OSVAI/KernelWarehouse, modules/kernel_warehouse.py: `parse`, `fuse_warehouse_name`).

/** One value for every warehouse, or one value per warehouse in warehouse order. */
export type PerWarehouse<T> = T | readonly T[];

/**
 * Upstream's `parse(x, n)`: a scalar is repeated; a list of length 1 is repeated; a list of
 * length n is taken as is; any other length is an error.
 */
export function perWarehouse<T>(value: PerWarehouse<T>, count: number, option: string): T[] {
  if (!Array.isArray(value)) return new Array<T>(count).fill(value as T);
  const list = value as readonly T[];
  if (list.length === 1) return new Array<T>(count).fill(list[0]);
  if (list.length === count) return [...list];
  throw new Error(
    `${option}: expected one value or ${count} values (one per warehouse), got ${list.length}`,
  );
}

/** The same rule for a layer's kernel_size / stride / padding / dilation over its dimensions. */
export function expandTuple(value: number | readonly number[], dimension: number, option: string): number[] {
  return perWarehouse<number>(value, dimension, option);
}

/**
 * Sharing entries from an option value. A string is split on `_` ("layer_conv" means
 * ["layer", "conv"]). Upstream iterates a string character by character instead, which
 * groups the official models' layers identically; pass `[..."layer_conv"]` to get the
 * character behaviour (the kw1d2x MobileNetV2 hard-codes `tuple("layer")`, i.e. characters).
 */
export function sharingEntries(range: string | readonly string[] | undefined): string[] {
  if (range === undefined) return [];
  if (typeof range === 'string') return range.split('_').filter((s) => s.length > 0);
  return [...range];
}

/**
 * Upstream's `fuse_warehouse_name`: every `_`-separated part of the name is replaced by each
 * sharing entry it starts with, checked in order against the part as replaced so far, so
 * later entries can re-match an earlier replacement.
 */
export function fuseWarehouseName(name: string, sharing: readonly string[]): string {
  return name
    .split('_')
    .map((part) => {
      let match = part;
      for (const entry of sharing) if (match.startsWith(entry)) match = entry;
      return match;
    })
    .join('_');
}
