// CUDA elementwise kernels: broadcast binary ops, unary ops and their fused backward.
// Specification: native/cpu/elementwise.cpp (same formulas, same saved-tensor contract).
#include "cuda/common.cuh"
#include "cuda/tables.h"

namespace kw::cuda {
namespace {

constexpr int kMaxDims = 10;

// Output shape and both inputs' broadcast strides (0 on broadcast dims), passed by value.
struct Broadcast {
  int nd;
  int64_t dims[kMaxDims], sa[kMaxDims], sb[kMaxDims];
};

Broadcast make_broadcast(const Shape& as, const Shape& bs, const Shape& os) {
  KW_CHECK(os.size() <= size_t(kMaxDims), "CUDA broadcast supports up to ", kMaxDims, " dimensions, got ", os.size());
  Broadcast b{};
  b.nd = int(os.size());
  auto strides = [&](const Shape& s, int64_t* out) {
    Shape cs = contiguous_strides(s);
    size_t off = os.size() - s.size();
    for (size_t i = 0; i < os.size(); i++) out[i] = i < off || s[i - off] == 1 ? 0 : cs[i - off];
  };
  for (size_t i = 0; i < os.size(); i++) b.dims[i] = os[i];
  strides(as, b.sa);
  strides(bs, b.sb);
  return b;
}

__device__ __forceinline__ float apply(BinaryOp op, float x, float y) {
  switch (op) {
    case BinaryOp::Add: return x + y;
    case BinaryOp::Sub: return x - y;
    case BinaryOp::Mul: return x * y;
    case BinaryOp::Div: return x / y;
    case BinaryOp::Maximum: return x >= y ? x : y;
    case BinaryOp::Minimum: return x <= y ? x : y;
    case BinaryOp::Pow: return powf(x, y);
  }
  return 0.f;
}

__global__ void binary_same(BinaryOp op, const float* a, const float* b, float* out, int64_t n) {
  KW_FOR(i, n) out[i] = apply(op, a[i], b[i]);
}

__global__ void binary_broadcast(BinaryOp op, const float* a, const float* b, float* out, int64_t n, Broadcast g) {
  KW_FOR(i, n) {
    int64_t rem = i, oa = 0, ob = 0;
    for (int d = g.nd - 1; d >= 0; d--) {
      int64_t idx = rem % g.dims[d];
      rem /= g.dims[d];
      oa += idx * g.sa[d];
      ob += idx * g.sb[d];
    }
    out[i] = apply(op, a[oa], b[ob]);
  }
}

void binary(BinaryOp op, const float* a, const Shape& as, const float* b, const Shape& bs, float* out,
            const Shape& os) {
  int64_t n = numel(os);
  if (n == 0) return;
  if (as == os && bs == os)
    binary_same<<<blocks_for(n), kThreads, 0, stream()>>>(op, a, b, out, n);
  else
    binary_broadcast<<<blocks_for(n), kThreads, 0, stream()>>>(op, a, b, out, n, make_broadcast(as, bs, os));
  KW_LAUNCH_CHECK();
}

__device__ __forceinline__ float gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float gelu_grad(float x) {
  float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
  float pdf = expf(-0.5f * x * x) * 0.3989422804014327f;
  return cdf + x * pdf;
}

// std::min(std::max(v, lo), hi) as the CPU computes it: NaN passes through (fminf would drop it).
__device__ __forceinline__ float clamp_like_std(float v, float lo, float hi) {
  float t = v < lo ? lo : v;
  return hi < t ? hi : t;
}

__device__ __forceinline__ float apply(UnaryOp op, float v) {
  switch (op) {
    case UnaryOp::Neg: return -v;
    case UnaryOp::Exp: return expf(v);
    case UnaryOp::Log: return logf(v);
    case UnaryOp::Sqrt: return sqrtf(v);
    case UnaryOp::Abs: return fabsf(v);
    case UnaryOp::Relu: return v > 0.f ? v : 0.f;
    case UnaryOp::Relu6: return clamp_like_std(v, 0.f, 6.f);
    case UnaryOp::Sigmoid: return 1.f / (1.f + expf(-v));
    case UnaryOp::Tanh: return tanhf(v);
    case UnaryOp::Gelu: return gelu(v);
    case UnaryOp::Square: return v * v;
    case UnaryOp::Sign: return float((v > 0.f) - (v < 0.f));
  }
  return 0.f;
}

// dx from dy and the saved input v or output o (the CPU kernel's table, case by case).
__device__ __forceinline__ float apply_backward(UnaryOp op, float v, float o, float g) {
  switch (op) {
    case UnaryOp::Neg: return -g;
    case UnaryOp::Exp: return g * o;
    case UnaryOp::Log: return g / v;
    case UnaryOp::Sqrt: return g * 0.5f / o;
    case UnaryOp::Abs: return v > 0.f ? g : (v < 0.f ? -g : 0.f);
    case UnaryOp::Relu: return v > 0.f ? g : 0.f;
    case UnaryOp::Relu6: return v > 0.f && v < 6.f ? g : 0.f;
    case UnaryOp::Sigmoid: return g * o * (1.f - o);
    case UnaryOp::Tanh: return g * (1.f - o * o);
    case UnaryOp::Gelu: return g * gelu_grad(v);
    case UnaryOp::Square: return 2.f * v * g;
    case UnaryOp::Sign: return 0.f;
  }
  return 0.f;
}

__global__ void unary_kernel(UnaryOp op, const float* x, float* y, int64_t n) { KW_FOR(i, n) y[i] = apply(op, x[i]); }

__global__ void unary_backward_kernel(UnaryOp op, const float* x, const float* y, const float* dy, float* dx, int64_t n) {
  KW_FOR(i, n) dx[i] = apply_backward(op, x ? x[i] : 0.f, y ? y[i] : 0.f, dy[i]);
}

void unary(UnaryOp op, const float* x, float* y, int64_t n) {
  KW_CHECK(int(op) >= 0 && int(op) < kNumUnaryOps, "unknown unary op ", int(op));
  if (n == 0) return;
  unary_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(op, x, y, n);
  KW_LAUNCH_CHECK();
}

void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx, int64_t n) {
  bool needs_x = op == UnaryOp::Log || op == UnaryOp::Abs || op == UnaryOp::Relu || op == UnaryOp::Relu6 ||
                 op == UnaryOp::Gelu || op == UnaryOp::Square;
  KW_CHECK(needs_x ? x != nullptr : (op == UnaryOp::Neg || op == UnaryOp::Sign || y != nullptr),
           "unary backward: missing saved ", needs_x ? "input" : "output");
  if (n == 0) return;
  unary_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(op, x, y, dy, dx, n);
  KW_LAUNCH_CHECK();
}

__global__ void affine_kernel(const float* x, float* y, int64_t n, float s, float t) { KW_FOR(i, n) y[i] = x[i] * s + t; }
__global__ void pow_kernel(const float* x, float* y, int64_t n, float p) {
  KW_FOR(i, n) y[i] = p == 2.f ? x[i] * x[i] : powf(x[i], p);
}
__global__ void clamp_kernel(const float* x, float* y, int64_t n, float lo, float hi) {
  KW_FOR(i, n) y[i] = clamp_like_std(x[i], lo, hi);
}
__global__ void fill_kernel(float* y, int64_t n, float v) { KW_FOR(i, n) y[i] = v; }

void affine(const float* x, float* y, int64_t n, float s, float t) {
  if (n == 0) return;
  affine_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(x, y, n, s, t);
  KW_LAUNCH_CHECK();
}
void pow_scalar(const float* x, float* y, int64_t n, float p) {
  if (n == 0) return;
  pow_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(x, y, n, p);
  KW_LAUNCH_CHECK();
}
void clamp(const float* x, float* y, int64_t n, float lo, float hi) {
  if (n == 0) return;
  clamp_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(x, y, n, lo, hi);
  KW_LAUNCH_CHECK();
}
void fill(float* y, int64_t n, float v) {
  if (n == 0) return;
  fill_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(y, n, v);
  KW_LAUNCH_CHECK();
}

}  // namespace

const ElementwiseKernels elementwise_kernels = {binary, unary, unary_backward, affine, pow_scalar, clamp, fill};

}  // namespace kw::cuda
