// Softmax along one axis of [outer, r, inner], and the classification losses on logits [N, C]:
// cross-entropy (hard class indices with ignore_index and label smoothing, or soft target
// distributions) and negative log-likelihood, with PyTorch's reductions. The fused
// cross-entropy saves only each row's log-sum-exp; the backward recomputes the softmax from it.
#pragma once
#include <cstdint>

#include "core/shape.h"

namespace kw {

enum class Reduction : int { None = 0, Mean = 1, Sum = 2 };

// The target of a classification loss: class indices (int64, one per row; rows equal to
// ignore_index contribute nothing) or, when probs is set, a float [N, C] distribution per row.
struct ClassTarget {
  const int64_t* index = nullptr;
  const float* probs = nullptr;
  int64_t ignore_index = -100;
};

struct LossKernels {
  // log_softmax = true writes log-probabilities.
  void (*softmax)(const float* x, int64_t outer, int64_t r, int64_t inner, bool log_softmax, float* y);
  // From the saved output y: softmax dx = y·(dy - Σ dy·y); log-softmax dx = dy - exp(y)·Σ dy.
  void (*softmax_backward)(const float* y, const float* dy, int64_t outer, int64_t r, int64_t inner,
                           bool log_softmax, float* dx);
  // loss_i = Σ_c -q_ic·log p_ic with q = (1-ε)·target + ε/C; out is [N] (None) or [1].
  // Mean divides by the number of rows not ignored (hard targets) or by N (soft targets).
  void (*cross_entropy)(const float* logits, int64_t n, int64_t c, const ClassTarget& t, float smoothing,
                        Reduction reduction, float* out, float* lse);
  // dy is [N] (None) or [1]; dlogits = g_i·(p·Σ_c q_ic - q_i).
  void (*cross_entropy_backward)(const float* logits, const float* lse, int64_t n, int64_t c, const ClassTarget& t,
                                 float smoothing, Reduction reduction, const float* dy, float* dlogits);
  // loss_i = -logp[i, target_i] (hard targets only).
  void (*nll_loss)(const float* logp, int64_t n, int64_t c, const ClassTarget& t, Reduction reduction, float* out);
  void (*nll_loss_backward)(int64_t n, int64_t c, const ClassTarget& t, Reduction reduction, const float* dy,
                            float* dlogp);
};

}  // namespace kw
