// The caching device allocator behind every CUDA Storage.
//
// cudaMalloc and cudaFree synchronise the device and cost tens of microseconds, so freed blocks
// are kept in free lists and handed out again: after the first training step, a step that asks
// for the same sizes makes no cudaMalloc or cudaFree at all (tests/cuda checks num_mallocs).
//
//   * sizes are rounded to size classes: multiples of 512 bytes up to 1 MiB, then four classes per
//     power of two (at most 25% slack), so slightly different requests share blocks;
//   * a block is cached on the free list of the (device, stream, class) it was allocated for and
//     only reused by that stream, so a freed block is never handed to another stream while the
//     kernels of the first may still read it (no events needed);
//   * when cudaMalloc fails, every cached block of the device is released and the allocation
//     retried once; if it still fails, OutOfMemory reports the requested, free and cached bytes.
//
// SMYRF_CUDA_NO_CACHE=1 in the environment turns caching off (every free is a cudaFree), for
// compute-sanitizer runs that should see each allocation.
//
// Thread-safe (one mutex). Host code only. Status: ran on an NVIDIA H200 on 2026-11-28 (tests/cuda,
// all passing; scripts/gpu-check).
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/runtime.h"

namespace smyrf::kernels::cuda {

struct AllocatorStats {
  size_t allocated = 0;       // bytes handed out and not yet freed (size classes, not requests)
  size_t cached = 0;          // bytes held in free lists
  size_t peak_allocated = 0;  // maximum of `allocated` since start or reset_peak_stats
  uint64_t num_mallocs = 0;   // cudaMalloc calls made (a steady state adds none)
  uint64_t num_frees = 0;     // cudaFree calls made (by empty_cache or a retry after OOM)
  uint64_t num_cache_hits = 0;
};

class OutOfMemory : public std::runtime_error {
 public:
  OutOfMemory(const std::string& what, size_t requested, size_t free_bytes, size_t cached)
      : std::runtime_error(what), requested_(requested), free_(free_bytes), cached_(cached) {}
  size_t requested() const { return requested_; }
  size_t free_bytes() const { return free_; }
  size_t cached() const { return cached_; }

 private:
  size_t requested_, free_, cached_;
};

// nbytes on `device` for use on `stream` (0 bytes gives a valid, distinct 512-byte block).
void* cached_alloc(size_t nbytes, int device, Stream stream);
// Returns a block from cached_alloc to its free list (never throws: called from destructors).
void cached_free(void* ptr);
// The size class nbytes is rounded to.
size_t size_class(size_t nbytes);

AllocatorStats allocator_stats(int device);
void reset_peak_stats(int device);
// Releases every cached (free) block of every device to the driver.
void empty_cache();

}  // namespace smyrf::kernels::cuda
