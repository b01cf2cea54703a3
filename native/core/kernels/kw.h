// KernelWarehouse kernels: the fused attention head and the cell assembly, forward and
// backward. Shapes follow upstream (OSVAI/KernelWarehouse, modules/kernel_warehouse.py):
//
//   attention: x [B, C, S] → mean over S → fc1 → norm → ReLU → fc2 (→ basis map) →
//              rows [B·m, n+1] / (Σ|row| + 1e-3) → (1-τ)·row + τ·temp_bias → drop slot n
//              → α [B·m, n]
//   assembly:  W[b, o·co+c, i·ci+d, s·CK+e] = Σ_j α[b·m + (s·goc+o)·gic + i, j] · E[j, c, d, e]
//              (upstream's permute (0,2,4,3,5,1,6,...) of [B, gs, goc, gic, co, ci, ck...])
#pragma once
#include <cstdint>

#include "core/kernels/conv.h"
#include "core/shape.h"

namespace kw {

enum class KwNorm : int { BatchNormTrain = 0, BatchNormEval = 1, LayerNorm = 2 };

struct KwAttentionDims {
  int64_t batch = 0, channels = 0, spatial = 0;  // x: [B, C, S]
  int64_t hidden = 0;                           // H: fc1's out features
  int64_t mixtures = 0, cells = 0;              // m and n; each mixture has n + 1 logits
  KwNorm norm = KwNorm::BatchNormTrain;
  bool fc1_bias = false;
  // Non-local basis path (num_basis > 0): fc2 gives (L + K + 1) logits per mixture, fc3 maps
  // the K basis logits to the n − L other cells, inserted around the L local ones at `start`.
  int64_t num_local = 0, num_basis = 0, start = 0;
  float eps = 1e-5f, momentum = 0.1f, temperature = 0.f;

  bool basis() const { return num_basis > 0; }
  int64_t slots() const { return cells + 1; }
  // fc2's out features per sample.
  int64_t fc2_out() const { return basis() ? (num_local + num_basis + 1) * mixtures : slots() * mixtures; }
  // Where the non-local cells split around the local ones (Python slicing clamps `start`).
  int64_t split() const {
    int64_t nonlocal = cells - num_local;
    return start < nonlocal ? start : nonlocal;
  }
};

// Offsets into the attention workspace the forward fills and the backward reads.
struct KwAttentionWorkspace {
  int64_t pooled, xhat, rstd, act, fc2, logits, denom, total;
  explicit KwAttentionWorkspace(const KwAttentionDims& d) {
    int64_t B = d.batch, H = d.hidden;
    pooled = 0;                                      // [B, C]
    xhat = pooled + B * d.channels;                  // [B, H] normalised fc1 output
    rstd = xhat + B * H;                             // [H] (BatchNorm) or [B] (LayerNorm)
    act = rstd + (d.norm == KwNorm::LayerNorm ? B : H);  // [B, H] after ReLU
    fc2 = act + B * H;                               // [B, fc2_out]
    logits = fc2 + B * d.fc2_out();                  // [B·m, n+1] before normalisation
    denom = logits + B * d.mixtures * d.slots();     // [B·m]
    total = denom + B * d.mixtures;
  }
};

// Parameters; fc1_b, fc2_b, fc3_w, basis_bias may be null when the layout has none.
// running_mean/var are read in eval mode and updated in place in BatchNorm training mode.
struct KwAttentionParams {
  const float* fc1_w = nullptr;  // [H, C]
  const float* fc1_b = nullptr;  // [H]
  const float* norm_w = nullptr;  // [H]
  const float* norm_b = nullptr;  // [H]
  float* running_mean = nullptr;  // [H]
  float* running_var = nullptr;   // [H]
  const float* fc2_w = nullptr;  // [fc2_out, H]
  const float* fc2_b = nullptr;  // [m·(n+1)] (no basis only)
  const float* fc3_w = nullptr;  // [n − L, K]
  const float* basis_bias = nullptr;  // [m·(n+1)]
  const float* temp_bias = nullptr;   // [m·(n+1)]
};

// Gradient outputs, each overwritten; null means not wanted.
struct KwAttentionGrads {
  float* dx = nullptr;  // [B, C, S]
  float* fc1_w = nullptr;
  float* fc1_b = nullptr;
  float* norm_w = nullptr;
  float* norm_b = nullptr;
  float* fc2_w = nullptr;
  float* fc2_b = nullptr;
  float* fc3_w = nullptr;
  float* basis_bias = nullptr;
};

struct KwAssemblyDims {
  int64_t batch = 0, mixtures = 0, cells = 0;  // α: [B·m, n]
  int64_t gs = 0, goc = 0, gic = 0;            // m = gs·goc·gic
  int64_t co = 0, ci = 0, ck = 0;              // a cell is [co, ci, ck] (ck: flattened cell kernel)
  int64_t cell_size() const { return co * ci * ck; }
  int64_t weight_size() const { return goc * co * gic * ci * gs * ck; }  // one sample's kernel
};

// The fused KW convolution y = conv(x, W_b) with W_b = α_b·E never materialises the batch of
// kernels. Strategies (cpu/kw_conv.cpp): Chunked assembles a few samples' kernels at a time into
// per-thread scratch and convolves them; InputMix (groups = 1) mixes the input columns with α
// first, V_b = α_bᵀ·col_b, then y = Σ_j E_j·V_j over the whole batch: cheaper when the layer has
// few output positions. Panels (groups = 1, co and ci·ck multiples of 32) assembles each
// sample's kernel 32 output channels at a time straight into the packed panel a register-blocked
// GEMM reads. Winograd (3×3 stride-1 'same' layers with one cell per tap) assembles the
// Winograd-domain kernel the same way, as a mixture of the cells, and multiplies F(2×2, 3×3)
// tiles. Auto picks by the FLOP cost model (kw_conv_strategy).
enum class KwConvStrategy : int { Auto = 0, Chunked = 1, InputMix = 2, Panels = 3, Winograd = 4 };

// The strategy Auto resolves to (or the requested one when it is applicable).
KwConvStrategy kw_conv_strategy(const KwAssemblyDims& a, const ConvGeometry& g, KwConvStrategy requested);
// The tile size m of F(m×m, 3×3) the Winograd strategy runs the forward with (2 or 4; 0 when the
// strategy is not Winograd).
int kw_conv_winograd_tile(const KwAssemblyDims& a, const ConvGeometry& g, KwConvStrategy requested);

struct KwKernels {
  // α [B·m, n] and the workspace (KwAttentionWorkspace(d).total floats) from x [B, C, S].
  void (*attention_forward)(const KwAttentionDims& d, const float* x, const KwAttentionParams& p,
                            float* alpha, float* workspace);
  void (*attention_backward)(const KwAttentionDims& d, const float* dalpha, const KwAttentionParams& p,
                             const float* workspace, const KwAttentionGrads& g);
  // weight [B, goc·co, gic·ci, gs·ck] from α [B·m, n] and cells [n, co·ci·ck].
  void (*assemble_forward)(const KwAssemblyDims& d, const float* alpha, const float* cells, float* weight);
  // dalpha = gather(dW)·Eᵀ and dcells = Σ_b α_bᵀ·gather(dW_b); either output may be null.
  void (*assemble_backward)(const KwAssemblyDims& d, const float* dweight, const float* alpha,
                            const float* cells, float* dalpha, float* dcells);
  // y [B, out, out...] = conv(x, assemble(α, cells)) + bias; g has per_sample_weight set and
  // out = goc·co, in/groups = gic·ci, kernel size = gs·ck. bias may be null. samples_per_chunk
  // caps the samples the kernels block together (0: their own choice; tests use small caps to
  // reach the multi-chunk paths with small tensors).
  void (*conv_forward)(const KwAssemblyDims& a, const ConvGeometry& g, KwConvStrategy s, int64_t samples_per_chunk,
                       const float* x, const float* alpha, const float* cells, const float* bias, float* y);
  // Gradients from dy, each overwritten; a null output means not wanted.
  void (*conv_backward)(const KwAssemblyDims& a, const ConvGeometry& g, KwConvStrategy s, int64_t samples_per_chunk,
                        const float* dy, const float* x, const float* alpha, const float* cells, float* dx,
                        float* dalpha, float* dcells, float* dbias);
  // Seconds the panels strategy's forward assembly GEMMs take for `samples` samples of random
  // α and cells, run as conv_forward runs them (bench/kw.ts); null where there is none.
  double (*panel_assembly_seconds)(const KwAssemblyDims& a, int64_t samples);
};

}  // namespace kw
