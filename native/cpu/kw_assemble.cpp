// CPU kernels of KernelWarehouse's cell assembly: each sample's kernel is α_b (m×n) · E (n×cell),
// laid out as upstream's permute of [gs, goc, gic, co, ci, ck] into [goc·co, gic·ci, gs·ck].
// Threads take chunks of samples; each chunk's product lands in a per-thread scratch and is
// written into the kernel layout from there while it is still in cache (no whole-batch pass).
// Backward gathers dW the same way and runs dα = dW·Eᵀ and dE += αᵀ·dW per chunk.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "cpu/kw_impl.h"
#include "cpu/tables.h"

namespace kw::cpu::kwk {
namespace {

// Samples per chunk: one chunk per thread, so E is packed once per thread and the GEMMs are
// tall (dE = αᵀ·dW gets K = chunk·m), capped so the scratch stays well inside L3.
int64_t chunk_samples(const KwAssemblyDims& d) {
  const int64_t per_sample = std::max<int64_t>(1, d.mixtures * d.cell_size());
  const int64_t threads = num_threads();
  const int64_t per_thread = (d.batch + threads - 1) / threads;
  return std::max<int64_t>(1, std::min<int64_t>(per_thread, (int64_t(1) << 21) / per_sample));
}

// Moves one sample between the product layout T [gs, goc, gic | co, ci, ck] and the kernel
// layout W [goc, co, gic, ci, gs, ck]; to_kernel picks the direction.
template <bool to_kernel>
void relayout(const KwAssemblyDims& d, float* T, float* W) {
  const int64_t cell = d.cell_size(), ck = d.ck, gs = d.gs;
  const int64_t in_g = d.gic * d.ci, kflat = gs * ck;
  const int64_t s_stride = d.goc * d.gic * cell;
  for (int64_t o = 0; o < d.goc; o++)
    for (int64_t c = 0; c < d.co; c++)
      for (int64_t i = 0; i < d.gic; i++)
        for (int64_t dd = 0; dd < d.ci; dd++) {
          float* w = W + ((o * d.co + c) * in_g + i * d.ci + dd) * kflat;
          float* t = T + (o * d.gic + i) * cell + (c * d.ci + dd) * ck;
          if (ck == 1) {
            for (int64_t s = 0; s < gs; s++) {
              if (to_kernel)
                w[s] = t[s * s_stride];
              else
                t[s * s_stride] = w[s];
            }
          } else {
            for (int64_t s = 0; s < gs; s++)
              for (int64_t e = 0; e < ck; e++) {
                if (to_kernel)
                  w[s * ck + e] = t[s * s_stride + e];
                else
                  t[s * s_stride + e] = w[s * ck + e];
              }
          }
        }
}

}  // namespace

void relayout_to_kernel(const KwAssemblyDims& d, const float* T, float* W) {
  relayout<true>(d, const_cast<float*>(T), W);
}
void relayout_from_kernel(const KwAssemblyDims& d, const float* W, float* T) {
  relayout<false>(d, T, const_cast<float*>(W));
}

void assemble_forward(const KwAssemblyDims& d, const float* alpha, const float* cells, float* weight) {
  const int64_t m = d.mixtures, n = d.cells, cell = d.cell_size(), wsize = d.weight_size();
  const int64_t G = chunk_samples(d), chunks = (d.batch + G - 1) / G;
  parallel_for(chunks, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> T(size_t(G * m * cell));
    for (int64_t c = lo; c < hi; c++) {
      const int64_t b0 = c * G, nb = std::min(G, d.batch - b0);
      gemm_kernels.gemm(false, false, nb * m, cell, n, 1.f, alpha + b0 * m * n, n, cells, cell, 0.f, T.data(),
                        cell);
      for (int64_t b = 0; b < nb; b++)
        relayout<true>(d, T.data() + b * m * cell, weight + (b0 + b) * wsize);
    }
  });
}

void assemble_backward(const KwAssemblyDims& d, const float* dweight, const float* alpha, const float* cells,
                       float* dalpha, float* dcells) {
  const int64_t m = d.mixtures, n = d.cells, cell = d.cell_size(), wsize = d.weight_size();
  const int64_t G = chunk_samples(d), chunks = (d.batch + G - 1) / G;
  // One dE accumulator per part; part 0 writes into dcells itself.
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(num_threads(), chunks));
  std::vector<std::vector<float>> partial(size_t(dcells ? parts - 1 : 0));
  for (auto& v : partial) v.resize(size_t(n * cell));
  parallel_for(parts, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> T(size_t(G * m * cell));
    for (int64_t part = lo; part < hi; part++) {
      const int64_t c0 = part * chunks / parts, c1 = (part + 1) * chunks / parts;
      float* acc = dcells ? (part == 0 ? dcells : partial[size_t(part - 1)].data()) : nullptr;
      for (int64_t c = c0; c < c1; c++) {
        const int64_t b0 = c * G, nb = std::min(G, d.batch - b0);
        for (int64_t b = 0; b < nb; b++)
          relayout<false>(d, T.data() + b * m * cell, const_cast<float*>(dweight) + (b0 + b) * wsize);
        if (dalpha)
          gemm_kernels.gemm(false, true, nb * m, n, cell, 1.f, T.data(), cell, cells, cell, 0.f,
                            dalpha + b0 * m * n, n);
        if (acc)
          gemm_kernels.gemm(true, false, n, cell, nb * m, 1.f, alpha + b0 * m * n, n, T.data(), cell,
                            c == c0 ? 0.f : 1.f, acc, cell);
      }
    }
  });
  if (!dcells || parts == 1) return;
  parallel_for(n * cell, 4096, [&](int64_t lo, int64_t hi) {
    for (const auto& v : partial)
      for (int64_t k = lo; k < hi; k++) dcells[k] += v[size_t(k)];
  });
}

}  // namespace kw::cpu::kwk
