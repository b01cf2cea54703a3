// CUDA 2-D pooling on [planes, H, W], forward and backward. Specification: native/cpu/pool.cpp.
// Forward: one thread per output. Backward: one thread per input element gathering from the
// outputs whose windows cover it, so overlapping windows need no atomics.
#include "cuda/common.cuh"
#include "cuda/tables.h"

namespace kw::cuda {
namespace {

__global__ void max_pool_kernel(const float* x, Pool2dGeometry g, float* y, int32_t* idx) {
  int64_t out_plane = g.oh * g.ow;
  KW_FOR(t, g.planes * out_plane) {
    int64_t p = t / out_plane, i = (t % out_plane) / g.ow, j = t % g.ow;
    const float* xp = x + p * g.h * g.w;
    int64_t h0 = i * g.sh - g.ph, w0 = j * g.sw - g.pw;
    int64_t h1 = min(h0 + (g.kh - 1) * g.dh + 1, g.h), w1 = min(w0 + (g.kw - 1) * g.dw + 1, g.w);
    while (h0 < 0) h0 += g.dh;
    while (w0 < 0) w0 += g.dw;
    float best = -INFINITY;
    int64_t bi = (h0 < h1 && w0 < w1) ? h0 * g.w + w0 : -1;
    for (int64_t h = h0; h < h1; h += g.dh)
      for (int64_t w = w0; w < w1; w += g.dw) {
        float v = xp[h * g.w + w];
        if (v > best || isnan(v)) {
          best = v;
          bi = h * g.w + w;
        }
      }
    y[t] = best;
    idx[t] = int32_t(bi);
  }
}

// Calls f(output index in plane) for each output whose (dilated) window tap lands on (h, w).
template <typename F>
__device__ void for_each_covering(const Pool2dGeometry& g, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t dh,
                                  int64_t dw, F f) {
  for (int64_t a = 0; a < kh; a++) {
    int64_t num_h = h + g.ph - a * dh;
    if (num_h < 0 || num_h % g.sh) continue;
    int64_t i = num_h / g.sh;
    if (i >= g.oh) continue;
    for (int64_t b = 0; b < kw; b++) {
      int64_t num_w = w + g.pw - b * dw;
      if (num_w < 0 || num_w % g.sw) continue;
      int64_t j = num_w / g.sw;
      if (j >= g.ow) continue;
      f(i, j);
    }
  }
}

__global__ void max_pool_backward_kernel(const float* dy, const int32_t* idx, Pool2dGeometry g, float* dx) {
  int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
  KW_FOR(t, g.planes * in_plane) {
    int64_t p = t / in_plane, k = t % in_plane, h = k / g.w, w = k % g.w;
    float acc = 0.f;
    for_each_covering(g, h, w, g.kh, g.kw, g.dh, g.dw, [&](int64_t i, int64_t j) {
      int64_t o = p * out_plane + i * g.ow + j;
      if (idx[o] == k) acc += dy[o];
    });
    dx[t] = acc;
  }
}

struct AvgWindow {
  int64_t h0, h1, w0, w1, divisor;
};

__device__ AvgWindow avg_window(const Pool2dGeometry& g, int64_t i, int64_t j, bool count_include_pad) {
  int64_t h0 = i * g.sh - g.ph, w0 = j * g.sw - g.pw;
  int64_t h1 = min(h0 + g.kh, g.h + g.ph), w1 = min(w0 + g.kw, g.w + g.pw);
  int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = h0 < 0 ? 0 : h0;
  w0 = w0 < 0 ? 0 : w0;
  h1 = min(h1, g.h);
  w1 = min(w1, g.w);
  return {h0, h1, w0, w1, count_include_pad ? padded : (h1 - h0) * (w1 - w0)};
}

__global__ void avg_pool_kernel(const float* x, Pool2dGeometry g, bool cip, float* y) {
  int64_t out_plane = g.oh * g.ow;
  KW_FOR(t, g.planes * out_plane) {
    int64_t p = t / out_plane, i = (t % out_plane) / g.ow, j = t % g.ow;
    AvgWindow a = avg_window(g, i, j, cip);
    if (a.h0 >= a.h1 || a.w0 >= a.w1) {
      y[t] = 0.f;
      continue;
    }
    const float* xp = x + p * g.h * g.w;
    double acc = 0;
    for (int64_t h = a.h0; h < a.h1; h++)
      for (int64_t w = a.w0; w < a.w1; w++) acc += xp[h * g.w + w];
    y[t] = float(acc / double(a.divisor));
  }
}

__global__ void avg_pool_backward_kernel(const float* dy, Pool2dGeometry g, bool cip, float* dx) {
  int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
  KW_FOR(t, g.planes * in_plane) {
    int64_t p = t / in_plane, k = t % in_plane, h = k / g.w, w = k % g.w;
    float acc = 0.f;
    for_each_covering(g, h, w, g.kh, g.kw, 1, 1, [&](int64_t i, int64_t j) {
      AvgWindow a = avg_window(g, i, j, cip);
      if (a.h0 < a.h1 && a.w0 < a.w1) acc += dy[p * out_plane + i * g.ow + j] / float(a.divisor);
    });
    dx[t] = acc;
  }
}

__device__ __forceinline__ int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
__device__ __forceinline__ int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

__global__ void adaptive_kernel(const float* x, Pool2dGeometry g, float* y) {
  int64_t out_plane = g.oh * g.ow;
  KW_FOR(t, g.planes * out_plane) {
    int64_t p = t / out_plane, i = (t % out_plane) / g.ow, j = t % g.ow;
    int64_t h0 = adaptive_start(i, g.h, g.oh), h1 = adaptive_end(i, g.h, g.oh);
    int64_t w0 = adaptive_start(j, g.w, g.ow), w1 = adaptive_end(j, g.w, g.ow);
    const float* xp = x + p * g.h * g.w;
    double acc = 0;
    for (int64_t h = h0; h < h1; h++)
      for (int64_t w = w0; w < w1; w++) acc += xp[h * g.w + w];
    y[t] = float(acc / double((h1 - h0) * (w1 - w0)));
  }
}

// The outputs along one axis whose adaptive window holds input position h.
__device__ __forceinline__ void adaptive_range(int64_t h, int64_t in, int64_t out, int64_t& i0, int64_t& i1) {
  int64_t lo = (h * out) / in - 1, hi = ((h + 1) * out - 1) / in + 2;
  i0 = lo < 0 ? 0 : lo;
  i1 = hi > out ? out : hi;
}

__global__ void adaptive_backward_kernel(const float* dy, Pool2dGeometry g, float* dx) {
  int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
  KW_FOR(t, g.planes * in_plane) {
    int64_t p = t / in_plane, k = t % in_plane, h = k / g.w, w = k % g.w;
    int64_t i0, i1, j0, j1;
    adaptive_range(h, g.h, g.oh, i0, i1);
    adaptive_range(w, g.w, g.ow, j0, j1);
    float acc = 0.f;
    for (int64_t i = i0; i < i1; i++) {
      int64_t a0 = adaptive_start(i, g.h, g.oh), a1 = adaptive_end(i, g.h, g.oh);
      if (h < a0 || h >= a1) continue;
      for (int64_t j = j0; j < j1; j++) {
        int64_t b0 = adaptive_start(j, g.w, g.ow), b1 = adaptive_end(j, g.w, g.ow);
        if (w < b0 || w >= b1) continue;
        acc += dy[p * out_plane + i * g.ow + j] / float((a1 - a0) * (b1 - b0));
      }
    }
    dx[t] = acc;
  }
}

void max_pool2d(const float* x, const Pool2dGeometry& g, float* y, int32_t* idx) {
  int64_t n = g.planes * g.oh * g.ow;
  if (n == 0) return;
  max_pool_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(x, g, y, idx);
  KW_LAUNCH_CHECK();
}
void max_pool2d_backward(const float* dy, const int32_t* idx, const Pool2dGeometry& g, float* dx) {
  int64_t n = g.planes * g.h * g.w;
  if (n == 0) return;
  max_pool_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(dy, idx, g, dx);
  KW_LAUNCH_CHECK();
}
void avg_pool2d(const float* x, const Pool2dGeometry& g, bool cip, float* y) {
  int64_t n = g.planes * g.oh * g.ow;
  if (n == 0) return;
  avg_pool_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(x, g, cip, y);
  KW_LAUNCH_CHECK();
}
void avg_pool2d_backward(const float* dy, const Pool2dGeometry& g, bool cip, float* dx) {
  int64_t n = g.planes * g.h * g.w;
  if (n == 0) return;
  avg_pool_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(dy, g, cip, dx);
  KW_LAUNCH_CHECK();
}
void adaptive_avg_pool2d(const float* x, const Pool2dGeometry& g, float* y) {
  int64_t n = g.planes * g.oh * g.ow;
  if (n == 0) return;
  adaptive_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(x, g, y);
  KW_LAUNCH_CHECK();
}
void adaptive_avg_pool2d_backward(const float* dy, const Pool2dGeometry& g, float* dx) {
  int64_t n = g.planes * g.h * g.w;
  if (n == 0) return;
  adaptive_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(dy, g, dx);
  KW_LAUNCH_CHECK();
}

}  // namespace

const PoolKernels pool_kernels = {max_pool2d, max_pool2d_backward, avg_pool2d, avg_pool2d_backward,
                                  adaptive_avg_pool2d, adaptive_avg_pool2d_backward};

}  // namespace kw::cuda
