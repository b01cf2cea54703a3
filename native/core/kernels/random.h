// Counter-based random numbers: element i of a draw depends only on (seed, offset + i), so
// results are the same for any thread count and a generator is just two integers.
#pragma once
#include <cstdint>

namespace kw {

struct RandomKernels {
  void (*uniform)(float* y, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi);
  void (*normal)(float* y, int64_t n, uint64_t seed, uint64_t offset, float mean, float std);
  // y[i] = 1 with probability p, else 0 (dropout and drop-path masks).
  void (*bernoulli)(float* y, int64_t n, uint64_t seed, uint64_t offset, float p);
};

}  // namespace kw
