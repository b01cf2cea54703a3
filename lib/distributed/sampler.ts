// DistributedSampler with torch.utils.data.DistributedSampler's semantics: every rank draws the
// same seeded permutation for an epoch (seed and epoch, as set_epoch does), pads it by repeating
// its head to a multiple of the world size, and takes every size-th index from its rank.
import { ArgumentError } from '../errors';
import { epochOrder } from '../data/loader';

export interface SamplerOptions {
  numReplicas: number;
  rank: number;
  shuffle?: boolean;
  seed?: number;
  /** Drop the tail instead of padding (torch's drop_last of the sampler; default false). */
  dropLast?: boolean;
}

/**
 * The indices one rank sees in an epoch.
 * @example new DistributedSampler(60000, { numReplicas: 2, rank: 1, seed: 0 }).indices(3)
 */
export class DistributedSampler {
  readonly numReplicas: number;
  readonly rank: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  /** Samples per rank per epoch. */
  readonly numSamples: number;
  readonly totalSize: number;

  constructor(readonly datasetSize: number, o: SamplerOptions) {
    const int = (name: string, v: unknown, min: number) => {
      if (!Number.isInteger(v) || (v as number) < min) throw new ArgumentError('DistributedSampler', name, `an integer ≥ ${min}`, v);
    };
    int('datasetSize', datasetSize, 0);
    int('numReplicas', o.numReplicas, 1);
    int('rank', o.rank, 0);
    if (o.rank >= o.numReplicas) throw new ArgumentError('DistributedSampler', 'rank', `below numReplicas (${o.numReplicas})`, o.rank);
    this.numReplicas = o.numReplicas;
    this.rank = o.rank;
    this.shuffle = o.shuffle ?? true;
    this.seed = o.seed ?? 0;
    int('seed', this.seed, 0);
    this.dropLast = o.dropLast ?? false;
    // torch: ceil((n - r) / r) with drop_last, else ceil(n / r)
    this.numSamples = this.dropLast && datasetSize % this.numReplicas !== 0
      ? Math.ceil((datasetSize - this.numReplicas) / this.numReplicas)
      : Math.ceil(datasetSize / this.numReplicas);
    this.totalSize = this.numSamples * this.numReplicas;
  }

  /** This rank's sample indices for `epoch`. */
  indices(epoch: number): Int32Array {
    const order = epochOrder(this.datasetSize, this.seed, epoch, this.shuffle);
    const all = new Int32Array(this.totalSize);
    if (this.totalSize <= order.length) all.set(order.subarray(0, this.totalSize));
    else if (order.length > 0) for (let i = 0; i < this.totalSize; i++) all[i] = order[i % order.length]; // torch repeats the list as often as needed
    const mine = new Int32Array(this.numSamples);
    for (let i = 0; i < this.numSamples; i++) mine[i] = all[this.rank + i * this.numReplicas];
    return mine;
  }
}
