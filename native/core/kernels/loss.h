// loss kernels (to be filled by the loss op family).
#pragma once
#include <cstdint>

#include "core/shape.h"

namespace kw {

struct LossKernels {
  int reserved = 0;
};

}  // namespace kw
