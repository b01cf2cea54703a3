// conv kernels (to be filled by the conv op family).
#pragma once
#include <cstdint>

#include "core/shape.h"

namespace kw {

struct ConvKernels {
  int reserved = 0;
};

}  // namespace kw
