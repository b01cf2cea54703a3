// The seam between the addon and the CUDA backend. The addon never links CUDA: the backend is
// libkw_cuda.so next to the addon, opened with dlopen the first time a CUDA tensor is asked
// for, so the CPU path loads on machines without CUDA. The library exports one C function,
// kw_cuda_runtime, returning this table; kDeviceAbi guards against a stale library.
#pragma once
#include <cstddef>
#include <string>

#include "core/allocator.h"

namespace kw {

struct Backend;

enum class Device : int { CPU = 0, CUDA = 1 };

constexpr int kDeviceAbi = 1;

enum class CopyKind : int { HostToDevice = 0, DeviceToHost = 1, DeviceToDevice = 2 };

struct DeviceRuntime {
  int abi;
  const Backend* backend;
  const char* (*describe)();  // toolkit, driver, device, cuDNN/cuBLAS found or not
  // Caching device allocator (stream-ordered on the one stream every kernel runs on).
  void* (*alloc)(size_t bytes);  // throws KwError when the device is out of memory
  void (*free)(void* p, size_t bytes);
  void (*copy)(void* dst, const void* src, size_t bytes, CopyKind kind);  // host side waits
  void (*memset_zero)(void* p, size_t bytes);
  void (*synchronize)();
  MemoryStats (*memory_stats)();
  void (*empty_cache)();
};

// The entry point libkw_cuda.so exports. Returns null and writes why into err when no device
// can be used (no driver, driver too old, no device visible).
extern "C" typedef const DeviceRuntime* (*KwCudaEntry)(char* err, size_t err_len);

// Loads libkw_cuda.so on first use; throws KwError saying why CUDA is unavailable.
const DeviceRuntime& cuda_runtime();
// Whether CUDA can be used, without throwing; why receives the reason when it cannot.
bool cuda_available(std::string* why);
// Whether libkw_cuda.so was built beside this addon (a device may still be missing).
bool cuda_built();
// Where the addon looks for the library (KW_CUDA_LIB overrides).
std::string cuda_library_path();

// The device new storages are created on when a caller does not say: the binding sets it from
// the first tensor argument of each call, so an op's outputs live where its inputs do.
Device current_device();
void set_current_device(Device d);

}  // namespace kw
