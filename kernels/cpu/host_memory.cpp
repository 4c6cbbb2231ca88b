#include "kernels/cpu/host_memory.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace smyrf::kernels::cpu {

namespace {
constexpr size_t kHugePage = size_t(2) << 20;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

size_t default_limit() {
  const char* v = std::getenv("SMYRF_HOST_CACHE_MB");
  if (v && *v) return size_t(std::strtoull(v, nullptr, 10)) << 20;
  if (kSanitized) return 0;
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const size_t ram = pages > 0 && page > 0 ? size_t(pages) * size_t(page) : 0;
  return std::min(size_t(2) << 30, ram / 8);
}

// n >= kCacheMin rounded up to a multiple of an eighth of its highest power of two
size_t size_class(size_t n) {
  size_t top = size_t(1) << (63 - __builtin_clzll(n));
  const size_t step = top / 8;
  return (n + step - 1) / step * step;
}

void* raw_alloc(size_t nbytes) {
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

struct Cache {
  std::mutex m;
  std::unordered_map<void*, size_t> live;  // large blocks handed out -> their class size
  std::multimap<size_t, void*> kept;       // cached blocks by size
  HostCacheStats stats;
  const size_t initial_limit = default_limit();
  Cache() { stats.limit_bytes = initial_limit; }

  // Books block p of `size` bytes as handed out (under the lock).
  void hand_out(void* p, size_t size, bool hit) {
    live.emplace(p, size);
    stats.allocated_bytes += size;
    stats.peak_allocated_bytes = std::max(stats.peak_allocated_bytes, stats.allocated_bytes);
    ++(hit ? stats.hits : stats.misses);
  }

  // Takes cached blocks off (largest first) until cached_bytes + room <= limit; the caller frees
  // them outside the lock.
  void trim(size_t room, std::vector<void*>& out) {
    while (!kept.empty() && stats.cached_bytes + room > stats.limit_bytes) {
      auto it = std::prev(kept.end());
      stats.cached_bytes -= it->first;
      out.push_back(it->second);
      kept.erase(it);
    }
  }
};

// Never destroyed: tensors freed during static destruction still find it.
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

void free_all(const std::vector<void*>& blocks) {
  for (void* p : blocks) std::free(p);
}

}  // namespace

bool huge_pages_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("SMYRF_HUGEPAGES");
    return !(v && v[0] == '0');
  }();
  return on;
}

void* host_alloc(size_t nbytes) {
  if (nbytes < kCacheMin) return raw_alloc(nbytes);
  Cache& c = cache();
  const size_t cls = size_class(nbytes);
  {
    std::lock_guard<std::mutex> lock(c.m);
    // the smallest kept block that fits, if it is not more than a quarter larger than asked for
    auto it = c.kept.lower_bound(cls);
    if (it != c.kept.end() && it->first - it->first / 5 <= cls) {
      const size_t size = it->first;
      void* p = it->second;
      c.kept.erase(it);
      c.stats.cached_bytes -= size;
      c.hand_out(p, size, true);
      return p;
    }
  }
  void* p = raw_alloc(cls);
  if (!p) {  // out of memory: give the cached blocks back and try once more
    empty_host_cache();
    p = raw_alloc(cls);
    if (!p) return nullptr;
  }
  std::lock_guard<std::mutex> lock(c.m);
  c.hand_out(p, cls, false);
  return p;
}

void host_free(void* p) {
  if (!p) return;
  // small blocks (the most frequent frees) without the lock: a large block's usable size is at
  // least the kCacheMin it was allocated with
  if (malloc_usable_size(p) < kCacheMin) return std::free(p);
  Cache& c = cache();
  std::vector<void*> release;
  {
    std::lock_guard<std::mutex> lock(c.m);
    auto it = c.live.find(p);
    if (it == c.live.end()) {  // a small block
      release.push_back(p);
    } else {
      const size_t size = it->second;
      c.live.erase(it);
      c.stats.allocated_bytes -= size;
      if (size > c.stats.limit_bytes) {
        release.push_back(p);
      } else {
        c.trim(size, release);
        c.kept.emplace(size, p);
        c.stats.cached_bytes += size;
      }
    }
  }
  free_all(release);
}

HostCacheStats host_cache_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.m);
  return c.stats;
}

void empty_host_cache() {
  Cache& c = cache();
  std::vector<void*> release;
  {
    std::lock_guard<std::mutex> lock(c.m);
    for (auto& kv : c.kept) release.push_back(kv.second);
    c.kept.clear();
    c.stats.cached_bytes = 0;
  }
  free_all(release);
}

size_t set_host_cache_limit(size_t bytes) {
  Cache& c = cache();
  std::vector<void*> release;
  size_t prev;
  {
    std::lock_guard<std::mutex> lock(c.m);
    prev = c.stats.limit_bytes;
    c.stats.limit_bytes = bytes;
    c.trim(0, release);
  }
  free_all(release);
  return prev;
}

size_t host_cache_default_limit() { return cache().initial_limit; }

}  // namespace smyrf::kernels::cpu
