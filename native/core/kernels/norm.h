// norm kernels (to be filled by the norm op family).
#pragma once
#include <cstdint>

#include "core/shape.h"

namespace kw {

struct NormKernels {
  int reserved = 0;
};

}  // namespace kw
