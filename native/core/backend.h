// The backend interface: one table of kernels per device, grouped by op family. The binding
// picks the backend from the tensors' device in one place (backend_for) and calls through it;
// a device that was not built gives an error there instead of #ifdefs everywhere.
#pragma once
#include "core/kernels/conv.h"
#include "core/kernels/elementwise.h"
#include "core/kernels/gemm.h"
#include "core/kernels/kw.h"
#include "core/kernels/layout.h"
#include "core/kernels/loss.h"
#include "core/kernels/norm.h"
#include "core/kernels/optim.h"
#include "core/kernels/pool.h"
#include "core/kernels/random.h"
#include "core/kernels/reduce.h"
#include "core/storage.h"

namespace kw {

struct Backend {
  const char* name;
  const ElementwiseKernels* elementwise;
  const ReduceKernels* reduce;
  const GemmKernels* gemm;
  const LayoutKernels* layout;
  const RandomKernels* random;
  const ConvKernels* conv;
  const NormKernels* norm;
  const PoolKernels* pool;
  const LossKernels* loss;
  const KwKernels* kw;
  const OptimKernels* optim;
};

// Throws a KwError saying why when the device's backend is not available.
const Backend& backend_for(Device d);

}  // namespace kw
