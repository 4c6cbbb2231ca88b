// Caching allocator (see allocator.h for the policy). Status: ran on an NVIDIA H200 on 2026-11-28
// (tests/cuda, all passing; scripts/gpu-check).
#include "kernels/cuda/allocator.h"

#include <cuda_runtime.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/check.h"

namespace smyrf::kernels::cuda {
namespace {

struct Block {
  size_t size;  // the size class
  int device;
  Stream stream;
};

using FreeKey = std::tuple<int, Stream, size_t>;  // (device, stream, size class)

struct Allocator {
  std::mutex mu;
  std::unordered_map<void*, Block> live;             // handed out
  std::map<FreeKey, std::vector<void*>> free_lists;  // cached, per stream and class
  std::map<int, AllocatorStats> stats;
  bool caching = [] {
    const char* e = std::getenv("SMYRF_CUDA_NO_CACHE");
    return !(e && e[0] == '1');
  }();

  // Frees every cached block of `device` (all devices when device < 0); returns the bytes freed.
  // Called with mu held.
  size_t release(int device) {
    size_t freed = 0;
    for (auto it = free_lists.begin(); it != free_lists.end();) {
      const int dev = std::get<0>(it->first);
      if (device >= 0 && dev != device) {
        ++it;
        continue;
      }
      const size_t sz = std::get<2>(it->first);
      SMYRF_CUDA_CHECK(cudaSetDevice(dev));
      for (void* p : it->second) {
        SMYRF_CUDA_CHECK(cudaFree(p));
        stats[dev].cached -= sz;
        stats[dev].num_frees++;
        freed += sz;
      }
      it = free_lists.erase(it);
    }
    return freed;
  }
};

// Leaked on purpose: at exit the CUDA runtime may be gone before static destructors run.
Allocator& allocator() {
  static Allocator* a = new Allocator;
  return *a;
}

std::string mib(size_t b) {
  std::ostringstream os;
  os.precision(1);
  os << std::fixed << static_cast<double>(b) / (1024.0 * 1024.0) << " MiB";
  return os.str();
}
}  // namespace

size_t size_class(size_t n) {
  constexpr size_t kSmall = 512, kLarge = size_t{1} << 20;
  if (n <= kLarge) return n == 0 ? kSmall : (n + kSmall - 1) / kSmall * kSmall;
  // four classes per power of two: [2^k, 2^k * 1.25, 1.5, 1.75)
  size_t p = kLarge;
  while (p * 2 < n) p *= 2;
  const size_t step = p / 4;
  return (n + step - 1) / step * step;
}

void* cached_alloc(size_t nbytes, int device, Stream stream) {
  Allocator& a = allocator();
  const size_t sz = size_class(nbytes);
  std::lock_guard<std::mutex> lock(a.mu);
  AllocatorStats& st = a.stats[device];
  auto fl = a.free_lists.find(FreeKey{device, stream, sz});
  void* p = nullptr;
  if (fl != a.free_lists.end() && !fl->second.empty()) {
    p = fl->second.back();
    fl->second.pop_back();
    st.cached -= sz;
    st.num_cache_hits++;
  } else {
    SMYRF_CUDA_CHECK(cudaSetDevice(device));
    cudaError_t err = cudaMalloc(&p, sz);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // not sticky, but clear it before retrying
      const size_t cached_before = st.cached;
      a.release(device);
      err = cudaMalloc(&p, sz);
      if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        std::ostringstream os;
        os << "[cuda] out of memory on cuda:" << device << ": requested " << mib(nbytes) << " ("
           << nbytes << " bytes), " << mib(free_b) << " free of " << mib(total_b) << ", "
           << mib(cached_before) << " was cached by smyrf (released and retried), "
           << mib(st.allocated) << " allocated by smyrf tensors";
        throw OutOfMemory(os.str(), nbytes, free_b, cached_before);
      }
    }
    SMYRF_CUDA_CHECK(err);
    st.num_mallocs++;
  }
  a.live.emplace(p, Block{sz, device, stream});
  st.allocated += sz;
  if (st.allocated > st.peak_allocated) st.peak_allocated = st.allocated;
  return p;
}

void cached_free(void* ptr) {
  if (!ptr) return;
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  auto it = a.live.find(ptr);
  if (it == a.live.end()) return;  // not ours; nothing sensible to do in a destructor
  const Block b = it->second;
  a.live.erase(it);
  AllocatorStats& st = a.stats[b.device];
  st.allocated -= b.size;
  if (!a.caching) {
    cudaSetDevice(b.device);
    cudaFree(ptr);  // no throw from destructors
    st.num_frees++;
    return;
  }
  // Kernels queued on b.stream may still read the block; it is only reused by later work on the
  // same stream, which the stream orders after them.
  a.free_lists[FreeKey{b.device, b.stream, b.size}].push_back(ptr);
  st.cached += b.size;
}

AllocatorStats allocator_stats(int device) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  return a.stats[device];
}

void reset_peak_stats(int device) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  a.stats[device].peak_allocated = a.stats[device].allocated;
}

void empty_cache() {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  // the blocks may still be read by queued kernels: wait for them before handing memory back
  SMYRF_CUDA_CHECK(cudaDeviceSynchronize());
  a.release(-1);
}

}  // namespace smyrf::kernels::cuda
