// The tiled GEMM core shared by gemm.cu and the fused KW assembly: C[z] = op(A[z])·op(B[z]),
// 64×64 output tiles, K in steps of 16, 256 threads each computing 4×4 in registers.
// Operands are read and results written through functors, so a kernel can read a gathered
// operand or write its result straight into another layout (the KW per-sample kernel layout)
// without materialising the plain matrix first:
//   la(z, r, k) → op(A)[r, k];  lb(z, k, c) → op(B)[k, c];  st(z, r, c, value) stores C[r, c].
// LA::kFastK / LB::kFastK say which index is contiguous in memory, so loads coalesce.
#pragma once
#include "cuda/common.cuh"

namespace kw::cuda {

constexpr int kTileM = 64, kTileN = 64, kTileK = 16, kThreadM = 4, kThreadN = 4;

template <typename LA, typename LB, typename ST>
__global__ void __launch_bounds__(256) gemm_tile_kernel(int64_t M, int64_t N, int64_t K, LA la, LB lb, ST st,
                                                        int64_t z0) {
  __shared__ float As[kTileK][kTileM + 1];  // +1: no bank conflicts on transposed stores
  __shared__ float Bs[kTileK][kTileN + 1];
  int64_t z = z0 + blockIdx.z;
  int64_t row0 = int64_t(blockIdx.y) * kTileM, col0 = int64_t(blockIdx.x) * kTileN;
  int tx = threadIdx.x % (kTileN / kThreadN), ty = threadIdx.x / (kTileN / kThreadN);
  float acc[kThreadM][kThreadN] = {};
  for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
    for (int e = threadIdx.x; e < kTileM * kTileK; e += blockDim.x) {
      int r = LA::kFastK ? e / kTileK : e % kTileM, k = LA::kFastK ? e % kTileK : e / kTileM;
      int64_t gr = row0 + r, gk = k0 + k;
      As[k][r] = gr < M && gk < K ? la(z, gr, gk) : 0.f;
    }
    for (int e = threadIdx.x; e < kTileK * kTileN; e += blockDim.x) {
      int c = LB::kFastK ? e / kTileK : e % kTileN, k = LB::kFastK ? e % kTileK : e / kTileN;
      int64_t gc = col0 + c, gk = k0 + k;
      Bs[k][c] = gc < N && gk < K ? lb(z, gk, gc) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kTileK; k++) {
      float a[kThreadM], b[kThreadN];
#pragma unroll
      for (int i = 0; i < kThreadM; i++) a[i] = As[k][ty * kThreadM + i];
#pragma unroll
      for (int j = 0; j < kThreadN; j++) b[j] = Bs[k][tx * kThreadN + j];
#pragma unroll
      for (int i = 0; i < kThreadM; i++)
#pragma unroll
        for (int j = 0; j < kThreadN; j++) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < kThreadM; i++)
#pragma unroll
    for (int j = 0; j < kThreadN; j++) {
      int64_t r = row0 + ty * kThreadM + i, c = col0 + tx * kThreadN + j;
      if (r < M && c < N) st(z, r, c, acc[i][j]);
    }
}

// Launches over batch products (gridDim.z is at most 65535, so large batches loop).
template <typename LA, typename LB, typename ST>
void gemm_tile(int64_t batch, int64_t M, int64_t N, int64_t K, LA la, LB lb, ST st) {
  if (batch == 0 || M == 0 || N == 0) return;
  KW_CHECK((M + kTileM - 1) / kTileM <= 65535, "CUDA GEMM: M = ", M, " is too large");
  dim3 grid(unsigned((N + kTileN - 1) / kTileN), unsigned((M + kTileM - 1) / kTileM), 1);
  for (int64_t z0 = 0; z0 < batch; z0 += 65535) {
    grid.z = unsigned(std::min<int64_t>(65535, batch - z0));
    gemm_tile_kernel<<<grid, 256, 0, stream()>>>(M, N, K, la, lb, st, z0);
    KW_LAUNCH_CHECK();
  }
}

}  // namespace kw::cuda
