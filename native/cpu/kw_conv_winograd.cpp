// The Winograd KernelWarehouse convolution: F(m×m, 3×3), m = 2 or 4, for 3×3, stride-1, 'same'
// layers whose cells are one tap each (9 slots, goc = gic = 1, ck = 1: KW-ResNet's 3×3 layers),
// forward and backward side by side.
//
// Winograd (Lavin & Gray, 2016): with V = Bᵀ·d·B an (m + 2)² input tile transformed and
// U = G·w·Gᵀ the 3×3 kernel transformed, an m×m output tile is Aᵀ·(U ⊙ V)·A summed over input
// channels: (m + 2)² multiply-adds per channel pair and tile instead of 9·m² (16 for 36 at m = 2,
// 36 for 144 at m = 4). U is linear in the kernel, so the sample's Winograd-domain kernel is
//   U_b[ξ] = Σ_s Gk[ξ, s]·W_b[s],   W_b[s] = Σ_j α_b[s, j]·E_j   (Gk = G ⊗ G)
// assembled as the panels strategy does (cpu/kw_conv_fused.cpp): the 9 tap panels [ci, 32] of a
// block of 32 output channels straight from α_b and the regrouped cells, then G·w·Gᵀ over them,
// and the product is (m + 2)² GEMMs over the T ≈ L/m² tiles. Per sample and cell element
// 9n + (m + 2)²·T multiply-adds against the panels' 9·(n + L): a gain where positions outnumber
// cells (early stages), a loss where they do not (see winograd_tile).
//
// Input gradient: the same with the kernel transposed and its taps flipped (tap 8 − s, cells
// regrouped by 32 input channels), dY transformed as the input.
// Warehouse gradients: dU_b[ξ] = Σ_t (A·dY_t·Aᵀ)[ξ]·V_t[ξ]ᵀ ((m + 2)² GEMMs over the tiles), the
// tap kernels' gradient dW_b = Gᵀ·dU_b·G, then dα_b = dW_b·Eᵀ and dE = Σ_b α_bᵀ·dW_b.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/storage.h"
#include "core/thread_pool.h"
#include "cpu/kw_impl.h"
#include "cpu/simd_gemm.h"
#include "cpu/tables.h"

#pragma GCC diagnostic ignored "-Wpsabi"  // vectors never cross a non-inlined call

namespace kw::cpu::kwk {
namespace {

StoragePtr scratch(int64_t n) { return new_storage(DType::F32, std::max<int64_t>(1, n)); }

// F(m×m, 3×3) for m = 2 and 4 (Lavin & Gray): input tiles of A = m + 2, Y = Aᵀ·[(G·w·Gᵀ) ⊙ (Bᵀ·d·B)]·A.
template <int TM>
struct Tiles;
template <>
struct Tiles<2> {
  static constexpr int A = 4;
  static constexpr float Bt[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr float G[4][3] = {{1, 0, 0}, {.5f, .5f, .5f}, {.5f, -.5f, .5f}, {0, 0, 1}};
  static constexpr float At[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
};
template <>
struct Tiles<4> {
  static constexpr int A = 6;
  static constexpr float Bt[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                     {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr float G[6][3] = {{1 / 4.f, 0, 0},          {-1 / 6.f, -1 / 6.f, -1 / 6.f}, {-1 / 6.f, 1 / 6.f, -1 / 6.f},
                                    {1 / 24.f, 1 / 12.f, 1 / 6.f}, {1 / 24.f, -1 / 12.f, 1 / 6.f}, {0, 0, 1}};
  static constexpr float At[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
};

// The transforms first split the image (or dY) by row and column index modulo m, so that a
// tile's inputs sit at the same offset in each part, then compute sizeof(X)/4 tiles at once in a
// unit-stride loop over the tiles. The matrices are compile-time constants in fully unrolled
// products, so their zeros and ±1s cost nothing. Each transform exists as an AVX2 function on
// 8-float vectors and a baseline one on 4-float vectors (KW_VECTOR_VERSIONS below), picked as
// the KW GEMM kernels are (simd_avx2, which KW_SIMD lowers): target_clones cannot be used,
// as clang (the prebuild's compiler) rejects 256-bit vectors in the baseline clone.
#define KW_UNROLL _Pragma("GCC unroll 36")

typedef float f8 __attribute__((vector_size(32)));
typedef float f4 __attribute__((vector_size(16)));
template <typename X>
inline __attribute__((always_inline)) X load(const float* p) {
  X x;
  std::memcpy(&x, p, sizeof(X));
  return x;
}
template <typename X>
inline __attribute__((always_inline)) void store(float* p, X x) {
  std::memcpy(p, &x, sizeof(X));
}

// out = M·in (transpose_m: Mᵀ·in) for a constant M: the terms with a zero coefficient vanish.
template <bool transpose_m, typename X, int R, int K, int C, int MR, int MC>
inline __attribute__((always_inline)) void mul_left(const float (&M)[MR][MC], const X (&in)[K][C], X (&out)[R][C]) {
  KW_UNROLL for (int i = 0; i < R; i++)
    KW_UNROLL for (int c = 0; c < C; c++) {
      X acc{};
      bool first = true;
      KW_UNROLL for (int k = 0; k < K; k++) {
        const float w = transpose_m ? M[k][i] : M[i][k];
        if (w == 0.f) continue;
        acc = first ? w * in[k][c] : acc + w * in[k][c];
        first = false;
      }
      out[i][c] = acc;
    }
}
// out = in·Mᵀ (transpose_m) or in·M.
template <bool transpose_m, typename X, int R, int K, int C, int MR, int MC>
inline __attribute__((always_inline)) void mul_right(const X (&in)[R][K], const float (&M)[MR][MC], X (&out)[R][C]) {
  KW_UNROLL for (int r = 0; r < R; r++)
    KW_UNROLL for (int j = 0; j < C; j++) {
      X acc{};
      bool first = true;
      KW_UNROLL for (int k = 0; k < K; k++) {
        const float w = transpose_m ? M[j][k] : M[k][j];
        if (w == 0.f) continue;
        acc = first ? w * in[r][k] : acc + w * in[r][k];
        first = false;
      }
      out[r][j] = acc;
    }
}

// fn(Vec{}, i) over n tiles in vectors of w = sizeof(Vec)/4, the last one overlapping the one
// before (the callers' stores are idempotent); one tile at a time (fn(0.f, i)) when n < w.
template <typename Vec, typename F>
inline __attribute__((always_inline)) void over_tiles(int64_t n, F&& fn) {
  constexpr int64_t w = int64_t(sizeof(Vec) / sizeof(float));
  if (n < w) {
    for (int64_t i = 0; i < n; i++) fn(0.f, i);
    return;
  }
  for (int64_t i = 0; i + w < n; i += w) fn(Vec{}, i);
  fn(Vec{}, n - w);
}

// Splits a row by index modulo m: part q (at dst + q·part_stride) gets row[m·k + q − shift] for
// k < len, zero outside [0, W). The k whose m entries are all inside run as one branch-free
// loop (a transpose of [k, m] that vectorises), the few at the edges one entry at a time.
template <int TM>
inline __attribute__((always_inline)) void split_row(const float* row, int64_t W, int64_t shift, int64_t len,
                                                     float* __restrict dst, int64_t part_stride) {
  const int64_t k_lo = std::min<int64_t>(len, (shift + TM - 1) / TM);
  const int64_t k_hi = std::clamp<int64_t>(W + shift >= TM ? (W + shift - TM) / TM + 1 : 0, k_lo, len);
  auto edge = [&](int64_t k) {
    for (int q = 0; q < TM; q++) {
      const int64_t i = TM * k + q - shift;
      dst[q * part_stride + k] = i >= 0 && i < W ? row[i] : 0.f;
    }
  };
  for (int64_t k = 0; k < k_lo; k++) edge(k);
  const float* __restrict src = row - shift;
  for (int64_t k = k_lo; k < k_hi; k++)
    KW_UNROLL for (int q = 0; q < TM; q++) dst[q * part_stride + k] = src[TM * k + q];
  for (int64_t k = k_hi; k < len; k++) edge(k);
}

// The inverse for one output row: out[m·k + q] = part q [k] (at src + q·part_stride) for
// m·k + q < W.
template <int TM>
inline __attribute__((always_inline)) void join_row(const float* __restrict src, int64_t part_stride, int64_t len,
                                                    float* __restrict out, int64_t W) {
  const int64_t full = std::min(len, W / TM);
  for (int64_t k = 0; k < full; k++)
    KW_UNROLL for (int q = 0; q < TM; q++) out[TM * k + q] = src[q * part_stride + k];
  for (int64_t i = full * TM; i < W; i++) out[i] = src[(i % TM) * part_stride + i / TM];
}

// V[ξ][c][t] = (Bᵀ·d·B)[ξ] for the A×A tile d of channel c at rows m·ty − 1.., columns m·tx − 1..
// (zero outside the image), from src [C, H, W], for tile rows [ty0, ty1): t = (ty − ty0)·tw + tx.
template <int TM, typename Vec>
inline __attribute__((always_inline)) void input_tiles_impl(const float* src, int64_t C, int64_t H, int64_t W, int64_t ty0, int64_t ty1, float* V) {
  constexpr int A = Tiles<TM>::A;
  const int64_t th = ty1 - ty0, tw = (W + TM - 1) / TM, T = th * tw, K1 = tw + 1, CT = C * T;
  // The padded rows xp[y][x] = src[y − 1][x − 1] (zero outside) of the chunk in m·m parts by row
  // and column index modulo m, th + 1 rows of K1: part[pr·m + pc][r·K1 + k] = xp[m(ty0 + r) + pr][m·k + pc].
  // Tile (ty, tx)'s d[i][q] is part[(i % m)·m + q % m][(ty + i / m)·K1 + tx + q / m].
  const int64_t PS = (th + 1) * K1;
  std::vector<float> buf(size_t(TM * TM * PS));
  alignas(64) float tmp[Tiles<TM>::A * Tiles<TM>::A * 8];
  for (int64_t c = 0; c < C; c++) {
    for (int64_t r = 0; r <= th; r++)
      for (int pr = 0; pr < TM; pr++) {
        const int64_t y = TM * (ty0 + r) + pr - 1;
        float* dst = &buf[size_t(pr * TM * PS + r * K1)];  // part (pr, pc) at dst + pc·PS
        if (y < 0 || y >= H)
          for (int pc = 0; pc < TM; pc++) std::fill(dst + pc * PS, dst + pc * PS + K1, 0.f);
        else
          split_row<TM>(src + (c * H + y) * W, W, 1, K1, dst, PS);
      }
    for (int64_t ty = 0; ty < th; ty++) {
      float* const v = V + c * T + ty * tw;  // + ξ·CT
      over_tiles<Vec>(tw, [&](auto one, int64_t tx) __attribute__((always_inline)) {
        // Two passes through an L1 scratch (rows: d·B, then columns: Bᵀ·(d·B)), so that only a
        // row or column of values is live at a time: all A² at once spilled registers.
        using X = decltype(one);
        constexpr int w = int(sizeof(X) / sizeof(float));
        float* const t = &tmp[0];  // [A][A][w]
        KW_UNROLL for (int i = 0; i < A; i++) {
          X d[1][A], r[1][A];
          KW_UNROLL for (int q = 0; q < A; q++)
            d[0][q] = load<X>(&buf[size_t(((i % TM) * TM + q % TM) * PS + (ty + i / TM) * K1 + tx + q / TM)]);
          mul_right<true>(d, Tiles<TM>::Bt, r);  // row i of d·B
          KW_UNROLL for (int q = 0; q < A; q++) store<X>(t + (i * A + q) * w, r[0][q]);
        }
        KW_UNROLL for (int q = 0; q < A; q++) {
          X col[A][1], o[A][1];
          KW_UNROLL for (int i = 0; i < A; i++) col[i][0] = load<X>(t + (i * A + q) * w);
          mul_left<false>(Tiles<TM>::Bt, col, o);  // column q of Bᵀ·(d·B)
          KW_UNROLL for (int i = 0; i < A; i++) store<X>(v + (i * A + q) * CT + tx, o[i][0]);
        }
      });
    }
  }
}

// dst [rows, H, W] = Aᵀ·m·A for the tiles of tile rows [ty0, ty1), m[ξ] = M[ξ][c][t − ty0·tw]
// (M: [A·A][rows][(ty1 − ty0)·tw]), plus bias[c].
template <int TM, typename Vec>
inline __attribute__((always_inline)) void output_tiles_impl(const float* M, int64_t rows, int64_t H, int64_t W, int64_t ty0, int64_t ty1,
                                 const float* bias, float* dst) {
  constexpr int A = Tiles<TM>::A;
  const int64_t tw = (W + TM - 1) / TM, T = (ty1 - ty0) * tw, RT = rows * T;
  std::vector<float> buf(size_t(TM * TM * T));  // y[r·m + q][t]: output (m·ty + r, m·tx + q)
  for (int64_t c = 0; c < rows; c++) {
    const float b0 = bias ? bias[c] : 0.f;
    const float* m = M + c * T;
    over_tiles<Vec>(T, [&](auto one, int64_t t) __attribute__((always_inline)) {
      using X = decltype(one);
      X mm[A][A], u[TM][A], y[TM][TM];
      KW_UNROLL for (int i = 0; i < A; i++)
        KW_UNROLL for (int q = 0; q < A; q++) mm[i][q] = load<X>(m + (i * A + q) * RT + t);
      mul_left<false>(Tiles<TM>::At, mm, u);  // Aᵀ·m
      mul_right<true>(u, Tiles<TM>::At, y);   // (Aᵀ·m)·A
      KW_UNROLL for (int r = 0; r < TM; r++)
        KW_UNROLL for (int q = 0; q < TM; q++) store<X>(&buf[size_t((r * TM + q) * T + t)], y[r][q] + b0);
    });
    for (int64_t ty = ty0; ty < ty1; ty++)
      for (int r = 0; r < TM && TM * ty + r < H; r++)
        join_row<TM>(&buf[size_t(r * TM * T + (ty - ty0) * tw)], T, tw, dst + (c * H + TM * ty + r) * W, W);
  }
}

// The adjoint of output_tiles: D[ξ][c][t] = (A·e·Aᵀ)[ξ] for the m×m tile e of src [rows, H, W]
// (zero past the image), for tile rows [ty0, ty1).
template <int TM, typename Vec>
inline __attribute__((always_inline)) void output_tiles_adjoint_impl(const float* src, int64_t rows, int64_t H, int64_t W, int64_t ty0, int64_t ty1,
                                         float* D) {
  constexpr int A = Tiles<TM>::A;
  const int64_t th = ty1 - ty0, tw = (W + TM - 1) / TM, T = th * tw, RT = rows * T;
  // src split by row and column index modulo m: p[r·m + q][ty·tw + tx] = src[m(ty0 + ty) + r][m·tx + q].
  std::vector<float> buf(size_t(TM * TM * T));
  for (int64_t c = 0; c < rows; c++) {
    for (int64_t ty = 0; ty < th; ty++)
      for (int r = 0; r < TM; r++) {
        const int64_t y = TM * (ty0 + ty) + r;
        float* dst = &buf[size_t(r * TM * T + ty * tw)];  // part (r, q) at dst + q·T
        if (y >= H)
          for (int q = 0; q < TM; q++) std::fill(dst + q * T, dst + q * T + tw, 0.f);
        else
          split_row<TM>(src + (c * H + y) * W, W, 0, tw, dst, T);
      }
    float* d = D + c * T;
    over_tiles<Vec>(T, [&](auto one, int64_t t) __attribute__((always_inline)) {
      using X = decltype(one);
      X e[TM][TM], u[A][TM], w[A][A];
      KW_UNROLL for (int r = 0; r < TM; r++)
        KW_UNROLL for (int q = 0; q < TM; q++) e[r][q] = load<X>(&buf[size_t((r * TM + q) * T + t)]);
      mul_left<true>(Tiles<TM>::At, e, u);    // A·e
      mul_right<false>(u, Tiles<TM>::At, w);  // (A·e)·Aᵀ
      KW_UNROLL for (int i = 0; i < A; i++)
        KW_UNROLL for (int q = 0; q < A; q++) store<X>(d + (i * A + q) * RT + t, w[i][q]);
    });
  }
}

// u [A·A][N] = G·w·Gᵀ for N 3×3 kernels w [9][N] (each a column), and the adjoint dw [9][N] =
// Gᵀ·du·G from du [A·A][N].
template <int TM, typename Vec>
inline __attribute__((always_inline)) void kernel_tiles_impl(const float* w, int64_t N, float* u) {
  constexpr int A = Tiles<TM>::A;
  over_tiles<Vec>(N, [&](auto one, int64_t e) __attribute__((always_inline)) {
    using X = decltype(one);
    X k[3][3], h[A][3], o[A][A];
    KW_UNROLL for (int r = 0; r < 3; r++)
      KW_UNROLL for (int q = 0; q < 3; q++) k[r][q] = load<X>(w + (r * 3 + q) * N + e);
    mul_left<false>(Tiles<TM>::G, k, h);
    mul_right<true>(h, Tiles<TM>::G, o);
    KW_UNROLL for (int i = 0; i < A; i++)
      KW_UNROLL for (int q = 0; q < A; q++) store<X>(u + (i * A + q) * N + e, o[i][q]);
  });
}
template <int TM, typename Vec>
inline __attribute__((always_inline)) void kernel_tiles_adjoint_impl(const float* du, int64_t N, float* dw) {
  constexpr int A = Tiles<TM>::A;
  over_tiles<Vec>(N, [&](auto one, int64_t e) __attribute__((always_inline)) {
    using X = decltype(one);
    X k[A][A], h[3][A], o[3][3];
    KW_UNROLL for (int i = 0; i < A; i++)
      KW_UNROLL for (int q = 0; q < A; q++) k[i][q] = load<X>(du + (i * A + q) * N + e);
    mul_left<true>(Tiles<TM>::G, k, h);
    mul_right<false>(h, Tiles<TM>::G, o);
    KW_UNROLL for (int r = 0; r < 3; r++)
      KW_UNROLL for (int q = 0; q < 3; q++) store<X>(dw + (r * 3 + q) * N + e, o[r][q]);
  });
}

// The AVX2 and baseline versions of each transform (see the comment on the transforms above).
#define KW_VECTOR_VERSIONS(name, params, args)                                          \
  template <int TM>                                                                     \
  __attribute__((target("avx2"))) void name##_avx2 params { name##_impl<TM, f8> args; } \
  template <int TM>                                                                     \
  void name##_base params { name##_impl<TM, f4> args; }                                 \
  template <int TM>                                                                     \
  void name params {                                                                    \
    if (simd_avx2()) name##_avx2<TM> args;                                              \
    else name##_base<TM> args;                                                          \
  }
KW_VECTOR_VERSIONS(input_tiles, (const float* src, int64_t C, int64_t H, int64_t W, int64_t ty0, int64_t ty1, float* V),
                   (src, C, H, W, ty0, ty1, V))
KW_VECTOR_VERSIONS(output_tiles,
                   (const float* M, int64_t rows, int64_t H, int64_t W, int64_t ty0, int64_t ty1, const float* bias,
                    float* dst),
                   (M, rows, H, W, ty0, ty1, bias, dst))
KW_VECTOR_VERSIONS(output_tiles_adjoint,
                   (const float* src, int64_t rows, int64_t H, int64_t W, int64_t ty0, int64_t ty1, float* D),
                   (src, rows, H, W, ty0, ty1, D))
KW_VECTOR_VERSIONS(kernel_tiles, (const float* w, int64_t N, float* u), (w, N, u))
KW_VECTOR_VERSIONS(kernel_tiles_adjoint, (const float* du, int64_t N, float* dw), (du, N, dw))
#undef KW_VECTOR_VERSIONS

template <int TM>
struct Winograd {
  static constexpr int64_t XI = Tiles<TM>::A * Tiles<TM>::A;  // values per tile: 16 or 36
  const KwAssemblyDims& a;
  const ConvGeometry& g;
  int64_t H, W, th, tw, T, n, cell, co, ci;
  Winograd(const KwAssemblyDims& ad, const ConvGeometry& geo) : a(ad), g(geo) {
    H = g.out[1], W = g.out[2], th = (H + TM - 1) / TM, tw = (W + TM - 1) / TM, T = th * tw;
    n = a.cells, cell = a.cell_size(), co = a.co, ci = a.ci;
  }

  // α_b's 9 tap rows [9, n]; flip takes tap 8 − s for s (the transposed kernel of the input gradient).
  void tap_rows(const float* alpha, int64_t b, bool flip, float* rows) const {
    const float* ab = alpha + b * 9 * n;
    for (int s = 0; s < 9; s++) std::memcpy(rows + s * n, ab + (flip ? 8 - s : s) * n, size_t(n) * sizeof(float));
  }

  // Tile rows per chunk: about 64 tiles, so that a chunk's transformed input and output (XI
  // values per tile and channel) stay in L2 between the transforms and the products.
  int64_t chunk_rows() const { return std::clamp<int64_t>(64 / tw, 1, th); }

  // P [XI][K][32] for one block of 32 output channels: the 9 tap panels [K, 32] = α_b[s]·(the
  // block's regrouped cells, K runs of n × 32) into P9, then each ξ's panel by G·w·Gᵀ (9n plus a
  // few adds per element, against XI·n for mixing the Winograd-domain rows Gk·α_b directly).
  void assemble(const float* rows, const float* block, int64_t K, float* P9, float* P) const {
    SmallKGemm p;
    p.M = 9, p.N = K * 32, p.K = n;
    p.A = rows, p.a_row = n, p.a_col = 1;
    p.B = block, p.ldb = 32, p.run_stride = n * 32;
    p.C = P9, p.ldc = K * 32;
    small_k_gemm(p);
    kernel_tiles<TM>(P9, K * 32, P);
  }

  // out [out_channels, H, W] per sample from in [K, H, W]: threads take (sample, chunk of tile
  // rows) items; per item the chunk's input is transformed (V [XI][K][nc]), and per block of 32
  // output channels M_ξ = P_ξᵀ·V_ξ and the output transform. With several chunks a sample's
  // panels (XI·K·out_channels floats) are assembled once and kept; with one, per block.
  void run(const float* in, int64_t K, int64_t out_channels, const float* alpha, bool flip, const float* regrouped,
           const float* bias, float* out) const {
    const int64_t blocks = out_channels / 32, S = H * W, CR = chunk_rows(), chunks = (th + CR - 1) / CR;
    const bool keep = chunks > 1;
    parallel_for(g.batch * chunks, 1, [&](int64_t lo, int64_t hi) {
      StoragePtr Vs = scratch(XI * K * CR * tw), Ms = scratch(XI * 32 * CR * tw);
      StoragePtr Ps = scratch(XI * K * 32 * (keep ? blocks : 1)), P9s = scratch(9 * K * 32), rows_s = scratch(9 * n);
      float *V = Vs->as<float>(), *M = Ms->as<float>(), *P = Ps->as<float>(), *P9 = P9s->as<float>();
      float* rows = rows_s->as<float>();
      int64_t cur = -1;
      for (int64_t it = lo; it < hi; it++) {
        const int64_t b = it / chunks, ty0 = it % chunks * CR, ty1 = std::min(th, ty0 + CR), nc = (ty1 - ty0) * tw;
        if (b != cur) {
          tap_rows(alpha, b, flip, rows);
          if (keep)
            for (int64_t ob = 0; ob < blocks; ob++) assemble(rows, regrouped + ob * K * n * 32, K, P9, P + ob * XI * K * 32);
          cur = b;
        }
        input_tiles<TM>(in + b * K * S, K, H, W, ty0, ty1, V);
        for (int64_t ob = 0; ob < blocks; ob++) {
          const float* Pb = keep ? P + ob * XI * K * 32 : P;
          if (!keep) assemble(rows, regrouped + ob * K * n * 32, K, P9, P);
          for (int64_t xi = 0; xi < XI; xi++)
            packed32_gemm(K, Pb + xi * K * 32, V + xi * K * nc, nc, nc, M + xi * 32 * nc, nc, false);
          output_tiles<TM>(M, 32, H, W, ty0, ty1, bias ? bias + ob * 32 : nullptr, out + (b * out_channels + ob * 32) * S);
        }
      }
    });
  }

  void forward(const float* x, const float* alpha, const float* cells, const float* bias, float* y) const {
    StoragePtr by_o = regroup_cells(a, cells, true);
    run(x, ci, co, alpha, false, by_o->as<float>(), bias, y);
  }

  void backward_input(const float* dy, const float* alpha, const float* cells, float* dx) const {
    StoragePtr by_k = regroup_cells(a, cells, false);
    run(dy, co, ci, alpha, true, by_k->as<float>(), nullptr, dx);
  }

  // Threads take parts of the batch, in chunks of G samples whose dW (9 cells each) fit 8 MB;
  // dE is summed per part, in part order.
  void backward_warehouse(const float* dy, const float* x, const float* alpha, const float* cells, float* dalpha,
                          float* dcells) const {
    const int64_t S = H * W, threads = num_threads(), per_thread = (g.batch + threads - 1) / threads;
    const int64_t G = std::clamp<int64_t>((int64_t(2) << 20) / (9 * cell), 1, per_thread);
    const int64_t chunks = (g.batch + G - 1) / G, parts = std::min(threads, chunks);
    std::vector<StoragePtr> partial(size_t(dcells ? parts - 1 : 0));
    for (auto& p : partial) p = scratch(n * cell);
    parallel_for(parts, 1, [&](int64_t lo, int64_t hi) {
      const int64_t CR = chunk_rows();
      StoragePtr Vs = scratch(XI * ci * CR * tw), Ds = scratch(XI * co * CR * tw), dUs = scratch(XI * cell);
      StoragePtr dWs = scratch(G * 9 * cell);
      float *V = Vs->as<float>(), *D = Ds->as<float>(), *dU = dUs->as<float>(), *dW = dWs->as<float>();
      for (int64_t part = lo; part < hi; part++) {
        const int64_t k0 = part * chunks / parts, k1 = (part + 1) * chunks / parts;
        float* acc = dcells ? (part == 0 ? dcells : partial[size_t(part - 1)]->as<float>()) : nullptr;
        for (int64_t k = k0; k < k1; k++) {
          const int64_t b0 = k * G, nb = std::min(G, g.batch - b0);
          for (int64_t bb = 0; bb < nb; bb++) {
            for (int64_t ty0 = 0; ty0 < th; ty0 += CR) {  // dU_b[ξ] [co, ci] = Σ_chunks D_ξ [co, nc] · V_ξᵀ
              const int64_t ty1 = std::min(th, ty0 + CR), nc = (ty1 - ty0) * tw;
              input_tiles<TM>(x + (b0 + bb) * ci * S, ci, H, W, ty0, ty1, V);
              output_tiles_adjoint<TM>(dy + (b0 + bb) * co * S, co, H, W, ty0, ty1, D);
              for (int64_t xi = 0; xi < XI; xi++)
                gemm_kernels.gemm(false, true, co, ci, nc, 1.f, D + xi * co * nc, nc, V + xi * ci * nc, nc,
                                  ty0 == 0 ? 0.f : 1.f, dU + xi * cell, ci);
            }
            kernel_tiles_adjoint<TM>(dU, cell, dW + bb * 9 * cell);  // the tap kernels' gradient dW_b = Gᵀ·dU_b·G
          }
          if (dalpha)  // dα [nb·9, n] = dW · Eᵀ
            gemm_kernels.gemm(false, true, nb * 9, n, cell, 1.f, dW, cell, cells, cell, 0.f, dalpha + b0 * 9 * n, n);
          if (acc) {  // dE [n, cell] (+)= αᵀ [n, nb·9] · dW [nb·9, cell]
            SmallKGemm p;
            p.M = n, p.N = cell, p.K = nb * 9;
            p.A = alpha + b0 * 9 * n, p.a_row = 1, p.a_col = n;
            p.B = dW, p.ldb = cell;
            p.beta = k == k0 ? 0.f : 1.f;
            p.C = acc, p.ldc = cell;
            small_k_gemm(p);
          }
        }
      }
    });
    if (!dcells || parts == 1) return;
    parallel_for(n * cell, 1 << 14, [&](int64_t lo, int64_t hi) {
      for (const auto& p : partial) {
        const float* v = p->as<float>();
        for (int64_t e = lo; e < hi; e++) dcells[e] += v[e];
      }
    });
  }
};

}  // namespace

// 2-D, 3×3, stride 1, dilation 1, padding 1 on every side (output size = input size), groups 1;
// one cell per tap (the 9 slots of α are the taps), cell rows and columns multiples of 32.
bool winograd_applies(const KwAssemblyDims& a, const ConvGeometry& g) {
  return g.groups == 1 && g.kernel[0] == 1 && g.in[0] == 1 && g.kernel[1] == 3 && g.kernel[2] == 3 &&
         g.stride[1] == 1 && g.stride[2] == 1 && g.dilation[1] == 1 && g.dilation[2] == 1 && g.pad_lo[1] == 1 &&
         g.pad_lo[2] == 1 && g.out[1] == g.in[1] && g.out[2] == g.in[2] && a.gs == 9 && a.goc == 1 && a.gic == 1 &&
         a.ck == 1 && a.co % 32 == 0 && a.ci % 32 == 0 && g.in_channels == a.ci && g.out_channels == a.co;
}

// Multiply-adds per sample and cell element of F(m×m, 3×3): 9·n for the tap panels, (m + 2)²·T
// for the products over T tiles (plus 32 for the kernel transform's adds); the warehouse
// gradients mix 9·2n. The panels do 9·(n + L), and 9·(2n + L).
double winograd_cost(const KwAssemblyDims& a, const ConvGeometry& g, int tm, bool warehouse) {
  const double T = double(((g.out[1] + tm - 1) / tm) * ((g.out[2] + tm - 1) / tm));
  return 9.0 * (warehouse ? 2.0 : 1.0) * double(a.cells) + double((tm + 2) * (tm + 2)) * T + 32.0;
}

// The tile size m (2 or 4) a Winograd convolution runs with, 0 for none. Requested: the one with
// fewer multiply-adds. Auto: that, where it does under 0.8 of the panels' count, with at least
// 32 tiles, and for the warehouse gradients each sample's (m + 2)² dU cells within 3 MB.
// Measured on KW-ResNet-18's layers (B 16, 2 cores) with m = 2, the transforms and short
// products cost more than the count says at few tiles: at 7×7 (T = 16, ratio 0.78) it was 1.3×
// slower than panels; and with 4 MB of dU per sample (256 channels) the warehouse gradients took
// 45 ms against the panels' 36 (ratio 0.64), while 2.4 MB (128 channels, m = 4) still won over
// m = 2: 16.3 against 18.2 ms. KW_WINOGRAD_TILE=2 or 4 fixes a requested tile (a
// testing knob: test/kw_conv_winograd.test.ts runs the kwConv tests with each).
int winograd_tile(const KwAssemblyDims& a, const ConvGeometry& g, bool warehouse, bool requested) {
  if (!winograd_applies(a, g)) return 0;
  static const int forced = [] {
    const char* v = std::getenv("KW_WINOGRAD_TILE");
    return v && (std::string(v) == "2" || std::string(v) == "4") ? std::atoi(v) : 0;
  }();
  if (requested && forced) return forced;
  const double L = double(g.out_spatial()), n = double(a.cells);
  int best = 0;
  double best_cost = requested ? 1e300 : 0.8 * 9.0 * ((warehouse ? 2.0 : 1.0) * n + L);
  for (const int tm : {2, 4}) {
    const int64_t T = ((g.out[1] + tm - 1) / tm) * ((g.out[2] + tm - 1) / tm);
    if (!requested && (T < 32 || (warehouse && (tm + 2) * (tm + 2) * a.cell_size() > (int64_t(3) << 18)))) continue;
    const double cost = winograd_cost(a, g, tm, warehouse);
    if (cost < best_cost) best = tm, best_cost = cost;
  }
  return best;
}

void winograd_forward(const KwAssemblyDims& a, const ConvGeometry& g, int tile, const float* x, const float* alpha,
                      const float* cells, const float* bias, float* y) {
  if (tile == 4) return Winograd<4>(a, g).forward(x, alpha, cells, bias, y);
  Winograd<2>(a, g).forward(x, alpha, cells, bias, y);
}

void winograd_backward_input(const KwAssemblyDims& a, const ConvGeometry& g, int tile, const float* dy,
                             const float* alpha, const float* cells, float* dx) {
  if (tile == 4) return Winograd<4>(a, g).backward_input(dy, alpha, cells, dx);
  Winograd<2>(a, g).backward_input(dy, alpha, cells, dx);
}

void winograd_backward_warehouse(const KwAssemblyDims& a, const ConvGeometry& g, int tile, const float* dy,
                                 const float* x, const float* alpha, const float* cells, float* dalpha, float* dcells) {
  if (tile == 4) return Winograd<4>(a, g).backward_warehouse(dy, x, alpha, cells, dalpha, dcells);
  Winograd<2>(a, g).backward_warehouse(dy, x, alpha, cells, dalpha, dcells);
}

}  // namespace kw::cpu::kwk
