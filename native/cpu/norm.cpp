// CPU normalisation kernels: batch norm over [N, C, S] and layer norm over the C axis of
// [outer, C, inner], forward and backward side by side. Statistics accumulate in double with
// two passes (mean, then centred squares), so large or offset inputs keep their precision.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "cpu/tables.h"

namespace kw::cpu {
namespace {

// An AVX2 clone of the per-row loops picked at load time by CPU feature (see cpu/conv.cpp).
#define KW_SIMD_CLONES __attribute__((target_clones("avx2", "default")))

constexpr int64_t kWork = 1 << 15;  // elements per task below which threading costs more than it saves

int64_t grain_for(int64_t work_per_item) { return std::max<int64_t>(1, kWork / std::max<int64_t>(1, work_per_item)); }

// Sums over a contiguous run in double with four independent accumulators: one chain of
// dependent adds would leave the FPU waiting on its own latency.
KW_SIMD_CLONES double lane_sum(const float* p, int64_t n) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    a0 += p[j];
    a1 += p[j + 1];
    a2 += p[j + 2];
    a3 += p[j + 3];
  }
  for (; j < n; j++) a0 += p[j];
  return (a0 + a1) + (a2 + a3);
}

// Σ (p - m)²
KW_SIMD_CLONES double lane_sq_dev(const float* p, int64_t n, double m) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const double d0 = p[j] - m, d1 = p[j + 1] - m, d2 = p[j + 2] - m, d3 = p[j + 3] - m;
    a0 += d0 * d0;
    a1 += d1 * d1;
    a2 += d2 * d2;
    a3 += d3 * d3;
  }
  for (; j < n; j++) a0 += (p[j] - m) * (p[j] - m);
  return (a0 + a1) + (a2 + a3);
}

// sg = Σ g, sgx = Σ g·(p - m)
KW_SIMD_CLONES void lane_dot(const float* g, const float* p, int64_t n, double m, double& sg, double& sgx) {
  // Eight lanes of each sum: with two, the dependent double adds (not the memory) set the pace.
  double a[8] = {}, b[8] = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; k++) {
      a[k] += g[j + k];
      b[k] += g[j + k] * (p[j + k] - m);
    }
  double a0 = 0, b0 = 0;
  for (; j < n; j++) {
    a0 += g[j];
    b0 += g[j] * (p[j] - m);
  }
  for (int k = 0; k < 8; k++) {
    a0 += a[k];
    b0 += b[k];
  }
  sg = a0;
  sgx = b0;
}

// The per-row loops, compiled for AVX2 and baseline (picked at load time). The forward's
// q = p·a + b and the relu mask the backward recomputes from it are the same expression in the
// same clone, so the mask matches the forward's decision exactly.
KW_SIMD_CLONES void bn_apply(const float* __restrict p, int64_t n, float a, float b, bool relu, float* __restrict q) {
  if (relu)
    for (int64_t j = 0; j < n; j++) {
      const float v = p[j] * a + b;
      q[j] = v > 0.f ? v : 0.f;
    }
  else
    for (int64_t j = 0; j < n; j++) q[j] = p[j] * a + b;
}

// out = dy where p·a + b > 0, else 0 (relu's backward through the recomputed forward value).
KW_SIMD_CLONES void relu_grad_mask(const float* __restrict p, const float* __restrict g, int64_t n, float a, float b,
                                   float* __restrict out) {
  for (int64_t j = 0; j < n; j++) out[j] = p[j] * a + b > 0.f ? g[j] : 0.f;
}

// q = A·g + B·(p - m) + C; g may be q itself (the masked dy held in dx's buffer).
KW_SIMD_CLONES void bn_dx_row(const float* g, const float* __restrict p, int64_t n, float A, float B, float C, float m,
                              float* q) {
  for (int64_t j = 0; j < n; j++) q[j] = A * g[j] + B * (p[j] - m) + C;
}

// ---- batch norm: one task owns a block of channels and walks x once per pass in memory order ----

// fn(c0, c1) over channel blocks whose values (count = n·s each) fit 256 KB, within each thread's
// range: the passes over a block (statistics, then the output) then read it from L2 after the
// first, where a whole thread's range (MBs at 224 px) came from L3 or memory every pass. ResNet's
// stem BN + ReLU at B 16, 224 px: forward 6.4 → 5.3 ms, backward 21 → 18 (the smaller maps,
// whose ranges fit L3 anyway, within noise).
template <typename F>
void in_l2_blocks(int64_t c, int64_t count, int64_t grain, F&& fn) {
  const int64_t sub = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, count));
  parallel_for(c, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t c0 = lo; c0 < hi; c0 += sub) fn(c0, std::min(hi, c0 + sub));
  });
}

// relu: y = relu(batch_norm(x)) in the same pass (ResNet's bn → relu pairs), as UnaryOp::Relu.
void batch_norm_forward_impl(const float* x, int64_t n, int64_t c, int64_t s, const float* weight, const float* bias,
                             float* running_mean, float* running_var, bool training, float momentum, float eps,
                             bool relu, float* y, float* save_mean, float* save_invstd) {
  const int64_t count = n * s;
  in_l2_blocks(c, count, grain_for(count), [&](int64_t c0, int64_t c1) {
    const int64_t w = c1 - c0;
    std::vector<double> mean(size_t(w), 0.0), var(size_t(w), 0.0);
    if (training) {
      for (int64_t i = 0; i < n; i++)
        for (int64_t ch = c0; ch < c1; ch++) mean[size_t(ch - c0)] += lane_sum(x + (i * c + ch) * s, s);
      for (auto& m : mean) m /= double(count);
      for (int64_t i = 0; i < n; i++)
        for (int64_t ch = c0; ch < c1; ch++)
          var[size_t(ch - c0)] += lane_sq_dev(x + (i * c + ch) * s, s, mean[size_t(ch - c0)]);
      for (int64_t ch = c0; ch < c1; ch++) {
        const size_t k = size_t(ch - c0);
        const double biased = var[k] / double(count);
        if (running_mean)
          running_mean[ch] = float((1.0 - momentum) * running_mean[ch] + momentum * mean[k]);
        if (running_var) {
          // count > 1 is checked by the caller (PyTorch refuses one value per channel in training).
          const double unbiased = var[k] / double(count - 1);
          running_var[ch] = float((1.0 - momentum) * running_var[ch] + momentum * unbiased);
        }
        var[k] = biased;
      }
    } else {
      for (int64_t ch = c0; ch < c1; ch++) {
        mean[size_t(ch - c0)] = running_mean[ch];
        var[size_t(ch - c0)] = running_var[ch];
      }
    }
    std::vector<float> scale(static_cast<size_t>(w)), shift(static_cast<size_t>(w));
    for (int64_t ch = c0; ch < c1; ch++) {
      const size_t k = size_t(ch - c0);
      const double invstd = 1.0 / std::sqrt(var[k] + double(eps));
      save_mean[ch] = float(mean[k]);
      save_invstd[ch] = float(invstd);
      const double g = weight ? weight[ch] : 1.0;
      // y = x·α + β with α = invstd·w, β = b - mean·α: PyTorch's CPU form, for bitwise-close parity.
      scale[k] = float(invstd * g);
      shift[k] = float((bias ? bias[ch] : 0.0) - mean[k] * invstd * g);
    }
    for (int64_t i = 0; i < n; i++)
      for (int64_t ch = c0; ch < c1; ch++) {
        const float* p = x + (i * c + ch) * s;
        float* q = y + (i * c + ch) * s;
        bn_apply(p, s, scale[size_t(ch - c0)], shift[size_t(ch - c0)], relu, q);
      }
  });
}

// relu: the backward of relu(batch_norm(x)): dy is first masked where the normalised value
// (recomputed from x exactly as the forward computed it) was not positive; the masked dy goes
// to dx's buffer (or a row of scratch) and is used in its place.
void batch_norm_backward_impl(const float* dy, const float* x, int64_t n, int64_t c, int64_t s, const float* weight,
                              const float* bias, const float* save_mean, const float* save_invstd, bool training,
                              bool relu, float* dx, float* dweight, float* dbias) {
  const int64_t count = n * s;
  in_l2_blocks(c, count, grain_for(2 * count), [&](int64_t c0, int64_t c1) {
    const int64_t w = c1 - c0;
    std::vector<double> sum_dy(size_t(w), 0.0), sum_dy_xhat(size_t(w), 0.0);
    std::vector<float> row(relu && !dx ? size_t(s) : 0);
    // Σ dy·x̂ = invstd·Σ dy·(x - mean): accumulate the centred product, scale once.
    for (int64_t i = 0; i < n; i++)
      for (int64_t ch = c0; ch < c1; ch++) {
        const size_t k = size_t(ch - c0);
        const float* g = dy + (i * c + ch) * s;
        if (relu) {
          // The forward's scale and shift, in the same float arithmetic.
          const double invstd = save_invstd[ch], gw = weight ? weight[ch] : 1.0;
          const float a = float(invstd * gw), b = float((bias ? bias[ch] : 0.0) - double(save_mean[ch]) * invstd * gw);
          const float* p = x + (i * c + ch) * s;
          float* masked = dx ? dx + (i * c + ch) * s : row.data();
          relu_grad_mask(p, g, s, a, b, masked);
          g = masked;
        }
        double a, b;
        lane_dot(g, x + (i * c + ch) * s, s, save_mean[ch], a, b);
        sum_dy[k] += a;
        sum_dy_xhat[k] += b;
      }
    for (int64_t ch = c0; ch < c1; ch++) {
      const size_t k = size_t(ch - c0);
      sum_dy_xhat[k] *= save_invstd[ch];
      if (dweight) dweight[ch] = float(sum_dy_xhat[k]);
      if (dbias) dbias[ch] = float(sum_dy[k]);
    }
    if (!dx) return;
    for (int64_t i = 0; i < n; i++)
      for (int64_t ch = c0; ch < c1; ch++) {
        const size_t k = size_t(ch - c0);
        const float* p = x + (i * c + ch) * s;
        float* q = dx + (i * c + ch) * s;
        const float* g = relu ? q : dy + (i * c + ch) * s;  // relu: q holds the masked dy
        const double invstd = save_invstd[ch];
        const double gs = (weight ? weight[ch] : 1.0) * invstd;
        if (!training) {
          const float a = float(gs);
          for (int64_t j = 0; j < s; j++) q[j] = g[j] * a;
          continue;
        }
        // dx = w·invstd·(dy - mean(dy) - x̂·mean(dy·x̂)), the mean taken over (N, S), as
        // dx = A·dy + B·(x - mean) + C in float so the loop vectorises.
        const float m = save_mean[ch];
        const float A = float(gs), B = float(-gs * invstd * sum_dy_xhat[k] / double(count)),
                    C = float(-gs * sum_dy[k] / double(count));
        bn_dx_row(g, p, s, A, B, C, m, q);
      }
  });
}

// ---- layer norm: a task is one row of `outer` and a block of up to kBlock inner positions ----

constexpr int64_t kBlock = 64;

struct LnTasks {
  int64_t blocks_per_row, total;
  LnTasks(int64_t outer, int64_t inner) : blocks_per_row((inner + kBlock - 1) / kBlock), total(outer * blocks_per_row) {}
};

// Channels-last: each row of C is contiguous; the statistics use lane sums, the output is a
// float loop that vectorises.
void layer_norm_rows_forward(const float* x, int64_t rows, int64_t c, const float* weight, const float* bias, float eps,
                             float* y, float* save_mean, float* save_invstd) {
  parallel_for(rows, grain_for(3 * c), [&](int64_t r0, int64_t r1) {
    for (int64_t o = r0; o < r1; o++) {
      const float* row = x + o * c;
      float* out = y + o * c;
      const double mean = lane_sum(row, c) / double(c);
      const double invstd = 1.0 / std::sqrt(lane_sq_dev(row, c, mean) / double(c) + double(eps));
      save_mean[o] = float(mean);
      save_invstd[o] = float(invstd);
      const float m = float(mean), s = float(invstd);
      for (int64_t k = 0; k < c; k++) out[k] = (row[k] - m) * s;
      if (weight)
        for (int64_t k = 0; k < c; k++) out[k] *= weight[k];
      if (bias)
        for (int64_t k = 0; k < c; k++) out[k] += bias[k];
    }
  });
}

void layer_norm_forward(const float* x, int64_t outer, int64_t c, int64_t inner, const float* weight, const float* bias,
                        float eps, float* y, float* save_mean, float* save_invstd) {
  if (inner == 1) return layer_norm_rows_forward(x, outer, c, weight, bias, eps, y, save_mean, save_invstd);
  LnTasks tasks(outer, inner);
  parallel_for(tasks.total, grain_for(c * std::min(inner, kBlock)), [&](int64_t t0, int64_t t1) {
    double mean[kBlock], var[kBlock];
    for (int64_t t = t0; t < t1; t++) {
      const int64_t o = t / tasks.blocks_per_row, i0 = (t % tasks.blocks_per_row) * kBlock;
      const int64_t b = std::min(kBlock, inner - i0);
      const float* base = x + o * c * inner + i0;
      std::fill(mean, mean + b, 0.0);
      std::fill(var, var + b, 0.0);
      for (int64_t k = 0; k < c; k++)
        for (int64_t i = 0; i < b; i++) mean[i] += base[k * inner + i];
      for (int64_t i = 0; i < b; i++) mean[i] /= double(c);
      for (int64_t k = 0; k < c; k++)
        for (int64_t i = 0; i < b; i++) {
          const double d = base[k * inner + i] - mean[i];
          var[i] += d * d;
        }
      for (int64_t i = 0; i < b; i++) {
        var[i] = 1.0 / std::sqrt(var[i] / double(c) + double(eps));  // now invstd
        save_mean[o * inner + i0 + i] = float(mean[i]);
        save_invstd[o * inner + i0 + i] = float(var[i]);
      }
      float* out = y + o * c * inner + i0;
      for (int64_t k = 0; k < c; k++) {
        const double g = weight ? weight[k] : 1.0, h = bias ? bias[k] : 0.0;
        for (int64_t i = 0; i < b; i++) out[k * inner + i] = float((base[k * inner + i] - mean[i]) * var[i] * g + h);
      }
    }
  });
}

// One contiguous row (channels-last): adds dy·x̂ and dy into pw[0..C) and pw[C..2C) when pw is
// given, and writes dx when asked.
void layer_norm_row_backward(const float* dy, const float* x, int64_t c, const float* weight, float mean, float invstd,
                             float* dx, double* pw) {
  if (pw)
    for (int64_t k = 0; k < c; k++) {
      pw[k] += double(dy[k]) * ((x[k] - mean) * invstd);
      pw[c + k] += dy[k];
    }
  if (!dx) return;
  double sg0 = 0, sg1 = 0, sgx0 = 0, sgx1 = 0;
  int64_t k = 0;
  for (; k + 2 <= c; k += 2) {
    const double g0 = dy[k] * (weight ? weight[k] : 1.f), g1 = dy[k + 1] * (weight ? weight[k + 1] : 1.f);
    sg0 += g0;
    sg1 += g1;
    sgx0 += g0 * ((x[k] - mean) * invstd);
    sgx1 += g1 * ((x[k + 1] - mean) * invstd);
  }
  for (; k < c; k++) {
    const double g = dy[k] * (weight ? weight[k] : 1.f);
    sg0 += g;
    sgx0 += g * ((x[k] - mean) * invstd);
  }
  const float mg = float((sg0 + sg1) / double(c)), mgx = float((sgx0 + sgx1) / double(c));
  if (weight)
    for (int64_t j = 0; j < c; j++) dx[j] = invstd * (dy[j] * weight[j] - mg - (x[j] - mean) * invstd * mgx);
  else
    for (int64_t j = 0; j < c; j++) dx[j] = invstd * (dy[j] - mg - (x[j] - mean) * invstd * mgx);
}

void layer_norm_backward(const float* dy, const float* x, int64_t outer, int64_t c, int64_t inner, const float* weight,
                         const float* save_mean, const float* save_invstd, float* dx, float* dweight, float* dbias) {
  LnTasks tasks(outer, inner);
  // dweight/dbias sum over every task: each of a fixed number of chunks keeps its own partial
  // sums, added in chunk order afterwards, so the result does not depend on the thread count.
  const bool want_params = dweight || dbias;
  const int64_t chunks = want_params ? std::min<int64_t>(tasks.total, 16) : tasks.total;
  std::vector<double> partial(want_params ? size_t(chunks * 2 * c) : 0, 0.0);
  const int64_t per_chunk = chunks ? (tasks.total + chunks - 1) / chunks : 0;
  parallel_for(chunks, want_params ? 1 : grain_for(c * std::min(inner, kBlock)), [&](int64_t q0, int64_t q1) {
    double mg[kBlock], mgx[kBlock];
    for (int64_t q = q0; q < q1; q++) {
      const int64_t ta = want_params ? q * per_chunk : q, tb = want_params ? std::min(tasks.total, ta + per_chunk) : q + 1;
      double* pw = want_params ? partial.data() + q * 2 * c : nullptr;
      for (int64_t t = ta; t < tb; t++) {
        if (inner == 1) {
          layer_norm_row_backward(dy + t * c, x + t * c, c, weight, save_mean[t], save_invstd[t], dx ? dx + t * c : nullptr, pw);
          continue;
        }
        const int64_t o = t / tasks.blocks_per_row, i0 = (t % tasks.blocks_per_row) * kBlock;
        const int64_t b = std::min(kBlock, inner - i0);
        const int64_t off = o * c * inner + i0;
        const float* xb = x + off;
        const float* gb = dy + off;
        const float* mb = save_mean + o * inner + i0;
        const float* sb = save_invstd + o * inner + i0;
        if (pw)
          for (int64_t k = 0; k < c; k++) {
            double aw = 0, ab = 0;
            for (int64_t i = 0; i < b; i++) {
              aw += double(gb[k * inner + i]) * (xb[k * inner + i] - mb[i]) * sb[i];
              ab += gb[k * inner + i];
            }
            pw[k] += aw;
            pw[c + k] += ab;
          }
        if (!dx) continue;
        // dx = invstd·(g - mean(g) - x̂·mean(g·x̂)) with g = dy·weight, means over C.
        std::fill(mg, mg + b, 0.0);
        std::fill(mgx, mgx + b, 0.0);
        for (int64_t k = 0; k < c; k++) {
          const double wk = weight ? weight[k] : 1.0;
          for (int64_t i = 0; i < b; i++) {
            const double g = gb[k * inner + i] * wk;
            mg[i] += g;
            mgx[i] += g * (xb[k * inner + i] - mb[i]) * sb[i];
          }
        }
        for (int64_t i = 0; i < b; i++) {
          mg[i] /= double(c);
          mgx[i] /= double(c);
        }
        float* out = dx + off;
        for (int64_t k = 0; k < c; k++) {
          const double wk = weight ? weight[k] : 1.0;
          for (int64_t i = 0; i < b; i++) {
            const double xhat = (xb[k * inner + i] - mb[i]) * sb[i];
            out[k * inner + i] = float(sb[i] * (gb[k * inner + i] * wk - mg[i] - xhat * mgx[i]));
          }
        }
      }
    }
  });
  if (!want_params) return;
  for (int64_t k = 0; k < c; k++) {
    double aw = 0, ab = 0;
    for (int64_t q = 0; q < chunks; q++) {
      aw += partial[size_t(q * 2 * c + k)];
      ab += partial[size_t(q * 2 * c + c + k)];
    }
    if (dweight) dweight[k] = float(aw);
    if (dbias) dbias[k] = float(ab);
  }
}

void batch_norm_forward(const float* x, int64_t n, int64_t c, int64_t s, const float* weight, const float* bias,
                        float* running_mean, float* running_var, bool training, float momentum, float eps,
                        float* y, float* save_mean, float* save_invstd) {
  batch_norm_forward_impl(x, n, c, s, weight, bias, running_mean, running_var, training, momentum, eps, false, y,
                          save_mean, save_invstd);
}

void batch_norm_relu_forward(const float* x, int64_t n, int64_t c, int64_t s, const float* weight, const float* bias,
                             float* running_mean, float* running_var, bool training, float momentum, float eps,
                             float* y, float* save_mean, float* save_invstd) {
  batch_norm_forward_impl(x, n, c, s, weight, bias, running_mean, running_var, training, momentum, eps, true, y,
                          save_mean, save_invstd);
}

void batch_norm_backward(const float* dy, const float* x, int64_t n, int64_t c, int64_t s, const float* weight,
                         const float* save_mean, const float* save_invstd, bool training, float* dx,
                         float* dweight, float* dbias) {
  batch_norm_backward_impl(dy, x, n, c, s, weight, nullptr, save_mean, save_invstd, training, false, dx, dweight,
                           dbias);
}

void batch_norm_relu_backward(const float* dy, const float* x, int64_t n, int64_t c, int64_t s, const float* weight,
                              const float* bias, const float* save_mean, const float* save_invstd, bool training,
                              float* dx, float* dweight, float* dbias) {
  batch_norm_backward_impl(dy, x, n, c, s, weight, bias, save_mean, save_invstd, training, true, dx, dweight, dbias);
}

}  // namespace

const NormKernels norm_kernels = {batch_norm_forward, batch_norm_backward, layer_norm_forward, layer_norm_backward,
                                  batch_norm_relu_forward, batch_norm_relu_backward};

}  // namespace kw::cpu
