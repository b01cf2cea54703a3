// A typed, contiguous block of device memory. Tensors in JS hold shared references to a
// Storage; the memory goes back to the allocator when the last reference is dropped.
#pragma once
#include <cstring>
#include <memory>

#include "core/allocator.h"
#include "core/dtype.h"
#include "core/shape.h"

namespace kw {

enum class Device : int { CPU = 0, CUDA = 1 };

struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  int64_t numel = 0;
  DType dtype = DType::F32;
  Device device = Device::CPU;

  Storage(DType t, int64_t n) : bytes(size_t(n) * dtype_size(t)), numel(n), dtype(t) {
    data = host_alloc(bytes);
  }
  ~Storage() { host_free(data, bytes); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  template <typename T>
  T* as() { return static_cast<T*>(data); }
  template <typename T>
  const T* as() const { return static_cast<const T*>(data); }
};

using StoragePtr = std::shared_ptr<Storage>;

inline StoragePtr new_storage(DType t, int64_t n) { return std::make_shared<Storage>(t, n); }
inline StoragePtr new_zeros(DType t, int64_t n) {
  auto s = new_storage(t, n);
  std::memset(s->data, 0, s->bytes);
  return s;
}

}  // namespace kw
