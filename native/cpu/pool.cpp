// CPU 2-D pooling kernels on [planes, H, W], forward and backward side by side. Every task owns
// whole planes, so the backward scatters (overlapping windows) never race.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/thread_pool.h"
#include "cpu/tables.h"

namespace kw::cpu {
namespace {

int64_t plane_grain(int64_t work_per_plane) { return std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(1, work_per_plane)); }

// Row by row, taps outer and output columns inner: a window's running max is a dependency
// chain (compare, select, compare ...), so looping over one window at a time ran at the chain's
// latency; with the columns inside, their chains overlap. Taps are still visited in the same
// order per output (row-major over the window), so ties and NaNs resolve as before.
// The running max/argmax of a row live in local arrays (kCols columns at a time) rather than in
// y/idx: y may alias x as far as the compiler knows, so every tap reloaded and re-stored them
// (the ResNet stem's pool took 4 ms of a 32-px step). The column range of each tap column b is
// the same for every row and plane, so it is computed once: its two 64-bit divisions per tap
// per row cost more than the compares themselves on small maps.
constexpr int64_t kCols = 64;

#define KW_SIMD_CLONES __attribute__((target_clones("avx2", "default")))

// One plane (see the comment above); an AVX2 clone picked at load time by CPU feature.
KW_SIMD_CLONES
void max_pool_plane(const float* xp, const Pool2dGeometry& g, const int64_t* tap_lo, const int64_t* tap_hi, float* yp,
                    int32_t* ip) {
  float best[kCols];
  int32_t bi[kCols];
  for (int64_t i = 0; i < g.oh; i++) {
    int64_t h0 = i * g.sh - g.ph;
    const int64_t h1 = std::min(h0 + (g.kh - 1) * g.dh + 1, g.h);
    while (h0 < 0) h0 += g.dh;
    for (int64_t c0 = 0; c0 < g.ow; c0 += kCols) {
      const int64_t c1 = std::min(g.ow, c0 + kCols);
      for (int64_t j = c0; j < c1; j++) {
        // As PyTorch: the first in-bounds element is the argmax until something beats -inf,
        // and a NaN always takes over.
        int64_t w0 = j * g.sw - g.pw;
        const int64_t w1 = std::min(w0 + (g.kw - 1) * g.dw + 1, g.w);
        while (w0 < 0) w0 += g.dw;
        best[j - c0] = -std::numeric_limits<float>::infinity();
        bi[j - c0] = (h0 < h1 && w0 < w1) ? int32_t(h0 * g.w + w0) : -1;
      }
      for (int64_t a = 0; a < g.kh; a++) {
        const int64_t h = i * g.sh - g.ph + a * g.dh;
        if (h < 0 || h >= g.h) continue;
        const float* xr = xp + h * g.w;
        for (int64_t b = 0; b < g.kw; b++) {
          const int64_t off = b * g.dw - g.pw;
          const int64_t jlo = std::max(c0, tap_lo[b]);
          const int64_t jhi = std::min(c1, tap_hi[b]);
          for (int64_t j = jlo; j < jhi; j++) {
            const int64_t w = j * g.sw + off;
            const float v = xr[w];
            const bool take = (v > best[j - c0]) | (v != v);  // v != v: NaN
            best[j - c0] = take ? v : best[j - c0];
            bi[j - c0] = take ? int32_t(h * g.w + w) : bi[j - c0];
          }
        }
      }
      std::memcpy(yp + i * g.ow + c0, best, size_t(c1 - c0) * sizeof(float));
      std::memcpy(ip + i * g.ow + c0, bi, size_t(c1 - c0) * sizeof(int32_t));
    }
  }
}

void max_pool2d(const float* x, const Pool2dGeometry& g, float* y, int32_t* idx) {
  const int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
  // Columns j whose tap b lands inside the row: 0 <= j·sw + off < w.
  std::vector<int64_t> tap_lo(size_t(g.kw)), tap_hi(size_t(g.kw));
  for (int64_t b = 0; b < g.kw; b++) {
    const int64_t off = b * g.dw - g.pw;
    tap_lo[size_t(b)] = off >= 0 ? 0 : (-off + g.sw - 1) / g.sw;
    tap_hi[size_t(b)] = g.w - off <= 0 ? 0 : std::min(g.ow, (g.w - off + g.sw - 1) / g.sw);
  }
  parallel_for(g.planes, plane_grain(out_plane * g.kh * g.kw), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++)
      max_pool_plane(x + p * in_plane, g, tap_lo.data(), tap_hi.data(), y + p * out_plane, idx + p * out_plane);
  });
}

void max_pool2d_backward(const float* dy, const int32_t* idx, const Pool2dGeometry& g, float* dx) {
  const int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
  parallel_for(g.planes, plane_grain(in_plane + out_plane), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      float* dp = dx + p * in_plane;
      std::memset(dp, 0, size_t(in_plane) * sizeof(float));
      for (int64_t o = 0; o < out_plane; o++) {
        const int32_t k = idx[p * out_plane + o];
        if (k >= 0) dp[k] += dy[p * out_plane + o];
      }
    }
  });
}

// The window of output (i, j), clipped to the input, and the divisor PyTorch uses for it.
struct AvgWindow {
  int64_t h0, h1, w0, w1, divisor;
};

inline AvgWindow avg_window(const Pool2dGeometry& g, int64_t i, int64_t j, bool count_include_pad) {
  int64_t h0 = i * g.sh - g.ph, w0 = j * g.sw - g.pw;
  int64_t h1 = std::min(h0 + g.kh, g.h + g.ph), w1 = std::min(w0 + g.kw, g.w + g.pw);
  const int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0);
  w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, g.h);
  w1 = std::min(w1, g.w);
  return {h0, h1, w0, w1, count_include_pad ? padded : (h1 - h0) * (w1 - w0)};
}

void avg_pool2d(const float* x, const Pool2dGeometry& g, bool count_include_pad, float* y) {
  const int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
  parallel_for(g.planes, plane_grain(out_plane * g.kh * g.kw), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const float* xp = x + p * in_plane;
      for (int64_t i = 0; i < g.oh; i++)
        for (int64_t j = 0; j < g.ow; j++) {
          AvgWindow a = avg_window(g, i, j, count_include_pad);
          float& out = y[p * out_plane + i * g.ow + j];
          if (a.h0 >= a.h1 || a.w0 >= a.w1) {
            out = 0;
            continue;
          }
          double acc = 0;
          for (int64_t h = a.h0; h < a.h1; h++)
            for (int64_t w = a.w0; w < a.w1; w++) acc += xp[h * g.w + w];
          out = float(acc / double(a.divisor));
        }
    }
  });
}

void avg_pool2d_backward(const float* dy, const Pool2dGeometry& g, bool count_include_pad, float* dx) {
  const int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
  parallel_for(g.planes, plane_grain(in_plane + out_plane * g.kh * g.kw), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      float* dp = dx + p * in_plane;
      std::memset(dp, 0, size_t(in_plane) * sizeof(float));
      for (int64_t i = 0; i < g.oh; i++)
        for (int64_t j = 0; j < g.ow; j++) {
          AvgWindow a = avg_window(g, i, j, count_include_pad);
          if (a.h0 >= a.h1 || a.w0 >= a.w1) continue;
          const float v = dy[p * out_plane + i * g.ow + j] / float(a.divisor);
          for (int64_t h = a.h0; h < a.h1; h++)
            for (int64_t w = a.w0; w < a.w1; w++) dp[h * g.w + w] += v;
        }
    }
  });
}

inline int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
inline int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

void adaptive_avg_pool2d(const float* x, const Pool2dGeometry& g, float* y) {
  const int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
  parallel_for(g.planes, plane_grain(in_plane + out_plane), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const float* xp = x + p * in_plane;
      if (out_plane == 1) {  // global average pooling: one contiguous sum
        double acc = 0;
        for (int64_t k = 0; k < in_plane; k++) acc += xp[k];
        y[p] = float(acc / double(in_plane));
        continue;
      }
      for (int64_t i = 0; i < g.oh; i++) {
        const int64_t h0 = adaptive_start(i, g.h, g.oh), h1 = adaptive_end(i, g.h, g.oh);
        for (int64_t j = 0; j < g.ow; j++) {
          const int64_t w0 = adaptive_start(j, g.w, g.ow), w1 = adaptive_end(j, g.w, g.ow);
          double acc = 0;
          for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++) acc += xp[h * g.w + w];
          y[p * out_plane + i * g.ow + j] = float(acc / double((h1 - h0) * (w1 - w0)));
        }
      }
    }
  });
}

void adaptive_avg_pool2d_backward(const float* dy, const Pool2dGeometry& g, float* dx) {
  const int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
  parallel_for(g.planes, plane_grain(in_plane + out_plane), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      float* dp = dx + p * in_plane;
      if (out_plane == 1) {
        const float v = dy[p] / float(in_plane);
        for (int64_t k = 0; k < in_plane; k++) dp[k] = v;
        continue;
      }
      std::memset(dp, 0, size_t(in_plane) * sizeof(float));
      for (int64_t i = 0; i < g.oh; i++) {
        const int64_t h0 = adaptive_start(i, g.h, g.oh), h1 = adaptive_end(i, g.h, g.oh);
        for (int64_t j = 0; j < g.ow; j++) {
          const int64_t w0 = adaptive_start(j, g.w, g.ow), w1 = adaptive_end(j, g.w, g.ow);
          const float v = dy[p * out_plane + i * g.ow + j] / float((h1 - h0) * (w1 - w0));
          for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++) dp[h * g.w + w] += v;
        }
      }
    }
  });
}

}  // namespace

const PoolKernels pool_kernels = {max_pool2d, max_pool2d_backward, avg_pool2d, avg_pool2d_backward,
                                  adaptive_avg_pool2d, adaptive_avg_pool2d_backward};

}  // namespace kw::cpu
