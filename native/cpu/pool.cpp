// CPU pool kernels (to be filled by the pool op family).
#include "cpu/tables.h"

namespace kw::cpu {

const PoolKernels pool_kernels = {};

}  // namespace kw::cpu
