// Storage: one allocation shared by a tensor and all its views, with a version counter.
//
// The version counter is bumped by every in-place write; autograd remembers the version of each
// tensor it saves for backward and refuses to use it if the version has moved.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/device.h"
#include "kernels/cpu/host_memory.h"

namespace smyrf {

// CPU memory for tensor data: kernels/cpu/host_memory.h's host_alloc (64-byte aligned, blocks of
// at least kHugePageMin bytes advised for huge pages unless SMYRF_HUGEPAGES=0), throwing
// smyrf::Error when out of memory. Free with cpu_free.
using kernels::cpu::kHugePageMin;
void* cpu_alloc(size_t nbytes);
void cpu_free(void* p);
// Whether cpu_alloc marks large allocations for huge pages (false when SMYRF_HUGEPAGES=0).
bool cpu_hugepages_enabled();
// Freed CPU blocks of 1 MiB or more are cached for reuse (kernels/cpu/host_memory.h: limit
// SMYRF_HOST_CACHE_MB, default min(2 GiB, RAM / 8)): its statistics, emptying it, its limit.
using kernels::cpu::empty_host_cache;
using kernels::cpu::host_cache_stats;
using kernels::cpu::HostCacheStats;
using kernels::cpu::set_host_cache_limit;

class Storage {
 public:
  // Allocates nbytes (64-byte aligned on the CPU, zero-filled when zero is true).
  Storage(size_t nbytes, Device device, bool zero = false);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  uint64_t version_ = 0;
};

}  // namespace smyrf
