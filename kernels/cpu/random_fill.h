// Filling contiguous buffers with counter-based (Philox4x32-10) random numbers.
//
// Element i of a draw starting at `offset` uses the Philox block counter (offset + i / L) with
// the seed as key, and lane i % L of the block (L = 4 for 32-bit draws, 2 for 64-bit ones). The
// numbers depend only on (seed, offset, i): threads, devices and recomputations agree.
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu {

// Number of Philox blocks a draw of n elements consumes (the generator advances its offset by it).
inline uint64_t random_blocks(int64_t n, bool wide) {
  const int64_t lanes = wide ? 2 : 4;
  return static_cast<uint64_t>((n + lanes - 1) / lanes);
}

// uniform in [lo, hi)
void random_uniform_f32(float* y, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi);
void random_uniform_f64(double* y, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi);
// normal(mean, std)
void random_normal_f32(float* y, int64_t n, uint64_t seed, uint64_t offset, float mean, float std);
void random_normal_f64(double* y, int64_t n, uint64_t seed, uint64_t offset, double mean, double std);
// integers uniform in [low, high) (64-bit draws; high - low must be > 0)
void random_int64(int64_t* y, int64_t n, uint64_t seed, uint64_t offset, int64_t low, int64_t high);
// keep[i] = uniform < p (float32 uniforms, so CPU and CUDA dropout masks agree)
void random_bernoulli(bool* y, int64_t n, uint64_t seed, uint64_t offset, double p);

}  // namespace smyrf::kernels::cpu
