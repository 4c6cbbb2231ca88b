// Philox4x32-10 counter-based random numbers (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC 2011), plus uniform and normal helpers.
//
// Everything here is a pure function of (counter, key): no state, no global generator, so the CPU,
// a CUDA kernel and a recomputation in the backward pass all draw the same numbers. Callers build
// the counter from what identifies the draw (for example (element index, stream, offset)) and the
// key from the seed.
//
//   philox4x32(counter, key)     -> 4 independent 32-bit words
//   uniform_float(u)             -> float in [0, 1), 24 random bits
//   uniform_float_open(u)        -> float in (0, 1), never 0 (safe for log)
//   uniform_double(hi, lo)       -> double in [0, 1), 53 random bits from two words
//   uniform_double_open(hi, lo)  -> double in (0, 1)
//   box_muller(u1, u2, &z0, &z1) -> two independent standard normals from two uniforms in (0, 1)
//   normal4(counter, key)        -> 4 standard normals (float) from one Philox call
//   normal2_double(counter, key) -> 2 standard normals (double) from one Philox call
//
// The known-answer vectors of the Random123 distribution are checked in the kernel tests.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define SMYRF_HOST_DEVICE __host__ __device__
#else
#define SMYRF_HOST_DEVICE
#endif

namespace smyrf::kernels {

struct Philox4x32 {
  uint32_t v[4];
};

namespace philox_detail {
constexpr uint32_t kMul0 = 0xD2511F53u;
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kWeyl1 = 0xBB67AE85u;  // sqrt(3) - 1

SMYRF_HOST_DEVICE inline void mulhilo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  *hi = static_cast<uint32_t>(p >> 32);
  *lo = static_cast<uint32_t>(p);
}
}  // namespace philox_detail

// Ten rounds of Philox4x32 on `counter` under `key`.
SMYRF_HOST_DEVICE inline Philox4x32 philox4x32(const uint32_t counter[4], const uint32_t key[2]) {
  using namespace philox_detail;
  uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, c0, &hi0, &lo0);
    mulhilo(kMul1, c2, &hi1, &lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0;
    const uint32_t n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

// Convenience: a 64-bit seed as the key, four counter words.
SMYRF_HOST_DEVICE inline Philox4x32 philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                               uint64_t seed) {
  const uint32_t counter[4] = {c0, c1, c2, c3};
  const uint32_t key[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  return philox4x32(counter, key);
}

SMYRF_HOST_DEVICE inline float uniform_float(uint32_t u) {
  return static_cast<float>(u >> 8) * (1.0f / 16777216.0f);
}
SMYRF_HOST_DEVICE inline float uniform_float_open(uint32_t u) {
  return (static_cast<float>(u >> 8) + 0.5f) * (1.0f / 16777216.0f);
}
SMYRF_HOST_DEVICE inline double uniform_double(uint32_t hi, uint32_t lo) {
  const uint64_t bits = (static_cast<uint64_t>(hi) << 21) ^ (lo >> 11);  // 53 bits
  return static_cast<double>(bits & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}
SMYRF_HOST_DEVICE inline double uniform_double_open(uint32_t hi, uint32_t lo) {
  const uint64_t bits = (static_cast<uint64_t>(hi) << 21) ^ (lo >> 11);
  return (static_cast<double>(bits & ((1ull << 53) - 1)) + 0.5) * (1.0 / 9007199254740992.0);
}

// u1, u2 in (0, 1). The pair (z0, z1) is independent standard normal.
template <typename T>
SMYRF_HOST_DEVICE inline void box_muller(T u1, T u2, T* z0, T* z1) {
  const T two_pi = static_cast<T>(6.283185307179586476925286766559);
  const T r = std::sqrt(static_cast<T>(-2) * std::log(u1));
  const T theta = two_pi * u2;
  *z0 = r * std::cos(theta);
  *z1 = r * std::sin(theta);
}

struct Normal4 {
  float v[4];
};
SMYRF_HOST_DEVICE inline Normal4 normal4(const uint32_t counter[4], const uint32_t key[2]) {
  const Philox4x32 u = philox4x32(counter, key);
  Normal4 n;
  box_muller(uniform_float_open(u.v[0]), uniform_float_open(u.v[1]), &n.v[0], &n.v[1]);
  box_muller(uniform_float_open(u.v[2]), uniform_float_open(u.v[3]), &n.v[2], &n.v[3]);
  return n;
}

struct Normal2d {
  double v[2];
};
SMYRF_HOST_DEVICE inline Normal2d normal2_double(const uint32_t counter[4], const uint32_t key[2]) {
  const Philox4x32 u = philox4x32(counter, key);
  Normal2d n;
  box_muller(uniform_double_open(u.v[0], u.v[1]), uniform_double_open(u.v[2], u.v[3]), &n.v[0],
             &n.v[1]);
  return n;
}

}  // namespace smyrf::kernels
