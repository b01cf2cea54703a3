// The kernels of simd_gemm.h. Each is a template over the vector type (GCC vector extensions:
// 16, 8 or 4 floats) instantiated inside a function compiled for that instruction set, so one
// source gives the AVX-512, AVX2 and baseline versions; the choice is made once, by CPUID.
#include "cpu/simd_gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#pragma GCC diagnostic ignored "-Wpsabi"  // vectors never cross a non-inlined call

namespace kw::cpu {
namespace {

// The register tiles only stay in registers when their loops are fully unrolled; GCC does that
// by itself, clang (zig c++, the prebuild) needs telling.
#define KW_UNROLL _Pragma("GCC unroll 32")

typedef float v16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v4 __attribute__((vector_size(16)));

template <typename V>
struct Lanes {
  static constexpr int W = int(sizeof(V) / sizeof(float));
  typedef float U __attribute__((vector_size(sizeof(V)), aligned(4), may_alias));  // unaligned access
  static inline __attribute__((always_inline)) V load(const float* p) { return *reinterpret_cast<const U*>(p); }
  static inline __attribute__((always_inline)) void store(float* p, V v) { *reinterpret_cast<U*>(p) = v; }
};

// ---------------------------------------------------------------- small_k_gemm

// MR rows × one 32-column strip: 32/W accumulators per row, B's strip row loaded once per k.
template <typename V, int MR>
inline __attribute__((always_inline)) void small_k_block(const SmallKGemm& p, int64_t i0, const float* B, float* C) {
  using L = Lanes<V>;
  constexpr int NV = 32 / L::W;
  V acc[MR][NV];
  KW_UNROLL for (int i = 0; i < MR; i++)
    KW_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = V{};
  const float* A = p.A + i0 * p.a_row;
  for (int64_t k = 0; k < p.K; k++) {
    V b[NV];
    KW_UNROLL for (int v = 0; v < NV; v++) b[v] = L::load(B + k * p.ldb + v * L::W);
    KW_UNROLL for (int i = 0; i < MR; i++) {
      const float a = A[i * p.a_row + k * p.a_col];
      KW_UNROLL for (int v = 0; v < NV; v++) acc[i][v] += a * b[v];
    }
  }
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NV; v++) {
      float* c = C + (i0 + i) * p.ldc + v * L::W;
      L::store(c, p.beta == 0.f ? acc[i][v] : p.beta * L::load(c) + acc[i][v]);
    }
}

// The last rows < MR of a strip in one block of that many rows.
template <typename V, int MR>
inline __attribute__((always_inline)) void small_k_tail(const SmallKGemm& p, int64_t rows, int64_t i0, const float* B,
                                                        float* C) {
  if constexpr (MR > 0) {
    if (rows == MR) return small_k_block<V, MR>(p, i0, B, C);
    small_k_tail<V, MR - 1>(p, rows, i0, B, C);
  }
}

template <typename V, int MR>
inline __attribute__((always_inline)) void small_k_impl(const SmallKGemm& p) {
  const int64_t strips = p.N / 32, full = p.M / MR * MR;
  for (int64_t s = 0; s < strips; s++) {
    const float* B = p.B + s * p.run_stride;
    float* C = p.C + s * 32;
    for (int64_t i = 0; i < full; i += MR) small_k_block<V, MR>(p, i, B, C);
    if (full < p.M) small_k_tail<V, MR - 1>(p, p.M - full, full, B, C);
  }
  // Columns past the last whole strip (N not a multiple of 32): plain loops.
  const int64_t j0 = strips * 32;
  for (int64_t i = 0; i < p.M; i++)
    for (int64_t j = j0; j < p.N; j++) {
      float s = 0;
      const float* b = p.B + (j / 32) * p.run_stride + j % 32;
      for (int64_t k = 0; k < p.K; k++) s += p.A[i * p.a_row + k * p.a_col] * b[k * p.ldb];
      float* c = p.C + i * p.ldc + j;
      *c = p.beta == 0.f ? s : p.beta * *c + s;
    }
}

// ---------------------------------------------------------------- packed32_gemm

template <typename V, int NR>
inline __attribute__((always_inline)) void packed32_block(int64_t K, const float* P, const float* S, int64_t lds,
                                                          float* C, int64_t ldc, bool accumulate) {
  using L = Lanes<V>;
  constexpr int NV = 32 / L::W;
  V acc[NR][NV];
  KW_UNROLL for (int j = 0; j < NR; j++)
    KW_UNROLL for (int v = 0; v < NV; v++) acc[j][v] = V{};
  for (int64_t k = 0; k < K; k++) {
    V a[NV];
    KW_UNROLL for (int v = 0; v < NV; v++) a[v] = L::load(P + k * 32 + v * L::W);
    const float* s = S + k * lds;
    KW_UNROLL for (int j = 0; j < NR; j++) {
      const float b = s[j];
      KW_UNROLL for (int v = 0; v < NV; v++) acc[j][v] += a[v] * b;
    }
  }
  // The accumulators hold columns of C; C's rows are 32 apart in the register tile.
  float tile[NR][32];
  for (int j = 0; j < NR; j++)
    for (int v = 0; v < NV; v++) L::store(&tile[j][v * L::W], acc[j][v]);
  for (int r = 0; r < 32; r++) {
    float* c = C + r * ldc;
    if (accumulate)
      for (int j = 0; j < NR; j++) c[j] += tile[j][r];
    else
      for (int j = 0; j < NR; j++) c[j] = tile[j][r];
  }
}

template <typename V, int NRMAX, int NR = NRMAX>
inline __attribute__((always_inline)) void packed32_tail(int nr, int64_t K, const float* P, const float* S,
                                                         int64_t lds, float* C, int64_t ldc, bool accumulate) {
  if constexpr (NR > 0) {
    if (nr == NR) return packed32_block<V, NR>(K, P, S, lds, C, ldc, accumulate);
    packed32_tail<V, NRMAX, NR - 1>(nr, K, P, S, lds, C, ldc, accumulate);
  }
}

template <typename V, int NRMAX>
inline __attribute__((always_inline)) void packed32_impl(int64_t K, const float* P, const float* S, int64_t lds,
                                                         int64_t nc, float* C, int64_t ldc, bool accumulate) {
  int64_t j = 0;
  for (; j + NRMAX <= nc; j += NRMAX) packed32_block<V, NRMAX>(K, P, S + j, lds, C + j, ldc, accumulate);
  if (j < nc) packed32_tail<V, NRMAX>(int(nc - j), K, P, S + j, lds, C + j, ldc, accumulate);
}

// ---------------------------------------------------------------- per instruction set
// Register budgets: AVX-512 has 32 vector registers (packed32: 12 columns × 2 accumulators + 2 + 1;
// small_k: up to 12 rows × 2), AVX2 16 (packed32: 2 columns × 4 + 4 + 1; small_k: 3 rows × 4 + 4),
// SSE 16 four-wide registers.

// Up to 12 rows in one block (B's strip loaded once: α_b's 9 rows per sample); taller products
// in blocks of 6, which measured faster there (fewer accumulators, more blocks reusing the strip
// from L1).
__attribute__((target("avx512f,avx512vl,avx2,fma"))) void small_k_avx512(const SmallKGemm& p) {
  if (p.M <= 12) return small_k_impl<v16, 12>(p);
  small_k_impl<v16, 6>(p);
}
__attribute__((target("avx512f,avx512vl,avx2,fma"))) void packed32_avx512(int64_t K, const float* P, const float* S,
                                                                        int64_t lds, int64_t nc, float* C,
                                                                        int64_t ldc, bool acc) {
  packed32_impl<v16, 12>(K, P, S, lds, nc, C, ldc, acc);
}
__attribute__((target("avx2,fma"))) void small_k_avx2(const SmallKGemm& p) { small_k_impl<v8, 3>(p); }
__attribute__((target("avx2,fma"))) void packed32_avx2(int64_t K, const float* P, const float* S, int64_t lds,
                                                     int64_t nc, float* C, int64_t ldc, bool acc) {
  packed32_impl<v8, 2>(K, P, S, lds, nc, C, ldc, acc);
}
void small_k_base(const SmallKGemm& p) { small_k_impl<v4, 1>(p); }
void packed32_base(int64_t K, const float* P, const float* S, int64_t lds, int64_t nc, float* C, int64_t ldc,
                   bool acc) {
  packed32_impl<v4, 1>(K, P, S, lds, nc, C, ldc, acc);
}

enum class Isa { Avx512, Avx2, Base };
// KW_SIMD=avx2 or baseline lowers the choice (tests run every version on one machine).
Isa detect() {
  __builtin_cpu_init();
  const char* cap = std::getenv("KW_SIMD");
  const bool allow512 = !cap || std::strcmp(cap, "avx512") == 0;
  const bool allow2 = allow512 || std::strcmp(cap, "avx2") == 0;
  if (allow512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) return Isa::Avx512;
  if (allow2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
  return Isa::Base;
}
const Isa isa = detect();

}  // namespace

void small_k_gemm(const SmallKGemm& p) {
  if (p.M <= 0 || p.N <= 0) return;
  switch (isa) {
    case Isa::Avx512: return small_k_avx512(p);
    case Isa::Avx2: return small_k_avx2(p);
    default: return small_k_base(p);
  }
}

void packed32_gemm(int64_t K, const float* P, const float* S, int64_t lds, int64_t nc, float* C, int64_t ldc,
                   bool accumulate) {
  if (nc <= 0) return;
  switch (isa) {
    case Isa::Avx512: return packed32_avx512(K, P, S, lds, nc, C, ldc, accumulate);
    case Isa::Avx2: return packed32_avx2(K, P, S, lds, nc, C, ldc, accumulate);
    default: return packed32_base(K, P, S, lds, nc, C, ldc, accumulate);
  }
}

bool simd_avx2() { return isa != Isa::Base; }

const char* simd_gemm_isa() {
  return isa == Isa::Avx512 ? "avx512" : isa == Isa::Avx2 ? "avx2" : "baseline";
}

}  // namespace kw::cpu
