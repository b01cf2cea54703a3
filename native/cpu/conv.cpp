// CPU conv kernels (to be filled by the conv op family).
#include "cpu/tables.h"

namespace kw::cpu {

const ConvKernels conv_kernels = {};

}  // namespace kw::cpu
