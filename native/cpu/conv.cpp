// CPU convolution, forward and backward, 1-D/2-D/3-D (always run as 3-D with unit dims).
//
// General path: im2col then one GEMM per group, Y_b[g] = W_b[g] · col_b[g]. The weight of
// sample b sits at w + b·wstride, with wstride 0 for a shared weight, so the per-sample
// (KernelWarehouse) conv and the ordinary one are the same code.
// - im2col runs in tiles of output rows sized to stay in L2 until the GEMM reads them.
// - Shared weights with few output positions put several samples side by side in one GEMM.
// - A 1×1, stride-1, unpadded conv needs no im2col: the input already is the column matrix.
// - One input channel per group (depthwise) is a direct loop: its GEMMs would have an inner
//   dimension of only k·k.
// Threads: forward over (sample, row tile) items, backward over samples, GEMMs single-threaded
// inside; with fewer items than threads, items run in turn and each GEMM splits itself. A
// shared dW is accumulated per thread chunk and summed in chunk order afterwards, so results
// do not depend on scheduling.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "cpu/tables.h"

// Hot loops get an AVX2 clone picked at load time by CPU feature; the baseline build is plain
// x86-64. Not "arch=haswell": GCC dispatches that by CPU model (only Intel Haswell matches), so
// it never ran on AMD or later Intel. No FMA either, so both clones round alike.
#define KW_SIMD_CLONES __attribute__((target_clones("avx2", "default")))

namespace kw::cpu {
namespace {

// Output positions o in [0, n_out) whose input index o·s + off lies in [0, n_in): [lo, hi).
inline void valid_range(int64_t n_out, int64_t n_in, int64_t s, int64_t off, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t last = n_in - 1 - off;
  hi = last < 0 ? 0 : std::min(n_out, last / s + 1);
  if (hi < lo) hi = lo;
}

// Input index along dim d for output index o and kernel tap k, or -1 when it falls in padding.
inline int64_t in_index(const ConvGeometry& g, int d, int64_t o, int64_t k) {
  int64_t i = o * g.stride[d] - g.pad_lo[d] + k * g.dilation[d];
  return i >= 0 && i < g.in[d] ? i : -1;
}

struct Sizes {
  int64_t Cg, Og, K, L, S, CgK;
  int64_t x_b, y_b, w_b;  // per-sample strides of x, y and w (w_b = 0: shared weight)
  bool direct;            // 1×1, stride 1, no padding: the column matrix is the input itself
};

Sizes sizes_of(const ConvGeometry& g) {
  Sizes s;
  s.Cg = g.in_per_group();
  s.Og = g.out_per_group();
  s.K = g.kernel_size();
  s.L = g.out_spatial();
  s.S = g.in_spatial();
  s.CgK = s.Cg * s.K;
  s.x_b = g.in_channels * s.S;
  s.y_b = g.out_channels * s.L;
  s.w_b = g.per_sample_weight ? g.weight_numel_per_sample() : 0;
  s.direct = true;
  for (int d = 0; d < 3; d++)
    if (g.kernel[d] != 1 || g.stride[d] != 1 || g.pad_lo[d] != 0 || g.pad_hi[d] != 0) s.direct = false;
  return s;
}

// Output rows: the (od, oh) pairs, numbered od·out[1] + oh, each out[2] positions long.
// Calls fn(r - r0, id, ih) for rows r in [r0, r1) and kernel tap (kd, kh), with id/ih the
// input row or -1 when it falls in the padding.
template <typename F>
inline void for_rows(const ConvGeometry& g, int64_t kd, int64_t kh, int64_t r0, int64_t r1, F&& fn) {
  for (int64_t r = r0; r < r1; r++) {
    int64_t id = in_index(g, 0, r / g.out[1], kd);
    fn(r - r0, id, id < 0 ? -1 : in_index(g, 1, r % g.out[1], kh));
  }
}

// The columns of output rows [r0, r1) for channels [c0, c1) of x: col row c·K + k (leading
// dimension ld) holds tap k of channel c, (r1 - r0)·out[2] columns.
// Stride-1 "same" 2-D convs (out = in along H and W; ResNet's 3×3 pad-1 convs): a tap reads
// the input plane shifted by a constant, so its valid rows are one contiguous copy. The copy
// wraps the first/last columns into the neighbouring rows; those columns read padding, and
// are zeroed afterwards. Per-row copies of 8 or 4 floats (late stages at 32×32 inputs) were
// as slow as the GEMM itself.
inline bool shifted_planes(const ConvGeometry& g) {
  return g.in[0] == 1 && g.out[0] == 1 && g.kernel[0] == 1 && g.stride[1] == 1 && g.stride[2] == 1 &&
         g.out[1] == g.in[1] && g.out[2] == g.in[2];
}

// The rows [h0, h1) of tile [r0, r1) where tap (kh, kx) reads the input, the plane shift, and
// the valid columns [lo, hi).
struct TapShift {
  int64_t h0, h1, shift, lo, hi;
};
inline TapShift tap_shift(const ConvGeometry& g, int64_t kh, int64_t kx, int64_t r0, int64_t r1) {
  TapShift t;
  const int64_t offh = kh * g.dilation[1] - g.pad_lo[1], offw = kx * g.dilation[2] - g.pad_lo[2];
  valid_range(g.out[1], g.in[1], 1, offh, t.h0, t.h1);
  t.h0 = std::max(t.h0, r0);
  t.h1 = std::max(t.h0, std::min(t.h1, r1));
  valid_range(g.out[2], g.in[2], 1, offw, t.lo, t.hi);
  t.shift = offh * g.in[2] + offw;
  return t;
}

KW_SIMD_CLONES
void im2col_shifted(const ConvGeometry& g, const float* x, int64_t c0, int64_t c1, int64_t r0, int64_t r1,
                    float* col, int64_t ld) {
  const int64_t K = g.kernel_size(), S = g.in_spatial(), W = g.out[2], n = (r1 - r0) * W;
  for (int64_t c = c0; c < c1; c++) {
    const float* xc = x + c * S;
    for (int64_t kh = 0; kh < g.kernel[1]; kh++)
      for (int64_t kx = 0; kx < g.kernel[2]; kx++) {
        float* row = col + (c * K + kh * g.kernel[2] + kx) * ld;
        TapShift t = tap_shift(g, kh, kx, r0, r1);
        int64_t a = (t.h0 - r0) * W, b = (t.h1 - r0) * W;  // the valid rows, in row's numbering
        std::memset(row, 0, size_t(a) * sizeof(float));
        std::memset(row + b, 0, size_t(n - b) * sizeof(float));
        if (a == b) continue;
        // Element j of the tile reads xc[j + r0·W + shift]; keep that inside the plane.
        const int64_t base = r0 * W + t.shift;
        int64_t ca = std::max(a, -base), cb = std::min(b, S - base);
        if (ca < cb) std::memcpy(row + ca, xc + ca + base, size_t(cb - ca) * sizeof(float));
        // Also covers [a, ca) and [cb, b): clamping only ever cuts columns that read padding.
        if (t.lo > 0 || t.hi < W)
          for (int64_t h = t.h0; h < t.h1; h++) {
            float* d = row + (h - r0) * W;
            for (int64_t w = 0; w < t.lo; w++) d[w] = 0.f;
            for (int64_t w = t.hi; w < W; w++) d[w] = 0.f;
          }
      }
  }
}

KW_SIMD_CLONES
void im2col(const ConvGeometry& g, const float* x, int64_t c0, int64_t c1, int64_t r0, int64_t r1, float* col,
            int64_t ld) {
  if (shifted_planes(g)) return im2col_shifted(g, x, c0, c1, r0, r1, col, ld);
  const int64_t K = g.kernel_size(), S = g.in_spatial();
  const int64_t OW = g.out[2], IW = g.in[2], sw = g.stride[2];
  for (int64_t c = c0; c < c1; c++) {
    const float* xc = x + c * S;
    for (int64_t kd = 0; kd < g.kernel[0]; kd++)
      for (int64_t kh = 0; kh < g.kernel[1]; kh++)
        for (int64_t kx = 0; kx < g.kernel[2]; kx++) {
          float* row = col + (c * K + (kd * g.kernel[1] + kh) * g.kernel[2] + kx) * ld;
          int64_t off = kx * g.dilation[2] - g.pad_lo[2], lo, hi;
          valid_range(OW, IW, sw, off, lo, hi);
          for_rows(g, kd, kh, r0, r1, [&](int64_t r, int64_t id, int64_t ih) {
            float* dst = row + r * OW;
            if (ih < 0) {
              std::memset(dst, 0, size_t(OW) * sizeof(float));
              return;
            }
            const float* src = xc + (id * g.in[1] + ih) * IW;
            if (sw == 1 && OW >= 32) {  // long rows: library copies; short ones: no call overhead
              std::memset(dst, 0, size_t(lo) * sizeof(float));
              std::memcpy(dst + lo, src + lo + off, size_t(hi - lo) * sizeof(float));
              std::memset(dst + hi, 0, size_t(OW - hi) * sizeof(float));
              return;
            }
            for (int64_t ow = 0; ow < lo; ow++) dst[ow] = 0.f;
            if (sw == 2)  // a constant stride vectorises (the stem and downsampling convs)
              for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * 2 + off];
            else
              for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * sw + off];
            for (int64_t ow = hi; ow < OW; ow++) dst[ow] = 0.f;
          });
        }
  }
}

// col2im for shifted_planes geometries: one contiguous shifted add per tap. It first zeroes
// the columns that read padding (col is the caller's scratch), so that the add, which wraps
// them onto the neighbouring rows' edges, adds zeros there.
KW_SIMD_CLONES
void col2im_shifted(const ConvGeometry& g, float* col, int64_t ld, int64_t c0, int64_t c1, int64_t r0,
                    int64_t r1, float* x) {
  const int64_t K = g.kernel_size(), S = g.in_spatial(), W = g.out[2];
  for (int64_t c = c0; c < c1; c++) {
    float* xc = x + c * S;
    for (int64_t kh = 0; kh < g.kernel[1]; kh++)
      for (int64_t kx = 0; kx < g.kernel[2]; kx++) {
        float* row = col + (c * K + kh * g.kernel[2] + kx) * ld;
        TapShift t = tap_shift(g, kh, kx, r0, r1);
        int64_t a = (t.h0 - r0) * W, b = (t.h1 - r0) * W;
        if (a == b) continue;
        if (t.lo > 0 || t.hi < W)
          for (int64_t h = t.h0; h < t.h1; h++) {
            float* d = row + (h - r0) * W;
            for (int64_t w = 0; w < t.lo; w++) d[w] = 0.f;
            for (int64_t w = t.hi; w < W; w++) d[w] = 0.f;
          }
        const int64_t base = r0 * W + t.shift;
        int64_t ca = std::max(a, -base), cb = std::min(b, S - base);
        float* dst = xc + base;
        for (int64_t j = ca; j < cb; j++) dst[j] += row[j];
      }
  }
}

// The adjoint of im2col: x (channels [c0, c1)) += the columns of output rows [r0, r1).
// col is scratch: the shifted-plane path zeroes its padding entries.
KW_SIMD_CLONES
void col2im(const ConvGeometry& g, float* col, int64_t ld, int64_t c0, int64_t c1, int64_t r0, int64_t r1,
            float* x) {
  if (shifted_planes(g)) return col2im_shifted(g, col, ld, c0, c1, r0, r1, x);
  const int64_t K = g.kernel_size(), S = g.in_spatial();
  const int64_t OW = g.out[2], IW = g.in[2], sw = g.stride[2];
  for (int64_t c = c0; c < c1; c++) {
    float* xc = x + c * S;
    for (int64_t kd = 0; kd < g.kernel[0]; kd++)
      for (int64_t kh = 0; kh < g.kernel[1]; kh++)
        for (int64_t kx = 0; kx < g.kernel[2]; kx++) {
          const float* row = col + (c * K + (kd * g.kernel[1] + kh) * g.kernel[2] + kx) * ld;
          int64_t off = kx * g.dilation[2] - g.pad_lo[2], lo, hi;
          valid_range(OW, IW, sw, off, lo, hi);
          for_rows(g, kd, kh, r0, r1, [&](int64_t r, int64_t id, int64_t ih) {
            if (ih < 0) return;
            const float* src = row + r * OW;
            float* dst = xc + (id * g.in[1] + ih) * IW;
            if (sw == 1) for (int64_t ow = lo; ow < hi; ow++) dst[ow + off] += src[ow];
            else if (sw == 2) for (int64_t ow = lo; ow < hi; ow++) dst[ow * 2 + off] += src[ow];
            else for (int64_t ow = lo; ow < hi; ow++) dst[ow * sw + off] += src[ow];
          });
        }
  }
}

// Channel-parallel wrappers: inline inside a parallel loop, split over threads otherwise.
void im2col_par(const ConvGeometry& g, const float* x, int64_t C, int64_t r0, int64_t r1, float* col, int64_t ld) {
  int64_t work = g.kernel_size() * (r1 - r0) * g.out[2];
  parallel_for(C, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, work)),
               [&](int64_t lo, int64_t hi) { im2col(g, x, lo, hi, r0, r1, col, ld); });
}
void col2im_par(const ConvGeometry& g, float* col, int64_t ld, int64_t C, int64_t r0, int64_t r1, float* x) {
  int64_t work = g.kernel_size() * (r1 - r0) * g.out[2];
  parallel_for(C, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, work)),
               [&](int64_t lo, int64_t hi) { col2im(g, col, ld, lo, hi, r0, r1, x); });
}

StoragePtr scratch(int64_t n) { return n > 0 ? new_storage(DType::F32, n) : nullptr; }
float* ptr(const StoragePtr& s) { return s ? s->as<float>() : nullptr; }

// GEMMs narrower than this many columns lose speed; wider column tiles than needed fall out of L2.
constexpr int64_t kMinCols = 256, kTileBytes = 512 << 10;

// Output rows per im2col tile. A whole sample's column matrix (in/groups·k·k × positions) is
// often several MB; tiles of a few hundred columns stay in L2 between im2col and the GEMM,
// and GEMMs that wide still run at full speed. Whole samples when the GEMM itself should be
// split over threads (few samples) or there is no im2col.
int64_t rows_per_tile(const ConvGeometry& g, const Sizes& s, bool whole) {
  const int64_t rows = g.out[0] * g.out[1];
  if (whole || s.direct) return std::max<int64_t>(1, rows);
  int64_t cols = std::max(kMinCols, kTileBytes / int64_t(sizeof(float)) / std::max<int64_t>(1, s.CgK));
  return std::clamp<int64_t>((cols + g.out[2] - 1) / g.out[2], 1, std::max<int64_t>(1, rows));
}

// Samples per GEMM. With a shared weight and few output positions (late layers: 7×7, 4×4)
// a per-sample GEMM is too narrow, so several samples' columns go side by side into one
// GEMM, through a small output buffer. A per-sample weight cannot share a GEMM.
int64_t samples_per_gemm(const ConvGeometry& g, const Sizes& s) {
  if (g.per_sample_weight || s.L >= kMinCols) return 1;
  return std::clamp<int64_t>((2 * kMinCols + s.L - 1) / s.L, 1, std::max<int64_t>(1, g.batch));
}

// Runs fn(chunk, i0, i1) over items [0, n) split into chunks: one per thread when items are
// plentiful, else a single chunk run outside any parallel region (so its GEMMs go parallel).
// Returns the number of chunks.
template <typename F>
int64_t over_items(int64_t n, F&& fn) {
  int64_t threads = in_parallel_region() ? 1 : num_threads();
  int64_t chunks = n >= threads ? std::min(threads, n) : 1;
  if (chunks <= 1) {
    if (n > 0) fn(0, 0, n);
    return n > 0 ? 1 : 0;
  }
  parallel_for(chunks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; c++) fn(c, c * n / chunks, (c + 1) * n / chunks);
  });
  return chunks;
}

// True when over_items(n) would run one chunk on several threads' GEMMs.
bool single_chunk(int64_t n) {
  int64_t threads = in_parallel_region() ? 1 : num_threads();
  return threads > 1 && n < threads;
}

// ---- depthwise (one input channel per group): direct loops ----

// Visits every (output row, kernel tap) pair of one channel that touches the input:
// fn(y row offset, x row offset, tap k, off, lo, hi): output i of the row reads input
// i·stride + off of the x row, for i in [lo, hi).
template <typename F>
inline void for_taps(const ConvGeometry& g, F&& fn) {
  const int64_t OW = g.out[2], IW = g.in[2], rows = g.out[0] * g.out[1];
  for (int64_t kd = 0; kd < g.kernel[0]; kd++)
    for (int64_t kh = 0; kh < g.kernel[1]; kh++)
      for (int64_t kx = 0; kx < g.kernel[2]; kx++) {
        int64_t k = (kd * g.kernel[1] + kh) * g.kernel[2] + kx;
        int64_t off = kx * g.dilation[2] - g.pad_lo[2], lo, hi;
        valid_range(OW, IW, g.stride[2], off, lo, hi);
        if (lo >= hi) continue;
        for_rows(g, kd, kh, 0, rows, [&](int64_t r, int64_t id, int64_t ih) {
          if (ih >= 0) fn(r * OW, (id * g.in[1] + ih) * IW, k, off, lo, hi);
        });
      }
}

// y (one output plane) = bias + Σ_taps w[k] · x (its input plane).
KW_SIMD_CLONES
void depthwise_plane(const ConvGeometry& g, const float* x, const float* w, float bias, float* y) {
  const int64_t sw = g.stride[2];
  std::fill(y, y + g.out_spatial(), bias);
  for_taps(g, [&](int64_t yr, int64_t xr, int64_t k, int64_t off, int64_t lo, int64_t hi) {
    const float wk = w[k];
    const float* xs = x + xr;
    float* yd = y + yr;
    if (sw == 1) for (int64_t i = lo; i < hi; i++) yd[i] += wk * xs[i + off];
    else for (int64_t i = lo; i < hi; i++) yd[i] += wk * xs[i * sw + off];
  });
}

// dx (one input plane) += Σ_taps w[k] · dy (one output plane) scattered back.
KW_SIMD_CLONES
void depthwise_plane_dx(const ConvGeometry& g, const float* dy, const float* w, float* dx) {
  const int64_t sw = g.stride[2];
  for_taps(g, [&](int64_t yr, int64_t xr, int64_t k, int64_t off, int64_t lo, int64_t hi) {
    const float wk = w[k];
    const float* ds = dy + yr;
    float* d = dx + xr;
    if (sw == 1) for (int64_t i = lo; i < hi; i++) d[i + off] += wk * ds[i];
    else for (int64_t i = lo; i < hi; i++) d[i * sw + off] += wk * ds[i];
  });
}

// acc[k] += Σ_positions dy · x at tap k, for one (output plane, input plane) pair.
KW_SIMD_CLONES
void depthwise_plane_dw(const ConvGeometry& g, const float* dy, const float* x, double* acc) {
  const int64_t sw = g.stride[2];
  for_taps(g, [&](int64_t yr, int64_t xr, int64_t k, int64_t off, int64_t lo, int64_t hi) {
    const float* xs = x + xr;
    const float* ds = dy + yr;
    // Eight partial sums: the compiler may not reorder a float reduction itself.
    float p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = lo;
    if (sw == 1) {
      for (; i + 8 <= hi; i += 8)
        for (int q = 0; q < 8; q++) p[q] += ds[i + q] * xs[i + q + off];
      for (; i < hi; i++) p[0] += ds[i] * xs[i + off];
    } else {
      for (; i < hi; i++) p[0] += ds[i] * xs[i * sw + off];
    }
    acc[k] += double((p[0] + p[1]) + (p[2] + p[3])) + double((p[4] + p[5]) + (p[6] + p[7]));
  });
}

// Stride-1 2-D depthwise convs (ConvNeXt's 7×7, MobileNetV2's stride-1 3×3) run on a
// zero-padded copy of each plane, Wp = OW + (KW−1)·dw wide: output row oh, tap (kh, kx) reads
// padded row oh + kh·dh from column kx·dw on, so a tap is one contiguous multiply-add of
// OH·Wp floats at a fixed shift, computing Wp − OW junk columns per row that are dropped.
// Branch-free and vectorised; the per-row loops above ran 8, 4 or 2 floats at a time on
// ConvNeXt's small maps and were dominated by loop overhead.
struct PaddedPlane {
  int64_t Wp, Hp;  // padded width; rows, with one spare row for the shifts that run past the last
  bool ok;
};

PaddedPlane padded_plane(const ConvGeometry& g) {
  PaddedPlane p;
  p.ok = g.in[0] == 1 && g.out[0] == 1 && g.kernel[0] == 1 && g.stride[1] == 1 && g.stride[2] == 1 &&
         g.pad_lo[1] >= 0 && g.pad_lo[2] >= 0 && g.pad_hi[1] >= 0 && g.pad_hi[2] >= 0;
  p.Wp = g.out[2] + (g.kernel[2] - 1) * g.dilation[2];
  p.Hp = g.out[1] + (g.kernel[1] - 1) * g.dilation[1] + 1;
  return p;
}

// The shift of tap k (row-major over kh, kx) in the padded plane.
inline int64_t tap_offset(const ConvGeometry& g, const PaddedPlane& p, int64_t k) {
  return (k / g.kernel[2]) * g.dilation[1] * p.Wp + (k % g.kernel[2]) * g.dilation[2];
}

// xp (Hp × Wp) = the plane x with pad_lo zeros above and to the left, zeros elsewhere.
void pad_plane(const ConvGeometry& g, const PaddedPlane& p, const float* x, float* xp) {
  std::fill(xp, xp + p.Hp * p.Wp, 0.f);
  const int64_t cols = std::min(g.in[2], p.Wp - g.pad_lo[2]);
  for (int64_t h = 0; h < g.in[1] && h + g.pad_lo[1] < p.Hp; h++)
    std::memcpy(xp + (h + g.pad_lo[1]) * p.Wp + g.pad_lo[2], x + h * g.in[2], size_t(cols) * sizeof(float));
}

// dw (OH × Wp) = the output plane dy, zeros in the junk columns.
void widen_plane(const ConvGeometry& g, const PaddedPlane& p, const float* dy, float* dw) {
  const int64_t OW = g.out[2];
  for (int64_t h = 0; h < g.out[1]; h++) {
    std::memcpy(dw + h * p.Wp, dy + h * OW, size_t(OW) * sizeof(float));
    std::fill(dw + h * p.Wp + OW, dw + (h + 1) * p.Wp, 0.f);
  }
}

// The three per-plane loops over taps, each one cloned function so that its inner loop is
// inlined and vectorised (a cloned helper per tap costs an indirect call per tap).
// yw[j] += Σ_k w[k]·xp[j + off[k]], j < n.
KW_SIMD_CLONES
void taps_gather(int64_t n, int64_t K, const int64_t* off, const float* w, const float* xp, float* yw) {
  for (int64_t k = 0; k < K; k++) {
    const float wk = w[k];
    const float* xs = xp + off[k];
    for (int64_t j = 0; j < n; j++) yw[j] += wk * xs[j];
  }
}

// dxp[j + off[k]] += w[k]·dyw[j], j < n.
KW_SIMD_CLONES
void taps_scatter(int64_t n, int64_t K, const int64_t* off, const float* w, const float* dyw, float* dxp) {
  for (int64_t k = 0; k < K; k++) {
    const float wk = w[k];
    float* d = dxp + off[k];
    for (int64_t j = 0; j < n; j++) d[j] += wk * dyw[j];
  }
}

// acc[k] += Σ_j dyw[j]·xp[j + off[k]]: eight float partial sums per tap (the compiler may not
// reorder a float reduction itself), double across planes.
KW_SIMD_CLONES
void taps_dot(int64_t n, int64_t K, const int64_t* off, const float* dyw, const float* xp, double* acc) {
  for (int64_t k = 0; k < K; k++) {
    const float* xs = xp + off[k];
    float p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
      for (int q = 0; q < 8; q++) p[q] += dyw[j + q] * xs[j + q];
    for (; j < n; j++) p[0] += dyw[j] * xs[j];
    acc[k] += double(((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7])));
  }
}

std::vector<int64_t> tap_offsets(const ConvGeometry& g, const PaddedPlane& p) {
  std::vector<int64_t> off(size_t(g.kernel_size()));
  for (int64_t k = 0; k < g.kernel_size(); k++) off[size_t(k)] = tap_offset(g, p, k);
  return off;
}

void depthwise_padded_forward(const ConvGeometry& g, const Sizes& s, const PaddedPlane& p, const float* x,
                              const float* w, const float* bias, float* y) {
  const int64_t O = g.out_channels, OW = g.out[2], n = g.out[1] * p.Wp;
  const std::vector<int64_t> off = tap_offsets(g, p);
  parallel_for(g.batch * O, std::max<int64_t>(1, (1 << 14) / (n * s.K)), [&](int64_t lo, int64_t hi) {
    std::vector<float> xp(size_t(p.Hp * p.Wp)), yw(static_cast<size_t>(n));
    int64_t padded = -1;  // the input plane now in xp (a channel multiplier reuses it)
    for (int64_t i = lo; i < hi; i++) {
      const int64_t b = i / O, o = i % O, in_plane = b * g.in_channels + o / s.Og;
      if (in_plane != padded) pad_plane(g, p, x + in_plane * s.S, xp.data());
      padded = in_plane;
      const float* wo = w + b * s.w_b + o * s.K;
      std::fill(yw.begin(), yw.end(), bias ? bias[o] : 0.f);
      taps_gather(n, s.K, off.data(), wo, xp.data(), yw.data());
      float* yo = y + b * s.y_b + o * s.L;
      for (int64_t h = 0; h < g.out[1]; h++) std::memcpy(yo + h * OW, yw.data() + h * p.Wp, size_t(OW) * sizeof(float));
    }
  });
}

void depthwise_padded_backward(const ConvGeometry& g, const Sizes& s, const PaddedPlane& p, const float* dy,
                               const float* x, const float* w, float* dx, float* dw) {
  const int64_t B = g.batch, C = g.in_channels, O = g.out_channels, n = g.out[1] * p.Wp;
  const std::vector<int64_t> off = tap_offsets(g, p);
  if (dx) {
    // dxp[j + shift_k] += w[k]·dyw[j]: the transpose of the forward's gather. The junk columns
    // of dyw are zero, so what they scatter into the padding adds nothing.
    parallel_for(B * C, std::max<int64_t>(1, (1 << 14) / (n * s.K * s.Og)), [&](int64_t lo, int64_t hi) {
      std::vector<float> dxp(size_t(p.Hp * p.Wp)), dyw(static_cast<size_t>(n));
      for (int64_t i = lo; i < hi; i++) {
        const int64_t b = i / C, c = i % C;
        std::fill(dxp.begin(), dxp.end(), 0.f);
        for (int64_t o = c * s.Og; o < (c + 1) * s.Og; o++) {
          widen_plane(g, p, dy + b * s.y_b + o * s.L, dyw.data());
          taps_scatter(n, s.K, off.data(), w + b * s.w_b + o * s.K, dyw.data(), dxp.data());
        }
        float* dxc = dx + b * s.x_b + c * s.S;
        for (int64_t h = 0; h < g.in[1]; h++) {
          const int64_t ph = h + g.pad_lo[1];
          for (int64_t x0 = 0; x0 < g.in[2]; x0++) {
            const int64_t pw = x0 + g.pad_lo[2];
            // Inputs past the padded plane are read by no output: their gradient is zero.
            dxc[h * g.in[2] + x0] = ph < p.Hp && pw < p.Wp ? dxp[size_t(ph * p.Wp + pw)] : 0.f;
          }
        }
      }
    });
  }
  if (dw) {
    // acc[k] = Σ_b dyw·(xp shifted by tap k); one task per output channel (and sample, when
    // per-sample), so no two tasks write the same weights.
    const int64_t nb = g.per_sample_weight ? B : 1;
    parallel_for(nb * O, std::max<int64_t>(1, (1 << 14) / (n * s.K * (B / nb))), [&](int64_t lo, int64_t hi) {
      std::vector<float> xp(size_t(p.Hp * p.Wp)), dyw(static_cast<size_t>(n));
      std::vector<double> acc(size_t(s.K));
      for (int64_t i = lo; i < hi; i++) {
        const int64_t o = i % O, c = o / s.Og;
        const int64_t b0 = g.per_sample_weight ? i / O : 0, b1 = g.per_sample_weight ? b0 + 1 : B;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t b = b0; b < b1; b++) {
          pad_plane(g, p, x + b * s.x_b + c * s.S, xp.data());
          widen_plane(g, p, dy + b * s.y_b + o * s.L, dyw.data());
          taps_dot(n, s.K, off.data(), dyw.data(), xp.data(), acc.data());
        }
        float* dwo = dw + b0 * s.w_b + o * s.K;
        for (int64_t k = 0; k < s.K; k++) dwo[k] = float(acc[size_t(k)]);
      }
    });
  }
}

int64_t plane_grain(const Sizes& s, int64_t planes_per_item) {
  return std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(1, planes_per_item * s.L * s.K));
}

void depthwise_forward(const ConvGeometry& g, const Sizes& s, const float* x, const float* w,
                       const float* bias, float* y) {
  if (PaddedPlane p = padded_plane(g); p.ok) return depthwise_padded_forward(g, s, p, x, w, bias, y);
  const int64_t O = g.out_channels;
  parallel_for(g.batch * O, plane_grain(s, 1), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) {
      int64_t b = i / O, o = i % O;
      depthwise_plane(g, x + b * s.x_b + (o / s.Og) * s.S, w + b * s.w_b + o * s.K, bias ? bias[o] : 0.f,
                      y + b * s.y_b + o * s.L);
    }
  });
}

void depthwise_backward(const ConvGeometry& g, const Sizes& s, const float* dy, const float* x,
                        const float* w, float* dx, float* dw) {
  if (PaddedPlane p = padded_plane(g); p.ok) return depthwise_padded_backward(g, s, p, dy, x, w, dx, dw);
  const int64_t B = g.batch, C = g.in_channels, O = g.out_channels;
  if (dx) {
    // One task per input plane: all of its outputs' contributions land only there.
    parallel_for(B * C, plane_grain(s, s.Og), [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; i++) {
        int64_t b = i / C, c = i % C;
        float* dxc = dx + b * s.x_b + c * s.S;
        std::fill(dxc, dxc + s.S, 0.f);
        for (int64_t o = c * s.Og; o < (c + 1) * s.Og; o++)
          depthwise_plane_dx(g, dy + b * s.y_b + o * s.L, w + b * s.w_b + o * s.K, dxc);
      }
    });
  }
  if (dw) {
    // One task per output channel (and sample, when per-sample): a shared dW sums the batch
    // inside its task, so no two tasks write the same weights.
    const int64_t nb = g.per_sample_weight ? B : 1;
    parallel_for(nb * O, plane_grain(s, B / nb), [&](int64_t lo, int64_t hi) {
      std::vector<double> acc(size_t(s.K));
      for (int64_t i = lo; i < hi; i++) {
        int64_t o = i % O, c = o / s.Og;
        int64_t b0 = g.per_sample_weight ? i / O : 0, b1 = g.per_sample_weight ? b0 + 1 : B;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t b = b0; b < b1; b++)
          depthwise_plane_dw(g, dy + b * s.y_b + o * s.L, x + b * s.x_b + c * s.S, acc.data());
        float* dwo = dw + b0 * s.w_b + o * s.K;
        for (int64_t k = 0; k < s.K; k++) dwo[k] = float(acc[size_t(k)]);
      }
    });
  }
}

// ---- taps that only ever read padding ----

// At small spatial sizes most kernel taps may read padding for every output position (a 3×3,
// padding-1 conv on a 1×1 map uses only its centre: ResNet's last stage at 32×32 inputs).
// Their products are zeros, so the conv runs on a cropped kernel instead: per dim, the hull
// [lo, hi) of the live taps, with the padding shifted by lo taps; out[] stays as it is.
struct Cropped {
  bool active = false;  // some dim loses taps
  ConvGeometry g;       // the cropped geometry
  int64_t lo[3] = {0, 0, 0};
};

Cropped crop_dead_taps(const ConvGeometry& g) {
  Cropped c;
  c.g = g;
  for (int d = 0; d < 3; d++) {
    int64_t first = g.kernel[d], last = -1;
    for (int64_t k = 0; k < g.kernel[d]; k++) {
      int64_t a, b;
      valid_range(g.out[d], g.in[d], g.stride[d], k * g.dilation[d] - g.pad_lo[d], a, b);
      if (a < b) {
        first = std::min(first, k);
        last = k;
      }
    }
    if (last < 0) return Cropped{};  // nothing live at all: the general path writes the zeros
    if (first == 0 && last == g.kernel[d] - 1) continue;
    c.active = true;
    c.lo[d] = first;
    c.g.kernel[d] = last - first + 1;
    c.g.pad_lo[d] = g.pad_lo[d] - first * g.dilation[d];
    c.g.pad_hi[d] = g.pad_hi[d] - (g.kernel[d] - 1 - last) * g.dilation[d];
  }
  return c;
}

// Calls fn(kernel index, full tap, cropped tap) for every live tap of every [k0, k1, k2] kernel.
template <typename F>
void for_live_taps(const ConvGeometry& full, const Cropped& c, F&& fn) {
  const int64_t kernels = (full.per_sample_weight ? full.batch : 1) * full.out_channels * full.in_per_group();
  const int64_t* kf = full.kernel;
  const int64_t* kc = c.g.kernel;
  parallel_for(kernels, std::max<int64_t>(1, (1 << 14) / full.kernel_size()), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++)
      for (int64_t a = 0; a < kc[0]; a++)
        for (int64_t b = 0; b < kc[1]; b++)
          for (int64_t e = 0; e < kc[2]; e++)
            fn(i, ((a + c.lo[0]) * kf[1] + b + c.lo[1]) * kf[2] + e + c.lo[2], (a * kc[1] + b) * kc[2] + e);
  });
}

// wc (cropped kernels) = the live taps of w (full kernels).
void crop_weight(const ConvGeometry& full, const Cropped& c, const float* w, float* wc) {
  const int64_t K = full.kernel_size(), Kc = c.g.kernel_size();
  for_live_taps(full, c, [&](int64_t i, int64_t f, int64_t k) { wc[i * Kc + k] = w[i * K + f]; });
}

// dw (full kernels) = dwc (cropped kernels) in the live taps, zero in the dead ones.
void expand_weight_grad(const ConvGeometry& full, const Cropped& c, const float* dwc, float* dw) {
  const int64_t K = full.kernel_size(), Kc = c.g.kernel_size();
  const int64_t n = (full.per_sample_weight ? full.batch : 1) * full.weight_numel_per_sample();
  std::memset(dw, 0, size_t(n) * sizeof(float));
  for_live_taps(full, c, [&](int64_t i, int64_t f, int64_t k) { dw[i * K + f] = dwc[i * Kc + k]; });
}

// ---- tiny maps: one GEMM per (output position, live tap) pair, the batch as columns ----

// On 2×2 maps a 3×3, padding-1 conv reads padding in 5 of the 9 taps of every output position
// (different ones per position, so cropping cannot drop them; 31% of the products on 4×4 maps),
// and im2col's GEMM multiplies those zeros too. Per pair instead: Y[p] (O × B) += W[t] (O × C) · X[q] (C × B), where input position
// q is what tap t of output position p reads; the batch is the GEMM's N. Weights are repacked
// tap-major and activations position-major around the GEMMs. Shared weights, one group only.
struct Pair {
  int64_t p, t, q;
};

std::vector<Pair> live_pairs(const ConvGeometry& g) {
  std::vector<Pair> pairs;
  for (int64_t p = 0; p < g.out_spatial(); p++) {
    const int64_t od = p / (g.out[1] * g.out[2]), oh = p / g.out[2] % g.out[1], ow = p % g.out[2];
    for (int64_t t = 0; t < g.kernel_size(); t++) {
      const int64_t kd = t / (g.kernel[1] * g.kernel[2]), kh = t / g.kernel[2] % g.kernel[1], kx = t % g.kernel[2];
      const int64_t id = in_index(g, 0, od, kd), ih = in_index(g, 1, oh, kh), iw = in_index(g, 2, ow, kx);
      if (id >= 0 && ih >= 0 && iw >= 0) pairs.push_back({p, t, (id * g.in[1] + ih) * g.in[2] + iw});
    }
  }
  return pairs;
}

// Worth it when at most 75% of im2col's products are live, the maps are tiny (wider maps give
// the dense GEMM enough columns to win) and the batch makes a useful N.
bool use_pairs(const ConvGeometry& g, const Sizes& s, int64_t live) {
  return !g.per_sample_weight && g.groups == 1 && s.L <= 16 && g.batch >= 8 && 4 * live <= 3 * s.L * s.K;
}

// dst [cols, mid, rows] = src [rows, mid, cols] with the outer dims swapped: the layout changes
// around the pair GEMMs ([B, C, S] ↔ [S, C, B], [O, C, K] → [K, C, O]).
void transpose_outer(int64_t rows, int64_t mid, int64_t cols, const float* src, float* dst) {
  parallel_for(mid, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, rows * cols)), [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; m++)
      for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) dst[(c * mid + m) * rows + r] = src[(r * mid + m) * cols + c];
  });
}

// Calls fn(r0, rows) on one slice of [0, M) per thread: each thread runs all pairs' GEMMs on
// its rows of the output, so GEMMs too small to split themselves still use every thread, and
// no thread waits for another between GEMMs.
template <typename F>
void over_rows(int64_t M, F&& fn) {
  const int64_t threads = in_parallel_region() ? 1 : num_threads();
  const int64_t step = std::max<int64_t>(1, ((M + threads - 1) / threads + 15) / 16 * 16);
  parallel_for((M + step - 1) / step, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) fn(i * step, std::min(step, M - i * step));
  });
}

void pairs_forward(const ConvGeometry& g, const Sizes& s, const std::vector<Pair>& pairs, const float* x,
                   const float* w, const float* bias, float* y) {
  const int64_t B = g.batch, C = g.in_channels, O = g.out_channels, K = s.K, S = s.S, L = s.L;
  StoragePtr wt = scratch(K * O * C), xq = scratch(S * C * B), yp = scratch(L * O * B);
  transpose_outer(O, C, K, w, ptr(wt));  // [O, C, K] → [K, C, O]
  transpose_outer(B, C, S, x, ptr(xq));  // [B, C, S] → [S, C, B]
  std::memset(ptr(yp), 0, size_t(L * O * B) * sizeof(float));
  // W[t] is [C, O] here: Y[p] (O × B) += W[t]ᵀ · X[q].
  over_rows(O, [&](int64_t r0, int64_t m) {
    for (const Pair& pr : pairs)
      gemm_kernels.gemm(true, false, m, B, C, 1.f, ptr(wt) + pr.t * C * O + r0, O, ptr(xq) + pr.q * C * B, B, 1.f,
                        ptr(yp) + (pr.p * O + r0) * B, B);
  });
  transpose_outer(L, O, B, ptr(yp), y);  // [L, O, B] → [B, O, L]
  if (bias)
    parallel_for(B * O, 1 << 12, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++)
        for (int64_t l = 0; l < L; l++) y[i * L + l] += bias[i % O];
    });
}

void pairs_backward(const ConvGeometry& g, const Sizes& s, const std::vector<Pair>& pairs, const float* dy,
                    const float* x, const float* w, float* dx, float* dw) {
  const int64_t B = g.batch, C = g.in_channels, O = g.out_channels, K = s.K, S = s.S, L = s.L;
  StoragePtr dyp = scratch(L * O * B);
  transpose_outer(B, O, L, dy, ptr(dyp));  // [B, O, L] → [L, O, B]
  if (dx) {
    StoragePtr wt = scratch(K * O * C), dxq = scratch(S * C * B);
    transpose_outer(O, C, K, w, ptr(wt));  // [K, C, O]
    std::memset(ptr(dxq), 0, size_t(S * C * B) * sizeof(float));
    over_rows(C, [&](int64_t r0, int64_t m) {
      for (const Pair& pr : pairs)  // dX[q] (C × B) += W[t] (C × O) · dY[p]
        gemm_kernels.gemm(false, false, m, B, O, 1.f, ptr(wt) + (pr.t * C + r0) * O, O, ptr(dyp) + pr.p * O * B, B,
                          1.f, ptr(dxq) + (pr.q * C + r0) * B, B);
    });
    transpose_outer(S, C, B, ptr(dxq), dx);  // [S, C, B] → [B, C, S]
  }
  if (dw) {
    StoragePtr xq = scratch(S * C * B), dwt = scratch(K * C * O);
    transpose_outer(B, C, S, x, ptr(xq));
    std::memset(ptr(dwt), 0, size_t(K * C * O) * sizeof(float));
    over_rows(C, [&](int64_t r0, int64_t m) {
      for (const Pair& pr : pairs)  // dW[t] (C × O) += X[q] (C × B) · dY[p]ᵀ
        gemm_kernels.gemm(false, true, m, O, B, 1.f, ptr(xq) + (pr.q * C + r0) * B, B, ptr(dyp) + pr.p * O * B, B,
                          1.f, ptr(dwt) + (pr.t * C + r0) * O, O);
    });
    transpose_outer(K, C, O, ptr(dwt), dw);  // [K, C, O] → [O, C, K]
  }
}

// ---- forward ----

// Work items are blocks of (samples, output rows): one sample and a tile of rows, or, for
// narrow layers, several whole samples. Items, not samples, go to threads, so threads stay
// busy with fewer samples than threads; each thread chunk allocates its buffers once.
void conv_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  Sizes s = sizes_of(g);
  const int64_t B = g.batch;
  if (B == 0 || s.L == 0) return;
  if (Cropped c = crop_dead_taps(g); c.active) {
    StoragePtr wc = scratch((g.per_sample_weight ? B : 1) * c.g.weight_numel_per_sample());
    crop_weight(g, c, w, ptr(wc));
    return conv_forward(c.g, x, ptr(wc), bias, y);
  }
  // A 1×1 depthwise conv (also what cropping leaves on 1×1 maps) would be one GEMM of
  // a single row and column per channel: the depthwise loops do it better.
  if (s.Cg == 1 && (!s.direct || g.groups > 1)) return depthwise_forward(g, s, x, w, bias, y);
  if (s.L <= 16 && !g.per_sample_weight && g.groups == 1) {
    std::vector<Pair> pairs = live_pairs(g);
    if (use_pairs(g, s, int64_t(pairs.size()))) return pairs_forward(g, s, pairs, x, w, bias, y);
  }
  const int64_t rows = g.out[0] * g.out[1], OW = g.out[2];
  const int64_t nb = samples_per_gemm(g, s), blocks = (B + nb - 1) / nb;
  int64_t rpt = nb > 1 ? rows : rows_per_tile(g, s, false);
  int64_t tiles = (rows + rpt - 1) / rpt;
  if (single_chunk(blocks * tiles)) {  // too few items: whole blocks, threaded GEMMs
    rpt = rows;
    tiles = 1;
  }
  const bool direct = s.direct && nb == 1;  // else even a 1×1 conv gathers its columns
  over_items(blocks * tiles, [&](int64_t, int64_t i0, int64_t i1) {
    StoragePtr col = direct ? nullptr : scratch(s.CgK * nb * rpt * OW);
    StoragePtr ybuf = nb > 1 ? scratch(s.Og * nb * s.L) : nullptr;
    for (int64_t i = i0; i < i1; i++) {
      const int64_t b0 = (i / tiles) * nb, b1 = std::min(B, b0 + nb);
      const int64_t r0 = (i % tiles) * rpt, r1 = std::min(rows, r0 + rpt);
      const int64_t m = (r1 - r0) * OW, n = (b1 - b0) * m;  // columns per sample, in all
      for (int64_t gr = 0; gr < g.groups; gr++) {
        const float* cm = x + b0 * s.x_b + gr * s.Cg * s.S + r0 * OW;
        int64_t ld = s.L;
        if (!direct) {
          for (int64_t b = b0; b < b1; b++)
            im2col_par(g, x + b * s.x_b + gr * s.Cg * s.S, s.Cg, r0, r1, ptr(col) + (b - b0) * m, n);
          cm = ptr(col);
          ld = n;
        }
        const float* wg = w + b0 * s.w_b + gr * s.Og * s.CgK;
        if (nb == 1) {
          float* yg = y + b0 * s.y_b + gr * s.Og * s.L + r0 * OW;
          if (bias)
            for (int64_t o = 0; o < s.Og; o++) std::fill(yg + o * s.L, yg + o * s.L + n, bias[gr * s.Og + o]);
          gemm_kernels.gemm(false, false, s.Og, n, s.CgK, 1.f, wg, s.CgK, cm, ld, bias ? 1.f : 0.f, yg, s.L);
        } else {
          gemm_kernels.gemm(false, false, s.Og, n, s.CgK, 1.f, wg, s.CgK, cm, ld, 0.f, ptr(ybuf), n);
          for (int64_t b = b0; b < b1; b++)
            for (int64_t o = 0; o < s.Og; o++) {
              const float* src = ptr(ybuf) + o * n + (b - b0) * m;
              float* dst = y + b * s.y_b + (gr * s.Og + o) * s.L;
              const float bo = bias ? bias[gr * s.Og + o] : 0.f;
              for (int64_t l = 0; l < m; l++) dst[l] = src[l] + bo;
            }
        }
      }
    }
  });
}

// ---- backward ----

void bias_backward(const ConvGeometry& g, const Sizes& s, const float* dy, float* db) {
  parallel_for(g.out_channels, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, g.batch * s.L)), [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; o++) {
      double acc = 0;
      for (int64_t b = 0; b < g.batch; b++) {
        const float* p = dy + b * s.y_b + o * s.L;
        float part = 0;
        for (int64_t i = 0; i < s.L; i++) part += p[i];
        acc += part;
      }
      db[o] = float(acc);
    }
  });
}

// Threads over samples: col2im of one sample's tiles overlap, and a per-sample dW sums over
// its tiles, so a sample stays on one thread. Within a thread, blocks as in the forward.
void conv_backward(const ConvGeometry& g, const float* dy, const float* x, const float* w, float* dx,
                   float* dw, float* db) {
  Sizes s = sizes_of(g);
  const int64_t B = g.batch;
  if (db) bias_backward(g, s, dy, db);
  if (!dx && !dw) return;
  const int64_t wn = g.weight_numel_per_sample();
  if (B == 0 || s.L == 0) {
    if (dx) std::memset(dx, 0, size_t(B * s.x_b) * sizeof(float));
    if (dw) std::memset(dw, 0, size_t((g.per_sample_weight ? B : 1) * wn) * sizeof(float));
    return;
  }
  if (Cropped c = crop_dead_taps(g); c.active) {
    const int64_t n = (g.per_sample_weight ? B : 1) * c.g.weight_numel_per_sample();
    StoragePtr wc = dx ? scratch(n) : nullptr, dwc = dw ? scratch(n) : nullptr;
    if (dx) crop_weight(g, c, w, ptr(wc));
    conv_backward(c.g, dy, x, ptr(wc), dx, ptr(dwc), nullptr);
    if (dw) expand_weight_grad(g, c, ptr(dwc), dw);
    return;
  }
  if (s.Cg == 1 && (!s.direct || g.groups > 1)) return depthwise_backward(g, s, dy, x, w, dx, dw);
  if (s.L <= 16 && !g.per_sample_weight && g.groups == 1) {
    std::vector<Pair> pairs = live_pairs(g);
    if (use_pairs(g, s, int64_t(pairs.size()))) return pairs_backward(g, s, pairs, dy, x, w, dx, dw);
  }
  const bool shared_dw = dw && !g.per_sample_weight;
  const int64_t rows = g.out[0] * g.out[1], OW = g.out[2];
  const int64_t nb = samples_per_gemm(g, s);
  const int64_t rpt = nb > 1 ? rows : rows_per_tile(g, s, single_chunk(B));
  const bool direct = s.direct && nb == 1;
  std::vector<StoragePtr> partial(size_t(std::max(1, num_threads())));  // shared dW of chunks ≥ 1
  int64_t chunks = over_items(B, [&](int64_t chunk, int64_t c0, int64_t c1) {
    const int64_t cols = nb * rpt * OW;
    StoragePtr col = dw && !direct ? scratch(s.CgK * cols) : nullptr;
    StoragePtr dcol = dx && !direct ? scratch(s.CgK * cols) : nullptr;
    StoragePtr dybuf = nb > 1 ? scratch(s.Og * cols) : nullptr;
    float* dw_acc = nullptr;
    if (shared_dw) {
      if (chunk > 0) partial[size_t(chunk)] = scratch(wn);
      dw_acc = chunk == 0 ? dw : ptr(partial[size_t(chunk)]);
    }
    for (int64_t b0 = c0; b0 < c1; b0 += nb) {
      const int64_t b1 = std::min(c1, b0 + nb);
      if (dx && !direct) std::memset(dx + b0 * s.x_b, 0, size_t((b1 - b0) * s.x_b) * sizeof(float));
      for (int64_t r0 = 0; r0 < rows; r0 += rpt) {
        const int64_t r1 = std::min(rows, r0 + rpt), m = (r1 - r0) * OW, n = (b1 - b0) * m;
        for (int64_t gr = 0; gr < g.groups; gr++) {
          const float* dyg = dy + b0 * s.y_b + gr * s.Og * s.L + r0 * OW;
          int64_t lddy = s.L;
          if (nb > 1) {  // several samples' dY side by side
            for (int64_t b = b0; b < b1; b++)
              for (int64_t o = 0; o < s.Og; o++)
                std::memcpy(ptr(dybuf) + o * n + (b - b0) * m, dy + b * s.y_b + (gr * s.Og + o) * s.L,
                            size_t(m) * sizeof(float));
            dyg = ptr(dybuf);
            lddy = n;
          }
          if (dw) {
            const float* cm = x + b0 * s.x_b + gr * s.Cg * s.S + r0 * OW;
            int64_t ld = s.L;
            if (!direct) {
              for (int64_t b = b0; b < b1; b++)
                im2col_par(g, x + b * s.x_b + gr * s.Cg * s.S, s.Cg, r0, r1, ptr(col) + (b - b0) * m, n);
              cm = ptr(col);
              ld = n;
            }
            // dW[g] (+)= dY[g] · colᵀ, from zero at the first tile (shared: of the chunk's first block).
            float* dwg = (shared_dw ? dw_acc : dw + b0 * s.w_b) + gr * s.Og * s.CgK;
            float beta = r0 > 0 || (shared_dw && b0 > c0) ? 1.f : 0.f;
            gemm_kernels.gemm(false, true, s.Og, s.CgK, n, 1.f, dyg, lddy, cm, ld, beta, dwg, s.CgK);
          }
          if (dx) {
            // dcol = W[g]ᵀ · dY[g]; for the 1×1 fast path that already is dX[g].
            const float* wg = w + b0 * s.w_b + gr * s.Og * s.CgK;
            if (direct) {
              float* dxg = dx + b0 * s.x_b + gr * s.Cg * s.S + r0 * OW;
              gemm_kernels.gemm(true, false, s.CgK, n, s.Og, 1.f, wg, s.CgK, dyg, lddy, 0.f, dxg, s.L);
            } else {
              gemm_kernels.gemm(true, false, s.CgK, n, s.Og, 1.f, wg, s.CgK, dyg, lddy, 0.f, ptr(dcol), n);
              for (int64_t b = b0; b < b1; b++)
                col2im_par(g, ptr(dcol) + (b - b0) * m, n, s.Cg, r0, r1, dx + b * s.x_b + gr * s.Cg * s.S);
            }
          }
        }
      }
    }
  });
  if (shared_dw && chunks > 1) {
    parallel_for(wn, 1 << 14, [&](int64_t lo, int64_t hi) {
      for (int64_t c = 1; c < chunks; c++) {
        const float* p = ptr(partial[size_t(c)]);
        for (int64_t i = lo; i < hi; i++) dw[i] += p[i];
      }
    });
  }
}

}  // namespace

const ConvKernels conv_kernels = {conv_forward, conv_backward};

}  // namespace kw::cpu
