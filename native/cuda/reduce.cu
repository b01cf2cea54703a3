// CUDA reductions along one axis of [outer, r, inner]. Specification: native/cpu/reduce.cpp
// (sums accumulate in double, max keeps the first index on ties and lets NaN win).
#include "cuda/common.cuh"
#include "cuda/tables.h"

namespace kw::cuda {
namespace {

// Contiguous rows: one warp per row, lanes stride the row so loads coalesce.
__global__ void sum_rows(const float* x, int64_t outer, int64_t r, float* y) {
  int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  int64_t nwarps = (int64_t(gridDim.x) * blockDim.x) >> 5;
  for (int64_t o = warp; o < outer; o += nwarps) {
    double acc = 0;
    for (int64_t i = lane; i < r; i += 32) acc += x[o * r + i];
    for (int s = 16; s > 0; s >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, s);
    if (lane == 0) y[o] = float(acc);
  }
}

// Strided: one thread per output; neighbouring threads read neighbouring inner elements.
__global__ void sum_strided(const float* x, int64_t outer, int64_t r, int64_t inner, float* y) {
  KW_FOR(t, outer * inner) {
    int64_t o = t / inner, i = t % inner;
    const float* p = x + o * r * inner + i;
    double acc = 0;
    for (int64_t k = 0; k < r; k++) acc += p[k * inner];
    y[t] = float(acc);
  }
}

void sum_axis(const float* x, int64_t outer, int64_t r, int64_t inner, float* y) {
  if (outer * inner == 0) return;
  if (inner == 1)
    sum_rows<<<blocks_for(outer * 32), kThreads, 0, stream()>>>(x, outer, r, y);
  else
    sum_strided<<<blocks_for(outer * inner), kThreads, 0, stream()>>>(x, outer, r, inner, y);
  KW_LAUNCH_CHECK();
}

__global__ void max_kernel(const float* x, int64_t outer, int64_t r, int64_t inner, float* y, int32_t* idx) {
  KW_FOR(t, outer * inner) {
    int64_t o = t / inner, i = t % inner;
    const float* p = x + o * r * inner + i;
    float best = p[0];
    int32_t bi = 0;
    for (int64_t k = 1; k < r; k++) {
      float v = p[k * inner];
      if (v > best || (v != v && best == best)) {
        best = v;
        bi = int32_t(k);
      }
    }
    y[t] = best;
    idx[t] = bi;
  }
}

void max_axis(const float* x, int64_t outer, int64_t r, int64_t inner, float* y, int32_t* idx) {
  if (outer * inner == 0) return;
  max_kernel<<<blocks_for(outer * inner), kThreads, 0, stream()>>>(x, outer, r, inner, y, idx);
  KW_LAUNCH_CHECK();
}

__global__ void max_backward_kernel(const float* dy, const int32_t* idx, int64_t outer, int64_t r, int64_t inner,
                                    float* dx) {
  KW_FOR(t, outer * r * inner) {
    int64_t i = t % inner, k = (t / inner) % r, o = t / (inner * r);
    dx[t] = idx[o * inner + i] == k ? dy[o * inner + i] : 0.f;
  }
}

void max_axis_backward(const float* dy, const int32_t* idx, int64_t outer, int64_t r, int64_t inner, float* dx) {
  int64_t n = outer * r * inner;
  if (n == 0) return;
  max_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(dy, idx, outer, r, inner, dx);
  KW_LAUNCH_CHECK();
}

__global__ void expand_kernel(const float* y, int64_t outer, int64_t r, int64_t inner, float* x) {
  KW_FOR(t, outer * r * inner) {
    int64_t i = t % inner, o = t / (inner * r);
    x[t] = y[o * inner + i];
  }
}

void expand_axis(const float* y, int64_t outer, int64_t r, int64_t inner, float* x) {
  int64_t n = outer * r * inner;
  if (n == 0) return;
  expand_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(y, outer, r, inner, x);
  KW_LAUNCH_CHECK();
}

}  // namespace

const ReduceKernels reduce_kernels = {sum_axis, max_axis, max_axis_backward, expand_axis};

}  // namespace kw::cuda
