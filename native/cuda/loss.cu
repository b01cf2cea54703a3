// CUDA softmax / log-softmax along an axis and the classification losses, forward and backward.
// Specification: native/cpu/loss.cpp. One thread per softmax vector or per loss row; the row
// losses are reduced by one block in double, like the CPU's fixed-order sum.
#include "cuda/common.cuh"
#include "cuda/tables.h"

namespace kw::cuda {
namespace {

__global__ void softmax_kernel(const float* x, int64_t outer, int64_t r, int64_t inner, bool log_softmax, float* y) {
  KW_FOR(t, outer * inner) {
    int64_t off = (t / inner) * r * inner + t % inner;
    const float* xb = x + off;
    float* yb = y + off;
    float m = -INFINITY;
    for (int64_t k = 0; k < r; k++) m = fmaxf(m, xb[k * inner]);
    double s = 0;
    for (int64_t k = 0; k < r; k++) s += exp(double(xb[k * inner] - m));
    if (log_softmax) {
      float shift = float(m + log(s));
      for (int64_t k = 0; k < r; k++) yb[k * inner] = xb[k * inner] - shift;
    } else {
      double inv = 1.0 / s;
      for (int64_t k = 0; k < r; k++) yb[k * inner] = float(exp(double(xb[k * inner] - m)) * inv);
    }
  }
}

__global__ void softmax_backward_kernel(const float* y, const float* dy, int64_t outer, int64_t r, int64_t inner,
                                        bool log_softmax, float* dx) {
  KW_FOR(t, outer * inner) {
    int64_t off = (t / inner) * r * inner + t % inner;
    double s = 0;
    for (int64_t k = 0; k < r; k++) {
      int64_t j = off + k * inner;
      s += log_softmax ? double(dy[j]) : double(dy[j]) * y[j];
    }
    for (int64_t k = 0; k < r; k++) {
      int64_t j = off + k * inner;
      dx[j] = log_softmax ? float(dy[j] - exp(double(y[j])) * s) : float(y[j] * (dy[j] - s));
    }
  }
}

void softmax(const float* x, int64_t outer, int64_t r, int64_t inner, bool log_softmax, float* y) {
  if (outer * inner * r == 0) return;
  softmax_kernel<<<blocks_for(outer * inner), kThreads, 0, stream()>>>(x, outer, r, inner, log_softmax, y);
  KW_LAUNCH_CHECK();
}

void softmax_backward(const float* y, const float* dy, int64_t outer, int64_t r, int64_t inner, bool log_softmax,
                      float* dx) {
  if (outer * inner * r == 0) return;
  softmax_backward_kernel<<<blocks_for(outer * inner), kThreads, 0, stream()>>>(y, dy, outer, r, inner, log_softmax, dx);
  KW_LAUNCH_CHECK();
}

__device__ __forceinline__ bool ignored(const ClassTarget& t, int64_t i) {
  return !t.probs && t.index[i] == t.ignore_index;
}

// One block: out[0] = Σ rows (Sum) or Σ rows / count (Mean); count = rows not ignored, or n
// for soft targets. Also leaves the count in *count_out for the backward's scale.
__global__ void reduce_rows_kernel(const float* rows, ClassTarget t, int64_t n, Reduction reduction, float* out) {
  __shared__ double s[kThreads];
  __shared__ long long c[kThreads];
  double acc = 0;
  long long k = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    acc += rows[i];
    k += !ignored(t, i);
  }
  s[threadIdx.x] = acc;
  c[threadIdx.x] = k;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w], c[threadIdx.x] += c[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = float(reduction == Reduction::Sum ? s[0] : s[0] / double(c[0]));
}

// The number of rows a mean divides by, on the device (one block).
__global__ void mean_count_kernel(ClassTarget t, int64_t n, double* count) {
  __shared__ long long c[kThreads];
  long long k = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) k += !ignored(t, i);
  c[threadIdx.x] = k;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) c[threadIdx.x] += c[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) *count = double(c[0]);
}

// Row gradient: dy[i] (None), dy[0] (Sum) or dy[0] / count (Mean).
__device__ __forceinline__ double row_grad(const float* dy, Reduction r, const double* count, int64_t i) {
  return r == Reduction::None ? double(dy[i]) : r == Reduction::Sum ? double(dy[0]) : double(dy[0]) / *count;
}

__global__ void ce_kernel(const float* logits, int64_t n, int64_t c, ClassTarget t, double eps, float* rows, float* lse) {
  KW_FOR(i, n) {
    const float* x = logits + i * c;
    float m = -INFINITY;
    for (int64_t k = 0; k < c; k++) m = fmaxf(m, x[k]);
    double s = 0;
    for (int64_t k = 0; k < c; k++) s += exp(double(x[k] - m));
    double l = double(m) + log(s);
    lse[i] = float(l);
    if (ignored(t, i)) {
      rows[i] = 0.f;
      continue;
    }
    double loss = 0;
    if (t.probs) {
      const float* q = t.probs + i * c;
      for (int64_t k = 0; k < c; k++) loss += ((1 - eps) * q[k] + eps / double(c)) * (l - x[k]);
    } else {
      loss = (1 - eps) * (l - x[t.index[i]]);
      if (eps != 0) {
        double sx = 0;
        for (int64_t k = 0; k < c; k++) sx += x[k];
        loss += eps * (l - sx / double(c));
      }
    }
    rows[i] = float(loss);
  }
}

void finish_rows(const float* rows, const ClassTarget& t, int64_t n, Reduction reduction, float* out) {
  if (reduction == Reduction::None) return;  // the rows were written to out directly
  reduce_rows_kernel<<<1, kThreads, 0, stream()>>>(rows, t, n, reduction, out);
  KW_LAUNCH_CHECK();
}

void cross_entropy(const float* logits, int64_t n, int64_t c, const ClassTarget& t, float smoothing,
                   Reduction reduction, float* out, float* lse) {
  Scratch rows(reduction == Reduction::None ? 0 : floats(n));
  float* r = reduction == Reduction::None ? out : rows.as<float>();
  if (n > 0) {
    ce_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(logits, n, c, t, double(smoothing), r, lse);
    KW_LAUNCH_CHECK();
  }
  finish_rows(r, t, n, reduction, out);
}

__global__ void ce_backward_kernel(const float* logits, const float* lse, int64_t n, int64_t c, ClassTarget t,
                                   double eps, Reduction red, const float* dy, const double* count, float* dlogits) {
  KW_FOR(e, n * c) {
    int64_t i = e / c, k = e % c;
    if (ignored(t, i)) {
      dlogits[e] = 0.f;
      continue;
    }
    double g = row_grad(dy, red, count, i), l = lse[i];
    double p = exp(double(logits[e]) - l);
    if (t.probs) {
      const float* q = t.probs + i * c;
      double sq = 0;  // recomputed per element: C is small next to the row count times C
      for (int64_t j = 0; j < c; j++) sq += (1 - eps) * q[j] + eps / double(c);
      dlogits[e] = float(g * (p * sq - ((1 - eps) * q[k] + eps / double(c))));
    } else {
      dlogits[e] = float(g * (p - eps / double(c) - (k == t.index[i] ? 1 - eps : 0.0)));
    }
  }
}

void cross_entropy_backward(const float* logits, const float* lse, int64_t n, int64_t c, const ClassTarget& t,
                            float smoothing, Reduction reduction, const float* dy, float* dlogits) {
  if (n * c == 0) return;
  Scratch count(sizeof(double));
  mean_count_kernel<<<1, kThreads, 0, stream()>>>(t, n, count.as<double>());
  KW_LAUNCH_CHECK();
  ce_backward_kernel<<<blocks_for(n * c), kThreads, 0, stream()>>>(logits, lse, n, c, t, double(smoothing), reduction,
                                                                   dy, count.as<double>(), dlogits);
  KW_LAUNCH_CHECK();
}

__global__ void nll_kernel(const float* logp, int64_t n, int64_t c, ClassTarget t, float* rows) {
  KW_FOR(i, n) rows[i] = ignored(t, i) ? 0.f : -logp[i * c + t.index[i]];
}

void nll_loss(const float* logp, int64_t n, int64_t c, const ClassTarget& t, Reduction reduction, float* out) {
  Scratch rows(reduction == Reduction::None ? 0 : floats(n));
  float* r = reduction == Reduction::None ? out : rows.as<float>();
  if (n > 0) {
    nll_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(logp, n, c, t, r);
    KW_LAUNCH_CHECK();
  }
  finish_rows(r, t, n, reduction, out);
}

__global__ void nll_backward_kernel(int64_t n, int64_t c, ClassTarget t, Reduction red, const float* dy,
                                    const double* count, float* dlogp) {
  KW_FOR(e, n * c) {
    int64_t i = e / c, k = e % c;
    dlogp[e] = !ignored(t, i) && k == t.index[i] ? float(-row_grad(dy, red, count, i)) : 0.f;
  }
}

void nll_loss_backward(int64_t n, int64_t c, const ClassTarget& t, Reduction reduction, const float* dy, float* dlogp) {
  if (n * c == 0) return;
  Scratch count(sizeof(double));
  mean_count_kernel<<<1, kThreads, 0, stream()>>>(t, n, count.as<double>());
  KW_LAUNCH_CHECK();
  nll_backward_kernel<<<blocks_for(n * c), kThreads, 0, stream()>>>(n, c, t, reduction, dy, count.as<double>(), dlogp);
  KW_LAUNCH_CHECK();
}

}  // namespace

const LossKernels loss_kernels = {softmax, softmax_backward, cross_entropy, cross_entropy_backward, nll_loss,
                                  nll_loss_backward};

}  // namespace kw::cuda
