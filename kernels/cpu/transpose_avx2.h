// In-register 8 x 8 float transpose, shared by the GEMM packing, the SMYRF hashing and the SMYRF
// tile transposes (three copies of the same 24 shuffles before), and the 2-way deinterleave of
// 16 floats or 8 int64 lanes' low halves that short rows, targets and pooling share.
//
// AVX only (unpack, shuffle, permute2f128), and marked target("avx") so that it also inlines into
// the `__attribute__((target("avx")))` functions of translation units built without -mavx2
// (kernels/cpu/smyrf_plan.cpp); in -mavx2 translation units it inlines as usual.
#pragma once
#include <immintrin.h>

namespace smyrf::kernels::cpu::avx2 {

// On return r[k] holds element k of every input row: r[k][i] = old r[i][k].
__attribute__((target("avx"), always_inline)) inline void transpose8x8_ps(__m256 (&r)[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// The even and odd floats of the 16 in (a, b) (a first), each set in order. The in-lane shuffles
// leave elements 0 1 4 5 | 2 3 6 7; a 64-bit permute puts the pairs in order. AVX2 (vpermpd),
// for the -mavx2 translation units: short rows of 2 columns, 2 x 2 pooling.
__attribute__((target("avx2"), always_inline)) inline void deinterleave_ps(__m256 a, __m256 b,
                                                                           __m256* even,
                                                                           __m256* odd) {
  *even = _mm256_castpd_ps(_mm256_permute4x64_pd(
      _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))), _MM_SHUFFLE(3, 1, 2, 0)));
  *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(
      _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))), _MM_SHUFFLE(3, 1, 2, 0)));
}

// The low 32 bits of the eight 64-bit lanes of (a, b) (a first), in order: int64 values known to
// fit int32 (class targets, window offsets) narrowed to one vector. AVX2, as above.
__attribute__((target("avx2"), always_inline)) inline __m256i low_halves_epi64(__m256i a,
                                                                               __m256i b) {
  // deinterleave_ps's even half, on integers
  const __m256 l =
      _mm256_shuffle_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(b), _MM_SHUFFLE(2, 0, 2, 0));
  return _mm256_permute4x64_epi64(_mm256_castps_si256(l), _MM_SHUFFLE(3, 1, 2, 0));
}

}  // namespace smyrf::kernels::cpu::avx2
