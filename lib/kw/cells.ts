// Kernel-cell arithmetic of upstream's Warehouse_Manager.store(), KWconvNd.init_attention()
// and Attention.init_temperature(). Integer division and int() truncation happen at exactly
// the points upstream applies them, because the counts differ otherwise for ratios < 1.

export function gcd(a: number, b: number): number {
  let x = Math.abs(a);
  let y = Math.abs(b);
  while (y !== 0) [x, y] = [y, x % y];
  return x;
}

/** Python's `a // b` for non-negative integers, exact (no float rounding of a / b). */
export function floorDiv(a: number, b: number): number {
  return (a - (a % b)) / b;
}

/** Python's `int(x)` for a float: truncation toward zero. */
export function pyInt(x: number): number {
  return Math.trunc(x);
}

export interface CellGeometry {
  outPlaneGcd: number;
  inPlaneGcd: number;
  cellOutPlane: number;
  cellInPlane: number;
  cellKernelSize: number[];
}

/**
 * Cell shape of one warehouse from its layers' weight shapes [out, in/groups, ...kernel].
 * Without spatial partition every layer must have the same kernel (upstream asserts it).
 */
export function cellGeometry(
  weightShapes: readonly (readonly number[])[],
  cellOutplaneRatio: number,
  cellInplaneRatio: number,
  spatialPartition: boolean,
  warehouseName: string,
): CellGeometry {
  const first = weightShapes[0];
  const kernel = first.slice(2);
  let outPlaneGcd = first[0];
  let inPlaneGcd = first[1];
  for (const shape of weightShapes) {
    outPlaneGcd = gcd(outPlaneGcd, shape[0]);
    inPlaneGcd = gcd(inPlaneGcd, shape[1]);
    if (!spatialPartition && shape.slice(2).join(',') !== kernel.join(',')) {
      throw new Error(
        `warehouse '${warehouseName}': spatial_partition is off, so every layer needs the kernel ` +
          `[${kernel.join(', ')}], got [${shape.slice(2).join(', ')}]`,
      );
    }
  }
  return {
    outPlaneGcd,
    inPlaneGcd,
    cellInPlane: Math.max(pyInt(inPlaneGcd * cellInplaneRatio), 1),
    cellOutPlane: Math.max(pyInt(outPlaneGcd * cellOutplaneRatio), 1),
    cellKernelSize: spatialPartition ? kernel.map(() => 1) : kernel,
  };
}

/**
 * Cells one layer contributes to its warehouse's size, with store()'s own expression
 * `int(out // cell_out * in // cell_in)` (left to right: ((out // co) * in) // ci), then the
 * spatial factor folded in one dimension at a time.
 */
export function storeMixtures(weightShape: readonly number[], geom: CellGeometry): number {
  const channel = floorDiv(floorDiv(weightShape[0], geom.cellOutPlane) * weightShape[1], geom.cellInPlane);
  let spatial = 1;
  geom.cellKernelSize.forEach((ck, d) => {
    spatial = floorDiv(spatial * weightShape[2 + d], ck);
  });
  return spatial * channel;
}

/** n = max(int(sum of mixtures * cell_num_ratio), 1). */
export function warehouseCellCount(totalMixtures: number, cellNumRatio: number): number {
  return Math.max(pyInt(totalMixtures * cellNumRatio), 1);
}

/** How a layer's kernel splits into cells, as init_attention computes it. */
export interface LayerGrid {
  groupsOutChannel: number;
  groupsInChannel: number;
  groupsSpatial: number;
  /** m: the layer's kernel cells (upstream's num_local_mixture). */
  numMixtures: number;
}

export function layerGrid(
  inPlanes: number,
  outPlanes: number,
  groups: number,
  kernelSize: readonly number[],
  cellShape: readonly number[],
): LayerGrid {
  const groupsOutChannel = floorDiv(outPlanes, cellShape[1]);
  const groupsInChannel = floorDiv(floorDiv(inPlanes, cellShape[2]), groups);
  let groupsSpatial = 1;
  kernelSize.forEach((k, d) => {
    groupsSpatial = floorDiv(groupsSpatial * k, cellShape[3 + d]);
  });
  return {
    groupsOutChannel,
    groupsInChannel,
    groupsSpatial,
    numMixtures: groupsOutChannel * groupsInChannel * groupsSpatial,
  };
}

export interface TemperatureInit {
  /** Length m·(n+1): row j (of n+1 slots) is mixture j's one-hot; slot n is the zero cell. */
  tempBias: Float32Array;
  endCellIdx: number;
  /** A write fell outside [0, n) of its row: upstream fails (IndexError or the final assertion). */
  overflow: boolean;
}

/**
 * Upstream's init_temperature. With cell_num_ratio >= 1 each mixture gets its own
 * int(ratio)-spaced cell. Below 1, k = int(1 / ratio) and mixture j gets a fresh cell only
 * when j % k == (j // k) % k (a diagonal pattern over k×k blocks); the others point at the
 * zero slot. The returned end index is where the next layer of the warehouse starts.
 */
export function initTemperature(
  numMixtures: number,
  numCells: number,
  startCellIdx: number,
  cellNumRatio: number,
): TemperatureInit {
  const perMixture = numCells + 1;
  const tempBias = new Float32Array(numMixtures * perMixture);
  let start = startCellIdx;
  let overflow = false;
  // Past the end upstream writes into the next row or raises; either way the layout is
  // rejected below, so an overflowing write only has to stay inside the array.
  const assign = (slot: number, mixture: number): void => {
    const at = mixture * perMixture + slot;
    if (at < tempBias.length) tempBias[at] = 1;
  };
  if (cellNumRatio >= 1.0) {
    const cellsPerMixture = pyInt(cellNumRatio);
    for (let j = 0; j < numMixtures; j++) {
      if (start >= numCells) overflow = true;
      assign(start, j);
      start += cellsPerMixture;
    }
  } else {
    const k = pyInt(1.0 / cellNumRatio);
    for (let j = 0; j < numMixtures; j++) {
      if (j % k === floorDiv(j, k) % k) {
        if (start >= numCells) overflow = true;
        assign(start, j);
        start += 1;
      } else {
        assign(perMixture - 1, j);
      }
    }
  }
  return { tempBias, endCellIdx: start, overflow };
}
