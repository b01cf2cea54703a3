// CPU optimizer updates with PyTorch's exact formulas (torch.optim.SGD / Adam / AdamW,
// single-tensor path), fused into one pass over each parameter.
#include <cmath>

#include "core/thread_pool.h"
#include "cpu/tables.h"

namespace kw::cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;

// The config is copied into locals and the pointers marked restrict: read through the const
// reference, every store to p/buf might alias it, so the loop reloaded lr/momentum per element
// and never vectorized (sgdStep was ~9% of a ResNet-18 step). The branch flags become template
// parameters so each variant is a straight vector loop. Formulas are unchanged, except that a
// zero weight decay is skipped as torch does (g + 0·p would turn an inf weight into a NaN).
template <bool kDecay, bool kMomentum, bool kFirst, bool kNesterov>
void sgd_loop(float* __restrict p, const float* __restrict g, float* __restrict buf, int64_t lo, int64_t hi,
              float lr, float wd, float mom, float damp1) {
  for (int64_t i = lo; i < hi; i++) {
    float d = g[i];
    if (kDecay) d += wd * p[i];
    if (kMomentum) {
      float b = kFirst ? d : mom * buf[i] + damp1 * d;
      buf[i] = b;
      d = kNesterov ? d + mom * b : b;
    }
    p[i] -= lr * d;
  }
}

template <bool kDecay>
void sgd_dispatch(float* p, const float* g, float* buf, int64_t lo, int64_t hi, const SgdConfig& c) {
  const float lr = c.lr, wd = c.weight_decay, mom = c.momentum, damp1 = 1.f - c.dampening;
  if (mom == 0.f)
    sgd_loop<kDecay, false, false, false>(p, g, buf, lo, hi, lr, wd, mom, damp1);
  else if (c.first_step)
    c.nesterov ? sgd_loop<kDecay, true, true, true>(p, g, buf, lo, hi, lr, wd, mom, damp1)
               : sgd_loop<kDecay, true, true, false>(p, g, buf, lo, hi, lr, wd, mom, damp1);
  else
    c.nesterov ? sgd_loop<kDecay, true, false, true>(p, g, buf, lo, hi, lr, wd, mom, damp1)
               : sgd_loop<kDecay, true, false, false>(p, g, buf, lo, hi, lr, wd, mom, damp1);
}

void sgd_step(float* p, const float* g, float* buf, int64_t n, const SgdConfig& c) {
  const SgdConfig cfg = c;
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
    if (cfg.weight_decay != 0.f)
      sgd_dispatch<true>(p, g, buf, lo, hi, cfg);
    else
      sgd_dispatch<false>(p, g, buf, lo, hi, cfg);
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
