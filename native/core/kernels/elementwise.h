// Elementwise kernels on float32. Binary ops broadcast numpy-style; unary ops have a fused
// backward that computes dx = dy * f'(x) from the saved input x and/or output y.
#pragma once
#include <cstdint>

#include "core/shape.h"

namespace kw {

enum class BinaryOp : int { Add = 0, Sub, Mul, Div, Maximum, Minimum, Pow };
enum class UnaryOp : int { Neg = 0, Exp, Log, Sqrt, Abs, Relu, Relu6, Sigmoid, Tanh, Gelu, Square, Sign };
constexpr int kNumBinaryOps = 7;
constexpr int kNumUnaryOps = 12;

struct ElementwiseKernels {
  void (*binary)(BinaryOp op, const float* a, const Shape& a_shape, const float* b,
                 const Shape& b_shape, float* out, const Shape& out_shape);
  void (*unary)(UnaryOp op, const float* x, float* y, int64_t n);
  // dx = dy * f'(x); x or y may be the one that is used (both are passed when known).
  void (*unary_backward)(UnaryOp op, const float* x, const float* y, const float* dy, float* dx,
                         int64_t n);
  void (*affine)(const float* x, float* y, int64_t n, float scale, float shift);  // y = x*s + t
  void (*pow_scalar)(const float* x, float* y, int64_t n, float p);
  void (*clamp)(const float* x, float* y, int64_t n, float lo, float hi);
  void (*fill)(float* y, int64_t n, float v);
};

}  // namespace kw
