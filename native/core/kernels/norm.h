// Normalisation kernels: batch norm over [N, C, S] (S = product of the spatial dims, 1 for
// BatchNorm1d on [N, C]) and layer norm over the C axis of [outer, C, inner] (inner = 1 for
// channels-last, H·W for ConvNeXt's channels-first form). Statistics are saved as (mean, invstd)
// so the backward pass never recomputes them. Optional pointers (weight, bias, running stats,
// gradients that are not wanted) may be null.
#pragma once
#include <cstdint>

#include "core/shape.h"

namespace kw {

struct NormKernels {
  // training: normalise with the batch mean and biased variance over (N, S); when running_mean
  // and running_var are given, update them in place as PyTorch does:
  //   running = (1 - momentum)·running + momentum·stat, using the UNBIASED variance (n/(n-1)).
  // eval: normalise with the running stats (both required).
  // save_mean / save_invstd [C] receive the statistics actually used.
  void (*batch_norm_forward)(const float* x, int64_t n, int64_t c, int64_t s, const float* weight,
                             const float* bias, float* running_mean, float* running_var, bool training,
                             float momentum, float eps, float* y, float* save_mean, float* save_invstd);
  // training: the gradient through the batch statistics; eval: the affine map only.
  void (*batch_norm_backward)(const float* dy, const float* x, int64_t n, int64_t c, int64_t s,
                              const float* weight, const float* save_mean, const float* save_invstd,
                              bool training, float* dx, float* dweight, float* dbias);
  // mean / invstd are [outer·inner], indexed o·inner + i.
  void (*layer_norm_forward)(const float* x, int64_t outer, int64_t c, int64_t inner, const float* weight,
                             const float* bias, float eps, float* y, float* save_mean, float* save_invstd);
  void (*layer_norm_backward)(const float* dy, const float* x, int64_t outer, int64_t c, int64_t inner,
                              const float* weight, const float* save_mean, const float* save_invstd,
                              float* dx, float* dweight, float* dbias);
  // relu(batch_norm(x)) in one pass and its backward (which recomputes the mask from x, weight
  // and bias); null where a backend has no fused form (the TS layer composes batch norm + relu).
  void (*batch_norm_relu_forward)(const float* x, int64_t n, int64_t c, int64_t s, const float* weight,
                                  const float* bias, float* running_mean, float* running_var, bool training,
                                  float momentum, float eps, float* y, float* save_mean, float* save_invstd);
  void (*batch_norm_relu_backward)(const float* dy, const float* x, int64_t n, int64_t c, int64_t s,
                                   const float* weight, const float* bias, const float* save_mean,
                                   const float* save_invstd, bool training, float* dx, float* dweight, float* dbias);
};

}  // namespace kw
