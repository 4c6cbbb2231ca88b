// Helpers shared by the kernel tests that run the scalar and AVX2 variants side by side.
#pragma once
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

// n floats drawn i.i.d. from N(0, scale^2) with a fixed seed.
inline std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& e : v) e = d(gen);
  return v;
}

}  // namespace kernel_test
