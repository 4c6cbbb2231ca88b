// kernels/cpu/philox_avx2.h: eight Philox4x32-10 blocks side by side, one per 32-bit lane.
#include "kernels/cpu/philox_avx2.h"

#include <immintrin.h>

namespace smyrf::kernels::cpu::avx2 {
namespace {
// hi and lo 32-bit halves of a * m for each of the 8 lanes of a (m: the constant in every lane)
inline void mulhilo8(__m256i a, __m256i m, __m256i* hi, __m256i* lo) {
  const __m256i even = _mm256_mul_epu32(a, m);                        // lanes 0 2 4 6, 64-bit
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);  // lanes 1 3 5 7
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}
}  // namespace

void philox4x32_blocks16(uint64_t seed, uint64_t counter, uint32_t words[64]) {
  using namespace philox_detail;
  alignas(32) uint32_t lo[16], hi[16];
  for (int k = 0; k < 16; ++k) {
    const uint64_t c = counter + static_cast<uint64_t>(k);
    lo[k] = static_cast<uint32_t>(c);
    hi[k] = static_cast<uint32_t>(c >> 32);
  }
  // two sets of eight blocks side by side: a round's multiplies wait on the round before, and
  // one set alone left the core waiting on that chain
  __m256i c0[2], c1[2], c2[2], c3[2];
  for (int h = 0; h < 2; ++h) {
    c0[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo + 8 * h));
    c1[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi + 8 * h));
    c2[h] = c3[h] = _mm256_setzero_si256();
  }
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kMul0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(kMul1));
  for (int round = 0; round < 10; ++round) {
    const __m256i kv0 = _mm256_set1_epi32(static_cast<int>(k0));
    const __m256i kv1 = _mm256_set1_epi32(static_cast<int>(k1));
    for (int h = 0; h < 2; ++h) {
      __m256i hi0, lo0, hi1, lo1;
      mulhilo8(c0[h], m0, &hi0, &lo0);
      mulhilo8(c2[h], m1, &hi1, &lo1);
      c0[h] = _mm256_xor_si256(_mm256_xor_si256(hi1, c1[h]), kv0);
      c2[h] = _mm256_xor_si256(_mm256_xor_si256(hi0, c3[h]), kv1);
      c1[h] = lo1;
      c3[h] = lo0;
    }
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  // lanes to blocks: 4 x 8 transposes, block k's four words contiguous
  for (int h = 0; h < 2; ++h) {
    const __m256i t0 = _mm256_unpacklo_epi32(c0[h], c1[h]),
                  t1 = _mm256_unpackhi_epi32(c0[h], c1[h]);
    const __m256i t2 = _mm256_unpacklo_epi32(c2[h], c3[h]),
                  t3 = _mm256_unpackhi_epi32(c2[h], c3[h]);
    const __m256i b04 = _mm256_unpacklo_epi64(t0, t2);  // blocks 0, 4
    const __m256i b15 = _mm256_unpackhi_epi64(t0, t2);  // blocks 1, 5
    const __m256i b26 = _mm256_unpacklo_epi64(t1, t3);  // blocks 2, 6
    const __m256i b37 = _mm256_unpackhi_epi64(t1, t3);  // blocks 3, 7
    __m256i* o = reinterpret_cast<__m256i*>(words + 32 * h);
    _mm256_storeu_si256(o + 0, _mm256_permute2x128_si256(b04, b15, 0x20));  // blocks 0, 1
    _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(b26, b37, 0x20));  // blocks 2, 3
    _mm256_storeu_si256(o + 2, _mm256_permute2x128_si256(b04, b15, 0x31));  // blocks 4, 5
    _mm256_storeu_si256(o + 3, _mm256_permute2x128_si256(b26, b37, 0x31));  // blocks 6, 7
  }
}

}  // namespace smyrf::kernels::cpu::avx2
