// CPU elementwise kernels: broadcast binary ops, unary ops and their fused backward.
#include <algorithm>
#include <cmath>

#include "core/thread_pool.h"
#include "cpu/tables.h"

namespace kw::cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;  // elements per task: below this threads cost more than they save

// Strides of `s` aligned to an output of rank n, 0 where the dimension is broadcast.
Shape broadcast_strides(const Shape& s, size_t n) {
  Shape st(n, 0);
  Shape cs = contiguous_strides(s);
  size_t off = n - s.size();
  for (size_t i = 0; i < s.size(); i++) st[off + i] = s[i] == 1 ? 0 : cs[i];
  return st;
}

// Loops over out = f(a, b) with a and b read through broadcast strides. Adjacent dimensions
// that are contiguous in both inputs are merged first, so the inner loop is as long as possible.
template <typename F>
void broadcast_loop(const float* a, const Shape& as, const float* b, const Shape& bs, float* out,
                    const Shape& os, F f) {
  int64_t n = numel(os);
  if (n == 0) return;
  if (as == os && bs == os) {
    parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; i++) out[i] = f(a[i], b[i]);
    });
    return;
  }
  Shape sa = broadcast_strides(as, os.size()), sb = broadcast_strides(bs, os.size());
  Shape dims;
  Shape da, db;
  for (size_t i = 0; i < os.size(); i++) {
    if (os[i] == 1) continue;
    if (!dims.empty() && da.back() == sa[i] * os[i] && db.back() == sb[i] * os[i]) {
      dims.back() *= os[i];
      da.back() = sa[i];
      db.back() = sb[i];
    } else {
      dims.push_back(os[i]);
      da.push_back(sa[i]);
      db.push_back(sb[i]);
    }
  }
  if (dims.empty()) {
    out[0] = f(a[0], b[0]);
    return;
  }
  int64_t inner = dims.back(), ia = da.back(), ib = db.back();
  int64_t rows = n / inner;
  size_t nd = dims.size();
  parallel_for(rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) {
      int64_t rem = r, offa = 0, offb = 0;
      for (size_t d = nd - 1; d-- > 0;) {
        int64_t idx = rem % dims[d];
        rem /= dims[d];
        offa += idx * da[d];
        offb += idx * db[d];
      }
      const float* pa = a + offa;
      const float* pb = b + offb;
      float* po = out + r * inner;
      if (ia == 1 && ib == 1)
        for (int64_t i = 0; i < inner; i++) po[i] = f(pa[i], pb[i]);
      else if (ia == 1 && ib == 0)
        for (int64_t i = 0; i < inner; i++) po[i] = f(pa[i], pb[0]);
      else if (ia == 0 && ib == 1)
        for (int64_t i = 0; i < inner; i++) po[i] = f(pa[0], pb[i]);
      else
        for (int64_t i = 0; i < inner; i++) po[i] = f(pa[i * ia], pb[i * ib]);
    }
  });
}

void binary(BinaryOp op, const float* a, const Shape& as, const float* b, const Shape& bs,
            float* out, const Shape& os) {
  switch (op) {
    case BinaryOp::Add: return broadcast_loop(a, as, b, bs, out, os, [](float x, float y) { return x + y; });
    case BinaryOp::Sub: return broadcast_loop(a, as, b, bs, out, os, [](float x, float y) { return x - y; });
    case BinaryOp::Mul: return broadcast_loop(a, as, b, bs, out, os, [](float x, float y) { return x * y; });
    case BinaryOp::Div: return broadcast_loop(a, as, b, bs, out, os, [](float x, float y) { return x / y; });
    case BinaryOp::Maximum:
      return broadcast_loop(a, as, b, bs, out, os, [](float x, float y) { return x >= y ? x : y; });
    case BinaryOp::Minimum:
      return broadcast_loop(a, as, b, bs, out, os, [](float x, float y) { return x <= y ? x : y; });
    case BinaryOp::Pow:
      return broadcast_loop(a, as, b, bs, out, os, [](float x, float y) { return std::pow(x, y); });
  }
  fail("unknown binary op ", int(op));
}

template <typename F>
void map(const float* x, float* y, int64_t n, F f) {
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) y[i] = f(x[i]);
  });
}

float gelu(float x) { return 0.5f * x * (1.0f + std::erf(x * float(M_SQRT1_2))); }
float gelu_grad(float x) {
  float cdf = 0.5f * (1.0f + std::erf(x * float(M_SQRT1_2)));
  float pdf = std::exp(-0.5f * x * x) * float(0.3989422804014327);  // 1/sqrt(2π)
  return cdf + x * pdf;
}

void unary(UnaryOp op, const float* x, float* y, int64_t n) {
  switch (op) {
    case UnaryOp::Neg: return map(x, y, n, [](float v) { return -v; });
    case UnaryOp::Exp: return map(x, y, n, [](float v) { return std::exp(v); });
    case UnaryOp::Log: return map(x, y, n, [](float v) { return std::log(v); });
    case UnaryOp::Sqrt: return map(x, y, n, [](float v) { return std::sqrt(v); });
    case UnaryOp::Abs: return map(x, y, n, [](float v) { return std::fabs(v); });
    case UnaryOp::Relu: return map(x, y, n, [](float v) { return v > 0.f ? v : 0.f; });
    case UnaryOp::Relu6: return map(x, y, n, [](float v) { return std::min(std::max(v, 0.f), 6.f); });
    case UnaryOp::Sigmoid: return map(x, y, n, [](float v) { return 1.f / (1.f + std::exp(-v)); });
    case UnaryOp::Tanh: return map(x, y, n, [](float v) { return std::tanh(v); });
    case UnaryOp::Gelu: return map(x, y, n, gelu);
    case UnaryOp::Square: return map(x, y, n, [](float v) { return v * v; });
    case UnaryOp::Sign: return map(x, y, n, [](float v) { return float((v > 0.f) - (v < 0.f)); });
  }
  fail("unknown unary op ", int(op));
}

template <typename F>
void map_backward(const float* x, const float* y, const float* dy, float* dx, int64_t n, F f) {
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) dx[i] = f(x ? x[i] : 0.f, y ? y[i] : 0.f, dy[i]);
  });
}

void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx,
                    int64_t n) {
  // Ops whose derivative is cheapest from the output use y; the others need x.
  bool needs_x = op == UnaryOp::Log || op == UnaryOp::Abs || op == UnaryOp::Relu ||
                 op == UnaryOp::Relu6 || op == UnaryOp::Gelu || op == UnaryOp::Square;
  KW_CHECK(needs_x ? x != nullptr : (op == UnaryOp::Neg || op == UnaryOp::Sign || y != nullptr),
           "unary backward: missing saved ", needs_x ? "input" : "output");
  switch (op) {
    case UnaryOp::Neg: return map_backward(x, y, dy, dx, n, [](float, float, float g) { return -g; });
    case UnaryOp::Exp: return map_backward(x, y, dy, dx, n, [](float, float o, float g) { return g * o; });
    case UnaryOp::Log: return map_backward(x, y, dy, dx, n, [](float v, float, float g) { return g / v; });
    case UnaryOp::Sqrt:
      return map_backward(x, y, dy, dx, n, [](float, float o, float g) { return g * 0.5f / o; });
    case UnaryOp::Abs:
      return map_backward(x, y, dy, dx, n, [](float v, float, float g) { return v > 0.f ? g : (v < 0.f ? -g : 0.f); });
    case UnaryOp::Relu:
      return map_backward(x, y, dy, dx, n, [](float v, float, float g) { return v > 0.f ? g : 0.f; });
    case UnaryOp::Relu6:
      return map_backward(x, y, dy, dx, n, [](float v, float, float g) { return v > 0.f && v < 6.f ? g : 0.f; });
    case UnaryOp::Sigmoid:
      return map_backward(x, y, dy, dx, n, [](float, float o, float g) { return g * o * (1.f - o); });
    case UnaryOp::Tanh:
      return map_backward(x, y, dy, dx, n, [](float, float o, float g) { return g * (1.f - o * o); });
    case UnaryOp::Gelu:
      return map_backward(x, y, dy, dx, n, [](float v, float, float g) { return g * gelu_grad(v); });
    case UnaryOp::Square:
      return map_backward(x, y, dy, dx, n, [](float v, float, float g) { return 2.f * v * g; });
    case UnaryOp::Sign: return map_backward(x, y, dy, dx, n, [](float, float, float) { return 0.f; });
  }
  fail("unknown unary op ", int(op));
}

void affine(const float* x, float* y, int64_t n, float s, float t) {
  map(x, y, n, [s, t](float v) { return v * s + t; });
}
void pow_scalar(const float* x, float* y, int64_t n, float p) {
  if (p == 2.f) return map(x, y, n, [](float v) { return v * v; });
  map(x, y, n, [p](float v) { return std::pow(v, p); });
}
void clamp(const float* x, float* y, int64_t n, float lo, float hi) {
  map(x, y, n, [lo, hi](float v) { return std::min(std::max(v, lo), hi); });
}
void fill(float* y, int64_t n, float v) {
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) { std::fill(y + lo, y + hi, v); });
}

}  // namespace

const ElementwiseKernels elementwise_kernels = {binary, unary, unary_backward, affine,
                                                pow_scalar, clamp, fill};

}  // namespace kw::cpu
