// libkw_cuda.so's entry point and its device runtime: the caching device allocator, copies,
// and the backend table (see core/device.h for how the addon opens this library).
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/device.h"
#include "cuda/common.cuh"
#include "cuda/tables.h"

namespace kw::cuda {
namespace {

// cudaMalloc synchronises the device and costs ~100 µs; training repeats the same sizes every
// step, so freed blocks are cached by rounded size and reused (like PyTorch's allocator).
size_t bucket_size(size_t bytes) {
  if (bytes == 0) return 512;
  if (bytes <= (size_t(1) << 20)) return (bytes + 511) & ~size_t(511);
  return (bytes + (size_t(2) << 20) - 1) & ~((size_t(2) << 20) - 1);
}

struct Cache {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free_blocks;
  int64_t cached = 0, live = 0, peak = 0, blocks = 0;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: storages may be freed during exit
  return *c;
}

void release_cached(Cache& c) {  // c.mu held
  for (auto& kv : c.free_blocks)
    for (void* p : kv.second) cudaFree(p);
  c.free_blocks.clear();
  c.cached = 0;
}

}  // namespace

void* device_alloc(size_t bytes) {
  size_t sz = bucket_size(bytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.free_blocks.find(sz);
  void* p = nullptr;
  if (it != c.free_blocks.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    c.cached -= int64_t(sz);
  } else {
    cudaError_t e = cudaMalloc(&p, sz);
    if (e == cudaErrorMemoryAllocation) {  // give the cache back and try once more
      cudaGetLastError();
      release_cached(c);
      e = cudaMalloc(&p, sz);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      fail("CUDA out of memory allocating ", bytes, " bytes (", c.live, " bytes in use): ", cudaGetErrorString(e));
    }
  }
  c.live += int64_t(sz);
  c.blocks++;
  c.peak = std::max(c.peak, c.live);
  return p;
}

void device_free(void* p, size_t bytes) {
  if (!p) return;
  size_t sz = bucket_size(bytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.live -= int64_t(sz);
  c.blocks--;
  c.free_blocks[sz].push_back(p);
  c.cached += int64_t(sz);
}

namespace {

void copy(void* dst, const void* src, size_t bytes, CopyKind kind) {
  if (bytes == 0) return;
  cudaMemcpyKind k = kind == CopyKind::HostToDevice   ? cudaMemcpyHostToDevice
                     : kind == CopyKind::DeviceToHost ? cudaMemcpyDeviceToHost
                                                      : cudaMemcpyDeviceToDevice;
  // Pageable host memory: cudaMemcpy waits for the stream's earlier kernels and for the copy.
  KW_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, k, stream()));
  if (kind != CopyKind::DeviceToDevice) KW_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void memset_zero(void* p, size_t bytes) {
  if (bytes) KW_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream()));
}

void synchronize() { KW_CUDA_CHECK(cudaStreamSynchronize(stream())); }

MemoryStats stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return {c.live, c.peak, c.cached, c.blocks};
}

void empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  release_cached(c);
}

std::string g_description;

const char* describe() { return g_description.c_str(); }

const Backend kBackend = {
    "cuda",          &elementwise_kernels, &reduce_kernels, &gemm_kernels,  &layout_kernels, &random_kernels,
    &conv_kernels,   &norm_kernels,        &pool_kernels,   &loss_kernels,  &kw_kernels,     &optim_kernels,
};

const DeviceRuntime kRuntime = {
    kDeviceAbi, &kBackend, describe, device_alloc, device_free, copy, memset_zero, synchronize, stats, empty_cache,
};

std::string version_str(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }

}  // namespace
}  // namespace kw::cuda

// The one exported symbol. Checks that a device is usable before handing out the table, so
// every reason CUDA cannot run is reported at the first request, in words.
extern "C" __attribute__((visibility("default"))) const kw::DeviceRuntime* kw_cuda_runtime(char* err, size_t err_len) {
  using namespace kw::cuda;
  int runtime = CUDART_VERSION, driver = 0;
  cudaDriverGetVersion(&driver);  // 0 when no driver is installed
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    std::snprintf(err, err_len,
                  "no CUDA device visible or the driver is too old (cudaGetDeviceCount: %s; "
                  "CUDA runtime %s, driver supports %s)",
                  e != cudaSuccess ? cudaGetErrorString(e) : "0 devices", version_str(runtime).c_str(),
                  driver ? version_str(driver).c_str() : "none (no NVIDIA driver found)");
    cudaGetLastError();
    return nullptr;
  }
  cudaDeviceProp prop{};
  if ((e = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess || (e = cudaSetDevice(0)) != cudaSuccess) {
    std::snprintf(err, err_len, "cannot use CUDA device 0: %s", cudaGetErrorString(e));
    return nullptr;
  }
  g_description = std::string("CUDA runtime ") + version_str(runtime) + ", driver " + version_str(driver) +
                  ", device 0: " + prop.name + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
                  ", " + std::to_string(prop.totalGlobalMem >> 20) + " MiB), " + std::to_string(count) +
                  " visible; GEMM: " + gemm_provider() + "; convolution: " + conv_provider();
  return &kRuntime;
}
