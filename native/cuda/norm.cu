// CUDA batch norm over [N, C, S] and layer norm over the C axis of [outer, C, inner], forward
// and backward. Specification: native/cpu/norm.cpp (statistics in double, saved as
// (mean, invstd), PyTorch's running-stat update with the unbiased variance).
// Batch norm splits each channel's sums over many blocks (below); layer norm uses one thread
// per normalised vector and one block per channel for the parameter gradients.
#include "cuda/common.cuh"
#include "cuda/tables.h"

namespace kw::cuda {
namespace {

// Block-wide sum in double (blockDim.x == kThreads).
__device__ double block_sum_d(double v) {
  __shared__ double s[kThreads];
  __syncthreads();
  s[threadIdx.x] = v;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  return s[0];
}

// Batch norm reduces over (N, S) for each channel. One block per channel leaves most of the GPU
// idle on early layers (64 channels of 1.6M elements each), so the sums are split: a 2-D grid of
// (chunk, channel) blocks writes per-chunk partial sums in double, one thread per channel adds
// its chunks in a fixed order (deterministic), and an elementwise pass applies the result.
constexpr int64_t kBnChunk = 16384;

enum class BnSum : int { X = 0, SqDev = 1, Grad = 2 };

__device__ __forceinline__ int64_t bn_offset(int64_t t, int64_t c, int64_t s, int64_t ch) {
  return ((t / s) * c + ch) * s + t % s;  // element t of channel ch in [N, C, S]
}

// part[(ch·chunks + chunk)·2 + {0, 1}]: X: Σx; SqDev: Σ(x − mean)²; Grad: Σdy and Σdy·(x − mean).
__global__ void bn_partial_kernel(BnSum what, const float* x, const float* dy, int64_t n, int64_t c, int64_t s,
                                  const double* mean_d, const float* mean_f, int64_t chunks, double* part) {
  int64_t ch = blockIdx.y, chunk = blockIdx.x, count = n * s;
  int64_t t0 = chunk * kBnChunk, t1 = min(count, t0 + kBnChunk);
  double m = what == BnSum::SqDev ? mean_d[ch] : what == BnSum::Grad ? double(mean_f[ch]) : 0.0;
  double a = 0, b = 0;
  for (int64_t t = t0 + threadIdx.x; t < t1; t += blockDim.x) {
    int64_t o = bn_offset(t, c, s, ch);
    if (what == BnSum::X) {
      a += x[o];
    } else if (what == BnSum::SqDev) {
      double d = x[o] - m;
      a += d * d;
    } else {
      a += dy[o];
      b += double(dy[o]) * (x[o] - m);
    }
  }
  a = block_sum_d(a);
  b = block_sum_d(b);
  if (threadIdx.x == 0) {
    part[(ch * chunks + chunk) * 2] = a;
    part[(ch * chunks + chunk) * 2 + 1] = b;
  }
}

void bn_partials(BnSum what, const float* x, const float* dy, int64_t n, int64_t c, int64_t s, const double* mean_d,
                 const float* mean_f, int64_t chunks, double* part) {
  dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(c), 1u);
  bn_partial_kernel<<<grid, kThreads, 0, stream()>>>(what, x, dy, n, c, s, mean_d, mean_f, chunks, part);
  KW_LAUNCH_CHECK();
}

__device__ __forceinline__ void chunk_sums(const double* part, int64_t ch, int64_t chunks, double& a, double& b) {
  a = 0, b = 0;
  for (int64_t k = 0; k < chunks; k++) a += part[(ch * chunks + k) * 2], b += part[(ch * chunks + k) * 2 + 1];
}

__global__ void bn_mean_kernel(const double* part, int64_t c, int64_t chunks, int64_t count, double* mean_d) {
  KW_FOR(ch, c) {
    double a, b;
    chunk_sums(part, ch, chunks, a, b);
    mean_d[ch] = a / double(count);
  }
}

// The statistics actually used (batch or running), the running update, and y = x·scale + shift.
__global__ void bn_stats_kernel(const double* part, const double* mean_d, int64_t c, int64_t chunks, int64_t count,
                                const float* weight, const float* bias, float* running_mean, float* running_var,
                                bool training, float momentum, float eps, float* save_mean, float* save_invstd,
                                float* scale, float* shift) {
  KW_FOR(ch, c) {
    double mean, var;
    if (training) {
      double sq, unused;
      chunk_sums(part, ch, chunks, sq, unused);
      mean = mean_d[ch];
      var = sq / double(count);
      if (running_mean) running_mean[ch] = float((1.0 - momentum) * running_mean[ch] + momentum * mean);
      if (running_var) running_var[ch] = float((1.0 - momentum) * running_var[ch] + momentum * (sq / double(count - 1)));
    } else {
      mean = running_mean[ch];
      var = running_var[ch];
    }
    double invstd = 1.0 / sqrt(var + double(eps));
    double g = weight ? weight[ch] : 1.0;
    save_mean[ch] = float(mean);
    save_invstd[ch] = float(invstd);
    scale[ch] = float(invstd * g);
    shift[ch] = float((bias ? bias[ch] : 0.0) - mean * invstd * g);
  }
}

__global__ void bn_apply_kernel(const float* x, int64_t total, int64_t c, int64_t s, const float* scale,
                                const float* shift, float* y) {
  KW_FOR(o, total) {
    int64_t ch = (o / s) % c;
    y[o] = x[o] * scale[ch] + shift[ch];
  }
}

void batch_norm_forward(const float* x, int64_t n, int64_t c, int64_t s, const float* weight, const float* bias,
                        float* running_mean, float* running_var, bool training, float momentum, float eps, float* y,
                        float* save_mean, float* save_invstd) {
  if (c == 0) return;
  KW_CHECK(c <= 65535, "CUDA batch norm supports up to 65535 channels, got ", c);
  int64_t count = n * s, chunks = std::max<int64_t>(1, (count + kBnChunk - 1) / kBnChunk);
  Scratch part(training ? sizeof(double) * size_t(c * chunks * 2) : 0), mean_d(sizeof(double) * size_t(c));
  Scratch coef(floats(2 * c));
  if (training) {
    bn_partials(BnSum::X, x, nullptr, n, c, s, nullptr, nullptr, chunks, part.as<double>());
    bn_mean_kernel<<<blocks_for(c), kThreads, 0, stream()>>>(part.as<double>(), c, chunks, count, mean_d.as<double>());
    KW_LAUNCH_CHECK();
    bn_partials(BnSum::SqDev, x, nullptr, n, c, s, mean_d.as<double>(), nullptr, chunks, part.as<double>());
  }
  bn_stats_kernel<<<blocks_for(c), kThreads, 0, stream()>>>(part.as<double>(), mean_d.as<double>(), c, chunks, count,
                                                            weight, bias, running_mean, running_var, training, momentum,
                                                            eps, save_mean, save_invstd, coef.as<float>(),
                                                            coef.as<float>() + c);
  KW_LAUNCH_CHECK();
  if (n * c * s == 0) return;
  bn_apply_kernel<<<blocks_for(n * c * s), kThreads, 0, stream()>>>(x, n * c * s, c, s, coef.as<float>(),
                                                                    coef.as<float>() + c, y);
  KW_LAUNCH_CHECK();
}

// dweight = Σdy·x̂, dbias = Σdy, and the per-channel coefficients of dx = A·dy + B·(x − mean) + C.
__global__ void bn_grad_coef_kernel(const double* part, int64_t c, int64_t chunks, int64_t count, const float* weight,
                                    const float* save_invstd, bool training, float* dweight, float* dbias, float* coef) {
  KW_FOR(ch, c) {
    double sum_dy, sum_dy_xmu;
    chunk_sums(part, ch, chunks, sum_dy, sum_dy_xmu);
    double invstd = save_invstd[ch];
    double sum_dy_xhat = sum_dy_xmu * invstd;
    if (dweight) dweight[ch] = float(sum_dy_xhat);
    if (dbias) dbias[ch] = float(sum_dy);
    double gs = (weight ? weight[ch] : 1.0) * invstd;
    coef[ch] = float(gs);
    coef[c + ch] = training ? float(-gs * invstd * sum_dy_xhat / double(count)) : 0.f;
    coef[2 * c + ch] = training ? float(-gs * sum_dy / double(count)) : 0.f;
  }
}

__global__ void bn_dx_kernel(const float* dy, const float* x, int64_t total, int64_t c, int64_t s,
                             const float* save_mean, const float* coef, bool training, float* dx) {
  KW_FOR(o, total) {
    int64_t ch = (o / s) % c;
    dx[o] = training ? coef[ch] * dy[o] + coef[c + ch] * (x[o] - save_mean[ch]) + coef[2 * c + ch] : dy[o] * coef[ch];
  }
}

void batch_norm_backward(const float* dy, const float* x, int64_t n, int64_t c, int64_t s, const float* weight,
                         const float* save_mean, const float* save_invstd, bool training, float* dx, float* dweight,
                         float* dbias) {
  if (c == 0) return;
  KW_CHECK(c <= 65535, "CUDA batch norm supports up to 65535 channels, got ", c);
  int64_t count = n * s, chunks = std::max<int64_t>(1, (count + kBnChunk - 1) / kBnChunk);
  Scratch part(sizeof(double) * size_t(c * chunks * 2)), coef(floats(3 * c));
  bn_partials(BnSum::Grad, x, dy, n, c, s, nullptr, save_mean, chunks, part.as<double>());
  bn_grad_coef_kernel<<<blocks_for(c), kThreads, 0, stream()>>>(part.as<double>(), c, chunks, count, weight,
                                                                save_invstd, training, dweight, dbias, coef.as<float>());
  KW_LAUNCH_CHECK();
  if (!dx || count * c == 0) return;
  bn_dx_kernel<<<blocks_for(n * c * s), kThreads, 0, stream()>>>(dy, x, n * c * s, c, s, save_mean, coef.as<float>(),
                                                                 training, dx);
  KW_LAUNCH_CHECK();
}

// One thread per (o, i): the C values it normalises are inner apart.
__global__ void ln_forward_kernel(const float* x, int64_t outer, int64_t c, int64_t inner, const float* weight,
                                  const float* bias, float eps, float* y, float* save_mean, float* save_invstd) {
  KW_FOR(t, outer * inner) {
    int64_t o = t / inner, i = t % inner;
    const float* p = x + o * c * inner + i;
    double mean = 0, var = 0;
    for (int64_t k = 0; k < c; k++) mean += p[k * inner];
    mean /= double(c);
    for (int64_t k = 0; k < c; k++) {
      double d = p[k * inner] - mean;
      var += d * d;
    }
    double invstd = 1.0 / sqrt(var / double(c) + double(eps));
    save_mean[t] = float(mean);
    save_invstd[t] = float(invstd);
    float* q = y + o * c * inner + i;
    for (int64_t k = 0; k < c; k++)
      q[k * inner] = float((p[k * inner] - mean) * invstd * (weight ? weight[k] : 1.0) + (bias ? bias[k] : 0.0));
  }
}

void layer_norm_forward(const float* x, int64_t outer, int64_t c, int64_t inner, const float* weight, const float* bias,
                        float eps, float* y, float* save_mean, float* save_invstd) {
  if (outer * inner == 0) return;
  ln_forward_kernel<<<blocks_for(outer * inner), kThreads, 0, stream()>>>(x, outer, c, inner, weight, bias, eps, y,
                                                                          save_mean, save_invstd);
  KW_LAUNCH_CHECK();
}

__global__ void ln_backward_dx_kernel(const float* dy, const float* x, int64_t outer, int64_t c, int64_t inner,
                                      const float* weight, const float* save_mean, const float* save_invstd,
                                      float* dx) {
  KW_FOR(t, outer * inner) {
    int64_t o = t / inner, i = t % inner, base = o * c * inner + i;
    double m = save_mean[t], s = save_invstd[t], mg = 0, mgx = 0;
    for (int64_t k = 0; k < c; k++) {
      double g = double(dy[base + k * inner]) * (weight ? weight[k] : 1.0);
      mg += g;
      mgx += g * (x[base + k * inner] - m) * s;
    }
    mg /= double(c);
    mgx /= double(c);
    for (int64_t k = 0; k < c; k++) {
      double xhat = (x[base + k * inner] - m) * s;
      dx[base + k * inner] = float(s * (dy[base + k * inner] * (weight ? weight[k] : 1.0) - mg - xhat * mgx));
    }
  }
}

// One block per channel k: dweight[k] = Σ dy·x̂, dbias[k] = Σ dy over every (o, i).
__global__ void ln_backward_params_kernel(const float* dy, const float* x, int64_t outer, int64_t c, int64_t inner,
                                          const float* save_mean, const float* save_invstd, float* dweight,
                                          float* dbias) {
  int64_t k = blockIdx.x;
  double aw = 0, ab = 0;
  for (int64_t t = threadIdx.x; t < outer * inner; t += blockDim.x) {
    int64_t o = t / inner, i = t % inner, idx = (o * c + k) * inner + i;
    aw += double(dy[idx]) * (x[idx] - save_mean[t]) * save_invstd[t];
    ab += dy[idx];
  }
  aw = block_sum_d(aw);
  ab = block_sum_d(ab);
  if (threadIdx.x == 0) {
    if (dweight) dweight[k] = float(aw);
    if (dbias) dbias[k] = float(ab);
  }
}

void layer_norm_backward(const float* dy, const float* x, int64_t outer, int64_t c, int64_t inner, const float* weight,
                         const float* save_mean, const float* save_invstd, float* dx, float* dweight, float* dbias) {
  if (outer * inner == 0 || c == 0) return;
  if (dx) {
    ln_backward_dx_kernel<<<blocks_for(outer * inner), kThreads, 0, stream()>>>(dy, x, outer, c, inner, weight,
                                                                                save_mean, save_invstd, dx);
    KW_LAUNCH_CHECK();
  }
  if (dweight || dbias) {
    ln_backward_params_kernel<<<unsigned(c), kThreads, 0, stream()>>>(dy, x, outer, c, inner, save_mean, save_invstd,
                                                                      dweight, dbias);
    KW_LAUNCH_CHECK();
  }
}

}  // namespace

const NormKernels norm_kernels = {batch_norm_forward, batch_norm_backward, layer_norm_forward, layer_norm_backward};

}  // namespace kw::cuda
