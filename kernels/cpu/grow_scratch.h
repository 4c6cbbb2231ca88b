// Grow-only, 64-byte aligned scratch for packing buffers that a kernel keeps per thread between
// calls (thread_local), so steady-state calls allocate nothing. Internal to kernels/cpu.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <new>

namespace smyrf::kernels::cpu {

template <typename T>
struct GrowScratch {
  T* p = nullptr;
  size_t n = 0;
  GrowScratch() = default;
  GrowScratch(const GrowScratch&) = delete;
  GrowScratch& operator=(const GrowScratch&) = delete;
  ~GrowScratch() { std::free(p); }
  // at least `want` elements (contents not kept when it grows); std::bad_alloc when out of memory
  T* get(size_t want) {
    if (want > n) {
      std::free(p);
      p = nullptr;
      n = (want + 1023) & ~size_t(1023);
      p = static_cast<T*>(std::aligned_alloc(64, n * sizeof(T)));
      if (!p) {
        n = 0;
        throw std::bad_alloc();
      }
    }
    return p;
  }
};

}  // namespace smyrf::kernels::cpu
