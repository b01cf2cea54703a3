// Data-parallel training over MPI (issue 10): the process group, the sampler, DDP's gradient averaging.
export { initDistributed, getWorld, World, launcherEnv, commLibraryPath, DEFAULT_BUCKET_ELEMS } from './world';
export type { WorldOptions } from './world';
export { DistributedSampler } from './sampler';
export type { SamplerOptions } from './sampler';
export { averageGradients, broadcastModule } from './ddp';
