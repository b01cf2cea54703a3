// CPU counter-based random numbers (splitmix64 over seed and element index).
#include <cmath>

#include "core/thread_pool.h"
#include "cpu/tables.h"

namespace kw::cpu {
namespace {

inline uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A uniform float in [0, 1) from the 24 high bits of a counter's hash.
inline float unit(uint64_t seed, uint64_t counter) {
  return float(mix(seed ^ mix(counter)) >> 40) * (1.0f / 16777216.0f);
}

void uniform(float* y, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi) {
  parallel_for(n, 1 << 14, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; i++) y[i] = lo + (hi - lo) * unit(seed, offset + uint64_t(i));
  });
}

void normal(float* y, int64_t n, uint64_t seed, uint64_t offset, float mean, float std) {
  // Box-Muller on pairs of counters: element i uses counters 2i and 2i+1.
  parallel_for(n, 1 << 14, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; i++) {
      uint64_t c = 2 * (offset + uint64_t(i));
      float u1 = 1.0f - unit(seed, c);  // (0, 1]: log stays finite
      float u2 = unit(seed, c + 1);
      y[i] = mean + std * std::sqrt(-2.0f * std::log(u1)) * std::cos(6.283185307179586f * u2);
    }
  });
}

void bernoulli(float* y, int64_t n, uint64_t seed, uint64_t offset, float p) {
  parallel_for(n, 1 << 14, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; i++) y[i] = unit(seed, offset + uint64_t(i)) < p ? 1.f : 0.f;
  });
}

}  // namespace

const RandomKernels random_kernels = {uniform, normal, bernoulli};

}  // namespace kw::cpu
