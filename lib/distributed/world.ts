// The process group of a data-parallel run: rank and size from the MPI launcher, and the
// collectives the trainer needs, over the native communication library (native/comm/) that the
// addon opens at run time. Without a launcher, a world of one process with no-op collectives.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { CommLibrary } from '../../binding';
import { native, packageRoot } from '../native';
import { setNumThreads } from '../runtime';
import { Tensor } from '../tensor';

/** Floats per all-reduce bucket (torch DDP's default bucket is 25 MiB). */
export const DEFAULT_BUCKET_ELEMS = (25 * 1024 * 1024) / 4;

/** The rank and size a launcher put in the environment, or null when none did. */
export function launcherEnv(env: NodeJS.ProcessEnv = process.env): { rank: number; size: number; launcher: string } | null {
  const read = (launcher: string, rank?: string, size?: string) =>
    rank !== undefined && size !== undefined && Number.isInteger(Number(size)) ? { rank: Number(rank), size: Number(size), launcher } : null;
  return (
    read('Open MPI', env.OMPI_COMM_WORLD_RANK, env.OMPI_COMM_WORLD_SIZE) ??
    read('PMI (MPICH, Slurm)', env.PMI_RANK, env.PMI_SIZE) ??
    read('PMIx', env.PMIX_RANK, env.OMPI_COMM_WORLD_SIZE)
  );
}

/**
 * Where the communication library is: $KW_COMM_LIB, else next to the addon (beside
 * $KW_ADDON_PATH, in build/Release, or in the prebuilds folder); the build/Release path when none
 * exists, for the error message.
 */
export function commLibraryPath(kind: 'mpi' | 'nccl' = 'mpi'): string {
  if (process.env.KW_COMM_LIB) return process.env.KW_COMM_LIB;
  const name = `libkw_comm_${kind}.so`;
  const dirs = [
    ...(process.env.KW_ADDON_PATH ? [path.dirname(path.resolve(process.env.KW_ADDON_PATH))] : []),
    path.join(packageRoot, 'build', 'Release'),
    path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`),
  ];
  return dirs.map((d) => path.join(d, name)).find((f) => fs.existsSync(f)) ?? path.join(dirs[0], name);
}

export interface WorldOptions {
  /** Native threads per rank; default: this machine's cores split among its ranks. */
  threads?: number;
  /** Which communication library to open (default mpi; nccl where it was built). */
  backend?: 'mpi' | 'nccl';
}

/**
 * A data-parallel process group. Every collective must be called by every rank, in the same
 * order, with the same shapes. `size === 1` (no launcher) makes each collective a no-op.
 */
export class World {
  private constructor(
    readonly rank: number,
    readonly size: number,
    readonly localRank: number,
    readonly localSize: number,
    readonly library: CommLibrary | null,
  ) {}

  /** A world of one process: collectives do nothing. */
  static single(): World {
    return new World(0, 1, 0, 1, null);
  }

  /** @internal */
  static started(rank: number, size: number, localRank: number, localSize: number, lib: CommLibrary): World {
    return new World(rank, size, localRank, localSize, lib);
  }

  get distributed(): boolean {
    return this.library !== null;
  }
  get isMain(): boolean {
    return this.rank === 0;
  }

  /** Sums (or averages) float32 tensors over all ranks, in place, in buckets. */
  allReduce(tensors: Tensor[], opts: { average?: boolean; bucketElems?: number } = {}): void {
    if (!this.distributed) return;
    for (const t of tensors) if (t.dtype !== 'float32') throw new Error(`allReduce: tensors must be float32, got ${t.dtype}`);
    native.commAllreduce(tensors.map((t) => t.storage), opts.average ?? false, opts.bucketElems ?? DEFAULT_BUCKET_ELEMS);
  }

  /** Sums a few numbers over all ranks (statistics, agreement flags). */
  sumNumbers(values: number[]): number[] {
    if (!this.distributed) return values.slice();
    // per-rank values travel as float32: counts below 2^24 stay exact
    const rows = this.allGather(new Float32Array(values));
    const out = new Array<number>(values.length).fill(0);
    for (let r = 0; r < this.size; r++) for (let i = 0; i < values.length; i++) out[i] += rows[r * values.length + i];
    return out;
  }

  /** Rank root's tensor contents replace every other rank's (parameters, buffers). */
  broadcast(tensors: Tensor[], root = 0): void {
    if (!this.distributed) return;
    native.commBroadcast(tensors.map((t) => t.storage), root);
  }

  /** Rank root's JSON-serialisable value, on every rank (resume decisions). */
  broadcastJSON<T>(value: T, root = 0): T {
    if (!this.distributed) return value;
    const mine = this.rank === root ? Buffer.from(JSON.stringify(value ?? null), 'utf8') : Buffer.alloc(0);
    const len = new Uint8Array(new Float64Array([mine.length]).buffer);
    native.commBroadcastBytes(len, root);
    const n = new Float64Array(len.buffer)[0];
    const bytes = this.rank === root ? new Uint8Array(mine) : new Uint8Array(n);
    native.commBroadcastBytes(bytes, root);
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
  }

  /** Every rank's values in rank order, on every rank. */
  allGather(values: Float32Array): Float32Array {
    if (!this.distributed) return values.slice();
    const s = native.fromTypedArray(values);
    const out = native.commAllgather(s);
    native.release(s);
    const arr = native.toTypedArray(out) as Float32Array;
    native.release(out);
    return arr;
  }

  /** Every rank's values in rank order on rank root; an empty array elsewhere. */
  gather(values: Float32Array, root = 0): Float32Array {
    if (!this.distributed) return values.slice();
    const s = native.fromTypedArray(values);
    const out = native.commGather(s, root);
    native.release(s);
    const arr = native.toTypedArray(out) as Float32Array;
    native.release(out);
    return arr;
  }

  barrier(): void {
    if (this.distributed) native.commBarrier();
  }

  /** Ends the group (MPI_Finalize); call once, after the last collective. */
  finalize(): void {
    if (this.distributed) native.commFinalize();
  }

  /** Stops every rank of the job with this message (MPI_Abort). */
  abort(message: string, code = 1): never {
    if (this.distributed) native.commAbort(code, message);
    console.error(message);
    process.exit(code);
  }
}

let current: World | null = null;

/** The world initDistributed() started (a single process before that). */
export function getWorld(): World {
  return current ?? World.single();
}

/**
 * Joins the data-parallel job when this process was started by `mpirun` (or another MPI
 * launcher), and gives this rank its share of the machine's cores. Outside a launcher it returns
 * a world of one process. Calling it again returns the same world.
 * @example const world = initDistributed(); console.log(`rank ${world.rank} of ${world.size}`);
 */
export function initDistributed(opts: WorldOptions = {}): World {
  if (current) return current;
  const env = launcherEnv();
  if (!env) return (current = World.single());
  const lib = commLibraryPath(opts.backend ?? 'mpi');
  if (!fs.existsSync(lib))
    throw new Error(
      `started by ${env.launcher} as rank ${env.rank} of ${env.size}, but this build has no ${path.basename(lib)} ` +
        `(looked in ${path.dirname(lib)}): install MPI (apt-get install libopenmpi-dev) and rebuild with npx cmake-js compile`,
    );
  const info = native.commOpen(lib);
  const w = native.commInit();
  if (w.size !== env.size || w.rank !== env.rank)
    throw new Error(`${env.launcher} set rank ${env.rank} of ${env.size}, but ${info.version} reports rank ${w.rank} of ${w.size}`);
  // ranks on one machine share its cores: no oversubscription. A rank mpirun pinned to some cores
  // (its default binding) already sees only its share.
  const cores = os.cpus().length;
  const usable = typeof os.availableParallelism === 'function' ? os.availableParallelism() : cores;
  setNumThreads(opts.threads ?? (usable < cores ? usable : Math.max(1, Math.floor(cores / w.localSize))));
  current = World.started(w.rank, w.size, w.localRank, w.localSize, info);
  return current;
}
