// Convolution kernels (PyTorch semantics: cross-correlation, NC(D)(H)W, weight
// [out, in/groups, k...]), forward and backward, with shared or per-sample weights.
#pragma once
#include <cstdint>

#include "core/shape.h"

namespace kw {

// The geometry of one convolution, always as 3 spatial dims (D, H, W): 1-D and 2-D convs
// fill the leading dims with size 1, kernel 1, stride 1, no padding, dilation 1.
struct ConvGeometry {
  int64_t batch = 0, in_channels = 0, out_channels = 0, groups = 1;
  int64_t in[3] = {1, 1, 1};
  int64_t out[3] = {1, 1, 1};
  int64_t kernel[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1};
  int64_t pad_lo[3] = {0, 0, 0};  // zeros before the input along each dim
  int64_t pad_hi[3] = {0, 0, 0};  // and after it (only out[] depends on it)
  int64_t dilation[3] = {1, 1, 1};
  // Weight [B, out, in/groups, k...]: sample b uses its own kernel (KernelWarehouse).
  bool per_sample_weight = false;

  int64_t in_per_group() const { return in_channels / groups; }
  int64_t out_per_group() const { return out_channels / groups; }
  int64_t in_spatial() const { return in[0] * in[1] * in[2]; }
  int64_t out_spatial() const { return out[0] * out[1] * out[2]; }
  int64_t kernel_size() const { return kernel[0] * kernel[1] * kernel[2]; }
  int64_t weight_numel_per_sample() const { return out_channels * in_per_group() * kernel_size(); }
};

struct ConvKernels {
  // y [B, out, out...] = conv(x [B, in, in...], w) + bias [out] (bias may be null).
  void (*forward)(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y);
  // Gradients from dy [B, out, out...]; a null output pointer means "not needed".
  // dx needs w; dw needs x. dw has w's shape (per-sample: [B, out, in/groups, k...]).
  void (*backward)(const ConvGeometry& g, const float* dy, const float* x, const float* w, float* dx,
                   float* dw, float* db);
};

}  // namespace kw
