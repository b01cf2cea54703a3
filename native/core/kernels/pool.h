// 2-D pooling kernels on [planes, H, W] (planes = N·C), PyTorch semantics: max pooling pads
// with -inf and remembers the argmax (a flat h·W + w index in its plane) for the backward pass;
// average pooling divides by the padded or the clipped window size; adaptive average pooling
// uses windows [floor(i·H/oh), ceil((i+1)·H/oh)). 1-D pooling is the H = 1 case.
#pragma once
#include <cstdint>

#include "core/shape.h"

namespace kw {

struct Pool2dGeometry {
  int64_t planes, h, w;  // input
  int64_t oh, ow;        // output
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
};

// PyTorch's pooling_output_shape: floor (or ceil) of the sliding-window count, and in ceil mode
// the last window must start inside the input or the left padding.
inline int64_t pool_output_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dilation, bool ceil_mode) {
  int64_t num = in + 2 * pad - dilation * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  int64_t q = num >= 0 ? num / stride : -((-num + stride - 1) / stride);  // floor division
  int64_t out = q + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) out--;
  return out;
}

struct PoolKernels {
  void (*max_pool2d)(const float* x, const Pool2dGeometry& g, float* y, int32_t* idx);
  // dx = Σ dy over the outputs whose argmax is each input (idx < 0 marks an all-padding window).
  void (*max_pool2d_backward)(const float* dy, const int32_t* idx, const Pool2dGeometry& g, float* dx);
  void (*avg_pool2d)(const float* x, const Pool2dGeometry& g, bool count_include_pad, float* y);
  void (*avg_pool2d_backward)(const float* dy, const Pool2dGeometry& g, bool count_include_pad, float* dx);
  // Uses planes, h, w, oh, ow of g only.
  void (*adaptive_avg_pool2d)(const float* x, const Pool2dGeometry& g, float* y);
  void (*adaptive_avg_pool2d_backward)(const float* dy, const Pool2dGeometry& g, float* dx);
};

}  // namespace kw
