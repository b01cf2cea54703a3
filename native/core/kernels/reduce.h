// Reductions along one axis of a tensor viewed as [outer, reduce, inner]; several axes are
// reduced one after another by the caller.
#pragma once
#include <cstdint>

namespace kw {

struct ReduceKernels {
  void (*sum_axis)(const float* x, int64_t outer, int64_t r, int64_t inner, float* y);
  // y = max over the axis, idx = its position (first on ties), kept for the backward pass.
  void (*max_axis)(const float* x, int64_t outer, int64_t r, int64_t inner, float* y, int32_t* idx);
  // dx = 0 except dx[argmax] = dy.
  void (*max_axis_backward)(const float* dy, const int32_t* idx, int64_t outer, int64_t r,
                            int64_t inner, float* dx);
  // Expands y [outer, 1, inner] back to [outer, r, inner] (the backward of sum_axis).
  void (*expand_axis)(const float* y, int64_t outer, int64_t r, int64_t inner, float* x);
};

}  // namespace kw
