// CPU reductions along one axis of [outer, r, inner].
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "cpu/tables.h"

namespace kw::cpu {
namespace {

int64_t grain_for(int64_t work_per_item) { return std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(1, work_per_item)); }

void sum_axis(const float* x, int64_t outer, int64_t r, int64_t inner, float* y) {
  if (inner == 1) {
    // Contiguous rows: accumulate in double so long sums (losses, BN statistics) stay exact.
    parallel_for(outer, grain_for(r), [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; o++) {
        const float* p = x + o * r;
        double acc = 0;
        for (int64_t i = 0; i < r; i++) acc += p[i];
        y[o] = float(acc);
      }
    });
    return;
  }
  parallel_for(outer, grain_for(r * inner), [&](int64_t lo, int64_t hi) {
    std::vector<double> acc(static_cast<size_t>(inner));
    for (int64_t o = lo; o < hi; o++) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t k = 0; k < r; k++) {
        const float* p = x + (o * r + k) * inner;
        for (int64_t i = 0; i < inner; i++) acc[size_t(i)] += p[i];
      }
      for (int64_t i = 0; i < inner; i++) y[o * inner + i] = float(acc[size_t(i)]);
    }
  });
}

void max_axis(const float* x, int64_t outer, int64_t r, int64_t inner, float* y, int32_t* idx) {
  parallel_for(outer, grain_for(r * inner), [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; o++)
      for (int64_t i = 0; i < inner; i++) {
        const float* p = x + o * r * inner + i;
        float best = p[0];
        int32_t bi = 0;
        for (int64_t k = 1; k < r; k++) {
          float v = p[k * inner];
          if (v > best || (v != v && best == best)) {  // NaN wins, as in PyTorch
            best = v;
            bi = int32_t(k);
          }
        }
        y[o * inner + i] = best;
        idx[o * inner + i] = bi;
      }
  });
}

void max_axis_backward(const float* dy, const int32_t* idx, int64_t outer, int64_t r, int64_t inner,
                       float* dx) {
  std::memset(dx, 0, size_t(outer * r * inner) * sizeof(float));
  parallel_for(outer, grain_for(inner), [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; o++)
      for (int64_t i = 0; i < inner; i++)
        dx[(o * r + idx[o * inner + i]) * inner + i] = dy[o * inner + i];
  });
}

void expand_axis(const float* y, int64_t outer, int64_t r, int64_t inner, float* x) {
  parallel_for(outer, grain_for(r * inner), [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; o++)
      for (int64_t k = 0; k < r; k++) std::memcpy(x + (o * r + k) * inner, y + o * inner, size_t(inner) * sizeof(float));
  });
}

}  // namespace

const ReduceKernels reduce_kernels = {sum_axis, max_axis, max_axis_backward, expand_axis};

}  // namespace kw::cpu
