// CUDA KernelWarehouse attention head, forward and backward: average pool → fc1 →
// BatchNorm1d/LayerNorm → ReLU → fc2 (or the non-local basis map with fc3 + basis_bias) →
// rows / (Σ|row| + 1e-3) → temperature mix → drop the zero slot.
// Specification: native/cpu/kw_attention.cpp, formula for formula (same float/double mix).
// The linear layers are GEMMs; every step between them is fused into one kernel (pool; bias +
// norm + ReLU; logits assembly; normalise + temperature; and their backward counterparts), so a
// head is ~6 launches each way. Its tensors are tiny ([B, H], [B·m, n+1]): one thread per row
// or column is enough.
#include "cuda/common.cuh"
#include "cuda/tables.h"

namespace kw::cuda {
namespace {

constexpr float kRowEps = 1e-3f;

void mm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
        float beta, float* C, int64_t ldc) {
  gemm_ld(ta, tb, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc);
}

// KwAttentionDims' host helpers, for device code.
__device__ __forceinline__ int64_t slots_of(const KwAttentionDims& d) { return d.cells + 1; }
__device__ __forceinline__ int64_t split_of(const KwAttentionDims& d) {
  int64_t nonlocal = d.cells - d.num_local;
  return d.start < nonlocal ? d.start : nonlocal;
}

__device__ __forceinline__ float sgn(float v) { return v > 0.f ? 1.f : (v < 0.f ? -1.f : 0.f); }

// Mean over S of each (b, c) row, one warp per row.
__global__ void pool_kernel(const float* x, int64_t rows, int64_t S, float* pooled) {
  int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (warp >= rows) return;
  double acc = 0;
  for (int64_t s = lane; s < S; s += 32) acc += x[warp * S + s];
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
  if (lane == 0) pooled[warp] = float(acc / double(S));
}

// BatchNorm1d: one thread per hidden unit j owns column j of [B, H]: adds the fc1 bias,
// normalises, updates the running statistics and applies affine + ReLU into act.
__global__ void bn_relu_kernel(KwAttentionDims d, KwAttentionParams p, float* act, float* xhat, float* rstd) {
  int64_t B = d.batch, H = d.hidden;
  KW_FOR(j, H) {
    if (p.fc1_b)
      for (int64_t b = 0; b < B; b++) act[b * H + j] += p.fc1_b[j];
    float mean, inv;
    if (d.norm == KwNorm::BatchNormTrain) {
      double s = 0, ss = 0;
      for (int64_t b = 0; b < B; b++) s += act[b * H + j];
      double mu = s / double(B);
      for (int64_t b = 0; b < B; b++) {
        double c = act[b * H + j] - mu;
        ss += c * c;
      }
      mean = float(mu);
      inv = float(1.0 / sqrt(ss / double(B) + double(d.eps)));
      float mom = d.momentum;
      p.running_mean[j] = (1.f - mom) * p.running_mean[j] + mom * float(mu);
      p.running_var[j] = (1.f - mom) * p.running_var[j] + mom * float(ss / double(B - 1));
    } else {
      mean = p.running_mean[j];
      inv = float(1.0 / sqrt(double(p.running_var[j]) + double(d.eps)));
    }
    rstd[j] = inv;
    for (int64_t b = 0; b < B; b++) {
      float xh = (act[b * H + j] - mean) * inv;
      xhat[b * H + j] = xh;
      float y = p.norm_w[j] * xh + p.norm_b[j];
      act[b * H + j] = y > 0.f ? y : 0.f;
    }
  }
}

// LayerNorm: one thread per sample b owns row b.
__global__ void ln_relu_kernel(KwAttentionDims d, KwAttentionParams p, float* act, float* xhat, float* rstd) {
  int64_t B = d.batch, H = d.hidden;
  KW_FOR(b, B) {
    float* row = act + b * H;
    if (p.fc1_b)
      for (int64_t j = 0; j < H; j++) row[j] += p.fc1_b[j];
    double s = 0, ss = 0;
    for (int64_t j = 0; j < H; j++) s += row[j];
    double mu = s / double(H);
    for (int64_t j = 0; j < H; j++) ss += (row[j] - mu) * (row[j] - mu);
    float inv = float(1.0 / sqrt(ss / double(H) + double(d.eps)));
    rstd[b] = inv;
    for (int64_t j = 0; j < H; j++) {
      float xh = (row[j] - float(mu)) * inv;
      xhat[b * H + j] = xh;
      float y = p.norm_w[j] * xh + p.norm_b[j];
      row[j] = y > 0.f ? y : 0.f;
    }
  }
}

__global__ void add_bias_rows(const float* f, const float* bias, int64_t rows, int64_t cols, float* z) {
  KW_FOR(t, rows * cols) z[t] = f[t] + bias[t % cols];
}

// Basis path: z rows are [nl[:st] | local L | nl[st:] | zero]; the GEMMs filled the non-local
// parts, this copies the local logits and the zero slot in and adds basis_bias.
__global__ void basis_logits_kernel(KwAttentionDims d, const float* f, const float* basis_bias, float* z) {
  int64_t L = d.num_local, K = d.num_basis, R = L + K + 1, P = slots_of(d), n = d.cells, m = d.mixtures;
  int64_t st = split_of(d);
  KW_FOR(t, d.batch * m * P) {
    int64_t r = t / P, k = t % P;
    float v = z[t];
    if (k >= st && k < st + L) v = f[r * R + (k - st)];
    if (k == n) v = f[r * R + L + K];
    z[t] = v + basis_bias[(r % m) * P + k];
  }
}

__global__ void normalise_kernel(KwAttentionDims d, const float* z, const float* temp_bias, float* den, float* alpha) {
  int64_t P = slots_of(d), n = d.cells, m = d.mixtures;
  float tau = d.temperature;
  KW_FOR(r, d.batch * m) {
    const float* zr = z + r * P;
    double s = 0;
    for (int64_t k = 0; k < P; k++) s += fabsf(zr[k]);
    float dn = float(s) + kRowEps;
    den[r] = dn;
    const float* tb = temp_bias + (r % m) * P;
    for (int64_t k = 0; k < n; k++) alpha[r * n + k] = (1.f - tau) * (zr[k] / dn) + tau * tb[k];
  }
}

void attention_forward(const KwAttentionDims& d, const float* x, const KwAttentionParams& p, float* alpha, float* ws) {
  const KwAttentionWorkspace w(d);
  const int64_t B = d.batch, C = d.channels, S = d.spatial, H = d.hidden;
  const int64_t m = d.mixtures, n = d.cells, P = d.slots(), F = d.fc2_out(), rows = B * m;
  if (B == 0) return;
  float *pooled = ws + w.pooled, *xhat = ws + w.xhat, *rstd = ws + w.rstd, *act = ws + w.act, *f = ws + w.fc2,
        *z = ws + w.logits, *den = ws + w.denom;

  pool_kernel<<<blocks_for(B * C * 32), kThreads, 0, stream()>>>(x, B * C, S, pooled);
  KW_LAUNCH_CHECK();
  mm(false, true, B, H, C, pooled, C, p.fc1_w, C, 0.f, act, H);
  if (d.norm == KwNorm::LayerNorm)
    ln_relu_kernel<<<blocks_for(B), kThreads, 0, stream()>>>(d, p, act, xhat, rstd);
  else
    bn_relu_kernel<<<blocks_for(H), kThreads, 0, stream()>>>(d, p, act, xhat, rstd);
  KW_LAUNCH_CHECK();
  mm(false, true, B, F, H, act, H, p.fc2_w, H, 0.f, f, F);
  if (!d.basis()) {
    add_bias_rows<<<blocks_for(B * F), kThreads, 0, stream()>>>(f, p.fc2_b, B, F, z);
  } else {
    const int64_t L = d.num_local, K = d.num_basis, R = L + K + 1, NL = n - L, st = d.split();
    mm(false, true, rows, st, K, f + L, R, p.fc3_w, K, 0.f, z, P);
    mm(false, true, rows, NL - st, K, f + L, R, p.fc3_w + st * K, K, 0.f, z + st + L, P);
    basis_logits_kernel<<<blocks_for(rows * P), kThreads, 0, stream()>>>(d, f, p.basis_bias, z);
  }
  KW_LAUNCH_CHECK();
  normalise_kernel<<<blocks_for(rows), kThreads, 0, stream()>>>(d, z, p.temp_bias, den, alpha);
  KW_LAUNCH_CHECK();
}

// Through the temperature mix and z / (Σ|z| + ε): the dropped slot n has no direct gradient
// but still moves the denominator.
__global__ void dz_kernel(KwAttentionDims d, const float* dalpha, const float* z, const float* den, float* dz) {
  int64_t P = slots_of(d), n = d.cells;
  float keep = 1.f - d.temperature;
  KW_FOR(r, d.batch * d.mixtures) {
    const float* zr = z + r * P;
    const float* gr = dalpha + r * n;
    float* dzr = dz + r * P;
    double dot = 0;
    for (int64_t k = 0; k < n; k++) dot += double(gr[k]) * keep * zr[k];
    float inv = 1.f / den[r];
    float corr = float(dot / (double(den[r]) * double(den[r])));
    for (int64_t k = 0; k < n; k++) dzr[k] = keep * gr[k] * inv - sgn(zr[k]) * corr;
    dzr[n] = -sgn(zr[n]) * corr;
  }
}

// out[c] = Σ_r a[r, c] in double (bias gradients).
__global__ void column_sums_kernel(const float* a, int64_t rows, int64_t cols, float* out) {
  KW_FOR(c, cols) {
    double acc = 0;
    for (int64_t r = 0; r < rows; r++) acc += a[r * cols + c];
    out[c] = float(acc);
  }
}

void column_sums(const float* a, int64_t rows, int64_t cols, float* out) {
  if (cols == 0) return;
  column_sums_kernel<<<blocks_for(cols), kThreads, 0, stream()>>>(a, rows, cols, out);
  KW_LAUNCH_CHECK();
}

// df rows are [local L | basis K | zero 1]: the local and zero parts come straight from dz.
__global__ void basis_df_kernel(KwAttentionDims d, const float* dz, float* df) {
  int64_t L = d.num_local, K = d.num_basis, R = L + K + 1, P = slots_of(d), n = d.cells, st = split_of(d);
  KW_FOR(t, d.batch * d.mixtures * (L + 1)) {
    int64_t r = t / (L + 1), k = t % (L + 1);
    if (k < L)
      df[r * R + k] = dz[r * P + st + k];
    else
      df[r * R + L + K] = dz[r * P + n];
  }
}

// One thread per hidden unit j: the ReLU mask, the norm's affine gradients, then the
// BatchNorm backward (or, for LayerNorm, only the scaling by norm_w; the rest is per row).
__global__ void norm_backward_cols(KwAttentionDims d, KwAttentionParams p, const float* act, const float* xhat,
                                   const float* rstd, float* dh, float* gnorm_w, float* gnorm_b) {
  int64_t B = d.batch, H = d.hidden;
  KW_FOR(j, H) {
    double gw = 0, gb = 0;
    for (int64_t b = 0; b < B; b++) {
      float v = act[b * H + j] <= 0.f ? 0.f : dh[b * H + j];
      gw += double(v) * xhat[b * H + j];
      gb += v;
      dh[b * H + j] = v * p.norm_w[j];
    }
    if (gnorm_w) gnorm_w[j] = float(gw);
    if (gnorm_b) gnorm_b[j] = float(gb);
    if (d.norm == KwNorm::BatchNormEval) {
      for (int64_t b = 0; b < B; b++) dh[b * H + j] *= rstd[j];
    } else if (d.norm == KwNorm::BatchNormTrain) {
      double s1 = 0, s2 = 0;
      for (int64_t b = 0; b < B; b++) {
        s1 += dh[b * H + j];
        s2 += double(dh[b * H + j]) * xhat[b * H + j];
      }
      float m1 = float(s1 / double(B)), m2 = float(s2 / double(B));
      for (int64_t b = 0; b < B; b++) dh[b * H + j] = rstd[j] * (dh[b * H + j] - m1 - xhat[b * H + j] * m2);
    }
  }
}

__global__ void ln_backward_rows(KwAttentionDims d, const float* xhat, const float* rstd, float* dh) {
  int64_t H = d.hidden;
  KW_FOR(b, d.batch) {
    double s1 = 0, s2 = 0;
    for (int64_t j = 0; j < H; j++) {
      s1 += dh[b * H + j];
      s2 += double(dh[b * H + j]) * xhat[b * H + j];
    }
    float m1 = float(s1 / double(H)), m2 = float(s2 / double(H));
    for (int64_t j = 0; j < H; j++) dh[b * H + j] = rstd[b] * (dh[b * H + j] - m1 - xhat[b * H + j] * m2);
  }
}

__global__ void unpool_kernel(const float* dp, int64_t rows, int64_t S, float* dx) {
  float inv = 1.f / float(S);
  KW_FOR(t, rows * S) dx[t] = dp[t / S] * inv;
}

void attention_backward(const KwAttentionDims& d, const float* dalpha, const KwAttentionParams& p, const float* ws,
                        const KwAttentionGrads& g) {
  const KwAttentionWorkspace w(d);
  const int64_t B = d.batch, C = d.channels, S = d.spatial, H = d.hidden;
  const int64_t m = d.mixtures, n = d.cells, P = d.slots(), F = d.fc2_out(), rows = B * m;
  const float *pooled = ws + w.pooled, *xhat = ws + w.xhat, *rstd = ws + w.rstd, *act = ws + w.act,
              *f = ws + w.fc2, *z = ws + w.logits, *den = ws + w.denom;
  Scratch dz(floats(rows * P));
  if (rows > 0) {
    dz_kernel<<<blocks_for(rows), kThreads, 0, stream()>>>(d, dalpha, z, den, dz.as<float>());
    KW_LAUNCH_CHECK();
  }

  Scratch df_own(d.basis() ? floats(rows * (d.num_local + d.num_basis + 1)) : 0);
  const float* df = dz.as<float>();  // without the basis, fc2's output is the logits
  if (!d.basis()) {
    if (g.fc2_b) column_sums(dz.as<float>(), B, F, g.fc2_b);
  } else {
    const int64_t L = d.num_local, K = d.num_basis, R = L + K + 1, NL = n - L, st = d.split();
    const float* dzp = dz.as<float>();
    if (g.basis_bias) column_sums(dzp, B, m * P, g.basis_bias);
    if (g.fc3_w) {
      mm(true, false, st, K, rows, dzp, P, f + L, R, 0.f, g.fc3_w, K);
      mm(true, false, NL - st, K, rows, dzp + st + L, P, f + L, R, 0.f, g.fc3_w + st * K, K);
    }
    float* dfw = df_own.as<float>();
    KW_CUDA_CHECK(cudaMemsetAsync(dfw, 0, floats(rows * R), stream()));
    mm(false, false, rows, K, st, dzp, P, p.fc3_w, K, 0.f, dfw + L, R);
    mm(false, false, rows, K, NL - st, dzp + st + L, P, p.fc3_w + st * K, K, st > 0 ? 1.f : 0.f, dfw + L, R);
    if (rows > 0) {
      basis_df_kernel<<<blocks_for(rows * (L + 1)), kThreads, 0, stream()>>>(d, dzp, dfw);
      KW_LAUNCH_CHECK();
    }
    df = dfw;
  }

  if (g.fc2_w) mm(true, false, F, H, B, df, F, act, H, 0.f, g.fc2_w, H);
  Scratch dh(floats(B * H));
  mm(false, false, B, H, F, df, F, p.fc2_w, H, 0.f, dh.as<float>(), H);
  norm_backward_cols<<<blocks_for(H), kThreads, 0, stream()>>>(d, p, act, xhat, rstd, dh.as<float>(), g.norm_w,
                                                               g.norm_b);
  KW_LAUNCH_CHECK();
  if (d.norm == KwNorm::LayerNorm) {
    ln_backward_rows<<<blocks_for(B), kThreads, 0, stream()>>>(d, xhat, rstd, dh.as<float>());
    KW_LAUNCH_CHECK();
  }

  if (g.fc1_b) column_sums(dh.as<float>(), B, H, g.fc1_b);
  if (g.fc1_w) mm(true, false, H, C, B, dh.as<float>(), H, pooled, C, 0.f, g.fc1_w, C);
  if (g.dx && B * C * S > 0) {
    Scratch dp(floats(B * C));
    mm(false, false, B, C, H, dh.as<float>(), H, p.fc1_w, C, 0.f, dp.as<float>(), C);
    unpool_kernel<<<blocks_for(B * C * S), kThreads, 0, stream()>>>(dp.as<float>(), B * C, S, g.dx);
    KW_LAUNCH_CHECK();
  }
}

}  // namespace

// Shared with kw_assemble.cu through tables.h's kw_kernels.
void kw_attention_forward(const KwAttentionDims& d, const float* x, const KwAttentionParams& p, float* alpha,
                          float* ws) {
  attention_forward(d, x, p, alpha, ws);
}
void kw_attention_backward(const KwAttentionDims& d, const float* dalpha, const KwAttentionParams& p, const float* ws,
                           const KwAttentionGrads& g) {
  attention_backward(d, dalpha, p, ws, g);
}

}  // namespace kw::cuda
