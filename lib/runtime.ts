// Process-wide native settings and statistics.
import type { BuildInfo, MemoryStats } from '../binding';
import { checkInt } from './errors';
import { native } from './native';

/** Native allocator statistics: live, peak and cached bytes. */
export function memoryStats(): MemoryStats {
  return native.memoryStats();
}
/** Version, GEMM provider, thread count and backends of the loaded addon. */
export function buildInfo(): BuildInfo {
  return native.buildInfo();
}
/** Threads used by native kernels (defaults to the number of cores). */
export function setNumThreads(n: number): void {
  native.setNumThreads(checkInt('setNumThreads', 'n', n, 1, 1024));
}
export function numThreads(): number {
  return native.numThreads();
}
/** Returns cached native memory to the OS. */
export function emptyCache(): void {
  native.emptyCache();
}
