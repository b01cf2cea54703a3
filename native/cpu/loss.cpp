// CPU softmax / log-softmax along an axis, and the classification losses (cross-entropy, NLL)
// forward and backward side by side. Row losses are reduced in a fixed order in double, so a
// loss does not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/thread_pool.h"
#include "cpu/tables.h"

namespace kw::cpu {
namespace {

int64_t grain_for(int64_t work_per_item) { return std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(1, work_per_item)); }

// ---- softmax: a task is one row of `outer` and a block of up to kBlock inner positions ----

constexpr int64_t kBlock = 64;

template <typename F>
void for_blocks(int64_t outer, int64_t r, int64_t inner, F f) {
  const int64_t per_row = (inner + kBlock - 1) / kBlock;
  parallel_for(outer * per_row, grain_for(3 * r * std::min(inner, kBlock)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t o = t / per_row, i0 = (t % per_row) * kBlock;
      f(o * r * inner + i0, std::min(kBlock, inner - i0));
    }
  });
}

void softmax(const float* x, int64_t outer, int64_t r, int64_t inner, bool log_softmax, float* y) {
  for_blocks(outer, r, inner, [&](int64_t off, int64_t b) {
    float m[kBlock];
    double s[kBlock];
    const float* xb = x + off;
    float* yb = y + off;
    std::fill(m, m + b, -std::numeric_limits<float>::infinity());
    std::fill(s, s + b, 0.0);
    for (int64_t k = 0; k < r; k++)
      for (int64_t i = 0; i < b; i++) m[i] = std::max(m[i], xb[k * inner + i]);
    for (int64_t k = 0; k < r; k++)
      for (int64_t i = 0; i < b; i++) s[i] += std::exp(xb[k * inner + i] - m[i]);
    if (log_softmax) {
      float shift[kBlock];
      for (int64_t i = 0; i < b; i++) shift[i] = float(m[i] + std::log(s[i]));
      for (int64_t k = 0; k < r; k++)
        for (int64_t i = 0; i < b; i++) yb[k * inner + i] = xb[k * inner + i] - shift[i];
    } else {
      for (int64_t i = 0; i < b; i++) s[i] = 1.0 / s[i];
      for (int64_t k = 0; k < r; k++)
        for (int64_t i = 0; i < b; i++) yb[k * inner + i] = float(std::exp(xb[k * inner + i] - m[i]) * s[i]);
    }
  });
}

void softmax_backward(const float* y, const float* dy, int64_t outer, int64_t r, int64_t inner, bool log_softmax,
                      float* dx) {
  for_blocks(outer, r, inner, [&](int64_t off, int64_t b) {
    double s[kBlock];
    const float* yb = y + off;
    const float* gb = dy + off;
    float* db = dx + off;
    std::fill(s, s + b, 0.0);
    for (int64_t k = 0; k < r; k++)
      for (int64_t i = 0; i < b; i++) s[i] += log_softmax ? gb[k * inner + i] : double(gb[k * inner + i]) * yb[k * inner + i];
    for (int64_t k = 0; k < r; k++)
      for (int64_t i = 0; i < b; i++) {
        const int64_t j = k * inner + i;
        db[j] = log_softmax ? float(gb[j] - std::exp(yb[j]) * s[i]) : float(yb[j] * (gb[j] - s[i]));
      }
  });
}

// ---- classification losses on [N, C] ----

bool ignored(const ClassTarget& t, int64_t i) { return !t.probs && t.index[i] == t.ignore_index; }

// The denominator of a mean: rows not ignored (hard targets) or all rows (soft targets).
int64_t mean_count(const ClassTarget& t, int64_t n) {
  if (t.probs) return n;
  int64_t k = 0;
  for (int64_t i = 0; i < n; i++) k += !ignored(t, i);
  return k;
}

// out = the row losses (None), their sum, or their mean.
void reduce_rows(const std::vector<float>& rows, const ClassTarget& t, int64_t n, Reduction reduction, float* out) {
  if (reduction == Reduction::None) {
    std::copy(rows.begin(), rows.end(), out);
    return;
  }
  double acc = 0;
  for (float v : rows) acc += v;
  // A mean over zero rows is 0/0 = NaN, as in PyTorch.
  out[0] = float(reduction == Reduction::Sum ? acc : acc / double(mean_count(t, n)));
}

// Per-row upstream gradient for each reduction.
struct RowGrad {
  const float* dy;
  Reduction reduction;
  double scale;
  RowGrad(const float* g, Reduction r, const ClassTarget& t, int64_t n)
      : dy(g), reduction(r), scale(r == Reduction::Mean ? 1.0 / double(mean_count(t, n)) : 1.0) {}
  double operator()(int64_t i) const { return reduction == Reduction::None ? dy[i] : dy[0] * scale; }
};

void cross_entropy(const float* logits, int64_t n, int64_t c, const ClassTarget& t, float smoothing,
                   Reduction reduction, float* out, float* lse) {
  std::vector<float> rows(static_cast<size_t>(n));
  const double eps = smoothing;
  parallel_for(n, grain_for(3 * c), [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; i++) {
      const float* x = logits + i * c;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t k = 0; k < c; k++) m = std::max(m, x[k]);
      double s = 0;
      for (int64_t k = 0; k < c; k++) s += std::exp(x[k] - m);
      const double l = double(m) + std::log(s);
      lse[i] = float(l);
      if (ignored(t, i)) {
        rows[size_t(i)] = 0;
        continue;
      }
      double loss = 0;
      if (t.probs) {
        const float* q = t.probs + i * c;
        for (int64_t k = 0; k < c; k++) loss += ((1 - eps) * q[k] + eps / double(c)) * (l - x[k]);
      } else {
        // (1-ε)·nll + ε·mean_c(-log p_c), as F.cross_entropy(label_smoothing=ε)
        loss = (1 - eps) * (l - x[t.index[i]]);
        if (eps != 0) {
          double sx = 0;
          for (int64_t k = 0; k < c; k++) sx += x[k];
          loss += eps * (l - sx / double(c));
        }
      }
      rows[size_t(i)] = float(loss);
    }
  });
  reduce_rows(rows, t, n, reduction, out);
}

void cross_entropy_backward(const float* logits, const float* lse, int64_t n, int64_t c, const ClassTarget& t,
                            float smoothing, Reduction reduction, const float* dy, float* dlogits) {
  RowGrad grad(dy, reduction, t, n);
  const double eps = smoothing;
  parallel_for(n, grain_for(2 * c), [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; i++) {
      const float* x = logits + i * c;
      float* d = dlogits + i * c;
      if (ignored(t, i)) {
        std::memset(d, 0, size_t(c) * sizeof(float));
        continue;
      }
      const double g = grad(i), l = lse[i];
      if (t.probs) {
        // q need not sum to 1 for soft targets: dlogits = g·(p·Σq - q).
        const float* q = t.probs + i * c;
        double sq = 0;
        for (int64_t k = 0; k < c; k++) sq += (1 - eps) * q[k] + eps / double(c);
        for (int64_t k = 0; k < c; k++)
          d[k] = float(g * (std::exp(x[k] - l) * sq - ((1 - eps) * q[k] + eps / double(c))));
      } else {
        const int64_t y = t.index[i];
        for (int64_t k = 0; k < c; k++) d[k] = float(g * (std::exp(x[k] - l) - eps / double(c) - (k == y ? 1 - eps : 0.0)));
      }
    }
  });
}

void nll_loss(const float* logp, int64_t n, int64_t c, const ClassTarget& t, Reduction reduction, float* out) {
  std::vector<float> rows(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) rows[size_t(i)] = ignored(t, i) ? 0.f : -logp[i * c + t.index[i]];
  reduce_rows(rows, t, n, reduction, out);
}

void nll_loss_backward(int64_t n, int64_t c, const ClassTarget& t, Reduction reduction, const float* dy, float* dlogp) {
  RowGrad grad(dy, reduction, t, n);
  std::memset(dlogp, 0, size_t(n * c) * sizeof(float));
  for (int64_t i = 0; i < n; i++)
    if (!ignored(t, i)) dlogp[i * c + t.index[i]] = float(-grad(i));
}

}  // namespace

const LossKernels loss_kernels = {softmax, softmax_backward, cross_entropy, cross_entropy_backward, nll_loss,
                                  nll_loss_backward};

}  // namespace kw::cpu
