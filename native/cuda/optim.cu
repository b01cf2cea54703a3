// CUDA optimizer updates and in-place training helpers. Specification: native/cpu/optim.cpp
// (PyTorch's single-tensor SGD / Adam / AdamW formulas, in the same float operation order).
#include <cmath>

#include "cuda/common.cuh"
#include "cuda/tables.h"

namespace kw::cuda {
namespace {

__global__ void sgd_kernel(float* p, const float* g, float* buf, int64_t n, SgdConfig c) {
  KW_FOR(i, n) {
    float d = g[i] + c.weight_decay * p[i];
    if (c.momentum != 0.f) {
      float b = c.first_step ? d : c.momentum * buf[i] + (1.f - c.dampening) * d;
      buf[i] = b;
      d = c.nesterov ? d + c.momentum * b : b;
    }
    p[i] -= c.lr * d;
  }
}

void sgd_step(float* p, const float* g, float* buf, int64_t n, const SgdConfig& c) {
  if (n == 0) return;
  sgd_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(p, g, buf, n, c);
  KW_LAUNCH_CHECK();
}

__global__ void adam_kernel(float* p, const float* g, float* m, float* v, int64_t n, AdamConfig c, float step_size,
                            float bc2_sqrt) {
  KW_FOR(i, n) {
    float gi = g[i];
    if (c.decoupled)
      p[i] *= 1.f - c.lr * c.weight_decay;
    else
      gi += c.weight_decay * p[i];
    m[i] += (gi - m[i]) * (1.f - c.beta1);
    v[i] = c.beta2 * v[i] + (1.f - c.beta2) * gi * gi;
    float denom = sqrtf(v[i]) / bc2_sqrt + c.eps;
    p[i] -= step_size * m[i] / denom;
  }
}

void adam_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamConfig& c) {
  if (n == 0) return;
  // The bias corrections are computed on the host in double, exactly as the CPU kernel does.
  float bc1 = 1.f - float(std::pow(double(c.beta1), double(c.step)));
  float bc2 = 1.f - float(std::pow(double(c.beta2), double(c.step)));
  adam_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(p, g, m, v, n, c, c.lr / bc1, std::sqrt(bc2));
  KW_LAUNCH_CHECK();
}

__global__ void lerp_kernel(float* dst, const float* src, int64_t n, float w) { KW_FOR(i, n) dst[i] += w * (src[i] - dst[i]); }
__global__ void scale_kernel(float* x, int64_t n, float s) { KW_FOR(i, n) x[i] *= s; }
__global__ void add_kernel(float* dst, const float* src, int64_t n, float a) { KW_FOR(i, n) dst[i] += a * src[i]; }

void lerp_inplace(float* dst, const float* src, int64_t n, float w) {
  if (n == 0) return;
  lerp_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(dst, src, n, w);
  KW_LAUNCH_CHECK();
}
void scale_inplace(float* x, int64_t n, float s) {
  if (n == 0) return;
  scale_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(x, n, s);
  KW_LAUNCH_CHECK();
}
void add_inplace(float* dst, const float* src, int64_t n, float a) {
  if (n == 0) return;
  add_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(dst, src, n, a);
  KW_LAUNCH_CHECK();
}

// Per-block partial sums in double, summed on the host: gradient clipping needs one number.
__global__ void sum_squares_kernel(const float* x, int64_t n, double* partial) {
  double acc = 0;
  KW_FOR(i, n) acc += double(x[i]) * double(x[i]);
  __shared__ double s[kThreads];
  s[threadIdx.x] = acc;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = s[0];
}

double sum_squares(const float* x, int64_t n) {
  if (n == 0) return 0;
  unsigned blocks = std::min<unsigned>(blocks_for(n), 1024);
  Scratch partial(sizeof(double) * blocks);
  sum_squares_kernel<<<blocks, kThreads, 0, stream()>>>(x, n, partial.as<double>());
  KW_LAUNCH_CHECK();
  double host[1024];
  KW_CUDA_CHECK(cudaMemcpyAsync(host, partial.ptr, sizeof(double) * blocks, cudaMemcpyDeviceToHost, stream()));
  KW_CUDA_CHECK(cudaStreamSynchronize(stream()));
  double acc = 0;
  for (unsigned b = 0; b < blocks; b++) acc += host[b];
  return acc;
}

}  // namespace

const OptimKernels optim_kernels = {sgd_step, adam_step, lerp_inplace, scale_inplace, add_inplace, sum_squares};

}  // namespace kw::cuda
