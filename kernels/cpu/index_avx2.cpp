// AVX2 gather row kernel (see index_avx2.h).
#include "kernels/cpu/index_avx2.h"

#include <immintrin.h>

#include <cstdint>

namespace smyrf::kernels::cpu::avx2 {

bool gather_row_b32(const uint32_t* x, int64_t n, const int64_t* idx, uint32_t* y, int64_t k,
                    bool stream) {
  const uint64_t bound = static_cast<uint64_t>(n);
  int64_t i = 0;
  if (stream)  // scalar head up to the first 32-byte boundary of y
    for (; i < k && (reinterpret_cast<uintptr_t>(y + i) & 31) != 0; ++i) {
      if (static_cast<uint64_t>(idx[i]) >= bound) return false;
      y[i] = x[idx[i]];
    }
  // unsigned idx > n - 1 (negative indices are huge unsigned) as a signed compare of both sides
  // with the sign bit flipped
  const __m256i flip = _mm256_set1_epi64x(INT64_MIN);
  const __m256i last = _mm256_set1_epi64x(static_cast<int64_t>(bound - 1) ^ INT64_MIN);
  for (; i + 8 <= k; i += 8) {
    const int64_t* p = idx + i;
    const __m256i a =
        _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), flip);
    const __m256i b =
        _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 4)), flip);
    const __m256i out = _mm256_or_si256(_mm256_cmpgt_epi64(a, last), _mm256_cmpgt_epi64(b, last));
    if (!_mm256_testz_si256(out, out)) return false;
    const __m256i v = _mm256_setr_epi32(static_cast<int>(x[p[0]]), static_cast<int>(x[p[1]]),
                                        static_cast<int>(x[p[2]]), static_cast<int>(x[p[3]]),
                                        static_cast<int>(x[p[4]]), static_cast<int>(x[p[5]]),
                                        static_cast<int>(x[p[6]]), static_cast<int>(x[p[7]]));
    if (stream)
      _mm256_stream_si256(reinterpret_cast<__m256i*>(y + i), v);
    else
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), v);
  }
  for (; i < k; ++i) {
    if (static_cast<uint64_t>(idx[i]) >= bound) return false;
    y[i] = x[idx[i]];
  }
  return true;
}

namespace {
// keys of 8 floats / int32 as sort_key computes them, with the sign bit flipped so that signed
// compares order them as unsigned
inline __m256i keys_f32(__m256i u, __m256i invert) {
  const __m256i zero = _mm256_setzero_si256();
  u = _mm256_andnot_si256(_mm256_cmpeq_epi32(_mm256_slli_epi32(u, 1), zero), u);  // -0 -> +0
  const __m256i sign = _mm256_set1_epi32(INT32_MIN);
  __m256i k = _mm256_xor_si256(u, _mm256_or_si256(_mm256_srai_epi32(u, 31), sign));
  const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF)),
                                         _mm256_set1_epi32(0x7F800000));
  k = _mm256_or_si256(k, nan);  // NaN: all ones
  return _mm256_xor_si256(_mm256_xor_si256(k, invert), sign);
}
inline __m256i keys_i32(__m256i v, __m256i invert) {
  // v ^ 0x80000000 is the unsigned key; flipped back for the signed compare: v itself
  return _mm256_xor_si256(v, invert);
}

template <typename Keys, typename T>
int64_t first_below(const T* x, int64_t i, int64_t n, uint32_t thr, bool descending, Keys keys) {
  const __m256i invert = _mm256_set1_epi32(descending ? -1 : 0);
  const __m256i t = _mm256_set1_epi32(static_cast<int32_t>(thr ^ 0x80000000u));
  for (; i + 8 <= n; i += 8) {
    const __m256i k = keys(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), invert);
    const int m = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(t, k)));
    if (m) return i + __builtin_ctz(static_cast<unsigned>(m));
  }
  for (; i < n; ++i) {
    alignas(32) T one[8] = {};
    one[0] = x[i];
    const __m256i k = keys(_mm256_load_si256(reinterpret_cast<const __m256i*>(one)), invert);
    if (_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(t, k))) & 1) return i;
  }
  return n;
}
}  // namespace

int64_t first_key_below_f32(const float* x, int64_t i0, int64_t n, uint32_t thr, bool descending) {
  return first_below(x, i0, n, thr, descending, keys_f32);
}

int64_t first_key_below_i32(const int32_t* x, int64_t i0, int64_t n, uint32_t thr,
                            bool descending) {
  return first_below(x, i0, n, thr, descending, keys_i32);
}

}  // namespace smyrf::kernels::cpu::avx2
