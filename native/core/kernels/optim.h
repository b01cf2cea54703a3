// In-place parameter updates and the few in-place helpers training needs (EMA, scaling,
// copies, squared norms). One fused pass per parameter.
#pragma once
#include <cstdint>

namespace kw {

struct SgdConfig {
  float lr, momentum, dampening, weight_decay;
  bool nesterov;
  bool first_step;  // PyTorch seeds the momentum buffer with the first gradient
};

struct AdamConfig {
  float lr, beta1, beta2, eps, weight_decay;
  bool decoupled;  // AdamW: decay the weights directly instead of adding wd·p to the gradient
  int64_t step;    // 1-based, for the bias corrections
};

struct OptimKernels {
  void (*sgd_step)(float* param, const float* grad, float* momentum_buf, int64_t n, const SgdConfig& c);
  void (*adam_step)(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
                    const AdamConfig& c);
  void (*lerp_inplace)(float* dst, const float* src, int64_t n, float w);  // dst += w·(src − dst)
  void (*scale_inplace)(float* x, int64_t n, float s);
  void (*add_inplace)(float* dst, const float* src, int64_t n, float alpha);  // dst += alpha·src
  double (*sum_squares)(const float* x, int64_t n);
};

}  // namespace kw
