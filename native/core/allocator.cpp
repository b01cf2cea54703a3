#include "core/allocator.h"

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "core/error.h"

namespace kw {
namespace {

// Blocks are rounded up so that near-identical sizes share a bucket.
size_t bucket_size(size_t bytes) {
  if (bytes == 0) return 64;
  if (bytes <= (1 << 20)) return (bytes + 511) & ~size_t(511);
  return (bytes + 65535) & ~size_t(65535);
}

// Above this much idle memory the cache frees instead of keeping blocks.
constexpr int64_t kMaxCachedBytes = int64_t(2) << 30;

struct Cache {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free_blocks;
  int64_t cached = 0;
  int64_t live = 0, peak = 0, blocks = 0;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: buffers may be freed during exit
  return *c;
}

}  // namespace

void* host_alloc(size_t bytes) {
  size_t sz = bucket_size(bytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(sz);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.cached -= int64_t(sz);
      c.live += int64_t(sz);
      c.blocks++;
      if (c.live > c.peak) c.peak = c.live;
      return p;
    }
  }
  void* p = std::aligned_alloc(64, sz);
  if (!p) {
    empty_cache();
    p = std::aligned_alloc(64, sz);
  }
  KW_CHECK(p != nullptr, "out of memory allocating ", bytes, " bytes");
  std::lock_guard<std::mutex> lock(c.mu);
  c.live += int64_t(sz);
  c.blocks++;
  if (c.live > c.peak) c.peak = c.live;
  return p;
}

void host_free(void* p, size_t bytes) {
  if (!p) return;
  size_t sz = bucket_size(bytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.live -= int64_t(sz);
  c.blocks--;
  if (c.cached + int64_t(sz) <= kMaxCachedBytes) {
    c.free_blocks[sz].push_back(p);
    c.cached += int64_t(sz);
  } else {
    std::free(p);
  }
}

MemoryStats memory_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return {c.live, c.peak, c.cached, c.blocks};
}

void reset_peak_memory() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.peak = c.live;
}

void empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& kv : c.free_blocks)
    for (void* p : kv.second) std::free(p);
  c.free_blocks.clear();
  c.cached = 0;
}

}  // namespace kw
