// Data movement between strided views and contiguous tensors. Permute, transpose, slice
// and concat (and their backward passes) are all one of these two copies.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/shape.h"

namespace kw {

// A strided window into a contiguous buffer: element i of the view (row-major over shape)
// lives at offset + Σ index_d·strides[d].
struct View {
  Shape shape;
  Shape strides;
  int64_t offset = 0;
};

struct LayoutKernels {
  // dst (contiguous, numel(view.shape) elements) = src viewed through view.
  void (*gather)(DType t, const void* src, const View& view, void* dst);
  // dst viewed through view += src (contiguous). Views used here never overlap themselves.
  void (*scatter_add)(const float* src, const View& view, float* dst);
  // dst viewed through view = src (contiguous); for concat.
  void (*scatter)(DType t, const void* src, const View& view, void* dst);
  void (*cast)(DType from, const void* src, DType to, void* dst, int64_t n);
};

}  // namespace kw
