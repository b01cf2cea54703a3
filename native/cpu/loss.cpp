// CPU loss kernels (to be filled by the loss op family).
#include "cpu/tables.h"

namespace kw::cpu {

const LossKernels loss_kernels = {};

}  // namespace kw::cpu
