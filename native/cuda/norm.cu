// CUDA batch norm over [N, C, S] and layer norm over the C axis of [outer, C, inner], forward
// and backward. Specification: native/cpu/norm.cpp (statistics in double, saved as
// (mean, invstd), PyTorch's running-stat update with the unbiased variance).
// Batch norm uses one block per channel; layer norm one thread per normalised vector and one
// block per channel for the parameter gradients. Correct first; see the report for tuning.
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

__global__ void bn_forward_kernel(const float* x, int64_t n, int64_t c, int64_t s, const float* weight,
                                  const float* bias, float* running_mean, float* running_var, bool training,
                                  float momentum, float eps, float* y, float* save_mean, float* save_invstd) {
  int64_t ch = blockIdx.x, count = n * s;
  double mean, var;
  if (training) {
    double acc = 0;
    for (int64_t t = threadIdx.x; t < count; t += blockDim.x) acc += x[((t / s) * c + ch) * s + t % s];
    mean = block_sum_d(acc) / double(count);
    acc = 0;
    for (int64_t t = threadIdx.x; t < count; t += blockDim.x) {
      double d = x[((t / s) * c + ch) * s + t % s] - mean;
      acc += d * d;
    }
    double sq = block_sum_d(acc);
    var = sq / double(count);
    if (threadIdx.x == 0) {
      if (running_mean) running_mean[ch] = float((1.0 - momentum) * running_mean[ch] + momentum * mean);
      if (running_var) running_var[ch] = float((1.0 - momentum) * running_var[ch] + momentum * (sq / double(count - 1)));
    }
  } else {
    mean = running_mean[ch];
    var = running_var[ch];
  }
  double invstd = 1.0 / sqrt(var + double(eps));
  double g = weight ? weight[ch] : 1.0;
  float a = float(invstd * g), b = float((bias ? bias[ch] : 0.0) - mean * invstd * g);
  if (threadIdx.x == 0) {
    save_mean[ch] = float(mean);
    save_invstd[ch] = float(invstd);
  }
  for (int64_t t = threadIdx.x; t < count; t += blockDim.x) {
    int64_t o = ((t / s) * c + ch) * s + t % s;
    y[o] = x[o] * a + b;
  }
}

void batch_norm_forward(const float* x, int64_t n, int64_t c, int64_t s, const float* weight, const float* bias,
                        float* running_mean, float* running_var, bool training, float momentum, float eps, float* y,
                        float* save_mean, float* save_invstd) {
  if (c == 0) return;
  KW_CHECK(c <= 0x7fffffff, "batch norm: too many channels");
  bn_forward_kernel<<<unsigned(c), kThreads, 0, stream()>>>(x, n, c, s, weight, bias, running_mean, running_var,
                                                            training, momentum, eps, y, save_mean, save_invstd);
  KW_LAUNCH_CHECK();
}

__global__ void bn_backward_kernel(const float* dy, const float* x, int64_t n, int64_t c, int64_t s,
                                   const float* weight, const float* save_mean, const float* save_invstd,
                                   bool training, float* dx, float* dweight, float* dbias) {
  int64_t ch = blockIdx.x, count = n * s;
  double m = save_mean[ch], invstd = save_invstd[ch];
  double a = 0, b = 0;
  for (int64_t t = threadIdx.x; t < count; t += blockDim.x) {
    int64_t o = ((t / s) * c + ch) * s + t % s;
    a += dy[o];
    b += double(dy[o]) * (x[o] - m);
  }
  double sum_dy = block_sum_d(a);
  double sum_dy_xhat = block_sum_d(b) * invstd;
  if (threadIdx.x == 0) {
    if (dweight) dweight[ch] = float(sum_dy_xhat);
    if (dbias) dbias[ch] = float(sum_dy);
  }
  if (!dx) return;
  double gs = (weight ? weight[ch] : 1.0) * invstd;
  float A = float(gs), B = training ? float(-gs * invstd * sum_dy_xhat / double(count)) : 0.f,
        C = training ? float(-gs * sum_dy / double(count)) : 0.f, mf = float(m);
  for (int64_t t = threadIdx.x; t < count; t += blockDim.x) {
    int64_t o = ((t / s) * c + ch) * s + t % s;
    dx[o] = training ? A * dy[o] + B * (x[o] - mf) + C : dy[o] * A;
  }
}

void batch_norm_backward(const float* dy, const float* x, int64_t n, int64_t c, int64_t s, const float* weight,
                         const float* save_mean, const float* save_invstd, bool training, float* dx, float* dweight,
                         float* dbias) {
  if (c == 0) return;
  bn_backward_kernel<<<unsigned(c), kThreads, 0, stream()>>>(dy, x, n, c, s, weight, save_mean, save_invstd,
                                                             training, dx, dweight, dbias);
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
