// Helpers shared by the kernel tests that run the scalar and AVX2 variants side by side.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cpu/cpu_features.h"

namespace kernel_test {

// Forces one kernel variant for its lifetime, then restores the previous one.
struct IsaGuard {
  smyrf::kernels::cpu::Isa prev;
  explicit IsaGuard(smyrf::kernels::cpu::Isa isa)
      : prev(smyrf::kernels::cpu::set_active_isa(isa)) {}
  ~IsaGuard() { smyrf::kernels::cpu::set_active_isa(prev); }
};

// Runs f(false) under the scalar kernels, then f(true) under AVX2 (the caller checks that the
// machine has AVX2 first).
template <typename F>
void both(F&& f) {
  for (smyrf::kernels::cpu::Isa isa :
       {smyrf::kernels::cpu::Isa::Scalar, smyrf::kernels::cpu::Isa::Avx2}) {
    IsaGuard g(isa);
    f(isa == smyrf::kernels::cpu::Isa::Avx2);
  }
}

// n zero floats starting `skew` floats past a 32-byte boundary (skew 0: aligned, the streaming
// stores' case), with guard floats (0) after the end.
struct SkewedBuf {
  std::vector<float> store;
  float* p;
  explicit SkewedBuf(size_t n, size_t skew = 1) : store(n + 16, 0.f) {
    auto addr = reinterpret_cast<uintptr_t>(store.data());
    p = store.data() + ((32 - addr % 32) % 32) / sizeof(float) + skew;
  }
  float guard(size_t n) const { return p[n]; }
};

// a and b agree: both NaN, equal (infinities included), or |a - b| <= rel |b| + abs.
inline bool close(float a, float b, double rel, double abs) {
  if (std::isnan(b) || std::isnan(a)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(b) || std::isinf(a)) return a == b;
  return std::fabs(static_cast<double>(a) - b) <= rel * std::fabs(b) + abs;
}

// n floats drawn i.i.d. from N(0, scale^2) with a fixed seed.
inline std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& e : v) e = d(gen);
  return v;
}

}  // namespace kernel_test
