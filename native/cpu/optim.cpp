// CPU optimizer updates with PyTorch's exact formulas (torch.optim.SGD / Adam / AdamW,
// single-tensor path), fused into one pass over each parameter.
#include <cmath>

#include "core/thread_pool.h"
#include "cpu/tables.h"

namespace kw::cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;

void sgd_step(float* p, const float* g, float* buf, int64_t n, const SgdConfig& c) {
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) {
      float d = g[i] + c.weight_decay * p[i];
      if (c.momentum != 0.f) {
        float b = c.first_step ? d : c.momentum * buf[i] + (1.f - c.dampening) * d;
        buf[i] = b;
        d = c.nesterov ? d + c.momentum * b : b;
      }
      p[i] -= c.lr * d;
    }
  });
}

void adam_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamConfig& c) {
  float bc1 = 1.f - float(std::pow(double(c.beta1), double(c.step)));
  float bc2 = 1.f - float(std::pow(double(c.beta2), double(c.step)));
  float step_size = c.lr / bc1;
  float bc2_sqrt = std::sqrt(bc2);
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) {
      float gi = g[i];
      if (c.decoupled)
        p[i] *= 1.f - c.lr * c.weight_decay;
      else
        gi += c.weight_decay * p[i];
      m[i] += (gi - m[i]) * (1.f - c.beta1);  // lerp, as torch does
      v[i] = c.beta2 * v[i] + (1.f - c.beta2) * gi * gi;
      float denom = std::sqrt(v[i]) / bc2_sqrt + c.eps;
      p[i] -= step_size * m[i] / denom;
    }
  });
}

void lerp_inplace(float* dst, const float* src, int64_t n, float w) {
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) dst[i] += w * (src[i] - dst[i]);
  });
}

void scale_inplace(float* x, int64_t n, float s) {
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) x[i] *= s;
  });
}

void add_inplace(float* dst, const float* src, int64_t n, float alpha) {
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) dst[i] += alpha * src[i];
  });
}

double sum_squares(const float* x, int64_t n) {
  double acc = 0;
  for (int64_t i = 0; i < n; i++) acc += double(x[i]) * double(x[i]);
  return acc;
}

}  // namespace

const OptimKernels optim_kernels = {sgd_step, adam_step, lerp_inplace, scale_inplace, add_inplace, sum_squares};

}  // namespace kw::cpu
