// The CPU kernel tables, one per op family, each defined in cpu/<family>.cpp.
#pragma once
#include "core/backend.h"

namespace kw::cpu {

extern const ElementwiseKernels elementwise_kernels;
extern const ReduceKernels reduce_kernels;
extern const GemmKernels gemm_kernels;
extern const LayoutKernels layout_kernels;
extern const RandomKernels random_kernels;
extern const ConvKernels conv_kernels;
extern const NormKernels norm_kernels;
extern const PoolKernels pool_kernels;
extern const LossKernels loss_kernels;
extern const KwKernels kw_kernels;
extern const OptimKernels optim_kernels;

}  // namespace kw::cpu
