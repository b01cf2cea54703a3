// The CPU backend: always built. Each family's table lives beside its kernels in cpu/<family>.cpp.
#include "core/backend.h"

#include "cpu/tables.h"

namespace kw {

const Backend& backend_for(Device d) {
  static const Backend cpu = {
      "cpu",           &cpu::elementwise_kernels, &cpu::reduce_kernels, &cpu::gemm_kernels,
      &cpu::layout_kernels, &cpu::random_kernels, &cpu::conv_kernels, &cpu::norm_kernels,
      &cpu::pool_kernels,   &cpu::loss_kernels,   &cpu::kw_kernels,     &cpu::optim_kernels,
  };
  if (d == Device::CPU) return cpu;
  fail("device 'cuda' is not available: kernelwarehouse was built without CUDA "
       "(rebuild with nvcc installed and -DKW_CUDA=ON)");
}

}  // namespace kw
