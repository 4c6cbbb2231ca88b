#include "kernels/cpu/host_memory.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>

namespace smyrf::kernels::cpu {

namespace {
constexpr size_t kHugePage = size_t(2) << 20;
}

bool huge_pages_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("SMYRF_HUGEPAGES");
    return !(v && v[0] == '0');
  }();
  return on;
}

void* host_alloc(size_t nbytes) {
  // Round up to the alignment so aligned_alloc's contract holds; 64 bytes = one cache line.
  const size_t padded = ((nbytes == 0 ? 1 : nbytes) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, padded);
  if (p && nbytes >= kHugePageMin && huge_pages_enabled()) {
    // Advise the whole 2 MiB pages inside the block (all but < 4 MiB of it). Not a 2 MiB-aligned
    // allocation: memalign with that alignment fragments malloc's heap (under
    // train::retain_freed_memory a 64 MiB add then took fresh pages every call, 2-5x slower).
    // Advice only: where THP is off, madvise fails and the block keeps small pages.
    const uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + kHugePage - 1) & ~(kHugePage - 1);
    const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + nbytes) & ~(kHugePage - 1);
    if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
  }
  return p;
}

void host_free(void* p) { std::free(p); }

}  // namespace smyrf::kernels::cpu
