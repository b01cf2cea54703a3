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
#include <vector>

#include "core/storage.h"
#include "core/thread_pool.h"
#include "cpu/kw_impl.h"
#include "cpu/simd_gemm.h"
#include "cpu/tables.h"

namespace kw::cpu::kwk {
namespace {

// G of F(2×2, 3×3); Bᵀ and Aᵀ are written out in the transforms below.
constexpr float kG[4][3] = {{1.f, 0.f, 0.f}, {.5f, .5f, .5f}, {.5f, -.5f, .5f}, {0.f, 0.f, 1.f}};

StoragePtr scratch(int64_t n) { return new_storage(DType::F32, std::max<int64_t>(1, n)); }

// The transforms work on a tile row at a time with the columns split into even and odd ones, so
// that every loop runs over the row's tiles with unit stride (and vectorises); the AVX2 clone is
// picked at load time, as in cpu/conv.cpp.
#define KW_SIMD_CLONES __attribute__((target_clones("avx2", "default")))

// V[ξ][c][t] = (Bᵀ·d·B)[ξ] for the 4×4 tile d of channel c at rows 2ty − 1.., columns 2tx − 1..
// (zero outside the image), from src [C, H, W]; t = ty·tw + tx.
KW_SIMD_CLONES void input_tiles(const float* src, int64_t C, int64_t H, int64_t W, float* V) {
  const int64_t th = (H + 1) / 2, tw = (W + 1) / 2, T = th * tw, K1 = tw + 1, CT = C * T;
  // Rows of the tile row split by column parity of the padded row xp[k] = x[k − 1]:
  // e[r][k] = xp[2k], o[r][k] = xp[2k + 1], k ≤ tw; then Bᵀ's two-term row combinations.
  std::vector<float> buf(size_t(10 * K1));
  float* e[4] = {&buf[0], &buf[size_t(K1)], &buf[size_t(2 * K1)], &buf[size_t(3 * K1)]};
  float* o[4] = {&buf[size_t(4 * K1)], &buf[size_t(5 * K1)], &buf[size_t(6 * K1)], &buf[size_t(7 * K1)]};
  float *ue = &buf[size_t(8 * K1)], *uo = &buf[size_t(9 * K1)];
  static constexpr int kRow[4][4] = {{0, 1, 2, -1}, {1, 1, 2, 1}, {2, 1, 1, -1}, {1, 1, 3, -1}};  // Bᵀ: ±d_i ± d_j
  for (int64_t c = 0; c < C; c++)
    for (int64_t ty = 0; ty < th; ty++) {
      for (int r = 0; r < 4; r++) {
        const int64_t yy = 2 * ty - 1 + r;
        if (yy < 0 || yy >= H) {
          std::fill(e[r], e[r] + K1, 0.f);
          std::fill(o[r], o[r] + K1, 0.f);
          continue;
        }
        const float* row = src + (c * H + yy) * W;
        e[r][0] = 0.f;
        for (int64_t k = 1; k < K1; k++) e[r][k] = 2 * k - 1 < W ? row[2 * k - 1] : 0.f;
        for (int64_t k = 0; k < K1; k++) o[r][k] = 2 * k < W ? row[2 * k] : 0.f;
      }
      float* v = V + c * T + ty * tw;
      for (int a = 0; a < 4; a++) {
        const int i = kRow[a][0], j = kRow[a][2];
        const float si = float(kRow[a][1]), sj = float(kRow[a][3]);
        for (int64_t k = 0; k < K1; k++) ue[k] = si * e[i][k] + sj * e[j][k];
        for (int64_t k = 0; k < K1; k++) uo[k] = si * o[i][k] + sj * o[j][k];
        float *v0 = v + (a * 4) * CT, *v1 = v0 + CT, *v2 = v1 + CT, *v3 = v2 + CT;
        for (int64_t t = 0; t < tw; t++) {  // B over the columns: d_q = xp[2tx + q]
          v0[t] = ue[t] - ue[t + 1];
          v1[t] = uo[t] + ue[t + 1];
          v2[t] = ue[t + 1] - uo[t];
          v3[t] = uo[t] - uo[t + 1];
        }
      }
    }
}

// dst [rows, H, W] = Aᵀ·m·A per tile, m[ξ] = M[ξ][c][t] (M: [16][rows][T]), plus bias[c].
KW_SIMD_CLONES void output_tiles(const float* M, int64_t rows, int64_t H, int64_t W, const float* bias, float* dst) {
  const int64_t th = (H + 1) / 2, tw = (W + 1) / 2, T = th * tw, RT = rows * T;
  std::vector<float> buf(size_t(10 * tw));
  float* s[2][4];  // (Aᵀ·m)[row][q] over the tile row's tiles
  for (int r = 0; r < 2; r++)
    for (int q = 0; q < 4; q++) s[r][q] = &buf[size_t((r * 4 + q) * tw)];
  float *ev = &buf[size_t(8 * tw)], *od = &buf[size_t(9 * tw)];
  for (int64_t c = 0; c < rows; c++) {
    const float b0 = bias ? bias[c] : 0.f;
    for (int64_t ty = 0; ty < th; ty++) {
      const float* m = M + c * T + ty * tw;
      for (int q = 0; q < 4; q++) {
        const float *m0 = m + q * RT, *m1 = m + (4 + q) * RT, *m2 = m + (8 + q) * RT, *m3 = m + (12 + q) * RT;
        for (int64_t t = 0; t < tw; t++) {
          s[0][q][t] = m0[t] + m1[t] + m2[t];
          s[1][q][t] = m1[t] - m2[t] - m3[t];
        }
      }
      for (int r = 0; r < 2 && 2 * ty + r < H; r++) {
        for (int64_t t = 0; t < tw; t++) {
          ev[t] = s[r][0][t] + s[r][1][t] + s[r][2][t] + b0;
          od[t] = s[r][1][t] - s[r][2][t] - s[r][3][t] + b0;
        }
        float* out = dst + (c * H + 2 * ty + r) * W;
        for (int64_t t = 0; t < W / 2; t++) {
          out[2 * t] = ev[t];
          out[2 * t + 1] = od[t];
        }
        if (W % 2) out[W - 1] = ev[tw - 1];
      }
    }
  }
}

// The adjoint of output_tiles: D[ξ][c][t] = (A·e·Aᵀ)[ξ] for the 2×2 tile e of src [rows, H, W]
// (zero past the image), A = [[1, 0], [1, 1], [1, −1], [0, −1]].
KW_SIMD_CLONES void output_tiles_adjoint(const float* src, int64_t rows, int64_t H, int64_t W, float* D) {
  const int64_t th = (H + 1) / 2, tw = (W + 1) / 2, T = th * tw, RT = rows * T;
  std::vector<float> buf(size_t(6 * tw));
  float* ev[2] = {&buf[0], &buf[size_t(tw)]};
  float* od[2] = {&buf[size_t(2 * tw)], &buf[size_t(3 * tw)]};
  float *ue = &buf[size_t(4 * tw)], *uo = &buf[size_t(5 * tw)];
  for (int64_t c = 0; c < rows; c++)
    for (int64_t ty = 0; ty < th; ty++) {
      for (int r = 0; r < 2; r++) {
        const int64_t yy = 2 * ty + r;
        if (yy >= H) {
          std::fill(ev[r], ev[r] + tw, 0.f);
          std::fill(od[r], od[r] + tw, 0.f);
          continue;
        }
        const float* row = src + (c * H + yy) * W;
        for (int64_t t = 0; t < tw; t++) ev[r][t] = row[2 * t];
        for (int64_t t = 0; t < tw; t++) od[r][t] = 2 * t + 1 < W ? row[2 * t + 1] : 0.f;
      }
      float* d = D + c * T + ty * tw;
      for (int x = 0; x < 4; x++) {  // A over the rows: e0, e0 + e1, e0 − e1, −e1
        const float s0 = x == 3 ? 0.f : 1.f, s1 = x == 0 ? 0.f : x == 1 ? 1.f : -1.f;
        for (int64_t t = 0; t < tw; t++) ue[t] = s0 * ev[0][t] + s1 * ev[1][t];
        for (int64_t t = 0; t < tw; t++) uo[t] = s0 * od[0][t] + s1 * od[1][t];
        float *d0 = d + (x * 4) * RT, *d1 = d0 + RT, *d2 = d1 + RT, *d3 = d2 + RT;
        for (int64_t t = 0; t < tw; t++) {  // then over the columns
          d0[t] = ue[t];
          d1[t] = ue[t] + uo[t];
          d2[t] = ue[t] - uo[t];
          d3[t] = -uo[t];
        }
      }
    }
}

struct Winograd {
  const KwAssemblyDims& a;
  const ConvGeometry& g;
  int64_t H, W, th, tw, T, n, cell, co, ci;
  Winograd(const KwAssemblyDims& ad, const ConvGeometry& geo) : a(ad), g(geo) {
    H = g.out[1], W = g.out[2], th = (H + 1) / 2, tw = (W + 1) / 2, T = th * tw;
    n = a.cells, cell = a.cell_size(), co = a.co, ci = a.ci;
  }

  // β [16, n] = Gk·α_b; flip takes tap 8 − s for s (the transposed kernel of the input gradient).
  void mixture_rows(const float* alpha, int64_t b, bool flip, float* beta) const {
    const float* ab = alpha + b * 9 * n;
    for (int x = 0; x < 4; x++)
      for (int y = 0; y < 4; y++) {
        float* row = beta + (x * 4 + y) * n;
        std::fill(row, row + n, 0.f);
        for (int r = 0; r < 3; r++)
          for (int q = 0; q < 3; q++) {
            const float c = kG[x][r] * kG[y][q];
            if (c == 0.f) continue;
            const float* src = ab + (flip ? 8 - (r * 3 + q) : r * 3 + q) * n;
            for (int64_t j = 0; j < n; j++) row[j] += c * src[j];
          }
      }
  }

  // dα_b [9, n] = Gkᵀ·dβ_b.
  void mixture_rows_backward(const float* dbeta, float* dalpha_b) const {
    for (int r = 0; r < 3; r++)
      for (int q = 0; q < 3; q++) {
        float* row = dalpha_b + (r * 3 + q) * n;
        std::fill(row, row + n, 0.f);
        for (int x = 0; x < 4; x++)
          for (int y = 0; y < 4; y++) {
            const float c = kG[x][r] * kG[y][q];
            if (c == 0.f) continue;
            const float* src = dbeta + (x * 4 + y) * n;
            for (int64_t j = 0; j < n; j++) row[j] += c * src[j];
          }
      }
  }

  void transform_input(const float* src, int64_t C, float* V) const { input_tiles(src, C, H, W, V); }
  void transform_output(const float* M, int64_t rows, const float* bias, float* dst) const {
    output_tiles(M, rows, H, W, bias, dst);
  }
  void transform_output_adjoint(const float* src, int64_t rows, float* D) const { output_tiles_adjoint(src, rows, H, W, D); }

  // out [rows = 32 channels, H, W] from the transformed input V [16][K][T]: each ξ's panel
  // [K, 32] = β_b[ξ]·(block of regrouped cells, K runs of n × 32), then M_ξ = panelᵀ·V_ξ.
  void product(const float* beta, const float* block, int64_t K, const float* V, float* P, float* M,
               const float* bias, float* out) const {
    SmallKGemm p;
    p.M = 16, p.N = K * 32, p.K = n;
    p.A = beta, p.a_row = n, p.a_col = 1;
    p.B = block, p.ldb = 32, p.run_stride = n * 32;
    p.C = P, p.ldc = K * 32;
    small_k_gemm(p);
    for (int64_t xi = 0; xi < 16; xi++) packed32_gemm(K, P + xi * K * 32, V + xi * K * T, T, T, M + xi * 32 * T, T, false);
    transform_output(M, 32, bias, out);
  }

  // Threads take (sample, block of 32 output channels) items; a sample's transformed input and
  // mixture rows are made once per thread.
  void run(const float* in, int64_t K, int64_t out_channels, const float* alpha, bool flip, const float* regrouped,
           const float* bias, float* out) const {
    const int64_t blocks = out_channels / 32, S = H * W;
    parallel_for(g.batch * blocks, 1, [&](int64_t lo, int64_t hi) {
      StoragePtr V = scratch(16 * K * T), P = scratch(16 * K * 32), M = scratch(16 * 32 * T), beta = scratch(16 * n);
      int64_t cur = -1;
      for (int64_t it = lo; it < hi; it++) {
        const int64_t b = it / blocks, ob = it % blocks;
        if (b != cur) {
          transform_input(in + b * K * S, K, V->as<float>());
          mixture_rows(alpha, b, flip, beta->as<float>());
          cur = b;
        }
        product(beta->as<float>(), regrouped + ob * K * n * 32, K, V->as<float>(), P->as<float>(), M->as<float>(),
                bias ? bias + ob * 32 : nullptr, out + (b * out_channels + ob * 32) * S);
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

  // Threads take parts of the batch, in chunks of G samples whose dU (16 cells each) fit 8 MB;
  // dE is summed per part, in part order.
  void backward_warehouse(const float* dy, const float* x, const float* alpha, const float* cells, float* dalpha,
                          float* dcells) const {
    const int64_t S = H * W, threads = num_threads(), per_thread = (g.batch + threads - 1) / threads;
    const int64_t G = std::clamp<int64_t>((int64_t(2) << 20) / (16 * cell), 1, per_thread);
    const int64_t chunks = (g.batch + G - 1) / G, parts = std::min(threads, chunks);
    std::vector<StoragePtr> partial(size_t(dcells ? parts - 1 : 0));
    for (auto& p : partial) p = scratch(n * cell);
    parallel_for(parts, 1, [&](int64_t lo, int64_t hi) {
      StoragePtr Vs = scratch(16 * ci * T), Ds = scratch(16 * co * T), dUs = scratch(G * 16 * cell);
      StoragePtr betas = scratch(G * 16 * n), dbetas = scratch(G * 16 * n);
      float *V = Vs->as<float>(), *D = Ds->as<float>(), *dU = dUs->as<float>();
      float *beta = betas->as<float>(), *dbeta = dbetas->as<float>();
      for (int64_t part = lo; part < hi; part++) {
        const int64_t k0 = part * chunks / parts, k1 = (part + 1) * chunks / parts;
        float* acc = dcells ? (part == 0 ? dcells : partial[size_t(part - 1)]->as<float>()) : nullptr;
        for (int64_t k = k0; k < k1; k++) {
          const int64_t b0 = k * G, nb = std::min(G, g.batch - b0);
          for (int64_t bb = 0; bb < nb; bb++) {
            transform_input(x + (b0 + bb) * ci * S, ci, V);
            transform_output_adjoint(dy + (b0 + bb) * co * S, co, D);
            for (int64_t xi = 0; xi < 16; xi++)  // dU_b[ξ] [co, ci] = D_ξ [co, T] · V_ξᵀ
              gemm_kernels.gemm(false, true, co, ci, T, 1.f, D + xi * co * T, T, V + xi * ci * T, T, 0.f,
                                dU + (bb * 16 + xi) * cell, ci);
            mixture_rows(alpha, b0 + bb, false, beta + bb * 16 * n);
          }
          if (dalpha) {  // dβ [nb·16, n] = dU · Eᵀ, then dα_b = Gkᵀ·dβ_b
            gemm_kernels.gemm(false, true, nb * 16, n, cell, 1.f, dU, cell, cells, cell, 0.f, dbeta, n);
            for (int64_t bb = 0; bb < nb; bb++) mixture_rows_backward(dbeta + bb * 16 * n, dalpha + (b0 + bb) * 9 * n);
          }
          if (acc) {  // dE [n, cell] (+)= βᵀ [n, nb·16] · dU [nb·16, cell]
            SmallKGemm p;
            p.M = n, p.N = cell, p.K = nb * 16;
            p.A = beta, p.a_row = 1, p.a_col = n;
            p.B = dU, p.ldb = cell;
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

// Multiply-adds per sample and cell element: Winograd 16·(n + T) against the panels' 9·(n + L),
// forward and input gradient alike; the warehouse gradients are 16·(2n + T) against 9·(2n + L).
double winograd_cost_ratio(const KwAssemblyDims& a, const ConvGeometry& g, bool warehouse) {
  const double n = double(a.cells), L = double(g.out_spatial());
  const double T = double(((g.out[1] + 1) / 2) * ((g.out[2] + 1) / 2)), k = warehouse ? 2.0 : 1.0;
  return 16.0 * (k * n + T) / (9.0 * (k * n + L));
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
