// The CPU KernelWarehouse kernels, defined in kw_attention.cpp, kw_assemble.cpp and kw_conv.cpp and
// gathered into cpu::kw_kernels by kw.cpp.
#pragma once
#include "core/kernels/kw.h"
#include "core/storage.h"

namespace kw::cpu::kwk {

void attention_forward(const KwAttentionDims& d, const float* x, const KwAttentionParams& p, float* alpha,
                       float* workspace);
void attention_backward(const KwAttentionDims& d, const float* dalpha, const KwAttentionParams& p,
                        const float* workspace, const KwAttentionGrads& g);
void assemble_forward(const KwAssemblyDims& d, const float* alpha, const float* cells, float* weight);
void assemble_backward(const KwAssemblyDims& d, const float* dweight, const float* alpha, const float* cells,
                       float* dalpha, float* dcells);
void conv_forward(const KwAssemblyDims& a, const ConvGeometry& g, KwConvStrategy s, int64_t samples_per_chunk,
                  const float* x,
                  const float* alpha, const float* cells, const float* bias, float* y);
void conv_backward(const KwAssemblyDims& a, const ConvGeometry& g, KwConvStrategy s, int64_t samples_per_chunk,
                   const float* dy,
                   const float* x, const float* alpha, const float* cells, float* dx, float* dalpha,
                   float* dcells, float* dbias);

// The fused-panel strategy (cpu/kw_conv_fused.cpp): forward and the input gradient.
bool fused_panels_apply(const KwAssemblyDims& a, const ConvGeometry& g);
bool fused_panels_pay_off(const KwAssemblyDims& a);  // Auto's extra condition
void fused_forward(const KwAssemblyDims& a, const ConvGeometry& g, const float* x, const float* alpha,
                   const float* cells, const float* bias, float* y);
void fused_backward_input(const KwAssemblyDims& a, const ConvGeometry& g, const float* dy, const float* alpha,
                          const float* cells, float* dx);
// The Winograd strategy (cpu/kw_conv_winograd.cpp) for 3×3 stride-1 'same' layers with one cell
// per tap: F(m×m, 3×3) with the tile m that winograd_tile gives (0: Auto should not take it; for
// the warehouse gradients, the weight-gradient pass).
bool winograd_applies(const KwAssemblyDims& a, const ConvGeometry& g);
int winograd_tile(const KwAssemblyDims& a, const ConvGeometry& g, bool warehouse, bool requested);
void winograd_forward(const KwAssemblyDims& a, const ConvGeometry& g, int tile, const float* x, const float* alpha,
                      const float* cells, const float* bias, float* y);
void winograd_backward_input(const KwAssemblyDims& a, const ConvGeometry& g, int tile, const float* dy,
                             const float* alpha, const float* cells, float* dx);
void winograd_backward_warehouse(const KwAssemblyDims& a, const ConvGeometry& g, int tile, const float* dy,
                                 const float* x, const float* alpha, const float* cells, float* dalpha, float* dcells);

// The cells regrouped in strips of 32 output channels (by_o) or 32 cell columns (cpu/kw_conv_fused.cpp).
StoragePtr regroup_cells(const KwAssemblyDims& a, const float* cells, bool by_o);
double panel_assembly_seconds(const KwAssemblyDims& a, int64_t samples);
void fused_backward_warehouse(const KwAssemblyDims& a, const ConvGeometry& g, const float* dy, const float* x,
                              const float* alpha, const float* cells, float* dalpha, float* dcells);

// Moves one sample between the product layout T [gs, goc, gic | co, ci, ck] (rows of α_b·E) and
// the kernel layout W [goc·co, gic·ci, gs·ck]; to_kernel picks the direction.
void relayout_to_kernel(const KwAssemblyDims& d, const float* T, float* W);
void relayout_from_kernel(const KwAssemblyDims& d, const float* W, float* T);

}  // namespace kw::cpu::kwk
