// pool kernels (to be filled by the pool op family).
#pragma once
#include <cstdint>

#include "core/shape.h"

namespace kw {

struct PoolKernels {
  int reserved = 0;
};

}  // namespace kw
