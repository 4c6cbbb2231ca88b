#include "kernels/cpu/random_fill.h"

#include <omp.h>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/nd_loop.h"
#include "kernels/cpu/philox.h"
#include "kernels/cpu/philox_avx2.h"

namespace smyrf::kernels::cpu {
namespace {
inline Philox4x32 block(uint64_t seed, uint64_t counter) {
  return philox4x32(static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), 0u, 0u,
                    seed);
}

// Draws the blocks of elements [0, n) (`lanes` elements a block, block b from counter offset + b)
// sixteen blocks at a time, in parallel for large draws, and calls f(i0, w, count) with the
// group's first element, its words (block k's four at w + 4 k) and its element count (< 16
// lanes only for the last group). The AVX2 Philox draws a group side by side where the CPU has
// it; each block's words are the same either way. With four elements a block, element i0 + j's
// word is w[j], so f's loop over a group vectorises. 16M elements, 2 threads, before -> after
// (medians of 3 alternated rounds): bernoulli 30.4 -> 8.5 ms, rand 21-30 -> 8.1, randint 45.5
// -> 34.3 (its 64-bit modulo), randn 92 -> 76 (its scalar log and sincos).
constexpr int64_t kGroup = 16;
template <typename F>
void for_groups(int64_t n, int lanes, uint64_t seed, uint64_t offset, F&& f) {
  const int64_t nb = (n + lanes - 1) / lanes, groups = (nb + kGroup - 1) / kGroup;
  const bool vec = active_isa() == Isa::Avx2;
#pragma omp parallel for if (n >= kParallelGrain && !omp_in_parallel()) schedule(static)
  for (int64_t q = 0; q < groups; ++q) {
    const int64_t b0 = kGroup * q, blocks = nb - b0 < kGroup ? nb - b0 : kGroup;
    alignas(32) uint32_t w[4 * kGroup];
    if (vec) {
      avx2::philox4x32_blocks16(seed, offset + static_cast<uint64_t>(b0), w);
    } else {
      for (int64_t k = 0; k < blocks; ++k) {
        const Philox4x32 r = block(seed, offset + static_cast<uint64_t>(b0 + k));
        for (int l = 0; l < 4; ++l) w[4 * k + l] = r.v[l];
      }
    }
    const int64_t i0 = b0 * lanes, count = n - i0 < blocks * lanes ? n - i0 : blocks * lanes;
    f(i0, static_cast<const uint32_t*>(w), count);
  }
}

}  // namespace

void random_uniform_f32(float* y, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi) {
  for_groups(n, 4, seed, offset, [&](int64_t i0, const uint32_t* w, int64_t count) {
    for (int64_t j = 0; j < count; ++j) y[i0 + j] = lo + (hi - lo) * uniform_float(w[j]);
  });
}

void random_uniform_f64(double* y, int64_t n, uint64_t seed, uint64_t offset, double lo,
                        double hi) {
  // two elements a block: element i0 + j's words are w[2 j], w[2 j + 1]
  for_groups(n, 2, seed, offset, [&](int64_t i0, const uint32_t* w, int64_t count) {
    for (int64_t j = 0; j < count; ++j)
      y[i0 + j] = lo + (hi - lo) * uniform_double(w[2 * j], w[2 * j + 1]);
  });
}

void random_normal_f32(float* y, int64_t n, uint64_t seed, uint64_t offset, float mean, float std) {
  // elements 2 p and 2 p + 1 from the pair of words w[2 p], w[2 p + 1]
  for_groups(n, 4, seed, offset, [&](int64_t i0, const uint32_t* w, int64_t count) {
    for (int64_t p = 0; 2 * p < count; ++p) {
      float z[2];
      box_muller(uniform_float_open(w[2 * p]), uniform_float_open(w[2 * p + 1]), &z[0], &z[1]);
      for (int l = 0; l < 2 && 2 * p + l < count; ++l) y[i0 + 2 * p + l] = mean + std * z[l];
    }
  });
}

void random_normal_f64(double* y, int64_t n, uint64_t seed, uint64_t offset, double mean,
                       double std) {
  // elements 2 k and 2 k + 1 from block k's four words
  for_groups(n, 2, seed, offset, [&](int64_t i0, const uint32_t* w, int64_t count) {
    for (int64_t k = 0; 2 * k < count; ++k) {
      const uint32_t* r = w + 4 * k;
      double z[2];
      box_muller(uniform_double_open(r[0], r[1]), uniform_double_open(r[2], r[3]), &z[0], &z[1]);
      for (int l = 0; l < 2 && 2 * k + l < count; ++l) y[i0 + 2 * k + l] = mean + std * z[l];
    }
  });
}

void random_int64(int64_t* y, int64_t n, uint64_t seed, uint64_t offset, int64_t low,
                  int64_t high) {
  const uint64_t range = static_cast<uint64_t>(high - low);
  for_groups(n, 2, seed, offset, [&](int64_t i0, const uint32_t* w, int64_t count) {
    for (int64_t j = 0; j < count; ++j) {
      const uint64_t u = (static_cast<uint64_t>(w[2 * j]) << 32) | w[2 * j + 1];
      y[i0 + j] = low + static_cast<int64_t>(u % range);  // bias < range / 2^64
    }
  });
}

void random_bernoulli(bool* y, int64_t n, uint64_t seed, uint64_t offset, double p) {
  const float pf = static_cast<float>(p);
  for_groups(n, 4, seed, offset, [&](int64_t i0, const uint32_t* w, int64_t count) {
    for (int64_t j = 0; j < count; ++j) y[i0 + j] = uniform_float(w[j]) < pf;
  });
}

}  // namespace smyrf::kernels::cpu
