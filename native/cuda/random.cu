// CUDA counter-based random numbers: the same splitmix64 hash of (seed, offset + i) as
// native/cpu/random.cpp, so a draw is bit-identical on either device for uniform/bernoulli
// (normal goes through logf/cosf/sqrtf, which may differ from the host libm in the last ulp).
#include "cuda/common.cuh"
#include "cuda/tables.h"

namespace kw::cuda {
namespace {

__device__ __forceinline__ uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

__device__ __forceinline__ float unit(uint64_t seed, uint64_t counter) {
  return float(mix(seed ^ mix(counter)) >> 40) * (1.0f / 16777216.0f);
}

__global__ void uniform_kernel(float* y, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi) {
  KW_FOR(i, n) y[i] = lo + (hi - lo) * unit(seed, offset + uint64_t(i));
}

__global__ void normal_kernel(float* y, int64_t n, uint64_t seed, uint64_t offset, float mean, float std) {
  KW_FOR(i, n) {
    uint64_t c = 2 * (offset + uint64_t(i));
    float u1 = 1.0f - unit(seed, c);
    float u2 = unit(seed, c + 1);
    y[i] = mean + std * sqrtf(-2.0f * logf(u1)) * cosf(6.283185307179586f * u2);
  }
}

__global__ void bernoulli_kernel(float* y, int64_t n, uint64_t seed, uint64_t offset, float p) {
  KW_FOR(i, n) y[i] = unit(seed, offset + uint64_t(i)) < p ? 1.f : 0.f;
}

void uniform(float* y, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi) {
  if (n == 0) return;
  uniform_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(y, n, seed, offset, lo, hi);
  KW_LAUNCH_CHECK();
}
void normal(float* y, int64_t n, uint64_t seed, uint64_t offset, float mean, float std) {
  if (n == 0) return;
  normal_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(y, n, seed, offset, mean, std);
  KW_LAUNCH_CHECK();
}
void bernoulli(float* y, int64_t n, uint64_t seed, uint64_t offset, float p) {
  if (n == 0) return;
  bernoulli_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(y, n, seed, offset, p);
  KW_LAUNCH_CHECK();
}

}  // namespace

const RandomKernels random_kernels = {uniform, normal, bernoulli};

}  // namespace kw::cuda
