// The CPU KernelWarehouse kernel table (attention in kw_attention.cpp, assembly in kw_assemble.cpp,
// the fused convolution in kw_conv.cpp).
#include "cpu/kw_impl.h"
#include "cpu/tables.h"

namespace kw::cpu {

const KwKernels kw_kernels = {kwk::attention_forward, kwk::attention_backward, kwk::assemble_forward,
                              kwk::assemble_backward, kwk::conv_forward, kwk::conv_backward,
                              kwk::panel_assembly_seconds};

}  // namespace kw::cpu
