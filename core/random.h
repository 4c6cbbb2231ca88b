// Random tensors from counter-based Philox generators.
//
// A Generator is (seed, offset): each draw of n numbers uses Philox blocks [offset, offset + b)
// and advances offset by b, so a run is reproduced from its seed, and saving (seed, offset) in a
// checkpoint resumes the exact stream. Every factory takes an explicit generator or uses the
// global default (seeded with manual_seed).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace smyrf {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed, offset_ = offset; }
  void manual_seed(uint64_t seed) { seed_ = seed, offset_ = 0; }
  // Reserves `blocks` Philox blocks and returns the first.
  uint64_t advance(uint64_t blocks) {
    uint64_t o = offset_;
    offset_ += blocks;
    return o;
  }
  // A fresh 64-bit value (consumes one block): for seeding per-step streams (SMYRF hashes).
  uint64_t next_u64();

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

Generator& default_generator();
void manual_seed(uint64_t seed);

// uniform [0, 1) / [low, high)
Tensor rand(const Shape& shape, TensorOptions opts = {}, Generator* gen = nullptr);
Tensor uniform(const Shape& shape, double low, double high, TensorOptions opts = {}, Generator* gen = nullptr);
// standard normal, or normal(mean, std)
Tensor randn(const Shape& shape, TensorOptions opts = {}, Generator* gen = nullptr);
Tensor normal(const Shape& shape, double mean, double std, TensorOptions opts = {}, Generator* gen = nullptr);
// integers in [low, high); int64 unless opts say otherwise
Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions opts = DType::Int64,
               Generator* gen = nullptr);
// bool tensor, true with probability p; drawn on `device` (the same mask on CPU and CUDA)
Tensor bernoulli(const Shape& shape, double p, Generator* gen = nullptr, Device device = Device::cpu());
// a random permutation of 0..n-1 (int64)
Tensor randperm(int64_t n, Generator* gen = nullptr);

}  // namespace smyrf
