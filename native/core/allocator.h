// Caching host allocator. Training repeats the same shapes every step, so freed blocks are
// kept in size buckets and handed out again instead of going back to the OS each time.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kw {

struct MemoryStats {
  int64_t live_bytes;    // bytes in blocks handed out and not yet freed
  int64_t peak_bytes;    // high-water mark of live_bytes
  int64_t cached_bytes;  // bytes held in the cache, ready for reuse
  int64_t live_blocks;
};

void* host_alloc(size_t bytes);        // 64-byte aligned; throws KwError when out of memory
void host_free(void* p, size_t bytes); // bytes must be the size passed to host_alloc
MemoryStats memory_stats();
void reset_peak_memory();
void empty_cache();                    // release every cached block to the OS

}  // namespace kw
