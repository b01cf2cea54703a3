// CUDA GEMM, row-major with transpose flags (the GemmKernels contract of core/kernels/gemm.h).
// cuBLAS when the build found it; otherwise a shared-memory tiled kernel: 64×64 output tiles,
// K in steps of 16, each of 256 threads computing a 4×4 block in registers.
// Specification: native/cpu/gemm.cpp (beta == 0 never reads C, so C may hold garbage or NaN).
#include <cstdlib>
#include <string>

#include "cuda/common.cuh"
#include "cuda/gemm_tile.cuh"
#include "cuda/tables.h"

#ifdef KW_HAVE_CUBLAS
#include <cublas_v2.h>
#include <mutex>
#endif

namespace kw::cuda {
namespace {

// Row-major strided operands for the tiled core (gemm_tile.cuh); the transpose flag is a
// template parameter so each operand is loaded along the index that is contiguous in memory.
template <bool kTrans>
struct LoadA {
  const float* p;
  int64_t ld, stride;
  static constexpr bool kFastK = !kTrans;
  __device__ float operator()(int64_t z, int64_t r, int64_t k) const {
    return kTrans ? p[z * stride + k * ld + r] : p[z * stride + r * ld + k];
  }
};
template <bool kTrans>
struct LoadB {
  const float* p;
  int64_t ld, stride;
  static constexpr bool kFastK = kTrans;
  __device__ float operator()(int64_t z, int64_t k, int64_t c) const {
    return kTrans ? p[z * stride + c * ld + k] : p[z * stride + k * ld + c];
  }
};
struct StoreC {
  float* p;
  int64_t ld, stride;
  float alpha, beta;
  __device__ void operator()(int64_t z, int64_t r, int64_t c, float v) const {
    float* q = p + z * stride + r * ld + c;
    *q = alpha * v + (beta == 0.f ? 0.f : beta * *q);  // beta 0 never reads C (it may hold NaN)
  }
};

template <bool TA, bool TB>
void tiled_t(int64_t batch, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, int64_t sa, const float* B,
             int64_t ldb, int64_t sb, const StoreC& st) {
  gemm_tile(batch, M, N, K, LoadA<TA>{A, lda, sa}, LoadB<TB>{B, ldb, sb}, st);
}

void tiled(int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           int64_t sa, const float* B, int64_t ldb, int64_t sb, float beta, float* C, int64_t ldc, int64_t sc) {
  StoreC st{C, ldc, sc, alpha, beta};
  if (ta && tb) return tiled_t<true, true>(batch, M, N, K, A, lda, sa, B, ldb, sb, st);
  if (ta) return tiled_t<true, false>(batch, M, N, K, A, lda, sa, B, ldb, sb, st);
  if (tb) return tiled_t<false, true>(batch, M, N, K, A, lda, sa, B, ldb, sb, st);
  tiled_t<false, false>(batch, M, N, K, A, lda, sa, B, ldb, sb, st);
}

#ifdef KW_HAVE_CUBLAS
cublasHandle_t handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t x = nullptr;
    cublasStatus_t s = cublasCreate(&x);
    KW_CHECK(s == CUBLAS_STATUS_SUCCESS, "cublasCreate failed (status ", int(s), ")");
    cublasSetStream(x, stream());
    // Plain FP32 unless the user opts in (KW_CUDA_TF32=1): results must match the CPU backend.
    if (const char* t = std::getenv("KW_CUDA_TF32"); t && t[0] == '1') cublasSetMathMode(x, CUBLAS_TF32_TENSOR_OP_MATH);
    return x;
  }();
  return h;
}

// Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap the operands, keep the flags.
void cublas_batched(int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, int64_t sa, const float* B, int64_t ldb, int64_t sb, float beta, float* C, int64_t ldc,
                    int64_t sc) {
  cublasStatus_t s = cublasSgemmStridedBatched(
      handle(), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(N), int(M), int(K), &alpha, B,
      int(ldb), sb, A, int(lda), sa, &beta, C, int(ldc), sc, int(batch));
  KW_CHECK(s == CUBLAS_STATUS_SUCCESS, "cublasSgemmStridedBatched failed (status ", int(s), ")");
}
#endif

void run(int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
         int64_t sa, const float* B, int64_t ldb, int64_t sb, float beta, float* C, int64_t ldc, int64_t sc) {
  if (batch == 0 || M == 0 || N == 0) return;
#ifdef KW_HAVE_CUBLAS
  if (K > 0 && M < (1 << 30) && N < (1 << 30) && K < (1 << 30) && batch < (1 << 30))
    return cublas_batched(batch, ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc);
#endif
  tiled(batch, ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc);
}

void gemm_batched_table(int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                        int64_t sa, const float* B, int64_t sb, float beta, float* C, int64_t sc) {
  gemm_batched(batch, ta, tb, M, N, K, alpha, A, sa, B, sb, beta, C, sc);
}

}  // namespace

void gemm_ld(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
             const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  run(1, ta, tb, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0);
}

void gemm_batched(int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t sa, const float* B, int64_t sb, float beta, float* C, int64_t sc) {
  run(batch, ta, tb, M, N, K, alpha, A, ta ? M : K, sa, B, tb ? K : N, sb, beta, C, N, sc);
}

const char* gemm_provider() {
#ifdef KW_HAVE_CUBLAS
  static std::string s = "cuBLAS " + std::to_string(CUBLAS_VER_MAJOR) + "." + std::to_string(CUBLAS_VER_MINOR);
  return s.c_str();
#else
  return "own tiled CUDA GEMM (cuBLAS not found at build time)";
#endif
}

const GemmKernels gemm_kernels = {gemm_ld, gemm_batched_table, gemm_provider};

}  // namespace kw::cuda
