// The fused-panel KernelWarehouse convolution (groups = 1, co and ci·ck multiples of 32), forward
// and backward, without ever writing a per-sample kernel in a BLAS layout.
//
// Forward, per sample b, cell-row group og and block of 32 output channels ob:
//   P [Kp, 32] = α_b,og [R, n] · E_o[ob]          (small_k_gemm: the kernel slice, k-major)
//   y_b[og·co + ob·32 .., :] = Pᵀ · col_b         (packed32_gemm, col_b read in place)
// with R = gs·gic cell slots per group, Kp = R·ci·ck the tap-major column count and E_o the
// cells regrouped once per call by 32 output channels (see regroup_cells). The slice P (Kp·32 floats:
// 590 KB for KW-ResNet-18's last stage) stays in L2 between the two products; BLAS would repack
// a per-sample kernel on every call. With a warehouse over 16 MB two samples share a pass.
//
// Input gradient, per sample, group og, slot row r and block of 32 columns kb of the slot:
//   Q [co, 32] = α_b,og[r] · E_k[kb]               (the cells regrouped by 32 cell columns)
//   dcol_b[r·cc + kb·32 .., :] += Qᵀ · dY_b[og·co .., :]
// then col2im.
//
// Warehouse gradients (backward_warehouse, for up to 256 output positions; cpu/kw_conv.cpp's
// chunked kernels beyond): dT = dY·colᵀ per slot, dα += dT·Eᵀ and dE += αᵀ·dT over L2-sized
// tiles of the cell.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "core/storage.h"
#include "core/thread_pool.h"
#include "cpu/kw_impl.h"
#include "cpu/kw_taps.h"
#include "cpu/simd_gemm.h"
#include "cpu/tables.h"

#pragma GCC diagnostic ignored "-Wpsabi"  // vectors never cross a non-inlined call

namespace kw::cpu::kwk {
namespace {

StoragePtr scratch(int64_t n) { return new_storage(DType::F32, std::max<int64_t>(1, n)); }

struct FusedPanels {
  const KwAssemblyDims& a;
  const ConvGeometry& g;
  Taps taps;
  int64_t m, n, R, cc, co, cell, L, Kp, OB, KB, xb, yb;
  FusedPanels(const KwAssemblyDims& ad, const ConvGeometry& geo) : a(ad), g(geo), taps(geo, ad, false) {
    m = a.mixtures, n = a.cells, R = a.gs * a.gic, cc = a.ci * a.ck, co = a.co, cell = a.cell_size();
    L = g.out_spatial();
    Kp = R * cc;
    OB = co / 32;
    KB = cc / 32;
    xb = g.in_channels * g.in_spatial();
    yb = g.out_channels * L;
  }

  // α rows of sample b's slots (s, og, i) as an [R, n] matrix, row r = s·gic + i.
  void alpha_rows(const float* alpha, int64_t b, int64_t og, float* out) const {
    const float* ab = alpha + b * m * n;
    for (int64_t s = 0; s < a.gs; s++)
      std::memcpy(out + s * a.gic * n, ab + (s * a.goc + og) * a.gic * n, size_t(a.gic * n) * sizeof(float));
  }

  // C [rows, runs·32] = α rows [rows, n] · the regrouped cells of one block (runs of n × 32).
  void assemble(const float* ab, int64_t rows, const float* block, int64_t runs, float* C) const {
    SmallKGemm p;
    p.M = rows, p.N = runs * 32, p.K = n;
    p.A = ab, p.a_row = n, p.a_col = 1;
    p.B = block, p.ldb = 32, p.run_stride = n * 32;
    p.C = C, p.ldc = runs * 32;
    small_k_gemm(p);
  }

  // The forward's assembly GEMMs alone (every (pair, og, ob) panel, threads as in forward), timed.
  double time_assembly(const float* alpha, const float* Ep) const {
    const int64_t kPair = pair(), per_pair = a.goc * OB, pairs = (g.batch + kPair - 1) / kPair;
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(pairs * per_pair, 1, [&](int64_t lo, int64_t hi) {
      StoragePtr P = scratch(kPair * Kp * 32), ab = scratch(kPair * R * n);
      for (int64_t it = lo; it < hi; it++) {
        const int64_t pr = it / per_pair, og = (it / OB) % a.goc, ob = it % OB;
        const int64_t b0 = pr * kPair, nb = std::min(kPair, g.batch - b0);
        alpha_rows(alpha, b0, nb, og, ab->as<float>());
        assemble(ab->as<float>(), nb * R, Ep + ob * cc * n * 32, cc, P->as<float>());
      }
    });
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  // With a warehouse over 16 MB (half the L3) samples are taken in pairs: one small_k_gemm
  // assembles both samples' slices (2R rows), so the regrouped cells stream in once per pair.
  // KW-ResNet-18's last stage at 224×224 (28 MB): forward 43 → 38 ms, +dx 80 → 71 ms (B 16);
  // smaller warehouses gained nothing, and pairs of large column sets (L = 784) lost.
  int64_t pair() const { return n * cell > (int64_t(4) << 20) ? 2 : 1; }

  // The α rows of samples [b0, b0 + nb) for group og, stacked: [nb·R, n].
  void alpha_rows(const float* alpha, int64_t b0, int64_t nb, int64_t og, float* out) const {
    for (int64_t k = 0; k < nb; k++) alpha_rows(alpha, b0 + k, og, out + k * R * n);
  }

  void forward(const float* x, const float* alpha, const float* cells, const float* bias, float* y) const {
    StoragePtr ep = regroup_cells(a, cells, true);
    const float* Ep = ep->as<float>();
    const int64_t kPair = pair(), per_pair = a.goc * OB, pairs = (g.batch + kPair - 1) / kPair;
    parallel_for(pairs * per_pair, 1, [&](int64_t lo, int64_t hi) {
      StoragePtr col = scratch(kPair * Kp * L), P = scratch(kPair * Kp * 32), ab = scratch(kPair * R * n);
      int64_t cur = -1, cur_og = -1;
      for (int64_t it = lo; it < hi; it++) {
        const int64_t pr = it / per_pair, og = (it / OB) % a.goc, ob = it % OB;
        const int64_t b0 = pr * kPair, nb = std::min(kPair, g.batch - b0);
        if (pr != cur)
          for (int64_t k = 0; k < nb; k++) taps.im2col(x + (b0 + k) * xb, col->as<float>() + k * Kp * L);
        if (pr != cur || og != cur_og) alpha_rows(alpha, b0, nb, og, ab->as<float>());
        cur = pr, cur_og = og;
        assemble(ab->as<float>(), nb * R, Ep + ob * cc * n * 32, cc, P->as<float>());
        const int64_t o0 = og * co + ob * 32;
        for (int64_t k = 0; k < nb; k++) {
          float* out = y + (b0 + k) * yb + o0 * L;
          packed32_gemm(Kp, P->as<float>() + k * Kp * 32, col->as<float>() + k * Kp * L, L, L, out, L, false);
          if (bias)
            for (int64_t r = 0; r < 32; r++)
              for (int64_t l = 0; l < L; l++) out[r * L + l] += bias[o0 + r];
        }
      }
    });
  }

  void backward_input(const float* dy, const float* alpha, const float* cells, float* dx) const {
    StoragePtr eq = regroup_cells(a, cells, false);
    const float* Eq = eq->as<float>();
    const int64_t kPair = pair(), pairs = (g.batch + kPair - 1) / kPair;
    parallel_for(pairs, 1, [&](int64_t lo, int64_t hi) {
      StoragePtr dcol = scratch(kPair * Kp * L), Q = scratch(kPair * R * co * 32), ab = scratch(kPair * R * n);
      for (int64_t pr = lo; pr < hi; pr++) {
        const int64_t b0 = pr * kPair, nb = std::min(kPair, g.batch - b0);
        for (int64_t og = 0; og < a.goc; og++) {
          alpha_rows(alpha, b0, nb, og, ab->as<float>());
          for (int64_t kb = 0; kb < KB; kb++) {
            assemble(ab->as<float>(), nb * R, Eq + kb * co * n * 32, co, Q->as<float>());
            for (int64_t k = 0; k < nb; k++) {
              const float* dyo = dy + (b0 + k) * yb + og * co * L;
              for (int64_t r = 0; r < R; r++)
                packed32_gemm(co, Q->as<float>() + (k * R + r) * co * 32, dyo, L, L,
                              dcol->as<float>() + k * Kp * L + (r * cc + kb * 32) * L, L, og > 0);
            }
          }
        }
        for (int64_t k = 0; k < nb; k++) taps.col2im(dcol->as<float>() + k * Kp * L, dx + (b0 + k) * xb);
      }
    });
  }

  // x_b [C, S] → xt [S, C] (channels last), so that a slot's columns for a block of channels are
  // runs of contiguous floats.
  void channels_last(const float* xb_, float* xt) const {
    const int64_t C = g.in_channels, S = g.in_spatial();
    for (int64_t c0 = 0; c0 < C; c0 += 16)
      for (int64_t p = 0; p < S; p++)
        for (int64_t c = c0; c < std::min(C, c0 + 16); c++) xt[p * C + c] = xb_[c * S + p];
  }

  // colq[block][l][kk] = the input at slot block's tap for output position l, channel
  // i·ci + q0 + kk (zero in the padding), from channels-last xt; cells of one tap (ck = 1).
  void gather_columns(const float* xt, int64_t q0, int64_t kb, float* colq) const {
    const int64_t C = g.in_channels;
    for (int64_t s = 0; s < a.gs; s++) {
      const int64_t kd = s / (g.kernel[1] * g.kernel[2]), kh = s / g.kernel[2] % g.kernel[1], kw = s % g.kernel[2];
      for (int64_t i = 0; i < a.gic; i++) {
        float* dst = colq + (s * a.gic + i) * L * kb;
        for (int64_t od = 0; od < g.out[0]; od++) {
          const int64_t id = od * g.stride[0] - g.pad_lo[0] + kd * g.dilation[0];
          for (int64_t oh = 0; oh < g.out[1]; oh++) {
            const int64_t ih = oh * g.stride[1] - g.pad_lo[1] + kh * g.dilation[1];
            const bool row_ok = id >= 0 && id < g.in[0] && ih >= 0 && ih < g.in[1];
            for (int64_t ow = 0; ow < g.out[2]; ow++, dst += kb) {
              const int64_t iw = ow * g.stride[2] - g.pad_lo[2] + kw * g.dilation[2];
              if (!row_ok || iw < 0 || iw >= g.in[2]) {
                std::fill(dst, dst + kb, 0.f);
                continue;
              }
              std::memcpy(dst, xt + ((id * g.in[1] + ih) * g.in[2] + iw) * C + i * a.ci + q0, size_t(kb) * sizeof(float));
            }
          }
        }
      }
    }
  }

  // dα and dE over tiles of the cell, [cb rows, kb columns], so that each tile's
  // dT[b, slot] = dY_b[rows] · col_b[slot]ᵀ for a pass of samples stays in L2 and is consumed
  // there by both dα += dT·E_tileᵀ and dE_tile += αᵀ·dT, instead of a per-sample gradient
  // kernel (MBs) being written out and read back twice. dT and dE have inner dimensions L and
  // nb·m (tens): small_k_gemm over position-major columns, dE straight into the result; dα
  // (inner dimension cb·kb) uses BLAS.
  // Threads split the cell, not the batch: each task owns a block of cell columns (and, with
  // fewer blocks than threads, a range of its rows) and runs every sample through it, so dE is
  // written once, from L2. Splitting the batch instead had every thread read and write a
  // whole-warehouse partial per chunk of samples (28 MB for KW-ResNet-18's last stage): there
  // (B 16, 224 px) 69 → 50 ms, and 48 → 36 ms at 256 channels and 14×14. Each task gathers its
  // block's columns; dα is summed over per-task partials (B·m·n floats each).
  void backward_warehouse(const float* dy, const float* x, const float* alpha, const float* cells,
                                   float* dalpha, float* dcells) const {
    const bool from_channels_last = a.ck == 1;
    const Taps pm(g, a, true);
    const int64_t B = g.batch, threads = num_threads(), per = from_channels_last ? xb : Kp * L;
    StoragePtr srcs = scratch(B * per);  // every sample's channels-last input or position-major columns
    float* src = srcs->as<float>();
    parallel_for(B, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t b = lo; b < hi; b++)
        if (from_channels_last) channels_last(x + b * xb, src + b * per);
        else pm.im2col(x + b * xb, src + b * per);
    });
    const int64_t Kb = std::min<int64_t>(cc, 64), blocks = (cc + Kb - 1) / Kb;
    const int64_t row_parts = std::min<int64_t>((threads + blocks - 1) / blocks, std::max<int64_t>(1, co / 32));
    const int64_t tasks = blocks * row_parts;
    // Samples per pass: their gathered columns within 16 MB; tiles of Kb columns and as many
    // rows as keep the pass's dT tile within 512 KB.
    const int64_t G = std::clamp<int64_t>((int64_t(4) << 20) / (R * L * Kb), 1, B);
    const int64_t Cb = std::clamp<int64_t>((int64_t(1) << 17) / (G * m * Kb), 1, co);
    std::vector<StoragePtr> dalpha_part(size_t(dalpha ? tasks : 0));
    for (auto& p : dalpha_part) p = scratch(B * m * n);
    parallel_for(tasks, 1, [&](int64_t lo, int64_t hi) {
      StoragePtr dTb = scratch(G * m * Cb * Kb), etb = scratch(n * Cb * Kb), colqb = scratch(G * R * L * Kb);
      float *dT = dTb->as<float>(), *Et = etb->as<float>(), *colq = colqb->as<float>();
      for (int64_t task = lo; task < hi; task++) {
        const int64_t q0 = task / row_parts * Kb, kb = std::min(Kb, cc - q0), rp = task % row_parts;
        const int64_t r0 = co * rp / row_parts, r1 = co * (rp + 1) / row_parts;
        float* da = dalpha ? dalpha_part[size_t(task)]->as<float>() : nullptr;
        for (int64_t b0 = 0; b0 < B; b0 += G) {
          const int64_t nb = std::min(G, B - b0);
          if (from_channels_last)
            for (int64_t b = 0; b < nb; b++) gather_columns(src + (b0 + b) * per, q0, kb, colq + b * R * L * kb);
          else
            for (int64_t bb = 0; bb < nb * R; bb++)
              for (int64_t l = 0; l < L; l++)
                std::memcpy(colq + (bb * L + l) * kb, src + b0 * per + bb * L * cc + l * cc + q0, size_t(kb) * sizeof(float));
          for (int64_t c0 = r0; c0 < r1; c0 += Cb) {
            const int64_t cb = std::min(Cb, r1 - c0), X = cb * kb;
            for (int64_t j = 0; j < n; j++)
              for (int64_t c = 0; c < cb; c++)
                std::memcpy(Et + j * X + c * kb, cells + j * cell + (c0 + c) * cc + q0, size_t(kb) * sizeof(float));
            for (int64_t b = 0; b < nb; b++)
              for (int64_t s = 0; s < a.gs; s++)
                for (int64_t og = 0; og < a.goc; og++)
                  for (int64_t i = 0; i < a.gic; i++) {
                    const int64_t slot = (s * a.goc + og) * a.gic + i, block = s * a.gic + i;
                    SmallKGemm p;  // dT[b, slot] [cb, kb] = dY_b[og·co + c0 .., :] [cb, L] · col_b[block] [L, kb]
                    p.M = cb, p.N = kb, p.K = L;
                    p.A = dy + (b0 + b) * yb + (og * co + c0) * L, p.a_row = L, p.a_col = 1;
                    p.B = colq + (b * R + block) * L * kb, p.ldb = kb;
                    p.C = dT + (b * m + slot) * X, p.ldc = kb;
                    small_k_gemm(p);
                  }
            if (da)  // this task's part of dα [nb·m, n] (+)= dT [nb·m, X] · E_tileᵀ [X, n]
              gemm_kernels.gemm(false, true, nb * m, n, X, 1.f, dT, X, Et, X, c0 == r0 ? 0.f : 1.f, da + b0 * m * n, n);
            if (dcells)
              for (int64_t c = 0; c < cb; c++) {
                SmallKGemm p;  // dE[:, c0 + c, q0..] (+)= α_passᵀ [n, nb·m] · dT[:, c] [nb·m, kb]
                p.M = n, p.N = kb, p.K = nb * m;
                p.A = alpha + b0 * m * n, p.a_row = 1, p.a_col = n;
                p.B = dT + c * kb, p.ldb = X;
                p.beta = b0 == 0 ? 0.f : 1.f;
                p.C = dcells + (c0 + c) * cc + q0, p.ldc = cell;
                small_k_gemm(p);
              }
          }
        }
      }
    });
    if (!dalpha) return;
    parallel_for(B * m * n, 1 << 12, [&](int64_t lo, int64_t hi) {
      for (int64_t e = lo; e < hi; e++) {
        float v = 0.f;
        for (const auto& p : dalpha_part) v += p->as<float>()[e];
        dalpha[e] = v;
      }
    });
  }
};

}  // namespace

namespace {
// dst[r·ld + w] = src[w·cc + r] for w < 32, r < cc (a multiple of 8), in 8×8 tiles transposed
// in registers: unpack pairs of rows, shuffle pairs of pairs, swap 128-bit halves
// (__builtin_shufflevector: GCC 12 and clang alike). An AVX2 function and a scalar one, picked as
// the KW GEMM kernels are (simd_avx2): target_clones with 256-bit vectors does not build
// under clang.
typedef float f8 __attribute__((vector_size(32)));
__attribute__((target("avx2"))) void transpose_32_rows_avx2(const float* src, int64_t cc, float* dst, int64_t ld) {
  for (int64_t w0 = 0; w0 < 32; w0 += 8)
    for (int64_t r0 = 0; r0 < cc; r0 += 8) {
      f8 r[8], t[8], u[8];
      for (int i = 0; i < 8; i++) std::memcpy(&r[i], src + (w0 + i) * cc + r0, sizeof(f8));
      for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
      }
      for (int i = 0; i < 8; i += 4)
        for (int k = 0; k < 2; k++) {
          u[i + 2 * k] = __builtin_shufflevector(t[i + k], t[i + k + 2], 0, 1, 8, 9, 4, 5, 12, 13);
          u[i + 2 * k + 1] = __builtin_shufflevector(t[i + k], t[i + k + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        }
      for (int c = 0; c < 4; c++) {  // u[c]: columns c and c + 4 of rows 0..3; u[c + 4]: of rows 4..7
        const f8 lo = __builtin_shufflevector(u[c], u[c + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        const f8 hi = __builtin_shufflevector(u[c], u[c + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        std::memcpy(dst + (r0 + c) * ld + w0, &lo, sizeof lo);
        std::memcpy(dst + (r0 + c + 4) * ld + w0, &hi, sizeof hi);
      }
    }
}
void transpose_32_rows(const float* src, int64_t cc, float* dst, int64_t ld) {
  if (simd_avx2()) return transpose_32_rows_avx2(src, cc, dst, ld);
  for (int64_t r0 = 0; r0 < cc; r0 += 8)
    for (int64_t w = 0; w < 32; w++)
      for (int64_t rr = 0; rr < 8; rr++) dst[(r0 + rr) * ld + w] = src[w * cc + r0 + rr];
}
}  // namespace

// The cells regrouped so that a small_k_gemm strip (n rows × 32 floats) is contiguous:
// by_o[ob][kk][j][w] = E[j][ob·32 + w][kk] (32 output channels a run) for the forward,
// by_k[kb][o][j][w] = E[j][o][kb·32 + w] (32 cell columns a run) for the input gradient.
StoragePtr regroup_cells(const KwAssemblyDims& a, const float* cells, bool by_o) {
  const int64_t n = a.cells, cell = a.cell_size(), cc = a.ci * a.ck, co = a.co;
  StoragePtr out = scratch(n * cell);
  float* dst = out->as<float>();
  if (!by_o) {  // runs of 32 contiguous floats
    parallel_for(cc / 32 * co, 8, [&](int64_t lo, int64_t hi) {
      for (int64_t br = lo; br < hi; br++) {
        const int64_t kb = br / co, o = br % co;
        for (int64_t j = 0; j < n; j++) {  // a loop, not memcpy: 32 floats are less than a call's cost
          const float* src = cells + j * cell + o * cc + kb * 32;
          float* d = dst + (br * n + j) * 32;
          for (int w = 0; w < 32; w++) d[w] = src[w];
        }
      }
    });
    return out;
  }
  // A transpose of each cell's 32-row blocks [32, cc] → [cc, 32] in 8×8 register tiles (a
  // float at a time, one cache line per float read, it took 4% of a KW-ResNet-18 step at 224 px).
  parallel_for(co / 32 * n, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t bj = lo; bj < hi; bj++) {
      const int64_t ob = bj / n, j = bj % n;
      transpose_32_rows(cells + j * cell + ob * 32 * cc, cc, dst + (ob * cc * n + j) * 32, n * 32);
    }
  });
  return out;
}

// Panels need groups = 1, cell rows and columns in multiples of 32 and a sample's columns
// within 4 MB.
bool fused_panels_apply(const KwAssemblyDims& a, const ConvGeometry& g) {
  return g.groups == 1 && a.co % 32 == 0 && (a.ci * a.ck) % 32 == 0 &&
         a.gs * a.gic * a.ci * a.ck * g.out_spatial() <= (int64_t(1) << 20);
}

// ... and pay off with at least 8 α rows per assembly pass (gs·gic slots, times 2 when samples
// pair up): with fewer (a 1×1 layer has gic slots, often 1) each regrouped cell strip is loaded
// for one or two rows and the assembly runs at a fraction of the GEMM rate. KW-ConvNeXt-T's 1×1
// layers at 2×2 positions (one slot, 72 cells of 384×384): panels 310 ms forward vs chunked 109.
bool fused_panels_pay_off(const KwAssemblyDims& a) {
  const int64_t pair = a.cells * a.cell_size() > (int64_t(4) << 20) ? 2 : 1;  // as FusedPanels::pair
  return a.gs * a.gic * pair >= 8;
}

double panel_assembly_seconds(const KwAssemblyDims& a, int64_t samples) {
  ConvGeometry g;  // the assembly does not depend on the convolution's geometry
  g.batch = samples;
  KwAssemblyDims d = a;
  d.batch = samples;
  const FusedPanels f(d, g);
  StoragePtr alpha = scratch(samples * d.mixtures * d.cells), cells = scratch(d.cells * d.cell_size());
  uint32_t state = 12345;  // values do not matter, only that they are ordinary floats
  for (float* p : {alpha->as<float>(), cells->as<float>()}) {
    const int64_t len = p == alpha->as<float>() ? samples * d.mixtures * d.cells : d.cells * d.cell_size();
    for (int64_t i = 0; i < len; i++) p[i] = float((state = state * 1664525u + 1013904223u) >> 8) * 0x1p-24f - 0.5f;
  }
  StoragePtr ep = regroup_cells(d, cells->as<float>(), true);
  return f.time_assembly(alpha->as<float>(), ep->as<float>());
}

void fused_forward(const KwAssemblyDims& a, const ConvGeometry& g, const float* x, const float* alpha,
                   const float* cells, const float* bias, float* y) {
  FusedPanels(a, g).forward(x, alpha, cells, bias, y);
}

void fused_backward_input(const KwAssemblyDims& a, const ConvGeometry& g, const float* dy, const float* alpha,
                          const float* cells, float* dx) {
  FusedPanels(a, g).backward_input(dy, alpha, cells, dx);
}

void fused_backward_warehouse(const KwAssemblyDims& a, const ConvGeometry& g, const float* dy, const float* x,
                              const float* alpha, const float* cells, float* dalpha, float* dcells) {
  FusedPanels(a, g).backward_warehouse(dy, x, alpha, cells, dalpha, dcells);
}

}  // namespace kw::cpu::kwk
