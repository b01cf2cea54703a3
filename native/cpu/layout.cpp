// CPU strided copies between views and contiguous buffers (permute, slice, concat, casts).
#include <cstring>

#include "core/thread_pool.h"
#include "cpu/tables.h"

namespace kw::cpu {
namespace {

// Calls f(view_offset, flat_index, run) for each innermost run of the view, in row-major order.
template <typename F>
void for_each_run(const View& v, F f) {
  int64_t n = numel(v.shape);
  if (n == 0) return;
  size_t nd = v.shape.size();
  int64_t inner = nd ? v.shape[nd - 1] : 1;
  int64_t rows = n / inner;
  parallel_for(rows, std::max<int64_t>(1, 8192 / inner), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) {
      int64_t rem = r, off = v.offset;
      for (size_t d = nd - 1; d-- > 0;) {
        off += (rem % v.shape[d]) * v.strides[d];
        rem /= v.shape[d];
      }
      f(off, r * inner, inner);
    }
  });
}

template <typename T>
void gather_t(const T* src, const View& v, T* dst) {
  int64_t is = v.shape.empty() ? 1 : v.strides.back();
  for_each_run(v, [&](int64_t off, int64_t flat, int64_t run) {
    if (is == 1)
      std::memcpy(dst + flat, src + off, size_t(run) * sizeof(T));
    else
      for (int64_t i = 0; i < run; i++) dst[flat + i] = src[off + i * is];
  });
}

template <typename T>
void scatter_t(const T* src, const View& v, T* dst) {
  int64_t is = v.shape.empty() ? 1 : v.strides.back();
  for_each_run(v, [&](int64_t off, int64_t flat, int64_t run) {
    for (int64_t i = 0; i < run; i++) dst[off + i * is] = src[flat + i];
  });
}

void gather(DType t, const void* src, const View& v, void* dst) {
  switch (dtype_size(t)) {
    case 1: return gather_t(static_cast<const uint8_t*>(src), v, static_cast<uint8_t*>(dst));
    case 4: return gather_t(static_cast<const uint32_t*>(src), v, static_cast<uint32_t*>(dst));
    case 8: return gather_t(static_cast<const uint64_t*>(src), v, static_cast<uint64_t*>(dst));
  }
}

void scatter(DType t, const void* src, const View& v, void* dst) {
  switch (dtype_size(t)) {
    case 1: return scatter_t(static_cast<const uint8_t*>(src), v, static_cast<uint8_t*>(dst));
    case 4: return scatter_t(static_cast<const uint32_t*>(src), v, static_cast<uint32_t*>(dst));
    case 8: return scatter_t(static_cast<const uint64_t*>(src), v, static_cast<uint64_t*>(dst));
  }
}

// Rows of a view can alias each other only when a stride is 0 (an expand); those views are
// summed row by row on one thread so no two threads add into the same element.
void scatter_add(const float* src, const View& v, float* dst) {
  bool aliasing = false;
  for (size_t d = 0; d < v.shape.size(); d++) aliasing |= v.strides[d] == 0 && v.shape[d] > 1;
  int64_t is = v.shape.empty() ? 1 : v.strides.back();
  auto add_run = [&](int64_t off, int64_t flat, int64_t run) {
    for (int64_t i = 0; i < run; i++) dst[off + i * is] += src[flat + i];
  };
  if (!aliasing) return for_each_run(v, add_run);
  int64_t n = numel(v.shape);
  for (int64_t i = 0; i < n; i++) {
    int64_t rem = i, off = v.offset;
    for (size_t d = v.shape.size(); d-- > 0;) {
      off += (rem % v.shape[d]) * v.strides[d];
      rem /= v.shape[d];
    }
    dst[off] += src[i];
  }
}

template <typename A, typename B>
void cast_t(const A* s, B* d, int64_t n) {
  for (int64_t i = 0; i < n; i++) d[i] = B(s[i]);
}

template <typename A>
void cast_from(const A* s, DType to, void* dst, int64_t n) {
  switch (to) {
    case DType::F32: return cast_t(s, static_cast<float*>(dst), n);
    case DType::I32: return cast_t(s, static_cast<int32_t*>(dst), n);
    case DType::I64: return cast_t(s, static_cast<int64_t*>(dst), n);
    case DType::U8: return cast_t(s, static_cast<uint8_t*>(dst), n);
  }
}

void cast(DType from, const void* src, DType to, void* dst, int64_t n) {
  switch (from) {
    case DType::F32: return cast_from(static_cast<const float*>(src), to, dst, n);
    case DType::I32: return cast_from(static_cast<const int32_t*>(src), to, dst, n);
    case DType::I64: return cast_from(static_cast<const int64_t*>(src), to, dst, n);
    case DType::U8: return cast_from(static_cast<const uint8_t*>(src), to, dst, n);
  }
}

}  // namespace

const LayoutKernels layout_kernels = {gather, scatter_add, scatter, cast};

}  // namespace kw::cpu
