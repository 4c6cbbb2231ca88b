// kernels/cpu/pool_avx2.h: 2 x 2 / stride-2 max pooling and the 2x upsample, eight outputs a
// step. The scalar max pool took each window through the general window arithmetic and a NaN
// branch per element: a (32, 128, 32, 32) forward ran ~90x longer than the same average pool.
#include "kernels/cpu/pool_avx2.h"

#include <immintrin.h>

#include <cmath>

#include "kernels/cpu/transpose_avx2.h"

namespace smyrf::kernels::cpu::avx2 {
namespace {
// the even and odd floats of 16 consecutive ones at p, each in order
inline void deinterleave(const float* p, __m256* even, __m256* odd) {
  deinterleave_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), even, odd);
}

// the scalar loop's rule: a candidate replaces the best when it is larger, or when it is NaN
// and the best is not yet (then nothing replaces the NaN)
inline void consider(__m256 cand, __m256i k, __m256* best, __m256i* arg) {
  const __m256 take = _mm256_or_ps(_mm256_cmp_ps(cand, *best, _CMP_GT_OQ),
                                   _mm256_and_ps(_mm256_cmp_ps(cand, cand, _CMP_UNORD_Q),
                                                 _mm256_cmp_ps(*best, *best, _CMP_ORD_Q)));
  *best = _mm256_blendv_ps(*best, cand, take);
  *arg = _mm256_castps_si256(
      _mm256_blendv_ps(_mm256_castsi256_ps(*arg), _mm256_castsi256_ps(k), take));
}
}  // namespace

void max_pool2x2_row_f32(const float* r0, int64_t W, int64_t Q, int64_t row0_index, float* y,
                         int64_t* idx) {
  const float* r1 = r0 + W;
  const __m256i lane2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  // window offsets: right +1, row 1 +W, row 1 right +W + 1
  const __m256i k1 = _mm256_set1_epi32(1), k2 = _mm256_set1_epi32(static_cast<int>(W)),
                k3 = _mm256_set1_epi32(static_cast<int>(W + 1));
  int64_t q = 0;
  for (; q + 8 <= Q; q += 8) {
    __m256 e0, o0, e1, o1;
    deinterleave(r0 + 2 * q, &e0, &o0);
    deinterleave(r1 + 2 * q, &e1, &o1);
    __m256 best = e0;
    __m256i arg = _mm256_setzero_si256();
    consider(o0, k1, &best, &arg);
    consider(e1, k2, &best, &arg);
    consider(o1, k3, &best, &arg);
    _mm256_storeu_ps(y + q, best);
    // flat index: row0_index + 2q + 2 lane + offset, in int64
    const __m256i off = _mm256_add_epi32(lane2, arg);
    const __m256i base = _mm256_set1_epi64x(row0_index + 2 * q);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + q),
                        _mm256_add_epi64(base, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(off))));
    _mm256_storeu_si256(
        reinterpret_cast<__m256i*>(idx + q + 4),
        _mm256_add_epi64(base, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(off, 1))));
  }
  for (; q < Q; ++q) {
    const float v[4] = {r0[2 * q], r0[2 * q + 1], r1[2 * q], r1[2 * q + 1]};
    const int64_t o[4] = {0, 1, W, W + 1};
    float best = v[0];
    int64_t a = 0;
    for (int k = 1; k < 4; ++k)
      if (v[k] > best || (std::isnan(v[k]) && !std::isnan(best))) best = v[k], a = o[k];
    y[q] = best;
    idx[q] = row0_index + 2 * q + a;
  }
}

void max_pool2x2_row_backward_f32(const float* dy, const int64_t* idx, int64_t W, int64_t Q,
                                  int64_t row0_index, float* r0) {
  float* r1 = r0 + W;
  const __m256i lane2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256i k1 = _mm256_set1_epi32(1), k2 = _mm256_set1_epi32(static_cast<int>(W)),
                k3 = _mm256_set1_epi32(static_cast<int>(W + 1));
  const __m256 zero = _mm256_setzero_ps();
  int64_t q = 0;
  for (; q + 8 <= Q; q += 8) {
    const __m256i base = _mm256_set1_epi64x(row0_index + 2 * q);
    const __m256i a =
        _mm256_sub_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + q)), base);
    const __m256i b =
        _mm256_sub_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + q + 4)), base);
    // the offsets' low halves in lane order, then each window's own offset (0, 1, W, W + 1)
    const __m256i off = low_halves_epi64(a, b);
    const __m256i k = _mm256_sub_epi32(off, lane2);
    const __m256 g = _mm256_loadu_ps(dy + q);
    auto at = [&](__m256i kv) {
      return _mm256_add_ps(_mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(k, kv)), g), zero);
    };
    const __m256 e0 = at(_mm256_setzero_si256()), o0 = at(k1), e1 = at(k2), o1 = at(k3);
    // (even, odd) pairs back in place: unpacks give pairs 0 1 4 5 | 2 3 6 7 by 128-bit lane
    const __m256 lo0 = _mm256_unpacklo_ps(e0, o0), hi0 = _mm256_unpackhi_ps(e0, o0);
    const __m256 lo1 = _mm256_unpacklo_ps(e1, o1), hi1 = _mm256_unpackhi_ps(e1, o1);
    _mm256_storeu_ps(r0 + 2 * q, _mm256_permute2f128_ps(lo0, hi0, 0x20));
    _mm256_storeu_ps(r0 + 2 * q + 8, _mm256_permute2f128_ps(lo0, hi0, 0x31));
    _mm256_storeu_ps(r1 + 2 * q, _mm256_permute2f128_ps(lo1, hi1, 0x20));
    _mm256_storeu_ps(r1 + 2 * q + 8, _mm256_permute2f128_ps(lo1, hi1, 0x31));
  }
  for (; q < Q; ++q) {
    r0[2 * q] = r0[2 * q + 1] = r1[2 * q] = r1[2 * q + 1] = 0.f;
    const int64_t o = idx[q] - row0_index;  // within r0, or W past it for r1
    r0[o] += dy[q];
  }
}

void upsample2x_row_f32(const float* x, int64_t n, float* y0, float* y1) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    // (v0 v0 v1 v1 | v4 v4 v5 v5) and (v2 v2 v3 v3 | v6 v6 v7 v7), their 128-bit halves
    // recombined in order
    const __m256 lo = _mm256_unpacklo_ps(v, v), hi = _mm256_unpackhi_ps(v, v);
    const __m256 a = _mm256_permute2f128_ps(lo, hi, 0x20), b = _mm256_permute2f128_ps(lo, hi, 0x31);
    _mm256_storeu_ps(y0 + 2 * i, a);
    _mm256_storeu_ps(y0 + 2 * i + 8, b);
    _mm256_storeu_ps(y1 + 2 * i, a);
    _mm256_storeu_ps(y1 + 2 * i + 8, b);
  }
  for (; i < n; ++i) y0[2 * i] = y0[2 * i + 1] = y1[2 * i] = y1[2 * i + 1] = x[i];
}

void upsample2x_row_backward_f32(const float* r0, const float* r1, int64_t n, float* y) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 e0, o0, e1, o1;
    deinterleave(r0 + 2 * i, &e0, &o0);
    deinterleave(r1 + 2 * i, &e1, &o1);
    const __m256 s = _mm256_add_ps(_mm256_setzero_ps(), e0);  // from +0, as the scalar sum
    _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s, o0), e1), o1));
  }
  for (; i < n; ++i) y[i] = (((0.0f + r0[2 * i]) + r0[2 * i + 1]) + r1[2 * i]) + r1[2 * i + 1];
}

}  // namespace smyrf::kernels::cpu::avx2
