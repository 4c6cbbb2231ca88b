#include "kernels/cpu/random_fill.h"

#include <omp.h>

#include "kernels/cpu/nd_loop.h"
#include "kernels/cpu/philox.h"

namespace smyrf::kernels::cpu {
namespace {
inline Philox4x32 block(uint64_t seed, uint64_t counter) {
  return philox4x32(static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), 0u, 0u, seed);
}

// Calls f(i, block) once per block of `lanes` elements, in parallel for large draws.
template <typename F>
void for_blocks(int64_t n, int lanes, uint64_t seed, uint64_t offset, F&& f) {
  const int64_t nb = (n + lanes - 1) / lanes;
#pragma omp parallel for if (n >= kParallelGrain && !omp_in_parallel()) schedule(static)
  for (int64_t b = 0; b < nb; ++b) f(b * lanes, block(seed, offset + static_cast<uint64_t>(b)));
}
}  // namespace

void random_uniform_f32(float* y, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi) {
  for_blocks(n, 4, seed, offset, [&](int64_t i0, const Philox4x32& r) {
    for (int l = 0; l < 4 && i0 + l < n; ++l) y[i0 + l] = lo + (hi - lo) * uniform_float(r.v[l]);
  });
}

void random_uniform_f64(double* y, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) {
  for_blocks(n, 2, seed, offset, [&](int64_t i0, const Philox4x32& r) {
    for (int l = 0; l < 2 && i0 + l < n; ++l) y[i0 + l] = lo + (hi - lo) * uniform_double(r.v[2 * l], r.v[2 * l + 1]);
  });
}

void random_normal_f32(float* y, int64_t n, uint64_t seed, uint64_t offset, float mean, float std) {
  for_blocks(n, 4, seed, offset, [&](int64_t i0, const Philox4x32& r) {
    float z[4];
    box_muller(uniform_float_open(r.v[0]), uniform_float_open(r.v[1]), &z[0], &z[1]);
    box_muller(uniform_float_open(r.v[2]), uniform_float_open(r.v[3]), &z[2], &z[3]);
    for (int l = 0; l < 4 && i0 + l < n; ++l) y[i0 + l] = mean + std * z[l];
  });
}

void random_normal_f64(double* y, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) {
  for_blocks(n, 2, seed, offset, [&](int64_t i0, const Philox4x32& r) {
    double z[2];
    box_muller(uniform_double_open(r.v[0], r.v[1]), uniform_double_open(r.v[2], r.v[3]), &z[0], &z[1]);
    for (int l = 0; l < 2 && i0 + l < n; ++l) y[i0 + l] = mean + std * z[l];
  });
}

void random_int64(int64_t* y, int64_t n, uint64_t seed, uint64_t offset, int64_t low, int64_t high) {
  const uint64_t range = static_cast<uint64_t>(high - low);
  for_blocks(n, 2, seed, offset, [&](int64_t i0, const Philox4x32& r) {
    for (int l = 0; l < 2 && i0 + l < n; ++l) {
      uint64_t u = (static_cast<uint64_t>(r.v[2 * l]) << 32) | r.v[2 * l + 1];
      y[i0 + l] = low + static_cast<int64_t>(u % range);  // bias < range / 2^64
    }
  });
}

void random_bernoulli(bool* y, int64_t n, uint64_t seed, uint64_t offset, double p) {
  const float pf = static_cast<float>(p);
  for_blocks(n, 4, seed, offset, [&](int64_t i0, const Philox4x32& r) {
    for (int l = 0; l < 4 && i0 + l < n; ++l) y[i0 + l] = uniform_float(r.v[l]) < pf;
  });
}

}  // namespace smyrf::kernels::cpu
