// Matrix products. Row-major; transposes are flags, so callers never materialise Aᵀ.
#pragma once
#include <cstdint>

namespace kw {

struct GemmKernels {
  // C = alpha * op(A) op(B) + beta * C with op(A): M×K, op(B): K×N, leading dimensions given.
  void (*gemm)(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
               int64_t ldc);
  // The same over a batch; a batch stride of 0 broadcasts that operand.
  void (*gemm_batched)(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                       float alpha, const float* A, int64_t stride_a, const float* B,
                       int64_t stride_b, float beta, float* C, int64_t stride_c);
  const char* (*provider)();  // "openblas 0.3.21 (static)" or "builtin"
};

}  // namespace kw
