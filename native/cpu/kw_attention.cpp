// CPU kernels of KernelWarehouse's attention head, fused into one forward and one backward:
// average pool → fc1 → BatchNorm1d/LayerNorm → ReLU → fc2 (or the non-local basis map with
// fc3 and basis_bias) → rows / (Σ|row| + 1e-3) → temperature mix → drop the zero slot.
// The forward keeps what the backward needs in one workspace (see KwAttentionWorkspace).
#include <cmath>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "cpu/kw_impl.h"
#include "cpu/tables.h"

namespace kw::cpu::kwk {
namespace {

// Σ src[0..S) in double, in 8 independent partial sums: one chain of dependent adds ran at a
// few cycles per element (KW-ResNet-18 pools every KW layer's input: 19 maps a step).
double channel_sum(const float* src, int64_t S) {
  double part[8] = {};
  int64_t s = 0;
  for (; s + 8 <= S; s += 8)
    for (int k = 0; k < 8; k++) part[k] += src[s + k];
  double acc = 0;
  for (; s < S; s++) acc += src[s];
  for (int k = 0; k < 8; k++) acc += part[k];
  return acc;
}

constexpr float kRowEps = 1e-3f;  // upstream's Σ|row| + 1e-3

void mm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
        int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_kernels.gemm(ta, tb, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc);
}

// Column sums of a [rows, cols] matrix, in double: the bias gradients of the linear layers.
void column_sums(const float* a, int64_t rows, int64_t cols, float* out) {
  std::vector<double> acc(size_t(cols), 0.0);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) acc[size_t(c)] += a[r * cols + c];
  for (int64_t c = 0; c < cols; c++) out[c] = float(acc[size_t(c)]);
}

float sign(float v) { return v > 0.f ? 1.f : (v < 0.f ? -1.f : 0.f); }

// BatchNorm1d over the batch for each hidden unit: h [B, H] → xhat, rstd [H]; in training
// mode the running statistics move toward the batch's (unbiased variance, as PyTorch).
void batch_norm_forward(const KwAttentionDims& d, const float* h, const KwAttentionParams& p, float* xhat,
                        float* rstd) {
  const int64_t B = d.batch, H = d.hidden;
  const bool train = d.norm == KwNorm::BatchNormTrain;
  for (int64_t j = 0; j < H; j++) {
    float mean, inv;
    if (train) {
      double s = 0, ss = 0;
      for (int64_t b = 0; b < B; b++) s += h[b * H + j];
      double mu = s / double(B);
      for (int64_t b = 0; b < B; b++) {
        double c = h[b * H + j] - mu;
        ss += c * c;
      }
      double var = ss / double(B);
      mean = float(mu);
      inv = float(1.0 / std::sqrt(var + double(d.eps)));
      const float mom = d.momentum;
      p.running_mean[j] = (1.f - mom) * p.running_mean[j] + mom * float(mu);
      p.running_var[j] = (1.f - mom) * p.running_var[j] + mom * float(ss / double(B - 1));
    } else {
      mean = p.running_mean[j];
      inv = float(1.0 / std::sqrt(double(p.running_var[j]) + double(d.eps)));
    }
    rstd[j] = inv;
    for (int64_t b = 0; b < B; b++) xhat[b * H + j] = (h[b * H + j] - mean) * inv;
  }
}

// LayerNorm over the hidden units of each sample: rstd [B].
void layer_norm_forward(const KwAttentionDims& d, const float* h, float* xhat, float* rstd) {
  const int64_t B = d.batch, H = d.hidden;
  for (int64_t b = 0; b < B; b++) {
    const float* row = h + b * H;
    double s = 0, ss = 0;
    for (int64_t j = 0; j < H; j++) s += row[j];
    double mu = s / double(H);
    for (int64_t j = 0; j < H; j++) ss += (row[j] - mu) * (row[j] - mu);
    float inv = float(1.0 / std::sqrt(ss / double(H) + double(d.eps)));
    rstd[b] = inv;
    for (int64_t j = 0; j < H; j++) xhat[b * H + j] = (row[j] - float(mu)) * inv;
  }
}

}  // namespace

void attention_forward(const KwAttentionDims& d, const float* x, const KwAttentionParams& p, float* alpha,
                       float* ws) {
  const KwAttentionWorkspace w(d);
  const int64_t B = d.batch, C = d.channels, S = d.spatial, H = d.hidden;
  const int64_t m = d.mixtures, n = d.cells, P = d.slots(), F = d.fc2_out(), rows = B * m;
  float* pooled = ws + w.pooled;
  float* xhat = ws + w.xhat;
  float* rstd = ws + w.rstd;
  float* act = ws + w.act;
  float* f = ws + w.fc2;
  float* z = ws + w.logits;
  float* den = ws + w.denom;

  parallel_for(B * C, std::max<int64_t>(1, 32768 / std::max<int64_t>(S, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) pooled[r] = float(channel_sum(x + r * S, S) / double(S));
  });

  // fc1 into act (as scratch), then normalise into xhat.
  mm(false, true, B, H, C, pooled, C, p.fc1_w, C, 0.f, act, H);
  if (p.fc1_b)
    for (int64_t b = 0; b < B; b++)
      for (int64_t j = 0; j < H; j++) act[b * H + j] += p.fc1_b[j];
  if (d.norm == KwNorm::LayerNorm)
    layer_norm_forward(d, act, xhat, rstd);
  else
    batch_norm_forward(d, act, p, xhat, rstd);
  for (int64_t b = 0; b < B; b++)
    for (int64_t j = 0; j < H; j++) {
      float y = p.norm_w[j] * xhat[b * H + j] + p.norm_b[j];
      act[b * H + j] = y > 0.f ? y : 0.f;
    }

  mm(false, true, B, F, H, act, H, p.fc2_w, H, 0.f, f, F);
  if (!d.basis()) {
    for (int64_t b = 0; b < B; b++)
      for (int64_t k = 0; k < F; k++) z[b * F + k] = f[b * F + k] + p.fc2_b[k];
  } else {
    // Each row of f is [local L | basis K | zero 1]; fc3 maps the basis to the n − L other
    // cells, which sit before and after the local block: [nl[:st] | local | nl[st:] | zero].
    const int64_t L = d.num_local, K = d.num_basis, R = L + K + 1, NL = n - L, st = d.split();
    mm(false, true, rows, st, K, f + L, R, p.fc3_w, K, 0.f, z, P);
    mm(false, true, rows, NL - st, K, f + L, R, p.fc3_w + st * K, K, 0.f, z + st + L, P);
    for (int64_t r = 0; r < rows; r++) {
      float* zr = z + r * P;
      const float* fr = f + r * R;
      std::memcpy(zr + st, fr, size_t(L) * sizeof(float));
      zr[n] = fr[L + K];
      const float* bb = p.basis_bias + (r % m) * P;
      for (int64_t k = 0; k < P; k++) zr[k] += bb[k];
    }
  }

  const float tau = d.temperature;
  for (int64_t r = 0; r < rows; r++) {
    const float* zr = z + r * P;
    double s = 0;
    for (int64_t k = 0; k < P; k++) s += std::fabs(zr[k]);
    den[r] = float(s) + kRowEps;
    const float* tb = p.temp_bias + (r % m) * P;
    float* ar = alpha + r * n;
    for (int64_t k = 0; k < n; k++) ar[k] = (1.f - tau) * (zr[k] / den[r]) + tau * tb[k];
  }
}

void attention_backward(const KwAttentionDims& d, const float* dalpha, const KwAttentionParams& p,
                        const float* ws, const KwAttentionGrads& g) {
  const KwAttentionWorkspace w(d);
  const int64_t B = d.batch, C = d.channels, S = d.spatial, H = d.hidden;
  const int64_t m = d.mixtures, n = d.cells, P = d.slots(), F = d.fc2_out(), rows = B * m;
  const float* pooled = ws + w.pooled;
  const float* xhat = ws + w.xhat;
  const float* rstd = ws + w.rstd;
  const float* act = ws + w.act;
  const float* f = ws + w.fc2;
  const float* z = ws + w.logits;
  const float* den = ws + w.denom;
  const float keep = 1.f - d.temperature;

  // Through the temperature mix and z / (Σ|z| + ε); the dropped slot n gets no direct gradient
  // but still moves the denominator.
  std::vector<float> dz(size_t(rows * P));
  for (int64_t r = 0; r < rows; r++) {
    const float* zr = z + r * P;
    const float* gr = dalpha + r * n;
    float* dzr = dz.data() + r * P;
    double dot = 0;
    for (int64_t k = 0; k < n; k++) dot += double(gr[k]) * keep * zr[k];
    const float inv = 1.f / den[r];
    const float corr = float(dot / (double(den[r]) * double(den[r])));
    for (int64_t k = 0; k < n; k++) dzr[k] = keep * gr[k] * inv - sign(zr[k]) * corr;
    dzr[n] = -sign(zr[n]) * corr;
  }

  std::vector<float> df_own;
  const float* df = dz.data();  // without the basis, fc2's output is the logits
  if (!d.basis()) {
    if (g.fc2_b) column_sums(dz.data(), B, F, g.fc2_b);
  } else {
    const int64_t L = d.num_local, K = d.num_basis, R = L + K + 1, NL = n - L, st = d.split();
    if (g.basis_bias) column_sums(dz.data(), B, m * P, g.basis_bias);
    if (g.fc3_w) {
      mm(true, false, st, K, rows, dz.data(), P, f + L, R, 0.f, g.fc3_w, K);
      mm(true, false, NL - st, K, rows, dz.data() + st + L, P, f + L, R, 0.f, g.fc3_w + st * K, K);
    }
    df_own.assign(size_t(rows * R), 0.f);
    float* dfw = df_own.data();
    mm(false, false, rows, K, st, dz.data(), P, p.fc3_w, K, 0.f, dfw + L, R);
    mm(false, false, rows, K, NL - st, dz.data() + st + L, P, p.fc3_w + st * K, K, st > 0 ? 1.f : 0.f,
       dfw + L, R);
    for (int64_t r = 0; r < rows; r++) {
      std::memcpy(dfw + r * R, dz.data() + r * P + st, size_t(L) * sizeof(float));
      dfw[r * R + L + K] = dz[size_t(r * P + n)];
    }
    df = dfw;
  }

  if (g.fc2_w) mm(true, false, F, H, B, df, F, act, H, 0.f, g.fc2_w, H);
  std::vector<float> dh(size_t(B * H));
  mm(false, false, B, H, F, df, F, p.fc2_w, H, 0.f, dh.data(), H);

  // ReLU, then the affine of the norm: dh becomes d(xhat).
  for (int64_t i = 0; i < B * H; i++)
    if (act[i] <= 0.f) dh[size_t(i)] = 0.f;
  if (g.norm_w || g.norm_b) {
    std::vector<double> gw(size_t(H), 0.0), gb(size_t(H), 0.0);
    for (int64_t b = 0; b < B; b++)
      for (int64_t j = 0; j < H; j++) {
        gw[size_t(j)] += double(dh[size_t(b * H + j)]) * xhat[b * H + j];
        gb[size_t(j)] += dh[size_t(b * H + j)];
      }
    for (int64_t j = 0; j < H; j++) {
      if (g.norm_w) g.norm_w[j] = float(gw[size_t(j)]);
      if (g.norm_b) g.norm_b[j] = float(gb[size_t(j)]);
    }
  }
  for (int64_t b = 0; b < B; b++)
    for (int64_t j = 0; j < H; j++) dh[size_t(b * H + j)] *= p.norm_w[j];

  // d(xhat) → d(fc1 output), in place.
  if (d.norm == KwNorm::BatchNormEval) {
    for (int64_t b = 0; b < B; b++)
      for (int64_t j = 0; j < H; j++) dh[size_t(b * H + j)] *= rstd[j];
  } else if (d.norm == KwNorm::BatchNormTrain) {
    for (int64_t j = 0; j < H; j++) {
      double s1 = 0, s2 = 0;
      for (int64_t b = 0; b < B; b++) {
        s1 += dh[size_t(b * H + j)];
        s2 += double(dh[size_t(b * H + j)]) * xhat[b * H + j];
      }
      const float m1 = float(s1 / double(B)), m2 = float(s2 / double(B));
      for (int64_t b = 0; b < B; b++) {
        float& v = dh[size_t(b * H + j)];
        v = rstd[j] * (v - m1 - xhat[b * H + j] * m2);
      }
    }
  } else {
    for (int64_t b = 0; b < B; b++) {
      double s1 = 0, s2 = 0;
      for (int64_t j = 0; j < H; j++) {
        s1 += dh[size_t(b * H + j)];
        s2 += double(dh[size_t(b * H + j)]) * xhat[b * H + j];
      }
      const float m1 = float(s1 / double(H)), m2 = float(s2 / double(H));
      for (int64_t j = 0; j < H; j++) {
        float& v = dh[size_t(b * H + j)];
        v = rstd[b] * (v - m1 - xhat[b * H + j] * m2);
      }
    }
  }

  if (g.fc1_b) column_sums(dh.data(), B, H, g.fc1_b);
  if (g.fc1_w) mm(true, false, H, C, B, dh.data(), H, pooled, C, 0.f, g.fc1_w, C);
  if (g.dx) {
    std::vector<float> dp(size_t(B * C));
    mm(false, false, B, C, H, dh.data(), H, p.fc1_w, C, 0.f, dp.data(), C);
    const float inv = 1.f / float(S);
    parallel_for(B * C, std::max<int64_t>(1, 32768 / std::max<int64_t>(S, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; r++) {
        const float v = dp[size_t(r)] * inv;
        float* dst = g.dx + r * S;
        for (int64_t s = 0; s < S; s++) dst[s] = v;
      }
    });
  }
}

}  // namespace kw::cpu::kwk
