// Owning device buffers from the caching allocator, for kernels/cuda's own scratch and plans.
// Host code only (no CUDA headers); the memory belongs to the current device and stream at
// construction, like every allocation of the caching allocator.
// Status: ran on an NVIDIA H200 on 2026-11-28 (tests/cuda, all passing; scripts/gpu-check).
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>

#include "kernels/cuda/allocator.h"

namespace smyrf::kernels::cuda {

// Untyped scratch for one call (CUB temporary storage, sort keys): freed at scope exit.
struct Scratch {
  void* p = nullptr;
  explicit Scratch(size_t bytes) : p(cached_alloc(bytes, current_device(), current_stream())) {}
  ~Scratch() { cached_free(p); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename U>
  U* as() const {
    return static_cast<U*>(p);
  }
};

// A typed, movable array of n elements (uninitialised).
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(int64_t n)
      : n_(n),
        p_(static_cast<T*>(cached_alloc(static_cast<size_t>(n) * sizeof(T), current_device(),
                                        current_stream()))) {}
  ~DeviceArray() {
    if (p_) cached_free(p_);
  }
  DeviceArray(DeviceArray&& o) noexcept : n_(o.n_), p_(std::exchange(o.p_, nullptr)) {}
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      if (p_) cached_free(p_);
      n_ = o.n_;
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* data() { return p_; }
  const T* data() const { return p_; }
  int64_t size() const { return n_; }

 private:
  int64_t n_ = 0;
  T* p_ = nullptr;
};

}  // namespace smyrf::kernels::cuda
