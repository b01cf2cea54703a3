// CUDA strided copies between views and contiguous buffers, and dtype casts.
// Specification: native/cpu/layout.cpp. Views arrive already bounds-checked by the binding.
#include "cuda/common.cuh"
#include "cuda/tables.h"

namespace kw::cuda {
namespace {

constexpr int kMaxDims = 10;

struct DevView {
  int nd;
  int64_t offset;
  int64_t shape[kMaxDims], strides[kMaxDims];
};

DevView to_dev(const View& v) {
  KW_CHECK(v.shape.size() <= size_t(kMaxDims), "CUDA views support up to ", kMaxDims, " dimensions, got ",
           v.shape.size());
  DevView d{};
  d.nd = int(v.shape.size());
  d.offset = v.offset;
  for (int i = 0; i < d.nd; i++) d.shape[i] = v.shape[size_t(i)], d.strides[i] = v.strides[size_t(i)];
  return d;
}

__device__ __forceinline__ int64_t view_offset(const DevView& v, int64_t flat) {
  int64_t off = v.offset;
  for (int d = v.nd - 1; d >= 0; d--) {
    off += (flat % v.shape[d]) * v.strides[d];
    flat /= v.shape[d];
  }
  return off;
}

template <typename T>
__global__ void gather_kernel(const T* src, DevView v, T* dst, int64_t n) {
  KW_FOR(i, n) dst[i] = src[view_offset(v, i)];
}
template <typename T>
__global__ void scatter_kernel(const T* src, DevView v, T* dst, int64_t n) {
  KW_FOR(i, n) dst[view_offset(v, i)] = src[i];
}
// Views with a 0 stride (the backward of expand) alias: atomics make the sum race-free.
// Without aliasing each destination is written once, so a plain add is exact and ordered.
__global__ void scatter_add_kernel(const float* src, DevView v, float* dst, int64_t n, bool aliasing) {
  KW_FOR(i, n) {
    int64_t o = view_offset(v, i);
    if (aliasing)
      atomicAdd(dst + o, src[i]);
    else
      dst[o] += src[i];
  }
}

void gather(DType t, const void* src, const View& v, void* dst) {
  int64_t n = numel(v.shape);
  if (n == 0) return;
  DevView d = to_dev(v);
  switch (dtype_size(t)) {
    case 1: gather_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(static_cast<const uint8_t*>(src), d, static_cast<uint8_t*>(dst), n); break;
    case 4: gather_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(static_cast<const uint32_t*>(src), d, static_cast<uint32_t*>(dst), n); break;
    case 8: gather_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(static_cast<const uint64_t*>(src), d, static_cast<uint64_t*>(dst), n); break;
  }
  KW_LAUNCH_CHECK();
}

void scatter(DType t, const void* src, const View& v, void* dst) {
  int64_t n = numel(v.shape);
  if (n == 0) return;
  DevView d = to_dev(v);
  switch (dtype_size(t)) {
    case 1: scatter_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(static_cast<const uint8_t*>(src), d, static_cast<uint8_t*>(dst), n); break;
    case 4: scatter_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(static_cast<const uint32_t*>(src), d, static_cast<uint32_t*>(dst), n); break;
    case 8: scatter_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(static_cast<const uint64_t*>(src), d, static_cast<uint64_t*>(dst), n); break;
  }
  KW_LAUNCH_CHECK();
}

void scatter_add(const float* src, const View& v, float* dst) {
  int64_t n = numel(v.shape);
  if (n == 0) return;
  bool aliasing = false;
  for (size_t d = 0; d < v.shape.size(); d++) aliasing |= v.strides[d] == 0 && v.shape[d] > 1;
  scatter_add_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(src, to_dev(v), dst, n, aliasing);
  KW_LAUNCH_CHECK();
}

template <typename A, typename B>
__global__ void cast_kernel(const A* s, B* d, int64_t n) {
  KW_FOR(i, n) d[i] = B(s[i]);
}

template <typename A>
void cast_from(const A* s, DType to, void* dst, int64_t n) {
  unsigned g = blocks_for(n);
  switch (to) {
    case DType::F32: cast_kernel<<<g, kThreads, 0, stream()>>>(s, static_cast<float*>(dst), n); break;
    case DType::I32: cast_kernel<<<g, kThreads, 0, stream()>>>(s, static_cast<int32_t*>(dst), n); break;
    case DType::I64: cast_kernel<<<g, kThreads, 0, stream()>>>(s, static_cast<int64_t*>(dst), n); break;
    case DType::U8: cast_kernel<<<g, kThreads, 0, stream()>>>(s, static_cast<uint8_t*>(dst), n); break;
  }
  KW_LAUNCH_CHECK();
}

void cast(DType from, const void* src, DType to, void* dst, int64_t n) {
  if (n == 0) return;
  switch (from) {
    case DType::F32: return cast_from(static_cast<const float*>(src), to, dst, n);
    case DType::I32: return cast_from(static_cast<const int32_t*>(src), to, dst, n);
    case DType::I64: return cast_from(static_cast<const int64_t*>(src), to, dst, n);
    case DType::U8: return cast_from(static_cast<const uint8_t*>(src), to, dst, n);
  }
}

}  // namespace

const LayoutKernels layout_kernels = {gather, scatter_add, scatter, cast};

}  // namespace kw::cuda
