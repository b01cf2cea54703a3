// The CPU KernelWarehouse kernels, defined in kw_attention.cpp and kw_assemble.cpp and
// gathered into cpu::kw_kernels by kw.cpp.
#pragma once
#include "core/kernels/kw.h"

namespace kw::cpu::kwk {

void attention_forward(const KwAttentionDims& d, const float* x, const KwAttentionParams& p, float* alpha,
                       float* workspace);
void attention_backward(const KwAttentionDims& d, const float* dalpha, const KwAttentionParams& p,
                        const float* workspace, const KwAttentionGrads& g);
void assemble_forward(const KwAssemblyDims& d, const float* alpha, const float* cells, float* weight);
void assemble_backward(const KwAssemblyDims& d, const float* dweight, const float* alpha, const float* cells,
                       float* dalpha, float* dcells);

}  // namespace kw::cpu::kwk
