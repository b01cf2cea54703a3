// CPU GEMM: static OpenBLAS when the build found it, else a portable blocked kernel.
// OpenBLAS runs single-threaded; we split large products over our own thread pool, so BLAS
// threads and ours never compete for the two cores.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "cpu/simd_gemm.h"
#include "cpu/tables.h"

#ifdef KW_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace kw::cpu {
namespace {

#ifdef KW_HAVE_OPENBLAS
void gemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}
#else
// Portable fallback: pack op(B) in K×N panels and run an i-k-j loop the compiler vectorises;
// target_clones adds an AVX2 version chosen at load time by CPU feature (see cpu/conv.cpp).
__attribute__((target_clones("avx2", "default")))
void panel(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, bool ta,
           const float* Bp, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; i++) {
    float* c = C + i * ldc;
    for (int64_t k = 0; k < K; k++) {
      float a = alpha * (ta ? A[k * lda + i] : A[i * lda + k]);
      const float* b = Bp + k * N;
      for (int64_t j = 0; j < N; j++) c[j] += a * b[j];
    }
  }
}

void gemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.f ? 0.f : C[i * ldc + j] * beta;
  constexpr int64_t NB = 256, KB = 128, MB = 64;
  std::vector<float> Bp(size_t(KB * NB));
  for (int64_t j0 = 0; j0 < N; j0 += NB) {
    int64_t nb = std::min(NB, N - j0);
    for (int64_t k0 = 0; k0 < K; k0 += KB) {
      int64_t kb = std::min(KB, K - k0);
      for (int64_t k = 0; k < kb; k++)
        for (int64_t j = 0; j < nb; j++)
          Bp[size_t(k * nb + j)] = tb ? B[(j0 + j) * ldb + k0 + k] : B[(k0 + k) * ldb + j0 + j];
      for (int64_t i0 = 0; i0 < M; i0 += MB) {
        int64_t mb = std::min(MB, M - i0);
        const float* a = ta ? A + k0 * lda + i0 : A + i0 * lda + k0;
        panel(mb, nb, kb, alpha, a, lda, ta, Bp.data(), C + i0 * ldc + j0, ldc);
      }
    }
  }
}
#endif

// Called on first use, not from a static constructor: OpenBLAS's own constructor must have
// run before its thread count can be changed (doing it earlier crashes its thread server).
void ensure_blas_single_threaded() {
#ifdef KW_HAVE_OPENBLAS
  static const bool once = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)once;
#endif
}

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  ensure_blas_single_threaded();
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.f ? 0.f : C[i * ldc + j] * beta;
    return;
  }
  double flops = 2.0 * double(M) * double(N) * double(K);
  int threads = in_parallel_region() ? 1 : num_threads();
  if (threads <= 1 || flops < 4e6) return gemm_serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  // Split the larger of M and N into one slab per thread (rows of C, or columns of C).
  if (M >= N) {
    int64_t step = (M + threads - 1) / threads;
    parallel_for(threads, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; t++) {
        int64_t m0 = t * step, mb = std::min(step, M - m0);
        if (mb <= 0) continue;
        const float* a = ta ? A + m0 : A + m0 * lda;
        gemm_serial(ta, tb, mb, N, K, alpha, a, lda, B, ldb, beta, C + m0 * ldc, ldc);
      }
    });
  } else {
    int64_t step = ((N + threads - 1) / threads + 15) / 16 * 16;
    parallel_for(threads, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; t++) {
        int64_t n0 = t * step, nb = std::min(step, N - n0);
        if (nb <= 0) continue;
        const float* b = tb ? B + n0 * ldb : B + n0;
        gemm_serial(ta, tb, M, nb, K, alpha, A, lda, b, ldb, beta, C + n0, ldc);
      }
    });
  }
}

void gemm_batched(int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t sa, const float* B, int64_t sb, float beta, float* C,
                  int64_t sc) {
  ensure_blas_single_threaded();
  int64_t lda = ta ? M : K, ldb = tb ? K : N;
  double flops = 2.0 * double(M) * double(N) * double(K);
  if (batch == 1 || flops > 5e7) {
    for (int64_t i = 0; i < batch; i++)
      gemm(ta, tb, M, N, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta, C + i * sc, N);
    return;
  }
  // Many small products: one thread per batch slice, BLAS single-threaded inside.
  parallel_for(batch, std::max<int64_t>(1, int64_t(1e6 / std::max(1.0, flops))), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++)
      gemm_serial(ta, tb, M, N, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta, C + i * sc, N);
  });
}

const char* provider() {
#ifdef KW_HAVE_OPENBLAS
  static std::string s = std::string(openblas_get_config()) + " (linked statically); KW kernels: " + simd_gemm_isa();
#else
  static std::string s = std::string("builtin blocked GEMM (OpenBLAS not found at build time); KW kernels: ") +
                         simd_gemm_isa();
#endif
  return s.c_str();
}

}  // namespace

const GemmKernels gemm_kernels = {gemm, gemm_batched, provider};

}  // namespace kw::cpu
