// CPU kw kernels (to be filled by the kw op family).
#include "cpu/tables.h"

namespace kw::cpu {

const KwKernels kw_kernels = {};

}  // namespace kw::cpu
