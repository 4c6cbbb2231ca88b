// Storage: one allocation shared by a tensor and all its views, with a version counter.
//
// The version counter is bumped by every in-place write; autograd remembers the version of each
// tensor it saves for backward and refuses to use it if the version has moved.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/device.h"

namespace smyrf {

// CPU memory for tensor data, 64-byte aligned. In allocations of at least kHugePageMin bytes the
// whole 2 MiB pages inside the block are advised MADV_HUGEPAGE, so that where transparent huge
// pages are in "madvise" mode (the Debian default) they are backed by 2 MiB pages: a transposed
// read that touches a new 4 KiB page per element no longer misses the TLB each time, and a fresh
// block (glibc mmaps every block over 32 MiB anew) takes 512x fewer first-touch faults.
// SMYRF_HUGEPAGES=0 (read once) turns this off. Free with cpu_free. Throws on failure.
constexpr size_t kHugePageMin = size_t(4) << 20;
void* cpu_alloc(size_t nbytes);
void cpu_free(void* p);
// Whether cpu_alloc marks large allocations for huge pages (false when SMYRF_HUGEPAGES=0).
bool cpu_hugepages_enabled();

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
