// CPU kernels of the fused KernelWarehouse convolution y_b = conv(x_b, W_b) + bias with
// W_b = α_b·E in upstream's kernel layout (see core/kernels/kw.h), forward and backward side by
// side. The batch of per-sample kernels (B × out·in·k·k floats, gigabytes for KW-ResNet) is
// never materialised, and nothing but x, α and E is kept for the backward. Panels live in
// cpu/kw_conv_fused.cpp and Winograd in cpu/kw_conv_winograd.cpp; kw_conv_strategy below picks
// among the four.
//
// Chunked: threads take chunks of a few samples; a chunk's kernels are assembled into
//   per-thread scratch (about half the L3) and convolved there, then discarded. With groups = 1
//   the kernels are written tap-major (row copies from α·E) and each sample's conv is one GEMM
//   over tap-major columns in L2-sized tiles; grouped/depthwise layers use upstream's layout and
//   the per-sample path of cpu/conv.cpp (run single-threaded inside our loop). Backward
//   recomputes the chunk's kernels, takes dx and dW_chunk, then dα = dW·Eᵀ and dE += αᵀ·dW per
//   chunk into per-thread partials. Cost ≈ 2·B·m·cell·(n + L) per pass.
//   With a large warehouse (groups = 1, E over 4 MB) the chunk is also tiled over cell rows
//   (CellTiled): no sample's whole kernel is ever assembled, each tile convolves from L2.
// InputMix (groups = 1): with cell slot (s, o, i) covering output rows o·co.., input channels
//   i·ci.. and kernel taps s·ck.., the layer is
//     y[b, o·co+c, l] = Σ_j Σ_(d,e) E[j, c, (d,e)] · V_o[b, j, (d,e), l],
//     V_o[b, j, (d,e), l] = Σ_(s,i) α[b, (s,o,i), j] · col_b[(s,i), (d,e), l]
//   with col_b an im2col grouped by cell slot. Mixing the input costs 2·B·m·n·ci·ck·L and the product with
//   E 2·B·L·out·n·ci·ck: no m factor, so at small L (late ResNet stages) it is up to gs·gic
//   times cheaper than assembling, and the E GEMMs run over all B·L columns at once.
//   Backward: dE_j += dY_o·V_ojᵀ, dV_oj = E_jᵀ·dY_o, dα_bo = col_b·dV_boᵀ, dcol_b = Σ_o α_bo·dV_bo;
//   V is recomputed (cheap) rather than kept.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/storage.h"
#include "core/thread_pool.h"
#include "cpu/kw_impl.h"
#include "cpu/kw_taps.h"
#include "cpu/tables.h"

namespace kw {

// Per-sample FLOP counts of one forward pass (the backward is about three of them for both).
// Chunked's assembly GEMM has an inner dimension of only n and streams E per chunk, so once E
// outgrows L2 (1 MB) it runs well below GEMM speed: its FLOPs are weighted by 1.5 there.
// InputMix runs large well-shaped GEMMs over the whole batch and wins up to 1.5× the (weighted)
// FLOPs. The weight and the margin are from measurements of KW-ResNet-18's layers at 32×32
// (B 64) and 224×224 (B 16) on 2 cores; each call agreed with the faster strategy there.
// Panels (where they apply and pay off, see fused_panels_pay_off) were faster than chunked on
// every KW-ResNet-18 3×3 layer at 32 and 224 px, and than input mix
// down to 16 output positions (layer3 at 32×32: 7 vs 14 ms forward, 30 vs 40 ms fwd+bwd) but
// not at 4 or 1 (24 vs 10 ms, 100 vs 9 ms): the plain FLOP comparison.
KwConvStrategy kw_conv_strategy(const KwAssemblyDims& a, const ConvGeometry& g, KwConvStrategy requested) {
  const bool mix_ok = g.groups == 1;
  if (requested == KwConvStrategy::InputMix && mix_ok) return requested;
  if (requested == KwConvStrategy::Panels && cpu::kwk::fused_panels_apply(a, g)) return requested;
  if (requested == KwConvStrategy::Winograd && cpu::kwk::winograd_applies(a, g)) return requested;
  if (requested != KwConvStrategy::Auto) return KwConvStrategy::Chunked;
  if (!mix_ok) return KwConvStrategy::Chunked;
  // Winograd where it applies and does well under the panels' multiply-adds (see winograd_tile);
  // measured against panels (chunked at 56×56) on KW-ResNet-18 (B 16, 224 px) it took 0.55 of the
  // time at 56×56, 0.6 at 28×28 and 0.8 at 14×14 (forward), 0.55 to 0.65 for the gradients.
  if (cpu::kwk::winograd_tile(a, g, false, false)) return KwConvStrategy::Winograd;
  const double L = double(g.out_spatial()), n = double(a.cells), m = double(a.mixtures);
  const double cc = double(a.ci * a.ck), co = double(a.co), goc = double(a.goc), cell = double(a.cell_size());
  const double e_floats = n * cell;
  const double weight = e_floats <= double(1 << 18) ? 1.0 : 1.5;
  const double chunked = m * cell * (n * weight + L);
  const double mix = L * n * cc * (m + goc * co);
  // Panels do chunked's FLOPs at near GEMM speed (no kernel written out, no BLAS repacking): they
  // replace chunked wherever they apply, and input mix only where it does fewer FLOPs outright.
  if (cpu::kwk::fused_panels_apply(a, g) && cpu::kwk::fused_panels_pay_off(a)) return mix < m * cell * (n + L) ? KwConvStrategy::InputMix : KwConvStrategy::Panels;
  return mix < 1.5 * chunked ? KwConvStrategy::InputMix : KwConvStrategy::Chunked;
}

int kw_conv_winograd_tile(const KwAssemblyDims& a, const ConvGeometry& g, KwConvStrategy requested) {
  if (kw_conv_strategy(a, g, requested) != KwConvStrategy::Winograd) return 0;
  return cpu::kwk::winograd_tile(a, g, false, requested == KwConvStrategy::Winograd);
}

namespace cpu::kwk {
namespace {

// dst[r·dld + l] = src[r·sld + l] for l < L: short rows (late layers have L = 1..16 output
// positions) in a plain loop, where a memcpy call per row would cost more than the copy.
inline void copy_rows(float* dst, int64_t dld, const float* src, int64_t sld, int64_t rows, int64_t L) {
  if (L == 1) {
    for (int64_t r = 0; r < rows; r++) dst[r * dld] = src[r * sld];
  } else if (L < 32) {
    for (int64_t r = 0; r < rows; r++)
      for (int64_t l = 0; l < L; l++) dst[r * dld + l] = src[r * sld + l];
  } else {
    for (int64_t r = 0; r < rows; r++) std::memcpy(dst + r * dld, src + r * sld, size_t(L) * sizeof(float));
  }
}

StoragePtr scratch(int64_t n) { return new_storage(DType::F32, std::max<int64_t>(1, n)); }

int64_t x_stride(const ConvGeometry& g) { return g.in_channels * g.in_spatial(); }
int64_t y_stride(const ConvGeometry& g) { return g.out_channels * g.out_spatial(); }

void bias_backward(const ConvGeometry& g, const float* dy, float* db) {
  const int64_t L = g.out_spatial(), O = g.out_channels;
  parallel_for(O, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, g.batch * L)), [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; o++) {
      double acc = 0;
      for (int64_t b = 0; b < g.batch; b++) {
        const float* p = dy + (b * O + o) * L;
        float part = 0;
        for (int64_t l = 0; l < L; l++) part += p[l];
        acc += part;
      }
      db[o] = float(acc);
    }
  });
}

// ---------------------------------------------------------------- chunked

// Samples per chunk: every thread gets at least one, and a chunk's product T and kernels W
// (2·wsize floats a sample) stay within about 16 MB, half the L3. Smaller chunks that fit L2
// measured slower: the assembly GEMM then has few rows (nb·m) and E is re-packed per chunk.
constexpr int64_t kChunkFloats = int64_t(4) << 20;

// With groups = 1 a chunk's kernels are written tap-major, W'_b [out, (s, channel, e)]: every
// cell row (d, e) is then a contiguous run of ci·ck floats in both T and W', so moving between
// them is row copies, and the per-sample conv is one GEMM over tap-major columns. Grouped and
// depthwise layers use upstream's kernel layout and cpu/conv.cpp's per-sample path.
struct Chunked {
  const KwAssemblyDims& a;
  const ConvGeometry& g;
  bool tap_major;
  Taps taps;
  int64_t G, chunks, wsize, L, Kp, xb, yb;
  Chunked(const KwAssemblyDims& ad, const ConvGeometry& geo, int64_t cap)
      : a(ad), g(geo), tap_major(geo.groups == 1), taps(geo, ad, false) {
    wsize = a.weight_size();
    const int64_t threads = num_threads(), per_thread = (a.batch + threads - 1) / threads;
    G = std::max<int64_t>(1, std::min<int64_t>(per_thread, kChunkFloats / std::max<int64_t>(1, 2 * wsize)));
    if (cap > 0) G = std::min(G, cap);
    chunks = (a.batch + G - 1) / G;
    L = g.out_spatial();
    Kp = g.in_per_group() * g.kernel_size();
    xb = x_stride(g);
    yb = y_stride(g);
  }
  // Output rows per column tile: a whole sample's tap-major columns (in·k·k × L) are MBs at
  // 224×224 inputs; tiles of ≥ 256 columns stay in L2 between im2col and the GEMM and still
  // run the GEMM at full speed.
  int64_t rows_per_tile() const {
    const int64_t OW = g.out[2], rows = g.out[0] * g.out[1];
    const int64_t cols = std::max<int64_t>(256, (int64_t(1) << 17) / std::max<int64_t>(1, Kp));
    return std::clamp<int64_t>(cols / OW, 1, rows);
  }
  int64_t col_size() const { return tap_major ? Kp * rows_per_tile() * g.out[2] : 1; }

  // Threads over items, except a single item (one small batch, e.g. B = 1 inference), which
  // runs outside any parallel region so that its GEMMs split themselves over the threads.
  template <typename F>
  static void over(int64_t items, F&& fn) {
    if (items == 1) return fn(int64_t(0), int64_t(1));
    parallel_for(items, 1, fn);
  }

  // Between T_b [m, co, cc] (a sample's rows of α·E) and its kernel W_b.
  template <bool to_kernel>
  void move(float* T, float* W) const {
    if (!tap_major) return to_kernel ? relayout_to_kernel(a, T, W) : relayout_from_kernel(a, W, T);
    const int64_t cc = a.ci * a.ck, cell = a.cell_size();
    for (int64_t s = 0; s < a.gs; s++)
      for (int64_t o = 0; o < a.goc; o++)
        for (int64_t i = 0; i < a.gic; i++) {
          float* t = T + ((s * a.goc + o) * a.gic + i) * cell;
          float* w = W + o * a.co * Kp + (s * a.gic + i) * cc;
          for (int64_t c = 0; c < a.co; c++)
            std::memcpy(to_kernel ? w + c * Kp : t + c * cc, to_kernel ? t + c * cc : w + c * Kp,
                        size_t(cc) * sizeof(float));
        }
  }

  // T [nb·m, cell] = α rows of samples [b0, b0+nb) · E, then their kernels W from T.
  void assemble(const float* alpha, const float* cells, int64_t b0, int64_t nb, float* T, float* W) const {
    const int64_t m = a.mixtures, n = a.cells, cell = a.cell_size();
    gemm_kernels.gemm(false, false, nb * m, cell, n, 1.f, alpha + b0 * m * n, n, cells, cell, 0.f, T, cell);
    for (int64_t b = 0; b < nb; b++) move<true>(T + b * m * cell, W + b * wsize);
  }

  ConvGeometry geometry(int64_t nb) const {
    ConvGeometry c = g;
    c.batch = nb;
    c.per_sample_weight = true;
    return c;
  }

  void conv(int64_t b0, int64_t nb, const float* x, const float* W, const float* bias, float* y, float* col) const {
    if (!tap_major) return conv_kernels.forward(geometry(nb), x + b0 * xb, W, bias, y + b0 * yb);
    const int64_t O = g.out_channels, OW = g.out[2], rows = g.out[0] * g.out[1], rpt = rows_per_tile();
    for (int64_t b = 0; b < nb; b++) {
      float* yp = y + (b0 + b) * yb;
      if (bias)
        for (int64_t o = 0; o < O; o++) std::fill(yp + o * L, yp + (o + 1) * L, bias[o]);
      for (int64_t r0 = 0; r0 < rows; r0 += rpt) {
        const int64_t r1 = std::min(rows, r0 + rpt), w = (r1 - r0) * OW;
        taps.im2col(x + (b0 + b) * xb, col, r0, r1);
        gemm_kernels.gemm(false, false, O, w, Kp, 1.f, W + b * wsize, Kp, col, w, bias ? 1.f : 0.f, yp + r0 * OW, L);
      }
    }
  }

  void conv_backward(int64_t b0, int64_t nb, const float* dy, const float* x, const float* W, float* dx, float* dW,
                     float* col, float* dcol) const {
    if (!tap_major)
      return conv_kernels.backward(geometry(nb), dy + b0 * yb, x + b0 * xb, W, dx ? dx + b0 * xb : nullptr, dW,
                                   nullptr);
    const int64_t O = g.out_channels, OW = g.out[2], rows = g.out[0] * g.out[1], rpt = rows_per_tile();
    for (int64_t b = 0; b < nb; b++) {
      const float* dyb = dy + (b0 + b) * yb;
      for (int64_t r0 = 0; r0 < rows; r0 += rpt) {
        const int64_t r1 = std::min(rows, r0 + rpt), w = (r1 - r0) * OW;
        if (dW) {  // dW_b (+)= dY_b[:, tile] · col_tileᵀ
          taps.im2col(x + (b0 + b) * xb, col, r0, r1);
          gemm_kernels.gemm(false, true, O, Kp, w, 1.f, dyb + r0 * OW, L, col, w, r0 ? 1.f : 0.f, dW + b * wsize, Kp);
        }
        if (dx) {
          gemm_kernels.gemm(true, false, Kp, w, O, 1.f, W + b * wsize, Kp, dyb + r0 * OW, L, 0.f, dcol, w);
          taps.col2im(dcol, dx + (b0 + b) * xb, r0, r1, r0 == 0);
        }
      }
    }
  }

  void forward(const float* x, const float* alpha, const float* cells, const float* bias, float* y) const {
    over(chunks, [&](int64_t lo, int64_t hi) {
      StoragePtr T = scratch(G * wsize), W = scratch(G * wsize), col = scratch(col_size());
      for (int64_t c = lo; c < hi; c++) {
        const int64_t b0 = c * G, nb = std::min(G, a.batch - b0);
        assemble(alpha, cells, b0, nb, T->as<float>(), W->as<float>());
        conv(b0, nb, x, W->as<float>(), bias, y, col->as<float>());
      }
    });
  }

  // Recomputes each chunk's kernels; dα = dW·Eᵀ and dE += αᵀ·dW per chunk, dE in one
  // accumulator per part (part 0 writes dcells itself), summed in part order afterwards so
  // results do not depend on scheduling.
  void backward(const float* dy, const float* x, const float* alpha, const float* cells, float* dx, float* dalpha,
                float* dcells) const {
    const int64_t m = a.mixtures, n = a.cells, cell = a.cell_size();
    const bool need_dw = dalpha || dcells;
    const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(num_threads(), chunks));
    std::vector<StoragePtr> partial(size_t(dcells ? parts - 1 : 0));
    for (auto& p : partial) p = scratch(n * cell);
    over(parts, [&](int64_t lo, int64_t hi) {
      StoragePtr T = scratch(G * wsize), W = scratch(G * wsize), dW = need_dw ? scratch(G * wsize) : nullptr;
      StoragePtr col = scratch(col_size()), dcol = scratch(col_size());
      for (int64_t part = lo; part < hi; part++) {
        const int64_t c0 = part * chunks / parts, c1 = (part + 1) * chunks / parts;
        float* acc = dcells ? (part == 0 ? dcells : partial[size_t(part - 1)]->as<float>()) : nullptr;
        for (int64_t c = c0; c < c1; c++) {
          const int64_t b0 = c * G, nb = std::min(G, a.batch - b0);
          float* Tp = T->as<float>();
          if (dx) assemble(alpha, cells, b0, nb, Tp, W->as<float>());
          conv_backward(b0, nb, dy, x, W->as<float>(), dx, need_dw ? dW->as<float>() : nullptr, col->as<float>(),
                        dcol->as<float>());
          if (!need_dw) continue;
          for (int64_t b = 0; b < nb; b++) move<false>(Tp + b * m * cell, dW->as<float>() + b * wsize);
          if (dalpha)
            gemm_kernels.gemm(false, true, nb * m, n, cell, 1.f, Tp, cell, cells, cell, 0.f, dalpha + b0 * m * n, n);
          if (acc)
            gemm_kernels.gemm(true, false, n, cell, nb * m, 1.f, alpha + b0 * m * n, n, Tp, cell,
                              c == c0 ? 0.f : 1.f, acc, cell);
        }
      }
    });
    if (!dcells || parts == 1) return;
    parallel_for(n * cell, 1 << 14, [&](int64_t lo, int64_t hi) {
      for (const auto& p : partial) {
        const float* v = p->as<float>();
        for (int64_t k = lo; k < hi; k++) dcells[k] += v[k];
      }
    });
  }
};

// Chunked for large warehouses (groups = 1, E over 4 MB, e.g. KW-ResNet-18's 512×512 cells at
// 224×224): a sample's kernel is MBs, so assembling it whole writes it to memory and reads it
// back, and E streams through once per chunk anyway. Instead loop over tiles of ct cell rows:
// T_ct = α_chunk·E[:, tile] stays in L2, and each cell slot's rows convolve straight from it,
// y_b[o·co + tile] += T_ct[b, slot] [ct, cc] · col_b[slot block] [cc, L]. No whole kernel exists.
struct CellTiled {
  const KwAssemblyDims& a;
  const ConvGeometry& g;
  Taps taps;
  int64_t G, chunks, ct, cc, L, Kp, colsz, xb, yb;
  CellTiled(const KwAssemblyDims& ad, const ConvGeometry& geo, int64_t cap) : a(ad), g(geo), taps(geo, ad, false) {
    cc = a.ci * a.ck;
    L = g.out_spatial();
    Kp = g.in_per_group() * g.kernel_size();
    colsz = Kp * L;
    ct = std::clamp<int64_t>((int64_t(1) << 15) / std::max<int64_t>(1, cc), 1, a.co);
    const int64_t threads = num_threads(), per_thread = (a.batch + threads - 1) / threads;
    // Samples per chunk: their columns (and column gradients) within about 4 MB each.
    G = std::max<int64_t>(1, std::min<int64_t>(per_thread, (int64_t(1) << 20) / std::max<int64_t>(1, colsz)));
    if (cap > 0) G = std::min(G, cap);
    chunks = (a.batch + G - 1) / G;
    xb = x_stride(g);
    yb = y_stride(g);
  }
  static bool applies(const KwAssemblyDims& a, const ConvGeometry& g) {
    return g.groups == 1 && a.cells * a.cell_size() > (int64_t(1) << 20);
  }

  template <typename F>
  static void over(int64_t items, F&& fn) {
    if (items == 1) return fn(int64_t(0), int64_t(1));
    parallel_for(items, 1, fn);
  }

  // Calls fn(slot, s·gic + i, o) for every cell slot.
  template <typename F>
  void slots(F&& fn) const {
    for (int64_t s = 0; s < a.gs; s++)
      for (int64_t o = 0; o < a.goc; o++)
        for (int64_t i = 0; i < a.gic; i++) fn((s * a.goc + o) * a.gic + i, s * a.gic + i, o);
  }

  void forward(const float* x, const float* alpha, const float* cells, const float* bias, float* y) const {
    const int64_t m = a.mixtures, n = a.cells, cell = a.cell_size(), O = g.out_channels;
    over(chunks, [&](int64_t lo, int64_t hi) {
      StoragePtr col = scratch(G * colsz), T = scratch(G * m * ct * cc);
      for (int64_t c = lo; c < hi; c++) {
        const int64_t b0 = c * G, nb = std::min(G, a.batch - b0);
        for (int64_t b = 0; b < nb; b++) {
          taps.im2col(x + (b0 + b) * xb, col->as<float>() + b * colsz);
          float* yp = y + (b0 + b) * yb;
          for (int64_t o = 0; o < O; o++) std::fill(yp + o * L, yp + (o + 1) * L, bias ? bias[o] : 0.f);
        }
        for (int64_t c0 = 0; c0 < a.co; c0 += ct) {
          const int64_t c1 = std::min(a.co, c0 + ct), w = (c1 - c0) * cc;
          float* Tp = T->as<float>();
          gemm_kernels.gemm(false, false, nb * m, w, n, 1.f, alpha + b0 * m * n, n, cells + c0 * cc, cell, 0.f, Tp, w);
          for (int64_t b = 0; b < nb; b++)
            slots([&](int64_t slot, int64_t block, int64_t o) {
              gemm_kernels.gemm(false, false, c1 - c0, L, cc, 1.f, Tp + (b * m + slot) * w, cc,
                                col->as<float>() + b * colsz + block * cc * L, L, 1.f,
                                y + (b0 + b) * yb + (o * a.co + c0) * L, L);
            });
        }
      }
    });
  }

  void backward(const float* dy, const float* x, const float* alpha, const float* cells, float* dx, float* dalpha,
                float* dcells) const {
    const int64_t m = a.mixtures, n = a.cells, cell = a.cell_size();
    const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(num_threads(), chunks));
    std::vector<StoragePtr> partial(size_t(dcells ? parts - 1 : 0));
    for (auto& p : partial) p = scratch(n * cell);
    over(parts, [&](int64_t lo, int64_t hi) {
      StoragePtr col = scratch(G * colsz), dcol = dx ? scratch(G * colsz) : nullptr;
      StoragePtr T = scratch(G * m * ct * cc), dT = scratch(G * m * ct * cc);
      for (int64_t part = lo; part < hi; part++) {
        const int64_t k0 = part * chunks / parts, k1 = (part + 1) * chunks / parts;
        float* acc = dcells ? (part == 0 ? dcells : partial[size_t(part - 1)]->as<float>()) : nullptr;
        for (int64_t k = k0; k < k1; k++) {
          const int64_t b0 = k * G, nb = std::min(G, a.batch - b0);
          for (int64_t b = 0; b < nb; b++) taps.im2col(x + (b0 + b) * xb, col->as<float>() + b * colsz);
          if (dx) std::memset(dcol->as<float>(), 0, size_t(nb * colsz) * sizeof(float));
          for (int64_t c0 = 0; c0 < a.co; c0 += ct) {
            const int64_t c1 = std::min(a.co, c0 + ct), w = (c1 - c0) * cc;
            float *Tp = T->as<float>(), *dTp = dT->as<float>();
            if (dx)
              gemm_kernels.gemm(false, false, nb * m, w, n, 1.f, alpha + b0 * m * n, n, cells + c0 * cc, cell, 0.f,
                                Tp, w);
            for (int64_t b = 0; b < nb; b++)
              slots([&](int64_t slot, int64_t block, int64_t o) {
                const float* dyr = dy + (b0 + b) * yb + (o * a.co + c0) * L;
                const int64_t cb = b * colsz + block * cc * L;
                // dT[b, slot] = dY_b[tile rows] · col_b[block]ᵀ; dcol_b[block] += T[b, slot]ᵀ · dY_b[tile rows]
                gemm_kernels.gemm(false, true, c1 - c0, cc, L, 1.f, dyr, L, col->as<float>() + cb, L, 0.f,
                                  dTp + (b * m + slot) * w, cc);
                if (dx)
                  gemm_kernels.gemm(true, false, cc, L, c1 - c0, 1.f, Tp + (b * m + slot) * w, cc, dyr, L, 1.f,
                                    dcol->as<float>() + cb, L);
              });
            if (dalpha)  // dα_chunk += dT · E[:, tile]ᵀ
              gemm_kernels.gemm(false, true, nb * m, n, w, 1.f, dTp, w, cells + c0 * cc, cell, c0 ? 1.f : 0.f,
                                dalpha + b0 * m * n, n);
            if (acc)  // dE[:, tile] (+)= α_chunkᵀ · dT
              gemm_kernels.gemm(true, false, n, w, nb * m, 1.f, alpha + b0 * m * n, n, dTp, w, k == k0 ? 0.f : 1.f,
                                acc + c0 * cc, cell);
          }
          if (dx)
            for (int64_t b = 0; b < nb; b++) taps.col2im(dcol->as<float>() + b * colsz, dx + (b0 + b) * xb);
        }
      }
    });
    if (!dcells || parts == 1) return;
    parallel_for(n * cell, 1 << 14, [&](int64_t lo, int64_t hi) {
      for (const auto& p : partial) {
        const float* v = p->as<float>();
        for (int64_t k = lo; k < hi; k++) dcells[k] += v[k];
      }
    });
  }
};

// ---------------------------------------------------------------- input mix

struct Mix {
  const KwAssemblyDims& a;
  const ConvGeometry& g;
  Taps taps;
  int64_t m, n, L, R, cc, Lcc, colsz;  // R = gs·gic slot rows per o; cc = ci·ck
  int64_t cap;
  Mix(const KwAssemblyDims& ad, const ConvGeometry& geo, int64_t cap_) : a(ad), g(geo), taps(geo, ad, true), cap(cap_) {
    m = a.mixtures, n = a.cells, L = g.out_spatial(), R = a.gs * a.gic, cc = a.ci * a.ck, Lcc = L * cc;
    colsz = g.in_channels * g.kernel_size() * L;
  }

  // Samples per batch chunk: its columns, V and dV stay within about 48 MB.
  int64_t batch_chunk() const {
    const int64_t per = colsz + 2 * a.goc * n * Lcc + g.out_channels * L;
    const int64_t bc = std::clamp<int64_t>((int64_t(12) << 20) / std::max<int64_t>(1, per), 1, g.batch);
    return cap > 0 ? std::min(bc, cap) : bc;
  }

  // α rows of sample b and cell-row group o as an [R, n] matrix: contiguous when goc = 1,
  // else gathered into buf (rows (s, i) sit at stride goc·gic·n over s).
  const float* alpha_bo(const float* alpha, int64_t b, int64_t o, float* buf) const {
    const float* ab = alpha + b * m * n;
    if (a.goc == 1) return ab;
    for (int64_t s = 0; s < a.gs; s++)
      std::memcpy(buf + s * a.gic * n, ab + (s * a.goc + o) * a.gic * n, size_t(a.gic * n) * sizeof(float));
    return buf;
  }

  // V [goc][n][nb·L][cc] for samples [b0, b1); cols (if not null) keeps each sample's columns.
  void mix_input(const float* x, const float* alpha, int64_t b0, int64_t b1, float* cols, float* V) const {
    const int64_t nb = b1 - b0, N = nb * L, xb = x_stride(g);
    parallel_for(nb, 1, [&](int64_t lo, int64_t hi) {
      StoragePtr own = cols ? nullptr : scratch(colsz), ab = scratch(R * n);
      for (int64_t k = lo; k < hi; k++) {
        float* col = cols ? cols + k * colsz : own->as<float>();
        taps.im2col(x + (b0 + k) * xb, col);
        for (int64_t o = 0; o < a.goc; o++) {
          // V_bo [n, L·cc] = α_boᵀ · col_b, written in place into V_o's [n][N·cc] rows.
          const float* A = alpha_bo(alpha, b0 + k, o, ab->as<float>());
          gemm_kernels.gemm(true, false, n, Lcc, R, 1.f, A, n, col, Lcc, 0.f, V + o * n * N * cc + k * Lcc, N * cc);
        }
      }
    });
  }

  void forward(const float* x, const float* alpha, const float* cells, const float* bias, float* y) const {
    const int64_t Bc = batch_chunk(), co = a.co, cell = a.cell_size(), O = g.out_channels;
    // Y_o [co, N] = Σ_j E_j [co, cc] · V_ojᵀ with threads over j (single-threaded GEMMs), each
    // part into its own accumulator, summed in part order (results independent of scheduling).
    const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(num_threads(), n));
    StoragePtr V = scratch(a.goc * n * Bc * Lcc), Y = scratch(parts * co * Bc * L);
    for (int64_t b0 = 0; b0 < g.batch; b0 += Bc) {
      const int64_t b1 = std::min(g.batch, b0 + Bc), N = (b1 - b0) * L;
      mix_input(x, alpha, b0, b1, nullptr, V->as<float>());
      for (int64_t o = 0; o < a.goc; o++) {
        float* Yp = Y->as<float>();
        const float* Vo = V->as<float>() + o * n * N * cc;
        parallel_for(parts, 1, [&](int64_t lo, int64_t hi) {
          for (int64_t p = lo; p < hi; p++)
            for (int64_t j = p * n / parts; j < (p + 1) * n / parts; j++)
              gemm_kernels.gemm(false, true, co, N, cc, 1.f, cells + j * cell, cc, Vo + j * N * cc, cc,
                                j > p * n / parts ? 1.f : 0.f, Yp + p * co * N, N);
        });
        for (int64_t p = 1; p < parts; p++) {
          const float* q = Yp + p * co * N;
          for (int64_t k = 0; k < co * N; k++) Yp[k] += q[k];
        }
        parallel_for(b1 - b0, 1, [&](int64_t lo, int64_t hi) {
          for (int64_t k = lo; k < hi; k++) {
            float* yb = y + ((b0 + k) * O + o * co) * L;
            copy_rows(yb, L, Yp + k * L, N, co, L);
            if (bias)
              for (int64_t c = 0; c < co; c++)
                for (int64_t l = 0; l < L; l++) yb[c * L + l] += bias[o * co + c];
          }
        });
      }
    }
  }

  void backward(const float* dy, const float* x, const float* alpha, const float* cells, float* dx, float* dalpha,
                float* dcells) const {
    const int64_t Bc = batch_chunk(), co = a.co, cell = a.cell_size(), O = g.out_channels, xb = x_stride(g);
    const bool need_v = dcells != nullptr, need_dv = dx || dalpha;
    StoragePtr V = need_v ? scratch(a.goc * n * Bc * Lcc) : nullptr;
    StoragePtr dV = need_dv ? scratch(a.goc * n * Bc * Lcc) : nullptr;
    // Columns kept from the recomputation of V for dα; without V each sample redoes its own.
    StoragePtr cols = dalpha && need_v ? scratch(Bc * colsz) : nullptr;
    StoragePtr dY = scratch(O * Bc * L);
    for (int64_t b0 = 0; b0 < g.batch; b0 += Bc) {
      const int64_t b1 = std::min(g.batch, b0 + Bc), nb = b1 - b0, N = nb * L;
      if (need_v) mix_input(x, alpha, b0, b1, cols ? cols->as<float>() : nullptr, V->as<float>());
      float* dYp = dY->as<float>();  // [O, N]: dY_o is rows o·co..
      parallel_for(nb, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t k = lo; k < hi; k++) copy_rows(dYp + k * L, N, dy + (b0 + k) * O * L, L, O, L);
      });
      // Threads over cells j (single-threaded GEMMs): each j's dE_j and dV_j are its own, and
      // splitting the j loop beats splitting each mid-sized GEMM (one sync per thread, not per j).
      parallel_for(n, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t j = lo; j < hi; j++)
          for (int64_t o = 0; o < a.goc; o++) {
            const float* dYo = dYp + o * co * N;
            const int64_t vj = (o * n + j) * N * cc;
            if (dcells)  // dE_j += dY_o [co, N] · V_oj [N, cc]
              gemm_kernels.gemm(false, false, co, cc, N, 1.f, dYo, N, V->as<float>() + vj, cc,
                                (o > 0 || b0 > 0) ? 1.f : 0.f, dcells + j * cell, cc);
            if (need_dv)  // dV_oj [N, cc] = dY_oᵀ · E_j
              gemm_kernels.gemm(true, false, N, cc, co, 1.f, dYo, N, cells + j * cell, cc, 0.f,
                                dV->as<float>() + vj, cc);
          }
      });
      if (!need_dv) continue;
      parallel_for(nb, 1, [&](int64_t lo, int64_t hi) {
        StoragePtr own = cols ? nullptr : scratch(colsz);
        StoragePtr dcol = dx ? scratch(colsz) : nullptr, ab = scratch(R * n);
        StoragePtr dab = a.goc > 1 ? scratch(R * n) : nullptr;
        for (int64_t k = lo; k < hi; k++) {
          const int64_t b = b0 + k;
          float* col = nullptr;
          if (dalpha) {
            col = cols ? cols->as<float>() + k * colsz : own->as<float>();
            if (!cols) taps.im2col(x + b * xb, col);
          }
          for (int64_t o = 0; o < a.goc; o++) {
            const float* v = dV->as<float>() + o * n * N * cc + k * Lcc;  // dV_bo [n, L·cc], ld N·cc
            if (dalpha) {
              // dα_bo [R, n] = col_b [R, L·cc] · dV_boᵀ.
              float* out = a.goc == 1 ? dalpha + b * m * n : dab->as<float>();
              gemm_kernels.gemm(false, true, R, n, Lcc, 1.f, col, Lcc, v, N * cc, 0.f, out, n);
              if (a.goc > 1)
                for (int64_t s = 0; s < a.gs; s++)
                  std::memcpy(dalpha + (b * m + (s * a.goc + o) * a.gic) * n, out + s * a.gic * n,
                              size_t(a.gic * n) * sizeof(float));
            }
            if (dx) {
              // dcol_b [R, L·cc] += α_bo · dV_bo.
              const float* A = alpha_bo(alpha, b, o, ab->as<float>());
              gemm_kernels.gemm(false, false, R, Lcc, n, 1.f, A, n, v, N * cc, o ? 1.f : 0.f, dcol->as<float>(), Lcc);
            }
          }
          if (dx) taps.col2im(dcol->as<float>(), dx + b * xb);
        }
      });
    }
  }
};

}  // namespace

void conv_forward(const KwAssemblyDims& a, const ConvGeometry& g, KwConvStrategy s, int64_t samples_per_chunk,
                  const float* x,
                  const float* alpha, const float* cells, const float* bias, float* y) {
  if (g.batch == 0) return;
  const KwConvStrategy chosen = kw_conv_strategy(a, g, s);
  if (chosen == KwConvStrategy::Winograd)
    return winograd_forward(a, g, winograd_tile(a, g, false, s == KwConvStrategy::Winograd), x, alpha, cells, bias, y);
  if (chosen == KwConvStrategy::Panels) return fused_forward(a, g, x, alpha, cells, bias, y);
  if (chosen == KwConvStrategy::InputMix) return Mix(a, g, samples_per_chunk).forward(x, alpha, cells, bias, y);
  if (CellTiled::applies(a, g)) return CellTiled(a, g, samples_per_chunk).forward(x, alpha, cells, bias, y);
  Chunked(a, g, samples_per_chunk).forward(x, alpha, cells, bias, y);
}

void conv_backward(const KwAssemblyDims& a, const ConvGeometry& g, KwConvStrategy s, int64_t samples_per_chunk,
                   const float* dy,
                   const float* x, const float* alpha, const float* cells, float* dx, float* dalpha,
                   float* dcells, float* dbias) {
  if (dbias) bias_backward(g, dy, dbias);
  if (!dx && !dalpha && !dcells) return;
  KwConvStrategy chosen = kw_conv_strategy(a, g, s);
  if (chosen == KwConvStrategy::Winograd) {
    const bool requested = s == KwConvStrategy::Winograd;
    if (dx) winograd_backward_input(a, g, winograd_tile(a, g, false, requested), dy, alpha, cells, dx);
    if (!dalpha && !dcells) return;
    if (const int tile = winograd_tile(a, g, true, requested))
      return winograd_backward_warehouse(a, g, tile, dy, x, alpha, cells, dalpha, dcells);
    dx = nullptr;  // below: the panels' warehouse gradients (Winograd's conditions include theirs)
    chosen = KwConvStrategy::Panels;
  }
  if (chosen == KwConvStrategy::Panels) {
    if (dx) fused_backward_input(a, g, dy, alpha, cells, dx);
    if (!dalpha && !dcells) return;
    // The tiled warehouse gradients multiply over the output positions from L1: few positions.
    if (g.out_spatial() <= 256) return fused_backward_warehouse(a, g, dy, x, alpha, cells, dalpha, dcells);
    dx = nullptr;  // below: the warehouse gradients only, without recomputing the kernels
  }
  if (chosen == KwConvStrategy::InputMix)
    return Mix(a, g, samples_per_chunk).backward(dy, x, alpha, cells, dx, dalpha, dcells);
  if (CellTiled::applies(a, g))
    return CellTiled(a, g, samples_per_chunk).backward(dy, x, alpha, cells, dx, dalpha, dcells);
  Chunked(a, g, samples_per_chunk).backward(dy, x, alpha, cells, dx, dalpha, dcells);
}

}  // namespace cpu::kwk
}  // namespace kw
