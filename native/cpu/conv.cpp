// CPU convolution, forward and backward, 1-D/2-D/3-D (always run as 3-D with unit dims).
//
// General path: per sample and group, im2col then one GEMM, Y_b[g] = W_b[g] · col_b[g].
// The weight of sample b sits at w + b·wstride, with wstride 0 for a shared weight, so the
// per-sample (KernelWarehouse) conv and the ordinary one are the same code.
// Fast paths: a 1×1, stride-1, unpadded conv needs no im2col (the input already is the
// column matrix), and a conv with one input channel per group (depthwise) is a direct loop,
// since its GEMMs would have an inner dimension of only k·k.
//
// Threads: over samples when there are at least as many samples as threads (GEMM then runs
// single-threaded inside); otherwise samples run one after another and each GEMM splits
// itself over the threads. A shared dW is accumulated per thread chunk and summed in chunk
// order afterwards, so results do not depend on scheduling.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "cpu/tables.h"

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

// Calls fn(row, id, ih) for every output row (od, oh) of kernel tap (kd, kh), with id/ih the
// input row or -1 in padding. Rows are numbered od·out[1] + oh.
template <typename F>
inline void for_rows(const ConvGeometry& g, int64_t kd, int64_t kh, F&& fn) {
  for (int64_t od = 0; od < g.out[0]; od++) {
    int64_t id = in_index(g, 0, od, kd);
    for (int64_t oh = 0; oh < g.out[1]; oh++) fn(od * g.out[1] + oh, id, id < 0 ? -1 : in_index(g, 1, oh, kh));
  }
}

// col [C·K, L] from channels [c0, c1) of x_c (C channels of S elements each).
void im2col(const ConvGeometry& g, const float* x, int64_t c0, int64_t c1, float* col) {
  const int64_t K = g.kernel_size(), L = g.out_spatial(), S = g.in_spatial();
  const int64_t OW = g.out[2], IW = g.in[2], sw = g.stride[2];
  for (int64_t c = c0; c < c1; c++) {
    const float* xc = x + c * S;
    for (int64_t kd = 0; kd < g.kernel[0]; kd++)
      for (int64_t kh = 0; kh < g.kernel[1]; kh++)
        for (int64_t kx = 0; kx < g.kernel[2]; kx++) {
          float* row = col + (c * K + (kd * g.kernel[1] + kh) * g.kernel[2] + kx) * L;
          int64_t off = kx * g.dilation[2] - g.pad_lo[2], lo, hi;
          valid_range(OW, IW, sw, off, lo, hi);
          for_rows(g, kd, kh, [&](int64_t r, int64_t id, int64_t ih) {
            float* dst = row + r * OW;
            if (ih < 0) {
              std::memset(dst, 0, size_t(OW) * sizeof(float));
              return;
            }
            const float* src = xc + (id * g.in[1] + ih) * IW;
            std::memset(dst, 0, size_t(lo) * sizeof(float));
            if (sw == 1) std::memcpy(dst + lo, src + lo + off, size_t(hi - lo) * sizeof(float));
            else for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * sw + off];
            std::memset(dst + hi, 0, size_t(OW - hi) * sizeof(float));
          });
        }
  }
}

// x_c[channels c0..c1) += col2im(col): the adjoint of im2col. x must be zeroed by the caller.
void col2im(const ConvGeometry& g, const float* col, int64_t c0, int64_t c1, float* x) {
  const int64_t K = g.kernel_size(), L = g.out_spatial(), S = g.in_spatial();
  const int64_t OW = g.out[2], IW = g.in[2], sw = g.stride[2];
  for (int64_t c = c0; c < c1; c++) {
    float* xc = x + c * S;
    for (int64_t kd = 0; kd < g.kernel[0]; kd++)
      for (int64_t kh = 0; kh < g.kernel[1]; kh++)
        for (int64_t kx = 0; kx < g.kernel[2]; kx++) {
          const float* row = col + (c * K + (kd * g.kernel[1] + kh) * g.kernel[2] + kx) * L;
          int64_t off = kx * g.dilation[2] - g.pad_lo[2], lo, hi;
          valid_range(OW, IW, sw, off, lo, hi);
          for_rows(g, kd, kh, [&](int64_t r, int64_t id, int64_t ih) {
            if (ih < 0) return;
            const float* src = row + r * OW;
            float* dst = xc + (id * g.in[1] + ih) * IW;
            if (sw == 1) for (int64_t ow = lo; ow < hi; ow++) dst[ow + off] += src[ow];
            else for (int64_t ow = lo; ow < hi; ow++) dst[ow * sw + off] += src[ow];
          });
        }
  }
}

// Channel-parallel wrappers: inline inside a per-sample parallel loop, split otherwise.
void im2col_par(const ConvGeometry& g, const float* x, int64_t C, float* col) {
  int64_t work = g.kernel_size() * g.out_spatial();
  parallel_for(C, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, work)),
               [&](int64_t lo, int64_t hi) { im2col(g, x, lo, hi, col); });
}
void col2im_par(const ConvGeometry& g, const float* col, int64_t C, float* x) {
  int64_t work = g.kernel_size() * g.out_spatial();
  parallel_for(C, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, work)),
               [&](int64_t lo, int64_t hi) { col2im(g, col, lo, hi, x); });
}

StoragePtr scratch(int64_t n) { return n > 0 ? new_storage(DType::F32, n) : nullptr; }
float* ptr(const StoragePtr& s) { return s ? s->as<float>() : nullptr; }

// Runs fn(chunk, b0, b1) over the batch split into chunks: one per thread when samples are
// plentiful, else a single chunk run outside any parallel region (so its GEMMs go parallel).
template <typename F>
int64_t over_samples(int64_t B, F&& fn) {
  int64_t threads = in_parallel_region() ? 1 : num_threads();
  int64_t chunks = B >= threads ? std::min(threads, B) : 1;
  if (chunks <= 1) {
    if (B > 0) fn(0, 0, B);
    return B > 0 ? 1 : 0;
  }
  parallel_for(chunks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; c++) fn(c, c * B / chunks, (c + 1) * B / chunks);
  });
  return chunks;
}

// ---- depthwise (one input channel per group): direct loops ----

// One kernel tap over one output row: y[i] += w · x[i·s + off] for i in [lo, hi).
inline void axpy_row(float w, const float* x, int64_t s, int64_t off, float* y, int64_t lo, int64_t hi) {
  if (s == 1) for (int64_t i = lo; i < hi; i++) y[i] += w * x[i + off];
  else for (int64_t i = lo; i < hi; i++) y[i] += w * x[i * s + off];
}

// Visits every (output row, kernel tap) pair of one channel that touches the input:
// fn(y row offset, x row offset, tap index k, off, lo, hi) where output i of the row reads
// input i·stride + off of the x row, for i in [lo, hi).
template <typename F>
inline void for_taps(const ConvGeometry& g, F&& fn) {
  const int64_t OW = g.out[2], IW = g.in[2];
  for (int64_t kd = 0; kd < g.kernel[0]; kd++)
    for (int64_t kh = 0; kh < g.kernel[1]; kh++)
      for (int64_t kx = 0; kx < g.kernel[2]; kx++) {
        int64_t k = (kd * g.kernel[1] + kh) * g.kernel[2] + kx;
        int64_t off = kx * g.dilation[2] - g.pad_lo[2], lo, hi;
        valid_range(OW, IW, g.stride[2], off, lo, hi);
        if (lo >= hi) continue;
        for_rows(g, kd, kh, [&](int64_t r, int64_t id, int64_t ih) {
          if (ih >= 0) fn(r * OW, (id * g.in[1] + ih) * IW, k, off, lo, hi);
        });
      }
}

void depthwise_forward(const ConvGeometry& g, const Sizes& s, const float* x, const float* w,
                       const float* bias, float* y) {
  const int64_t B = g.batch, O = g.out_channels, sw = g.stride[2];
  parallel_for(B * O, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, s.L * s.K)), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) {
      int64_t b = i / O, o = i % O, c = o / s.Og;
      const float* xc = x + b * s.x_b + c * s.S;
      const float* wo = w + b * s.w_b + o * s.K;
      float* yo = y + b * s.y_b + o * s.L;
      std::fill(yo, yo + s.L, bias ? bias[o] : 0.f);
      for_taps(g, [&](int64_t yr, int64_t xr, int64_t k, int64_t off, int64_t a, int64_t e) {
        axpy_row(wo[k], xc + xr, sw, off, yo + yr, a, e);
      });
    }
  });
}

void depthwise_backward(const ConvGeometry& g, const Sizes& s, const float* dy, const float* x,
                        const float* w, float* dx, float* dw) {
  const int64_t B = g.batch, C = g.in_channels, O = g.out_channels, sw = g.stride[2];
  if (dx) {
    // Per input channel: its outputs' contributions land only there, so no races.
    parallel_for(B * C, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, s.Og * s.L * s.K)), [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; i++) {
        int64_t b = i / C, c = i % C;
        float* dxc = dx + b * s.x_b + c * s.S;
        std::fill(dxc, dxc + s.S, 0.f);
        for (int64_t o = c * s.Og; o < (c + 1) * s.Og; o++) {
          const float* wo = w + b * s.w_b + o * s.K;
          const float* dyo = dy + b * s.y_b + o * s.L;
          for_taps(g, [&](int64_t yr, int64_t xr, int64_t k, int64_t off, int64_t a, int64_t e) {
            float wk = wo[k];
            float* d = dxc + xr;
            const float* src = dyo + yr;
            if (sw == 1) for (int64_t j = a; j < e; j++) d[j + off] += wk * src[j];
            else for (int64_t j = a; j < e; j++) d[j * sw + off] += wk * src[j];
          });
        }
      }
    });
  }
  if (dw) {
    // dW[o, k] = Σ_(b) Σ_pos dy·x: one task per output channel (and sample, when per-sample).
    int64_t nb = g.per_sample_weight ? B : 1;
    parallel_for(nb * O, 1, [&](int64_t lo, int64_t hi) {
      std::vector<double> acc(size_t(s.K));
      for (int64_t i = lo; i < hi; i++) {
        int64_t o = i % O, c = o / s.Og;
        int64_t b0 = g.per_sample_weight ? i / O : 0, b1 = g.per_sample_weight ? b0 + 1 : B;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t b = b0; b < b1; b++) {
          const float* xc = x + b * s.x_b + c * s.S;
          const float* dyo = dy + b * s.y_b + o * s.L;
          for_taps(g, [&](int64_t yr, int64_t xr, int64_t k, int64_t off, int64_t a, int64_t e) {
            const float* xs = xc + xr;
            const float* ds = dyo + yr;
            // Four partial sums let the compiler keep several FMAs in flight.
            float p[4] = {0, 0, 0, 0};
            int64_t j = a;
            if (sw == 1) {
              for (; j + 4 <= e; j += 4)
                for (int q = 0; q < 4; q++) p[q] += ds[j + q] * xs[j + q + off];
              for (; j < e; j++) p[0] += ds[j] * xs[j + off];
            } else {
              for (; j < e; j++) p[0] += ds[j] * xs[j * sw + off];
            }
            acc[size_t(k)] += double(p[0] + p[1]) + double(p[2] + p[3]);
          });
        }
        float* dwo = dw + (g.per_sample_weight ? b0 * s.w_b : 0) + o * s.K;
        for (int64_t k = 0; k < s.K; k++) dwo[k] = float(acc[size_t(k)]);
      }
    });
  }
}

// ---- forward ----

void conv_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  Sizes s = sizes_of(g);
  if (g.batch == 0 || s.L == 0) return;
  if (s.Cg == 1 && !s.direct) return depthwise_forward(g, s, x, w, bias, y);
  const auto& gemm = gemm_kernels.gemm;
  over_samples(g.batch, [&](int64_t, int64_t b0, int64_t b1) {
    StoragePtr col = s.direct ? nullptr : scratch(s.CgK * s.L);
    for (int64_t b = b0; b < b1; b++) {
      for (int64_t gr = 0; gr < g.groups; gr++) {
        const float* xg = x + b * s.x_b + gr * s.Cg * s.S;
        const float* cm = xg;
        if (!s.direct) {
          im2col_par(g, xg, s.Cg, ptr(col));
          cm = ptr(col);
        }
        float* yg = y + b * s.y_b + gr * s.Og * s.L;
        if (bias)
          for (int64_t o = 0; o < s.Og; o++) std::fill(yg + o * s.L, yg + (o + 1) * s.L, bias[gr * s.Og + o]);
        gemm(false, false, s.Og, s.L, s.CgK, 1.f, w + b * s.w_b + gr * s.Og * s.CgK, s.CgK, cm, s.L,
             bias ? 1.f : 0.f, yg, s.L);
      }
    }
  });
}

// ---- backward ----

void bias_backward(const ConvGeometry& g, const Sizes& s, const float* dy, float* db) {
  const int64_t O = g.out_channels;
  parallel_for(O, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, g.batch * s.L)), [&](int64_t lo, int64_t hi) {
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

void conv_backward(const ConvGeometry& g, const float* dy, const float* x, const float* w, float* dx,
                   float* dw, float* db) {
  Sizes s = sizes_of(g);
  const int64_t B = g.batch;
  if (db) bias_backward(g, s, dy, db);
  if (!dx && !dw) return;
  const int64_t wn = g.weight_numel_per_sample();
  if (B == 0 || s.L == 0) {
    // No output positions: every gradient is zero.
    if (dx) std::memset(dx, 0, size_t(B * s.x_b) * sizeof(float));
    if (dw) std::memset(dw, 0, size_t((g.per_sample_weight ? B : 1) * wn) * sizeof(float));
    return;
  }
  if (s.Cg == 1 && !s.direct) return depthwise_backward(g, s, dy, x, w, dx, dw);
  const auto& gemm = gemm_kernels.gemm;
  const bool shared_dw = dw && !g.per_sample_weight;
  int64_t threads = in_parallel_region() ? 1 : num_threads();
  std::vector<StoragePtr> partial(size_t(std::max<int64_t>(1, threads)));  // shared dW of chunks ≥ 1
  int64_t chunks = over_samples(B, [&](int64_t chunk, int64_t b0, int64_t b1) {
    StoragePtr col = dw && !s.direct ? scratch(s.CgK * s.L) : nullptr;
    StoragePtr dcol = dx && !s.direct ? scratch(s.CgK * s.L) : nullptr;
    float* dw_acc = nullptr;
    if (shared_dw) {
      if (chunk > 0) partial[size_t(chunk)] = scratch(wn);
      dw_acc = chunk == 0 ? dw : ptr(partial[size_t(chunk)]);
    }
    for (int64_t b = b0; b < b1; b++) {
      if (dx && !s.direct) std::memset(dx + b * s.x_b, 0, size_t(s.x_b) * sizeof(float));
      for (int64_t gr = 0; gr < g.groups; gr++) {
        const float* dyg = dy + b * s.y_b + gr * s.Og * s.L;
        const float* wg = w ? w + b * s.w_b + gr * s.Og * s.CgK : nullptr;
        if (dw) {
          const float* xg = x + b * s.x_b + gr * s.Cg * s.S;
          const float* cm = xg;
          if (!s.direct) {
            im2col_par(g, xg, s.Cg, ptr(col));
            cm = ptr(col);
          }
          // dW[g] (+)= dY[g] · colᵀ; a shared dW starts from zero at each chunk's first sample.
          float* dwg = (shared_dw ? dw_acc : dw + b * s.w_b) + gr * s.Og * s.CgK;
          float beta = shared_dw && b > b0 ? 1.f : 0.f;
          gemm(false, true, s.Og, s.CgK, s.L, 1.f, dyg, s.L, cm, s.L, beta, dwg, s.CgK);
        }
        if (dx) {
          // dcol = W[g]ᵀ · dY[g]; for the 1×1 fast path that already is dX[g].
          float* dxg = dx + b * s.x_b + gr * s.Cg * s.S;
          float* target = s.direct ? dxg : ptr(dcol);
          gemm(true, false, s.CgK, s.L, s.Og, 1.f, wg, s.CgK, dyg, s.L, 0.f, target, s.L);
          if (!s.direct) col2im_par(g, ptr(dcol), s.Cg, dxg);
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
