// Per-iteration schedules as upstream computes them: the cosine schedule with linear warmup
// (utils.cosine_scheduler) for the lr and weight decay, and KernelWarehouse's temperature.

/** numpy.linspace(start, stop, n) with the endpoint included. */
function linspace(start: number, stop: number, n: number): number[] {
  if (n <= 0) return [];
  if (n === 1) return [start];
  const step = (stop - start) / (n - 1);
  return Array.from({ length: n }, (_, i) => (i === n - 1 ? stop : start + i * step));
}

/**
 * One value per iteration for `epochs · itersPerEpoch` iterations: a linear warmup from
 * `startWarmupValue` over warmupEpochs (or warmupSteps when > 0), then a half cosine from
 * `base` down to `final`. Reproduces upstream's quirk that a warmup is only applied when
 * warmupEpochs > 0 (warmupSteps alone shortens the cosine but adds no ramp).
 * @example cosineSchedule(4e-3, 1e-6, 300, 1251, 20)
 */
export function cosineSchedule(base: number, final: number, epochs: number, itersPerEpoch: number, warmupEpochs = 0, startWarmupValue = 0, warmupSteps = -1): Float64Array {
  let warmupIters = warmupEpochs * itersPerEpoch;
  if (warmupSteps > 0) warmupIters = warmupSteps;
  const total = epochs * itersPerEpoch;
  const warm = warmupEpochs > 0 ? linspace(startWarmupValue, base, warmupIters) : [];
  const n = total - warmupIters;
  if (n < 0) throw new Error(`cosineSchedule: ${warmupIters} warmup iterations exceed the ${total} iterations of training`);
  const out = new Float64Array(warm.length + n);
  out.set(warm);
  for (let i = 0; i < n; i++) out[warm.length + i] = final + 0.5 * (base - final) * (1 + Math.cos((Math.PI * i) / n));
  if (out.length !== total)
    throw new Error(`cosineSchedule: warmup_steps (${warmupSteps}) without warmup_epochs gives ${out.length} values for ${total} iterations (upstream asserts here too)`);
  return out;
}

/**
 * KernelWarehouse's temperature at a training iteration: linear from `initValue` to 0 over
 * `tempEpoch` epochs, then 0. `epoch` is 0-based and `iteration` the 0-based step in it.
 * @example temperature(0, 0, 100, 20, 1.0) // just below 1
 */
export function temperature(epoch: number, iteration: number, itersPerEpoch: number, tempEpoch: number, initValue = 1.0): number {
  const total = itersPerEpoch * tempEpoch;
  if (total <= 0) return 0;
  const current = itersPerEpoch * epoch + iteration + 1;
  return Math.max(0, (initValue * (total - current)) / total);
}
