// Host memory for tensor data and large kernel scratch: 64-byte aligned, and in blocks of at
// least kHugePageMin bytes the whole 2 MiB pages inside are advised MADV_HUGEPAGE, so that where
// transparent huge pages are in "madvise" mode (the Debian default) they are backed by 2 MiB
// pages: a transposed read that touches a new 4 KiB page per element no longer misses the TLB
// each time, and a fresh block (glibc mmaps every block over 32 MiB anew) takes 512x fewer
// first-touch faults (on our VM a 4 KiB fault costs 6-15 us: a fresh 64 MiB block took 190-265
// ms to touch in 4 KiB pages, ~6 ms in huge pages). SMYRF_HUGEPAGES=0 (read once) turns the
// advice off. core/storage.h's cpu_alloc is this plus smyrf::Error.
#pragma once
#include <cstddef>
#include <new>

namespace smyrf::kernels::cpu {

constexpr size_t kHugePageMin = size_t(4) << 20;

// Whether host_alloc advises large blocks for huge pages (false when SMYRF_HUGEPAGES=0).
bool huge_pages_enabled();
// nbytes (at least 1) rounded up to 64, uninitialised; null when out of memory.
void* host_alloc(size_t nbytes);
void host_free(void* p);

// Uninitialised scratch of n elements for one kernel call (host_alloc; std::bad_alloc when out of
// memory). For per-column or per-row state whose size follows the tensor: a zero-filled
// std::vector of tens of MiB page-faulted 4 KiB at a time on every call (softmax over dim 0 of
// 2 x 8M floats spent ~250 ms in its two column arrays).
template <typename T>
class ScratchBuffer {
 public:
  explicit ScratchBuffer(size_t n) : p_(static_cast<T*>(host_alloc(n * sizeof(T)))) {
    if (!p_) throw std::bad_alloc();
  }
  ~ScratchBuffer() { host_free(p_); }
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  T* data() { return p_; }
  const T* data() const { return p_; }

 private:
  T* p_;
};

}  // namespace smyrf::kernels::cpu
