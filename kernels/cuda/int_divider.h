// Division by a divisor fixed at launch as a multiply-high, an add and a shift (the round-up
// method of Granlund and Montgomery, "Division by invariant integers using multiplication",
// 1994): the strided index spaces of device_utils.cuh split a flat index into per-dim indices
// with one division per dim and element, and a 64-bit division is a ~70-instruction software
// routine on the GPU (a row-broadcast add ran at 29% of a device copy on an H200, 2026-11-29).
//
// Exact for numerators n < 2^31 and divisors 1 <= d <= 2^31. Header-only and free of CUDA types,
// so the host computes the constants and a CPU test (tests/kernels/test_int_divider.cpp) checks
// the arithmetic the device runs.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define SMYRF_INT_DIVIDER_HD __host__ __device__ __forceinline__
#else
#define SMYRF_INT_DIVIDER_HD inline
#endif

namespace smyrf::kernels::cuda {

struct IntDivider {
  uint32_t divisor = 1, magic = 0, shift = 0;

  IntDivider() = default;
  // shift = ceil(log2 d), magic = floor(2^32 (2^shift - d) / d) + 1 (below 2^32 for every d).
  explicit IntDivider(uint32_t d) : divisor(d) {
    while (shift < 31 && (uint32_t{1} << shift) < d) ++shift;
    magic = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1);
  }

  // n / d for n < 2^31 (t <= n, so t + n does not overflow).
  SMYRF_INT_DIVIDER_HD uint32_t div(uint32_t n) const {
#if defined(__CUDA_ARCH__)
    const uint32_t t = __umulhi(n, magic);
#else
    const uint32_t t = static_cast<uint32_t>((static_cast<uint64_t>(n) * magic) >> 32);
#endif
    return (t + n) >> shift;
  }
};

}  // namespace smyrf::kernels::cuda
