// Backend dispatch: the CPU tables are always built (each lives beside its kernels in
// cpu/<family>.cpp); the CUDA tables come from libkw_cuda.so, loaded on first use.
#include "core/backend.h"

#include "core/device.h"
#include "cpu/tables.h"

namespace kw {

const Backend& backend_for(Device d) {
  static const Backend cpu = {
      "cpu",           &cpu::elementwise_kernels, &cpu::reduce_kernels, &cpu::gemm_kernels,
      &cpu::layout_kernels, &cpu::random_kernels, &cpu::conv_kernels, &cpu::norm_kernels,
      &cpu::pool_kernels,   &cpu::loss_kernels,   &cpu::kw_kernels,     &cpu::optim_kernels,
  };
  if (d == Device::CPU) return cpu;
  return *cuda_runtime().backend;  // throws saying why CUDA is unavailable
}

}  // namespace kw
