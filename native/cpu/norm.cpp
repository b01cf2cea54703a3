// CPU norm kernels (to be filled by the norm op family).
#include "cpu/tables.h"

namespace kw::cpu {

const NormKernels norm_kernels = {};

}  // namespace kw::cpu
