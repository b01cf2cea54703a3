// Shared by every CUDA kernel file: error checks, launch geometry, the stream, scratch memory.
// Every kernel runs on one stream (the legacy default stream), so the caching allocator can hand
// a freed block to the next op without synchronising: stream order already serialises them.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "core/backend.h"
#include "core/error.h"

#define KW_CUDA_CHECK(expr)                                                                       \
  do {                                                                                            \
    cudaError_t kw_e_ = (expr);                                                                   \
    if (kw_e_ != cudaSuccess)                                                                     \
      ::kw::fail("CUDA error: ", cudaGetErrorString(kw_e_), " (", #expr, " at ", __FILE__, ":", \
                 __LINE__, ")");                                                                  \
  } while (0)
// After a launch: reports a bad configuration now instead of at the next synchronisation.
#define KW_LAUNCH_CHECK() KW_CUDA_CHECK(cudaGetLastError())

// Grid-stride loop over [0, n) with 64-bit indices (tensors may exceed 2^31 elements).
#define KW_FOR(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)

namespace kw::cuda {

constexpr int kThreads = 256;

// Enough blocks to cover n with grid-stride loops, capped so huge tensors loop instead.
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  int64_t b = (n + threads - 1) / threads;
  return unsigned(std::max<int64_t>(1, std::min<int64_t>(b, 65535LL * 8)));
}

inline cudaStream_t stream() { return 0; }

// The caching allocator (runtime.cu).
void* device_alloc(size_t bytes);
void device_free(void* p, size_t bytes);

// Temporary device memory for one kernel call, returned to the cache at scope end.
struct Scratch {
  void* ptr = nullptr;
  size_t bytes = 0;
  explicit Scratch(size_t n_bytes) : bytes(n_bytes) { ptr = n_bytes ? device_alloc(n_bytes) : nullptr; }
  ~Scratch() {
    if (ptr) device_free(ptr, bytes);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename T>
  T* as() const { return static_cast<T*>(ptr); }
};

// Floats in a scratch buffer.
inline size_t floats(int64_t n) { return size_t(n) * sizeof(float); }

// Block-wide sum of one value per thread (blockDim.x a multiple of 32, at most 1024).
__device__ inline float block_sum(float v) {
  __shared__ float warp_sums[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // warp_sums may still be read by a previous call
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  int nwarps = (blockDim.x + 31) >> 5;
  v = threadIdx.x < nwarps ? warp_sums[threadIdx.x] : 0.f;
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  __shared__ float total;
  if (threadIdx.x == 0) total = v;
  __syncthreads();
  return total;
}

}  // namespace kw::cuda
