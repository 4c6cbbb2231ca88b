// bfloat16: the upper 16 bits of an IEEE float32 (1 sign, 8 exponent, 7 mantissa bits), the
// storage type of DType::BFloat16. A leaf header with no dependencies, usable from host C++ and
// from CUDA device code (nvcc defines __CUDACC__), so core and kernels/cuda share one definition.
//
// float32 -> bfloat16 rounds to nearest, ties to even (the rounding of PyTorch and of the
// hardware's cvt.rn.bf16.f32); infinities stay infinities, finite values above the largest
// bfloat16 (about 3.39e38) round to infinity as RNE says, and NaN stays NaN (quietened, sign kept).
// Other types convert through float32: float64 -> bfloat16 therefore rounds twice (to float32,
// then to bfloat16), which can differ from a single rounding in the last bit for values within
// 2^-24 relative of a bfloat16 tie; integers above 2^24 lose bits in the first step as well.
// bfloat16 -> float32 is exact.
//
// bfloat16 has no arithmetic on purpose: only casts and the CUDA attention kernels take it; every
// other op rejects it ("cast to float32").
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define SMYRF_BF16_HD __host__ __device__ __forceinline__
#else
#define SMYRF_BF16_HD inline
#endif

namespace smyrf {

SMYRF_BF16_HD uint16_t float_to_bf16_bits(float f) {
#if defined(__CUDA_ARCH__)
  uint32_t u = __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
#endif
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN
  // round to nearest even: add 0x7fff plus the lowest kept bit, then truncate (a carry out of the
  // mantissa correctly bumps the exponent, up to infinity)
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

SMYRF_BF16_HD float bf16_bits_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

struct bfloat16 {
  uint16_t bits = 0;

  bfloat16() = default;
  // From any arithmetic type, through float32 (see above).
  template <typename T>
  SMYRF_BF16_HD explicit bfloat16(T x) : bits(float_to_bf16_bits(static_cast<float>(x))) {}
  // To any arithmetic type, through float32 (exact for float32 and float64).
  template <typename T>
  SMYRF_BF16_HD explicit operator T() const {
    return static_cast<T>(bf16_bits_to_float(bits));
  }

  SMYRF_BF16_HD static bfloat16 from_bits(uint16_t b) {
    bfloat16 r;
    r.bits = b;
    return r;
  }
};
static_assert(sizeof(bfloat16) == 2, "bfloat16 is two bytes");

}  // namespace smyrf
