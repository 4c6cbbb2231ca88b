// Host memory for tensor data and large kernel scratch: 64-byte aligned, blocks of at least
// kCacheMin bytes kept for reuse when freed (below), and in blocks of at
// least kHugePageMin bytes the whole 2 MiB pages inside are advised MADV_HUGEPAGE, so that where
// transparent huge pages are in "madvise" mode (the Debian default) they are backed by 2 MiB
// pages: a transposed read that touches a new 4 KiB page per element no longer misses the TLB
// each time, and a fresh block (glibc mmaps every block over 32 MiB anew) takes 512x fewer
// first-touch faults (on our VM a 4 KiB fault costs 6-15 us: a fresh 64 MiB block took 190-265
// ms to touch in 4 KiB pages, ~6 ms in huge pages). SMYRF_HUGEPAGES=0 (read once) turns the
// advice off. core/storage.h's cpu_alloc is this plus smyrf::Error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>

namespace smyrf::kernels::cpu {

constexpr size_t kHugePageMin = size_t(4) << 20;

// The cache of large blocks. Every op that returns a new tensor allocates its output, and a fresh
// block costs its first touch: on our VM a 64 MiB output took ~6 ms of page clearing in huge pages
// (~70 ms in processes where the kernel fell back to 4 KiB pages), against ~3.5 ms for the softmax
// that fills it. So freed blocks of kCacheMin bytes or more are kept, by size class (sizes rounded
// up to an eighth of their power of two), and handed out again for requests of the same class or
// up to a quarter smaller; PyTorch does the same for CUDA memory, malloc does not for blocks over
// its mmap threshold. At most the limit's bytes are kept (the largest cached blocks go first):
// SMYRF_HOST_CACHE_MB (read once; 0 turns the cache off), by default min(2 GiB, RAM / 8), and 0
// in AddressSanitizer builds, so that a use after free of tensor memory is still reported. Thread
// safe (one mutex, taken for large blocks only). When an allocation fails, the cache is emptied
// and the allocation tried again.
constexpr size_t kCacheMin = size_t(1) << 20;

struct HostCacheStats {
  size_t allocated_bytes = 0;       // large blocks (>= kCacheMin) handed out and not yet freed
  size_t peak_allocated_bytes = 0;  // the most allocated_bytes has been
  size_t cached_bytes = 0;          // freed large blocks kept for reuse
  size_t limit_bytes = 0;           // the most cached_bytes may be
  uint64_t hits = 0, misses = 0;    // large requests served from the cache / by malloc
};
HostCacheStats host_cache_stats();
// Frees every cached block (allocated blocks are untouched).
void empty_host_cache();
// Sets the cache's limit (0: off; cached blocks beyond the new limit are freed) and returns the
// previous one. host_cache_default_limit() is the limit the process started with.
size_t set_host_cache_limit(size_t bytes);
size_t host_cache_default_limit();

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

// An uninitialised array of trivially copyable T in host_alloc memory, movable and copyable (a
// deep copy), for results a kernel keeps beyond one call (the SMYRF plan's orders and clusters):
// a std::vector zero-fills what the kernel overwrites anyway, and its fresh pages fault 4 KiB at a
// time. resize(n) drops the contents.
template <typename T>
class HostArray {
  static_assert(std::is_trivially_copyable_v<T>, "HostArray holds plain values");

 public:
  HostArray() = default;
  explicit HostArray(size_t n) { resize(n); }
  ~HostArray() { host_free(p_); }
  HostArray(HostArray&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  HostArray& operator=(HostArray&& o) noexcept {
    if (this != &o) {
      host_free(p_);
      p_ = o.p_, n_ = o.n_;
      o.p_ = nullptr, o.n_ = 0;
    }
    return *this;
  }
  HostArray(const HostArray& o) : HostArray(o.n_) {
    if (n_) std::memcpy(p_, o.p_, n_ * sizeof(T));
  }
  HostArray& operator=(const HostArray& o) {
    if (this != &o) *this = HostArray(o);
    return *this;
  }
  void resize(size_t n) {
    host_free(p_);
    p_ = nullptr, n_ = 0;
    if (n == 0) return;
    p_ = static_cast<T*>(host_alloc(n * sizeof(T)));
    if (!p_) throw std::bad_alloc();
    n_ = n;
  }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  T* data() { return p_; }
  const T* data() const { return p_; }
  T& operator[](size_t i) { return p_[i]; }
  const T& operator[](size_t i) const { return p_[i]; }
  T* begin() { return p_; }
  T* end() { return p_ + n_; }
  const T* begin() const { return p_; }
  const T* end() const { return p_ + n_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

// Equal sizes and elements.
template <typename T>
bool operator==(const HostArray<T>& a, const HostArray<T>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i])) return false;
  return true;
}
template <typename T>
bool operator!=(const HostArray<T>& a, const HostArray<T>& b) {
  return !(a == b);
}

}  // namespace smyrf::kernels::cpu
