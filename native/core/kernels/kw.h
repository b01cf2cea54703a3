// kw kernels (to be filled by the kw op family).
#pragma once
#include <cstdint>

#include "core/shape.h"

namespace kw {

struct KwKernels {
  int reserved = 0;
};

}  // namespace kw
