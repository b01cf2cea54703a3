// A typed, contiguous block of device memory. Tensors in JS hold shared references to a
// Storage; the memory goes back to the allocator when the last reference is dropped.
#pragma once
#include <cstring>
#include <memory>

#include "core/allocator.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/shape.h"

namespace kw {

struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  int64_t numel = 0;
  DType dtype = DType::F32;
  Device device = Device::CPU;

  Storage(DType t, int64_t n, Device d) : bytes(size_t(n) * dtype_size(t)), numel(n), dtype(t), device(d) {
    data = d == Device::CPU ? host_alloc(bytes) : cuda_runtime().alloc(bytes);
  }
  ~Storage() {
    if (device == Device::CPU)
      host_free(data, bytes);
    else
      cuda_runtime().free(data, bytes);  // loaded already: this storage came from it
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  template <typename T>
  T* as() { return static_cast<T*>(data); }
  template <typename T>
  const T* as() const { return static_cast<const T*>(data); }
};

using StoragePtr = std::shared_ptr<Storage>;

// Without a device, a storage goes where the current op's inputs are (see current_device).
inline StoragePtr new_storage(DType t, int64_t n, Device d = current_device()) {
  return std::make_shared<Storage>(t, n, d);
}
inline StoragePtr new_zeros(DType t, int64_t n, Device d = current_device()) {
  auto s = new_storage(t, n, d);
  if (d == Device::CPU)
    std::memset(s->data, 0, s->bytes);
  else
    cuda_runtime().memset_zero(s->data, s->bytes);
  return s;
}

}  // namespace kw
