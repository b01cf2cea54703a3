// Two register-blocked GEMM kernels for the shapes OpenBLAS handles poorly in KernelWarehouse
// layers, each compiled for AVX-512, AVX2+FMA and baseline x86-64 and picked once at run time
// (the prebuilt addon targets any x86-64; see simd_gemm.cpp):
//
// small_k_gemm: C = β·C + A·B with a small inner dimension K (the cell count n of a warehouse,
//   typically 9..64). OpenBLAS packs both operands per call, which at K ≈ 30 costs about as much
//   as the product; here a strip of B (K × 32 floats) stays in L1 and is reused for every row.
//   B may be a matrix whose columns come in runs of 32 at a fixed stride (a row-blocked view
//   of a bigger matrix), so that a slice of E can be read in place.
//
// packed32_gemm: the 32-row panel product C [32, nc] (+)= P [K, 32]ᵀ · S [K, nc] with P packed
//   k-major (32 floats per k) and S read in place (row k at S + k·lds). The fused KW conv
//   assembles each sample's kernel slice directly into P, so the per-sample weights are never
//   written in a BLAS layout and never repacked.
#pragma once
#include <cstdint>

namespace kw::cpu {

struct SmallKGemm {
  int64_t M = 0, N = 0, K = 0;
  const float* A = nullptr;  // A(i, k) = A[i·a_row + k·a_col]
  int64_t a_row = 0, a_col = 1;
  const float* B = nullptr;  // B(k, j) = B[k·ldb + (j / 32)·run_stride + j % 32]
  int64_t ldb = 0, run_stride = 32;
  float beta = 0.f;
  float* C = nullptr;  // C(i, j) = C[i·ldc + j]
  int64_t ldc = 0;
};

// Single-threaded: callers split the work over their own threads.
void small_k_gemm(const SmallKGemm& p);

// C[r, j] (+)= Σ_k P[k·32 + r] · S[k·lds + j] for r < 32, j < nc (nc ≤ 12 per call is fastest;
// any nc works), written as C[r·ldc + j]; accumulate = false overwrites.
void packed32_gemm(int64_t K, const float* P, const float* S, int64_t lds, int64_t nc, float* C, int64_t ldc,
                   bool accumulate);

// Which instruction set the kernels run with: "avx512", "avx2" or "baseline".
const char* simd_gemm_isa();
// True unless they run the baseline: other kernels with an AVX2 version (the Winograd
// transforms, the cell regroup) follow the same choice, KW_SIMD included.
bool simd_avx2();

}  // namespace kw::cpu
