// Taps: the im2col/col2im of one sample for the fused KernelWarehouse convolution, with the
// columns grouped by cell slot (used by cpu/kw_conv.cpp and cpu/kw_conv_fused.cpp).
#pragma once
#include <algorithm>
#include <cstring>

#include "core/kernels/conv.h"
#include "core/kernels/kw.h"

namespace kw::cpu::kwk {

// The columns of one sample (groups = 1), grouped by cell slot: block (s, i) holds kernel taps
// s·ck.. of input channels i·ci.., i.e. cell rows (d, e), for every output position l.
// Tap-major (the chunked conv: col = [gs·C·ck, L], so y_b = W'_b·col with W'_b's columns in
// (s, channel, e) order): col[block·L·cc + (d·ck + e)·L + l].
// Position-major (input mix): col[block·L·cc + l·cc + d·ck + e]. With l outside (d, e),
// V_b = α_bᵀ·col_b comes out as [n][l][(d, e)] per sample, exactly a slice of the
// [n][b][l][(d, e)] layout the batch-wide E GEMMs read (transposed): no relayout between them.
struct Taps {
  const ConvGeometry& g;
  int64_t C, L, ci, ck, cc, l_step, de_step;
  Taps(const ConvGeometry& geo, const KwAssemblyDims& a, bool position_major)
      : g(geo), C(geo.in_channels), L(geo.out_spatial()), ci(a.ci), ck(a.ck), cc(a.ci * a.ck) {
    l_step = position_major ? cc : 1;
    de_step = position_major ? 1 : L;
  }

  // fn(offset in col, x offset or -1 in the padding) over every tap and position of channel ch.
  template <typename F>
  void visit(int64_t ch, F&& fn) const {
    const int64_t i = ch / ci, d = ch % ci, gic = C / ci;
    for (int64_t kd = 0; kd < g.kernel[0]; kd++)
      for (int64_t kh = 0; kh < g.kernel[1]; kh++)
        for (int64_t kx = 0; kx < g.kernel[2]; kx++) {
          const int64_t t = (kd * g.kernel[1] + kh) * g.kernel[2] + kx;
          const int64_t base = ((t / ck) * gic + i) * L * cc + (d * ck + t % ck) * de_step;
          for (int64_t od = 0; od < g.out[0]; od++) {
            const int64_t id = od * g.stride[0] - g.pad_lo[0] + kd * g.dilation[0];
            for (int64_t oh = 0; oh < g.out[1]; oh++) {
              const int64_t ih = oh * g.stride[1] - g.pad_lo[1] + kh * g.dilation[1];
              const bool row_ok = id >= 0 && id < g.in[0] && ih >= 0 && ih < g.in[1];
              const int64_t l0 = (od * g.out[1] + oh) * g.out[2];
              const int64_t xrow = (id * g.in[1] + ih) * g.in[2];
              for (int64_t ow = 0; ow < g.out[2]; ow++) {
                const int64_t iw = ow * g.stride[2] - g.pad_lo[2] + kx * g.dilation[2];
                fn(base + (l0 + ow) * l_step, row_ok && iw >= 0 && iw < g.in[2] ? xrow + iw : int64_t(-1));
              }
            }
          }
        }
  }

  // Tap-major rows of output rows [r0, r1) (r = od·out[1] + oh; the tile is (r1 - r0)·OW
  // columns wide): for each (channel, tap, output row) the outputs ow in [lo, hi) read
  // x[xrow + ow·sw + off], the rest is padding. fn(dst offset, x row or -1, off, lo, hi).
  template <typename F>
  void rows(int64_t ch, int64_t r0, int64_t r1, F&& fn) const {
    const int64_t i = ch / ci, d = ch % ci, gic = C / ci, OW = g.out[2], IW = g.in[2], sw = g.stride[2];
    for (int64_t kd = 0; kd < g.kernel[0]; kd++)
      for (int64_t kh = 0; kh < g.kernel[1]; kh++)
        for (int64_t kx = 0; kx < g.kernel[2]; kx++) {
          const int64_t t = (kd * g.kernel[1] + kh) * g.kernel[2] + kx;
          const int64_t width = (r1 - r0) * OW;
          const int64_t base = (((t / ck) * gic + i) * cc + d * ck + t % ck) * width;
          const int64_t off = kx * g.dilation[2] - g.pad_lo[2];
          const int64_t lo = std::min(OW, off >= 0 ? 0 : (-off + sw - 1) / sw);
          const int64_t hi = std::max(lo, IW - 1 - off < 0 ? 0 : std::min(OW, (IW - 1 - off) / sw + 1));
          for (int64_t r = r0; r < r1; r++) {
            const int64_t od = r / g.out[1], oh = r % g.out[1];
            const int64_t id = od * g.stride[0] - g.pad_lo[0] + kd * g.dilation[0];
            const int64_t ih = oh * g.stride[1] - g.pad_lo[1] + kh * g.dilation[1];
            const bool ok = id >= 0 && id < g.in[0] && ih >= 0 && ih < g.in[1];
            fn(base + (r - r0) * OW, ok ? (id * g.in[1] + ih) * IW : int64_t(-1), off, lo, hi);
          }
        }
  }

  int64_t out_rows() const { return g.out[0] * g.out[1]; }

  // Stride-1 2-D (or 1-D) layers whose output rows are as wide as the input rows (ResNet's
  // 'same' 3×3 convs): for a tap, consecutive output rows read consecutive input rows at one
  // constant shift, so a tile's valid rows are a single contiguous run of the input plane
  // (the few entries that wrap around a row edge are padding, zeroed afterwards) — one copy
  // per (channel, tap) instead of one per output row, as in cpu/conv.cpp's shifted planes.
  bool shifted() const {
    return l_step == 1 && g.in[0] == 1 && g.out[0] == 1 && g.kernel[0] == 1 && g.pad_lo[0] == 0 &&
           g.stride[1] == 1 && g.stride[2] == 1 && g.out[2] == g.in[2];
  }

  // For shifted() layers: per (channel, tap), the valid tile rows [ra, rb) (relative to r0), the
  // x offset of row ra's column 0 (plus off), and the valid columns [lo, hi).
  // fn(dst offset of the tile's row 0, ra, rb, x offset, lo, hi).
  template <typename F>
  void spans(int64_t ch, int64_t r0, int64_t r1, F&& fn) const {
    const int64_t i = ch / ci, d = ch % ci, gic = C / ci, W = g.in[2], IH = g.in[1];
    for (int64_t kh = 0; kh < g.kernel[1]; kh++)
      for (int64_t kx = 0; kx < g.kernel[2]; kx++) {
        const int64_t t = kh * g.kernel[2] + kx;
        const int64_t base = (((t / ck) * gic + i) * cc + d * ck + t % ck) * (r1 - r0) * W;
        const int64_t off = kx * g.dilation[2] - g.pad_lo[2];
        const int64_t lo = std::min(W, off >= 0 ? 0 : -off);
        const int64_t hi = std::max(lo, std::min(W, W - off));
        const int64_t shift = kh * g.dilation[1] - g.pad_lo[1];  // ih = r + shift
        const int64_t ra = std::clamp<int64_t>(-shift, r0, r1), rb = std::clamp<int64_t>(IH - shift, ra, r1);
        fn(base, ra - r0, rb - r0, (ra + shift) * W + off, lo, hi);
      }
  }

  // The columns of output rows [r0, r1) (tap-major only; position-major takes all rows).
  void im2col(const float* xb, float* col, int64_t r0 = 0, int64_t r1 = -1) const {
    const int64_t S = g.in_spatial(), OW = g.out[2], sw = g.stride[2];
    if (r1 < 0) r1 = out_rows();
    if (shifted()) {
      const int64_t n = r1 - r0;
      for (int64_t ch = 0; ch < C; ch++)
        spans(ch, r0, r1, [&](int64_t at, int64_t ra, int64_t rb, int64_t xo, int64_t lo, int64_t hi) {
          float* dst = col + at;
          std::fill(dst, dst + ra * OW, 0.f);
          std::fill(dst + rb * OW, dst + n * OW, 0.f);
          if (ra >= rb) return;
          if (hi > lo) {
            const float* src = xb + ch * S + xo;
            std::copy(src + lo, src + (rb - ra - 1) * OW + hi, dst + ra * OW + lo);
          }
          for (int64_t r = ra; r < rb; r++) {
            std::fill(dst + r * OW, dst + r * OW + lo, 0.f);
            std::fill(dst + r * OW + hi, dst + (r + 1) * OW, 0.f);
          }
        });
      return;
    }
    for (int64_t ch = 0; ch < C; ch++) {
      const float* xc = xb + ch * S;
      if (l_step != 1) {
        visit(ch, [&](int64_t at, int64_t off) { col[at] = off >= 0 ? xc[off] : 0.f; });
        continue;
      }
      rows(ch, r0, r1, [&](int64_t at, int64_t xrow, int64_t off, int64_t lo, int64_t hi) {
        float* dst = col + at;
        if (xrow < 0) return (void)std::fill(dst, dst + OW, 0.f);
        const float* src = xc + xrow + off;
        std::fill(dst, dst + lo, 0.f);
        if (sw == 1) std::copy(src + lo, src + hi, dst + lo);
        else if (sw == 2) for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * 2];  // a constant stride vectorises
        else for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * sw];
        std::fill(dst + hi, dst + OW, 0.f);
      });
    }
  }

  // dx_b += the adjoint of im2col for output rows [r0, r1); overwrite = true zeroes dx_b first.
  // col is scratch: shifted() layers zero its padding entries, then add each (channel, tap)'s
  // valid rows as one contiguous run (the zeros land on the wrapped-around positions).
  void col2im(float* col, float* dxb, int64_t r0 = 0, int64_t r1 = -1, bool overwrite = true) const {
    const int64_t S = g.in_spatial(), sw = g.stride[2];
    if (r1 < 0) r1 = out_rows();
    if (overwrite) std::memset(dxb, 0, size_t(C * S) * sizeof(float));
    if (shifted()) {
      const int64_t OW = g.out[2];
      for (int64_t ch = 0; ch < C; ch++)
        spans(ch, r0, r1, [&](int64_t at, int64_t ra, int64_t rb, int64_t xo, int64_t lo, int64_t hi) {
          if (ra >= rb || hi <= lo) return;
          float* src = col + at;
          for (int64_t r = ra; r < rb; r++) {
            std::fill(src + r * OW, src + r * OW + lo, 0.f);
            std::fill(src + r * OW + hi, src + (r + 1) * OW, 0.f);
          }
          const int64_t len = (rb - ra - 1) * OW + hi - lo;
          float* __restrict dst = dxb + ch * S + xo + lo;
          const float* __restrict sp = src + ra * OW + lo;
          for (int64_t k = 0; k < len; k++) dst[k] += sp[k];
        });
      return;
    }
    for (int64_t ch = 0; ch < C; ch++) {
      float* dc = dxb + ch * S;
      if (l_step != 1) {
        visit(ch, [&](int64_t at, int64_t off) {
          if (off >= 0) dc[off] += col[at];
        });
        continue;
      }
      rows(ch, r0, r1, [&](int64_t at, int64_t xrow, int64_t off, int64_t lo, int64_t hi) {
        if (xrow < 0) return;
        const float* src = col + at;
        float* dst = dc + xrow + off;
        if (sw == 1) for (int64_t ow = lo; ow < hi; ow++) dst[ow] += src[ow];
        else if (sw == 2) for (int64_t ow = lo; ow < hi; ow++) dst[ow * 2] += src[ow];
        else for (int64_t ow = lo; ow < hi; ow++) dst[ow * sw] += src[ow];
      });
    }
  }
};

}  // namespace kw::cpu::kwk
