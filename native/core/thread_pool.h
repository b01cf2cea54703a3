// A small persistent thread pool for data-parallel loops. The calling thread takes part;
// a parallel_for inside another runs inline, so kernels can nest without oversubscribing.
#pragma once
#include <cstdint>
#include <functional>

namespace kw {

int num_threads();
void set_num_threads(int n);  // 1..hardware threads; takes effect on the next loop

// Calls fn(begin, end) over [0, n) split into contiguous chunks of at least `grain` items.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// True while the current thread runs inside a parallel_for (kernels then call BLAS
// single-threaded instead of letting it spawn its own threads).
bool in_parallel_region();

}  // namespace kw
