// CUDA KernelWarehouse cell assembly, fused: each sample's kernel is α_b (m×n) · E (n×cell),
// and the GEMM writes every result straight into upstream's per-sample kernel layout
// [goc·co, gic·ci, gs·ck] (the permute of [gs, goc, gic, co, ci, ck]) from its registers, so
// the plain product is never materialised. The backward reads dW through the same index map:
//   dα = gather(dW)·Eᵀ  and  dE = αᵀ·gather(dW) summed over the batch.
// Specification: native/cpu/kw_assemble.cpp. Also holds the KW kernel table.
#include "cuda/common.cuh"
#include "cuda/gemm_tile.cuh"
#include "cuda/tables.h"

namespace kw::cuda {

void kw_attention_forward(const KwAttentionDims& d, const float* x, const KwAttentionParams& p, float* alpha,
                          float* ws);
void kw_attention_backward(const KwAttentionDims& d, const float* dalpha, const KwAttentionParams& p, const float* ws,
                           const KwAttentionGrads& g);

namespace {

// Where (row R = b·m + (s·goc + o)·gic + i of α, column col = (c·ci + dd)·ck + e of E) lands
// in the batch of kernels.
struct KernelIndex {
  int64_t m, gic, goc, co, ci, ck, gs, wsize;
  explicit KernelIndex(const KwAssemblyDims& d)
      : m(d.mixtures), gic(d.gic), goc(d.goc), co(d.co), ci(d.ci), ck(d.ck), gs(d.gs), wsize(d.weight_size()) {}
  __device__ __forceinline__ int64_t operator()(int64_t R, int64_t col) const {
    int64_t b = R / m, r = R % m;
    int64_t i = r % gic, o = (r / gic) % goc, s = r / (gic * goc);
    int64_t e = col % ck, dd = (col / ck) % ci, c = col / (ck * ci);
    return b * wsize + ((o * co + c) * (gic * ci) + i * ci + dd) * (gs * ck) + s * ck + e;
  }
};

struct RowMajor {  // M×K (or K×N) row-major matrix read along its rows
  const float* p;
  int64_t ld;
  static constexpr bool kFastK = true;
  __device__ float operator()(int64_t, int64_t r, int64_t k) const { return p[r * ld + k]; }
};
struct ColMajorRead {  // element (r, k) of a matrix stored transposed: p[k·ld + r]
  const float* p;
  int64_t ld;
  static constexpr bool kFastK = false;
  __device__ float operator()(int64_t, int64_t r, int64_t k) const { return p[k * ld + r]; }
};
struct CellsB {  // E as the K×N operand of the forward: E[k, c]
  const float* p;
  int64_t cell;
  static constexpr bool kFastK = false;
  __device__ float operator()(int64_t, int64_t k, int64_t c) const { return p[k * cell + c]; }
};
struct CellsBT {  // Eᵀ as the K×N operand of dα: (k = col, c = j) → E[j, col]
  const float* p;
  int64_t cell;
  static constexpr bool kFastK = true;
  __device__ float operator()(int64_t, int64_t k, int64_t c) const { return p[c * cell + k]; }
};
struct GatherA {  // dW read as the [B·m, cell] product layout, rows R, columns col
  const float* dw;
  KernelIndex at;
  static constexpr bool kFastK = true;
  __device__ float operator()(int64_t, int64_t R, int64_t col) const { return dw[at(R, col)]; }
};
struct GatherB {  // the same, as the K×N operand of dE (k = R, c = col)
  const float* dw;
  KernelIndex at;
  static constexpr bool kFastK = false;
  __device__ float operator()(int64_t, int64_t R, int64_t col) const { return dw[at(R, col)]; }
};
struct ScatterStore {  // the forward's epilogue: into the per-sample kernel layout
  float* w;
  KernelIndex at;
  __device__ void operator()(int64_t, int64_t R, int64_t col, float v) const { w[at(R, col)] = v; }
};
struct PlainStore {
  float* p;
  int64_t ld;
  __device__ void operator()(int64_t, int64_t r, int64_t c, float v) const { p[r * ld + c] = v; }
};

void assemble_forward(const KwAssemblyDims& d, const float* alpha, const float* cells, float* weight) {
  const int64_t rows = d.batch * d.mixtures, cell = d.cell_size();
  if (rows == 0 || cell == 0) return;
  if (d.cells == 0) {  // an empty sum: every kernel entry is 0
    KW_CUDA_CHECK(cudaMemsetAsync(weight, 0, floats(d.batch * d.weight_size()), stream()));
    return;
  }
  gemm_tile(1, rows, cell, d.cells, RowMajor{alpha, d.cells}, CellsB{cells, cell},
            ScatterStore{weight, KernelIndex(d)});
}

void assemble_backward(const KwAssemblyDims& d, const float* dweight, const float* alpha, const float* cells,
                       float* dalpha, float* dcells) {
  const int64_t rows = d.batch * d.mixtures, cell = d.cell_size(), n = d.cells;
  KernelIndex at(d);
  if (dalpha && rows * n > 0)
    gemm_tile(1, rows, n, cell, GatherA{dweight, at}, CellsBT{cells, cell}, PlainStore{dalpha, n});
  if (dcells && n * cell > 0)
    gemm_tile(1, n, cell, rows, ColMajorRead{alpha, n}, GatherB{dweight, at}, PlainStore{dcells, cell});
}

}  // namespace

const KwKernels kw_kernels = {kw_attention_forward, kw_attention_backward, assemble_forward, assemble_backward};

}  // namespace kw::cuda
