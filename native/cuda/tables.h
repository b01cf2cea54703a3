// The CUDA kernel tables, one per op family, each defined in cuda/<family>.cu.
#pragma once
#include "core/backend.h"

namespace kw::cuda {

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

// Device GEMM for other CUDA kernels (cuBLAS where built with it, else the tiled kernel):
// row-major, the same contract as GemmKernels::gemm_batched.
void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t stride_a, const float* B, int64_t stride_b, float beta, float* C,
                  int64_t stride_c);
// One product with explicit leading dimensions (GemmKernels::gemm).
void gemm_ld(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
             const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
const char* gemm_provider();
const char* conv_provider();

}  // namespace kw::cuda
