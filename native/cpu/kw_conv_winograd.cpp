// The Winograd KernelWarehouse convolution: F(2×2, 3×3) for 3×3, stride-1, 'same' layers whose
// cells are one tap each (9 slots, goc = gic = 1, ck = 1: KW-ResNet's 3×3 layers), forward and
// backward side by side.
//
// Winograd (Lavin & Gray, 2016): with V = Bᵀ·d·B the 4×4 input tile transformed and U = G·w·Gᵀ the
// 3×3 kernel transformed, a 2×2 output tile is Aᵀ·(U ⊙ V)·A, summed over input channels: 16
// multiply-adds per channel pair and tile instead of 36. U is linear in the kernel, so with the
// sample's tap kernels W_b[s] = Σ_j α_b[s, j]·E_j
//   U_b[ξ] = Σ_s Gk[ξ, s]·W_b[s] = Σ_j β_b[ξ, j]·E_j,   β_b = Gk·α_b   (Gk = G ⊗ G, 16 × 9)
// is itself a mixture of the cells: the panels assembly (cpu/kw_conv_fused.cpp) runs unchanged with
// the 16 rows of β_b in place of the 9 of α_b, writing each ξ's [ci, 32] panel, and the product is
// 16 GEMMs over T ≈ L/4 tiles. Per sample 16·cell·(n + T) multiply-adds against panels'
// 9·cell·(n + L): a gain where positions outnumber cells (early stages), a loss where they do not.
//
// Input gradient: the same with the kernel transposed and its taps flipped (rows Gk·α_b[8 − s],
// cells regrouped by 32 input channels), dY transformed as the input.
// Warehouse gradients: dU_b[ξ] = Σ_t (A·dY_t·Aᵀ)[ξ] · V_t[ξ]ᵀ (16 GEMMs over the tiles), then
//   dβ_b = dU_b·Eᵀ, dα_b = Gkᵀ·dβ_b and dE = Σ_b β_bᵀ·dU_b.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/storage.h"
#include "core/thread_pool.h"
#include "cpu/kw_impl.h"
#include "cpu/simd_gemm.h"
#include "cpu/tables.h"

#pragma GCC diagnostic ignored "-Wpsabi"  // vectors never cross a non-inlined call

namespace kw::cpu::kwk {
namespace {

// G of F(2×2, 3×3); Bᵀ and Aᵀ are written out in the transforms below.
constexpr float kG[4][3] = {{1.f, 0.f, 0.f}, {.5f, .5f, .5f}, {.5f, -.5f, .5f}, {0.f, 0.f, 1.f}};

StoragePtr scratch(int64_t n) { return new_storage(DType::F32, std::max<int64_t>(1, n)); }

// The transforms first split the image (or dY) by row and column parity, so that a tile's
// inputs sit at the same offset in each part, then compute each tile's 16 (or 4) values in one
// unit-stride loop over the tiles that vectorises. The AVX2 clone is picked at load time, as in
// cpu/conv.cpp.
#define KW_SIMD_CLONES __attribute__((target_clones("avx2", "default")))

// dst[k] = row[2k + off] where 0 ≤ 2k + off < W, else 0, for k < len.
inline void every_other(const float* row, int64_t W, int64_t off, int64_t len, float* dst) {
  const int64_t lo = std::min(len, off < 0 ? int64_t(1) : int64_t(0)), hi = std::clamp<int64_t>((W - off + 1) / 2, lo, len);
  std::fill(dst, dst + lo, 0.f);
  for (int64_t k = lo; k < hi; k++) dst[k] = row[2 * k + off];
  std::fill(dst + hi, dst + len, 0.f);
}

typedef float f8 __attribute__((vector_size(32)));
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

// fn(X{}, i) over n tiles in vectors of 8 (X = f8), the last one overlapping the one before (the
// callers' stores are idempotent); one tile at a time (X = float) when n < 8.
template <typename F>
inline __attribute__((always_inline)) void over_tiles(int64_t n, F&& fn) {
  if (n < 8) {
    for (int64_t i = 0; i < n; i++) fn(0.f, i);
    return;
  }
  for (int64_t i = 0; i + 8 < n; i += 8) fn(f8{}, i);
  fn(f8{}, n - 8);
}

// The 16 values of sizeof(X)/4 consecutive tiles of a tile row: row i of tile d[i][q] =
// xp[2ty + i][2tx + q] comes from the parity parts (e: even column, o: odd; 0: even row, 1:
// odd; + K1: the next pair of rows); Bᵀ over the rows (u), then B over the columns.
template <typename X>
inline __attribute__((always_inline)) void input_tile_columns(const float* e0, const float* o0, const float* e1,
                                                              const float* o1, int64_t K1, float* v, int64_t CT) {
  const X a0 = load<X>(e0), a1 = load<X>(o0), a2 = load<X>(e0 + 1), a3 = load<X>(o0 + 1);
  const X b0 = load<X>(e1), b1 = load<X>(o1), b2 = load<X>(e1 + 1), b3 = load<X>(o1 + 1);
  const X c0 = load<X>(e0 + K1), c1 = load<X>(o0 + K1), c2 = load<X>(e0 + K1 + 1), c3 = load<X>(o0 + K1 + 1);
  const X d0 = load<X>(e1 + K1), d1 = load<X>(o1 + K1), d2 = load<X>(e1 + K1 + 1), d3 = load<X>(o1 + K1 + 1);
  const X u[4][4] = {{a0 - c0, a1 - c1, a2 - c2, a3 - c3},   // d0 − d2
                     {b0 + c0, b1 + c1, b2 + c2, b3 + c3},   // d1 + d2
                     {c0 - b0, c1 - b1, c2 - b2, c3 - b3},   // d2 − d1
                     {b0 - d0, b1 - d1, b2 - d2, b3 - d3}};  // d1 − d3
  for (int r = 0; r < 4; r++) {
    store<X>(v + (r * 4 + 0) * CT, u[r][0] - u[r][2]);
    store<X>(v + (r * 4 + 1) * CT, u[r][1] + u[r][2]);
    store<X>(v + (r * 4 + 2) * CT, u[r][2] - u[r][1]);
    store<X>(v + (r * 4 + 3) * CT, u[r][1] - u[r][3]);
  }
}

// The 2×2 outputs of sizeof(X)/4 consecutive tiles from m[ξ·RT] (Aᵀ·m·A, plus the bias), by
// output row and column parity: y00 = (even row, even column), y01, y10, y11.
template <typename X>
inline __attribute__((always_inline)) void output_tile_values(const float* m, int64_t RT, float bias, float* y00,
                                                              float* y01, float* y10, float* y11) {
  X u0[4], u1[4];  // Aᵀ·m
  for (int q = 0; q < 4; q++) {
    const X m0 = load<X>(m + q * RT), m1 = load<X>(m + (4 + q) * RT), m2 = load<X>(m + (8 + q) * RT);
    const X m3 = load<X>(m + (12 + q) * RT);
    u0[q] = m0 + m1 + m2;
    u1[q] = m1 - m2 - m3;
  }
  store<X>(y00, u0[0] + u0[1] + u0[2] + bias);  // (Aᵀ·m)·A
  store<X>(y01, u0[1] - u0[2] - u0[3] + bias);
  store<X>(y10, u1[0] + u1[1] + u1[2] + bias);
  store<X>(y11, u1[1] - u1[2] - u1[3] + bias);
}

// The 16 values A·e·Aᵀ of sizeof(X)/4 consecutive 2×2 tiles e (by row and column parity: e00 ..
// e11), to d[ξ·RT], A = [[1, 0], [1, 1], [1, −1], [0, −1]].
template <typename X>
inline __attribute__((always_inline)) void adjoint_tile_values(const float* p00, const float* p01, const float* p10,
                                                               const float* p11, float* d, int64_t RT) {
  const X e00 = load<X>(p00), e01 = load<X>(p01), e10 = load<X>(p10), e11 = load<X>(p11);
  const X u[4][2] = {{e00, e01}, {e00 + e10, e01 + e11}, {e00 - e10, e01 - e11}, {-e10, -e11}};  // A·e
  for (int x = 0; x < 4; x++) {  // (A·e)·Aᵀ
    store<X>(d + (x * 4 + 0) * RT, u[x][0]);
    store<X>(d + (x * 4 + 1) * RT, u[x][0] + u[x][1]);
    store<X>(d + (x * 4 + 2) * RT, u[x][0] - u[x][1]);
    store<X>(d + (x * 4 + 3) * RT, -u[x][1]);
  }
}

// V[ξ][c][t] = (Bᵀ·d·B)[ξ] for the 4×4 tile d of channel c at rows 2ty − 1.., columns 2tx − 1..
// (zero outside the image), from src [C, H, W], for tile rows [ty0, ty1): t = (ty − ty0)·tw + tx.
KW_SIMD_CLONES void input_tiles(const float* src, int64_t C, int64_t H, int64_t W, int64_t ty0, int64_t ty1, float* V) {
  const int64_t th = ty1 - ty0, tw = (W + 1) / 2, T = th * tw, K1 = tw + 1, CT = C * T;
  // The padded rows xp[y][x] = src[y − 1][x − 1] (zero outside) of the chunk in four parts by
  // row and column parity, (th + 1) rows of K1: part[pr·2 + pc][r·K1 + k] = xp[2(ty0 + r) + pr][2k + pc].
  const int64_t PS = (th + 1) * K1;
  std::vector<float> buf(size_t(4 * PS));
  const float* part[4] = {&buf[0], &buf[size_t(PS)], &buf[size_t(2 * PS)], &buf[size_t(3 * PS)]};
  for (int64_t c = 0; c < C; c++) {
    for (int64_t yp = 0; yp < 2 * (th + 1); yp++) {
      float* pe = &buf[size_t((yp % 2) * 2 * PS + (yp / 2) * K1)];
      const int64_t y = 2 * ty0 + yp - 1;
      if (y < 0 || y >= H) {
        std::fill(pe, pe + K1, 0.f);
        std::fill(pe + PS, pe + PS + K1, 0.f);
        continue;
      }
      every_other(src + (c * H + y) * W, W, -1, K1, pe);      // xp[2k] = x[2k − 1]
      every_other(src + (c * H + y) * W, W, 0, K1, pe + PS);  // xp[2k + 1] = x[2k]
    }
    for (int64_t ty = 0; ty < th; ty++) {
      // Tile row ty reads padded rows 2ty.. 2ty + 3: parity rows ty (even, odd) and ty + 1.
      const float* __restrict e0 = part[0] + ty * K1;  // even row, even column
      const float* __restrict o0 = part[1] + ty * K1;  // even row, odd column
      const float* __restrict e1 = part[2] + ty * K1;  // odd row, even column
      const float* __restrict o1 = part[3] + ty * K1;
      float* const v = V + c * T + ty * tw;  // + ξ·CT
      over_tiles(tw, [&](auto one, int64_t tx) {
        input_tile_columns<decltype(one)>(e0 + tx, o0 + tx, e1 + tx, o1 + tx, K1, v + tx, CT);
      });
    }
  }
}

// dst [rows, H, W] = Aᵀ·m·A for the tiles of tile rows [ty0, ty1), m[ξ] = M[ξ][c][t − ty0·tw]
// (M: [16][rows][(ty1 − ty0)·tw]), plus bias[c].
KW_SIMD_CLONES void output_tiles(const float* M, int64_t rows, int64_t H, int64_t W, int64_t ty0, int64_t ty1,
                                 const float* bias, float* dst) {
  const int64_t tw = (W + 1) / 2, T = (ty1 - ty0) * tw, RT = rows * T;
  std::vector<float> buf(size_t(4 * T));
  float* y[4] = {&buf[0], &buf[size_t(T)], &buf[size_t(2 * T)], &buf[size_t(3 * T)]};  // by row and column parity
  for (int64_t c = 0; c < rows; c++) {
    const float b0 = bias ? bias[c] : 0.f;
    const float* m = M + c * T;
    over_tiles(T, [&](auto one, int64_t t) {
      output_tile_values<decltype(one)>(m + t, RT, b0, y[0] + t, y[1] + t, y[2] + t, y[3] + t);
    });
    for (int64_t ty = ty0; ty < ty1; ty++)
      for (int r = 0; r < 2 && 2 * ty + r < H; r++) {
        float* out = dst + (c * H + 2 * ty + r) * W;
        const float *e = y[r * 2] + (ty - ty0) * tw, *o = y[r * 2 + 1] + (ty - ty0) * tw;
        for (int64_t t = 0; t < W / 2; t++) {
          out[2 * t] = e[t];
          out[2 * t + 1] = o[t];
        }
        if (W % 2) out[W - 1] = e[tw - 1];
      }
  }
}

// The adjoint of output_tiles: D[ξ][c][t] = (A·e·Aᵀ)[ξ] for the 2×2 tile e of src [rows, H, W]
// (zero past the image), A = [[1, 0], [1, 1], [1, −1], [0, −1]], for tile rows [ty0, ty1).
KW_SIMD_CLONES void output_tiles_adjoint(const float* src, int64_t rows, int64_t H, int64_t W, int64_t ty0, int64_t ty1,
                                         float* D) {
  const int64_t th = ty1 - ty0, tw = (W + 1) / 2, T = th * tw, RT = rows * T;
  // src split by row and column parity: p[r·2 + q][ty·tw + tx] = src[2(ty0 + ty) + r][2tx + q].
  std::vector<float> buf(size_t(4 * T));
  const float* p[4] = {&buf[0], &buf[size_t(T)], &buf[size_t(2 * T)], &buf[size_t(3 * T)]};
  for (int64_t c = 0; c < rows; c++) {
    for (int64_t yr = 0; yr < 2 * th; yr++) {
      float* pe = &buf[size_t((yr % 2) * 2 * T + (yr / 2) * tw)];
      const int64_t y = 2 * ty0 + yr;
      if (y >= H) {
        std::fill(pe, pe + tw, 0.f);
        std::fill(pe + T, pe + T + tw, 0.f);
        continue;
      }
      every_other(src + (c * H + y) * W, W, 0, tw, pe);
      every_other(src + (c * H + y) * W, W, 1, tw, pe + T);
    }
    over_tiles(T, [&](auto one, int64_t t) {
      adjoint_tile_values<decltype(one)>(p[0] + t, p[1] + t, p[2] + t, p[3] + t, D + c * T + t, RT);
    });
  }
}

// The 4×4 U = G·w·Gᵀ of sizeof(X)/4 consecutive 3×3 kernels w[s·stride] (s = r·3 + q), to
// u[ξ·stride]. G's rows: g0, (g0 + g1 + g2)/2, (g0 − g1 + g2)/2, g2.
template <typename X>
inline __attribute__((always_inline)) void kernel_values(const float* w, float* u, int64_t stride) {
  X t[4][3];  // G·w
  for (int q = 0; q < 3; q++) {
    const X w0 = load<X>(w + q * stride), w1 = load<X>(w + (3 + q) * stride), w2 = load<X>(w + (6 + q) * stride);
    const X h = .5f * (w0 + w2);
    t[0][q] = w0, t[1][q] = h + .5f * w1, t[2][q] = h - .5f * w1, t[3][q] = w2;
  }
  for (int x = 0; x < 4; x++) {  // (G·w)·Gᵀ
    const X h = .5f * (t[x][0] + t[x][2]);
    store<X>(u + (x * 4 + 0) * stride, t[x][0]);
    store<X>(u + (x * 4 + 1) * stride, h + .5f * t[x][1]);
    store<X>(u + (x * 4 + 2) * stride, h - .5f * t[x][1]);
    store<X>(u + (x * 4 + 3) * stride, t[x][2]);
  }
}

// The adjoint: dw = Gᵀ·du·G for sizeof(X)/4 consecutive 4×4 du[ξ·stride], to dw[s·stride].
// Gᵀ's rows: (1, ½, ½, 0), (0, ½, −½, 0), (0, ½, ½, 1).
template <typename X>
inline __attribute__((always_inline)) void kernel_values_adjoint(const float* du, float* dw, int64_t stride) {
  X t[3][4];  // Gᵀ·du
  for (int y = 0; y < 4; y++) {
    const X d0 = load<X>(du + y * stride), d1 = load<X>(du + (4 + y) * stride);
    const X d2 = load<X>(du + (8 + y) * stride), d3 = load<X>(du + (12 + y) * stride);
    const X h = .5f * (d1 + d2);
    t[0][y] = d0 + h, t[1][y] = .5f * (d1 - d2), t[2][y] = h + d3;
  }
  for (int r = 0; r < 3; r++) {  // (Gᵀ·du)·G
    const X h = .5f * (t[r][1] + t[r][2]);
    store<X>(dw + (r * 3 + 0) * stride, t[r][0] + h);
    store<X>(dw + (r * 3 + 1) * stride, .5f * (t[r][1] - t[r][2]));
    store<X>(dw + (r * 3 + 2) * stride, h + t[r][3]);
  }
}

// u [16][N] = G·w·Gᵀ for N kernels w [9][N] (each a column), and the adjoint dw [9][N] from du [16][N].
KW_SIMD_CLONES void kernel_tiles(const float* w, int64_t N, float* u) {
  over_tiles(N, [&](auto one, int64_t e) { kernel_values<decltype(one)>(w + e, u + e, N); });
}
KW_SIMD_CLONES void kernel_tiles_adjoint(const float* du, int64_t N, float* dw) {
  over_tiles(N, [&](auto one, int64_t e) { kernel_values_adjoint<decltype(one)>(du + e, dw + e, N); });
}

struct Winograd {
  const KwAssemblyDims& a;
  const ConvGeometry& g;
  int64_t H, W, th, tw, T, n, cell, co, ci;
  Winograd(const KwAssemblyDims& ad, const ConvGeometry& geo) : a(ad), g(geo) {
    H = g.out[1], W = g.out[2], th = (H + 1) / 2, tw = (W + 1) / 2, T = th * tw;
    n = a.cells, cell = a.cell_size(), co = a.co, ci = a.ci;
  }

  // α_b's 9 tap rows [9, n]; flip takes tap 8 − s for s (the transposed kernel of the input gradient).
  void tap_rows(const float* alpha, int64_t b, bool flip, float* rows) const {
    const float* ab = alpha + b * 9 * n;
    for (int s = 0; s < 9; s++) std::memcpy(rows + s * n, ab + (flip ? 8 - s : s) * n, size_t(n) * sizeof(float));
  }

  // Tile rows per chunk: about 64 tiles, so that a chunk's transformed input and output (16
  // values per tile and channel) stay in L2 between the transforms and the products.
  int64_t chunk_rows() const { return std::clamp<int64_t>(64 / tw, 1, th); }

  // P [16][K][32] for one block of 32 output channels: the 9 tap panels [K, 32] = α_b[s]·(the
  // block's regrouped cells, K runs of n × 32) into P9, then each ξ's panel by G·w·Gᵀ (9n + 16
  // multiply-adds per element, against 16n for mixing β_b = Gk·α_b directly).
  void assemble(const float* rows, const float* block, int64_t K, float* P9, float* P) const {
    SmallKGemm p;
    p.M = 9, p.N = K * 32, p.K = n;
    p.A = rows, p.a_row = n, p.a_col = 1;
    p.B = block, p.ldb = 32, p.run_stride = n * 32;
    p.C = P9, p.ldc = K * 32;
    small_k_gemm(p);
    kernel_tiles(P9, K * 32, P);
  }

  // out [out_channels, H, W] per sample from in [K, H, W]: threads take (sample, chunk of tile
  // rows) items; per item the chunk's input is transformed (V [16][K][nc]), and per block of 32
  // output channels M_ξ = P_ξᵀ·V_ξ and the output transform. With several chunks a sample's
  // panels (16·K·out_channels floats) are assembled once and kept; with one, per block.
  void run(const float* in, int64_t K, int64_t out_channels, const float* alpha, bool flip, const float* regrouped,
           const float* bias, float* out) const {
    const int64_t blocks = out_channels / 32, S = H * W, CR = chunk_rows(), chunks = (th + CR - 1) / CR;
    const bool keep = chunks > 1;
    parallel_for(g.batch * chunks, 1, [&](int64_t lo, int64_t hi) {
      StoragePtr Vs = scratch(16 * K * CR * tw), Ms = scratch(16 * 32 * CR * tw);
      StoragePtr Ps = scratch(16 * K * 32 * (keep ? blocks : 1)), P9s = scratch(9 * K * 32), rows_s = scratch(9 * n);
      float *V = Vs->as<float>(), *M = Ms->as<float>(), *P = Ps->as<float>(), *P9 = P9s->as<float>();
      float* rows = rows_s->as<float>();
      int64_t cur = -1;
      for (int64_t it = lo; it < hi; it++) {
        const int64_t b = it / chunks, ty0 = it % chunks * CR, ty1 = std::min(th, ty0 + CR), nc = (ty1 - ty0) * tw;
        if (b != cur) {
          tap_rows(alpha, b, flip, rows);
          if (keep)
            for (int64_t ob = 0; ob < blocks; ob++) assemble(rows, regrouped + ob * K * n * 32, K, P9, P + ob * 16 * K * 32);
          cur = b;
        }
        input_tiles(in + b * K * S, K, H, W, ty0, ty1, V);
        for (int64_t ob = 0; ob < blocks; ob++) {
          const float* Pb = keep ? P + ob * 16 * K * 32 : P;
          if (!keep) assemble(rows, regrouped + ob * K * n * 32, K, P9, P);
          for (int64_t xi = 0; xi < 16; xi++)
            packed32_gemm(K, Pb + xi * K * 32, V + xi * K * nc, nc, nc, M + xi * 32 * nc, nc, false);
          output_tiles(M, 32, H, W, ty0, ty1, bias ? bias + ob * 32 : nullptr, out + (b * out_channels + ob * 32) * S);
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
      StoragePtr Vs = scratch(16 * ci * CR * tw), Ds = scratch(16 * co * CR * tw), dUs = scratch(16 * cell);
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
              input_tiles(x + (b0 + bb) * ci * S, ci, H, W, ty0, ty1, V);
              output_tiles_adjoint(dy + (b0 + bb) * co * S, co, H, W, ty0, ty1, D);
              for (int64_t xi = 0; xi < 16; xi++)
                gemm_kernels.gemm(false, true, co, ci, nc, 1.f, D + xi * co * nc, nc, V + xi * ci * nc, nc,
                                  ty0 == 0 ? 0.f : 1.f, dU + xi * cell, ci);
            }
            kernel_tiles_adjoint(dU, cell, dW + bb * 9 * cell);  // the tap kernels' gradient dW_b = Gᵀ·dU_b·G
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

// Where it applies, Auto takes Winograd when it does under 0.8 of the panels' multiply-adds per
// sample and cell element: 9·n + 16·T (the kernel transform's adds counted as 32) against
// 9·(n + L) for the forward and input gradient, 18·n + 16·T against 9·(2n + L) for the
// warehouse gradients. Measured on KW-ResNet-18's layers (B 16, 2 cores), the transforms and
// short products cost more than the count says at few tiles: at 7×7 (T = 16, ratio 0.78) it was
// 1.3× slower than panels, so it needs 32 tiles; and the warehouse gradients need each sample's
// 16 dU cells within 1 MB (at 256 channels, 4 MB: 46 vs 43 ms for panels, ratio 0.64). Times
// against panels (chunked at 56×56): forward 0.59 at 64 channels and 56×56, 0.63 at 128 and
// 28×28, 0.79 at 256 and 14×14; warehouse gradients 0.62 and 0.68 at the first two.
bool winograd_pays_off(const KwAssemblyDims& a, const ConvGeometry& g, bool warehouse) {
  if (!winograd_applies(a, g)) return false;
  const double n = double(a.cells), L = double(g.out_spatial());
  const double T = double(((g.out[1] + 1) / 2) * ((g.out[2] + 1) / 2)), k = warehouse ? 2.0 : 1.0;
  const double ratio = (9.0 * k * n + 16.0 * T + 32.0) / (9.0 * (k * n + L));
  return ratio < 0.8 && T >= 32 && (!warehouse || 16 * a.cell_size() <= (int64_t(1) << 18));
}

void winograd_forward(const KwAssemblyDims& a, const ConvGeometry& g, const float* x, const float* alpha,
                      const float* cells, const float* bias, float* y) {
  Winograd(a, g).forward(x, alpha, cells, bias, y);
}

void winograd_backward_input(const KwAssemblyDims& a, const ConvGeometry& g, const float* dy, const float* alpha,
                             const float* cells, float* dx) {
  Winograd(a, g).backward_input(dy, alpha, cells, dx);
}

void winograd_backward_warehouse(const KwAssemblyDims& a, const ConvGeometry& g, const float* dy, const float* x,
                                 const float* alpha, const float* cells, float* dalpha, float* dcells) {
  Winograd(a, g).backward_warehouse(dy, x, alpha, cells, dalpha, dcells);
}

}  // namespace kw::cpu::kwk
