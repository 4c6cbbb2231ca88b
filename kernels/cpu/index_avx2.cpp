// AVX2 gather row kernel (see index_avx2.h).
#include "kernels/cpu/index_avx2.h"

#include <immintrin.h>

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

}  // namespace smyrf::kernels::cpu::avx2
