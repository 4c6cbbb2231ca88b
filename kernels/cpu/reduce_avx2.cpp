#include "kernels/cpu/reduce_avx2.h"

#include <immintrin.h>

#include <cmath>
#include <initializer_list>

#include "kernels/cpu/vec_math_avx2.h"

namespace smyrf::kernels::cpu::avx2 {

// How far ahead (floats) sum_f32 and maxmin_f32 prefetch their stream (see maxmin_f32).
constexpr int64_t kReduceAhead = 2048;

double sum_f32(const float* x, int64_t n) {
  // float lanes for speed, flushed to double before a lane has added more than 32 values
  constexpr int64_t kFlush = 1024;
  __m256d total = _mm256_setzero_pd();
  int64_t i = 0;
  while (i + 32 <= n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const int64_t e = i + kFlush < n ? i + kFlush : n;
    for (; i + 32 <= e; i += 32) {
      // prefetched 8 KiB ahead, as maxmin_f32
      _mm_prefetch(reinterpret_cast<const char*>(x + i + kReduceAhead), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x + i + kReduceAhead + 16), _MM_HINT_T0);
      a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
      a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
      a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
      a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
    }
    total = add_widened(total, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  }
  double r = hsum_pd(total);
  for (; i < n; ++i) r += x[i];
  return r;
}

double sum_squares_f32(const float* x, int64_t n) {
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + 8);
    const __m256d u0 = _mm256_cvtps_pd(_mm256_castps256_ps128(u));
    const __m256d u1 = _mm256_cvtps_pd(_mm256_extractf128_ps(u, 1));
    const __m256d v0 = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    const __m256d v1 = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    a0 = _mm256_fmadd_pd(u0, u0, a0);
    a1 = _mm256_fmadd_pd(u1, u1, a1);
    a2 = _mm256_fmadd_pd(v0, v0, a2);
    a3 = _mm256_fmadd_pd(v1, v1, a3);
  }
  double r = hsum_pd(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
  for (; i < n; ++i) r += static_cast<double>(x[i]) * x[i];
  return r;
}

double sum_sq_dev_f32(const float* x, int64_t n, double c) {
  const __m256d cc = _mm256_set1_pd(c);
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + 8);
    const __m256d u0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(u)), cc);
    const __m256d u1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(u, 1)), cc);
    const __m256d v0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), cc);
    const __m256d v1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), cc);
    a0 = _mm256_fmadd_pd(u0, u0, a0);
    a1 = _mm256_fmadd_pd(u1, u1, a1);
    a2 = _mm256_fmadd_pd(v0, v0, a2);
    a3 = _mm256_fmadd_pd(v1, v1, a3);
  }
  double r = hsum_pd(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
  for (; i < n; ++i) {
    const double d = x[i] - c;
    r += d * d;
  }
  return r;
}

double sum_f64(const double* x, int64_t n) {
  // four chains of four lanes (reduce_one's portable loop ran eight scalar chains, SSE2 at best:
  // float64 4096 x 2048 over rows 0.81x PyTorch)
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_pd(a0, _mm256_loadu_pd(x + i));
    a1 = _mm256_add_pd(a1, _mm256_loadu_pd(x + i + 4));
    a2 = _mm256_add_pd(a2, _mm256_loadu_pd(x + i + 8));
    a3 = _mm256_add_pd(a3, _mm256_loadu_pd(x + i + 12));
  }
  double r = hsum_pd(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
  for (; i < n; ++i) r += x[i];
  return r;
}

double prod_f32(const float* x, int64_t n) {
  // products in double, four lanes in each of four chains (reduce_one's scalar loop ran four
  // double chains one element at a time: 4096^2 over rows 2.2 ms, PyTorch's float products 1.2)
  const __m256d one = _mm256_set1_pd(1.0);
  __m256d a0 = one, a1 = one, a2 = one, a3 = one;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + 8);
    a0 = _mm256_mul_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(u)));
    a1 = _mm256_mul_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(u, 1)));
    a2 = _mm256_mul_pd(a2, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    a3 = _mm256_mul_pd(a3, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_mul_pd(_mm256_mul_pd(a0, a1), _mm256_mul_pd(a2, a3)));
  double r = (lanes[0] * lanes[1]) * (lanes[2] * lanes[3]);
  for (; i < n; ++i) r *= x[i];
  return r;
}

float maxmin_f32(const float* x, int64_t n, bool is_max) {
  int64_t i = 0;
  float best = x[0];
  if (n >= 8) {
    __m256 b0 = _mm256_loadu_ps(x), b1 = b0;
    // lanes that have seen a NaN. The first load counts too: max_ps(b, v) returns v when b is
    // NaN, so a NaN among the first 8 values used to be dropped.
    __m256 nan = _mm256_cmp_ps(b0, b0, _CMP_UNORD_Q);
    i = 8;
    // four independent max chains: one chain is bound by max_ps latency (4 cycles a vector), and
    // this pass is a third of softmax's in-cache work
    if (n >= 40) {
      __m256 b2 = b0, b3 = b0, nan1 = nan;
      auto mm = [&](__m256 a, __m256 b) {
        return is_max ? _mm256_max_ps(a, b) : _mm256_min_ps(a, b);
      };
      // the stream prefetched 8 KiB ahead (any address is safe): the hardware prefetchers stop
      // at each 4 KiB page, and max over the rows of 4096 x 4096 ran at 0.91-0.93x PyTorch and
      // 12-18% behind our sum (prefetch distance, 2 threads / 1 thread, time ratio, 4-6
      // alternated rounds: 4 KiB 0.80 / 0.77, 8 KiB 0.81-0.85 / 0.66, 16 KiB 0.85)
      for (; i + 32 <= n; i += 32) {
        _mm_prefetch(reinterpret_cast<const char*>(x + i + kReduceAhead), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(x + i + kReduceAhead + 16), _MM_HINT_T0);
        __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        __m256 v2 = _mm256_loadu_ps(x + i + 16), v3 = _mm256_loadu_ps(x + i + 24);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v0, v1, _CMP_UNORD_Q));
        nan1 = _mm256_or_ps(nan1, _mm256_cmp_ps(v2, v3, _CMP_UNORD_Q));
        b0 = mm(b0, v0);
        b1 = mm(b1, v1);
        b2 = mm(b2, v2);
        b3 = mm(b3, v3);
      }
      // fold b2, b3 in (a NaN among them is caught by nan1)
      nan = _mm256_or_ps(nan, _mm256_or_ps(nan1, _mm256_cmp_ps(b2, b3, _CMP_UNORD_Q)));
      b0 = mm(b0, b2);
      b1 = mm(b1, b3);
    }
    for (; i + 16 <= n; i += 16) {
      __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(v0, v1, _CMP_UNORD_Q));
      b0 = is_max ? _mm256_max_ps(b0, v0) : _mm256_min_ps(b0, v0);
      b1 = is_max ? _mm256_max_ps(b1, v1) : _mm256_min_ps(b1, v1);
    }
    for (; i + 8 <= n; i += 8) {
      __m256 v = _mm256_loadu_ps(x + i);
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
      b0 = is_max ? _mm256_max_ps(b0, v) : _mm256_min_ps(b0, v);
    }
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(b0, b1, _CMP_UNORD_Q));
    if (_mm256_movemask_ps(nan)) return std::nanf("");
    const __m256 b = is_max ? _mm256_max_ps(b0, b1) : _mm256_min_ps(b0, b1);
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, b);
    best = lanes[0];
    for (float v : lanes) best = is_max ? (v > best ? v : best) : (v < best ? v : best);
  }
  for (; i < n; ++i) {
    if (std::isnan(x[i])) return x[i];
    best = is_max ? (x[i] > best ? x[i] : best) : (x[i] < best ? x[i] : best);
  }
  return best;
}

int64_t argmaxmin_f32(const float* x, int64_t n, bool is_max) {
  const float m = maxmin_f32(x, n, is_max);
  const bool nan = std::isnan(m);
  // lanes equal to m (for a NaN m: lanes that are NaN, unordered with themselves)
  const __m256 mv = _mm256_set1_ps(m);
  auto hits = [&](__m256 v) {
    return _mm256_movemask_ps(nan ? _mm256_cmp_ps(v, v, _CMP_UNORD_Q)
                                  : _mm256_cmp_ps(v, mv, _CMP_EQ_OQ));
  };
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const int h0 = hits(_mm256_loadu_ps(x + i)), h1 = hits(_mm256_loadu_ps(x + i + 8));
    const int h2 = hits(_mm256_loadu_ps(x + i + 16)), h3 = hits(_mm256_loadu_ps(x + i + 24));
    const uint32_t all = static_cast<uint32_t>(h0) | static_cast<uint32_t>(h1) << 8 |
                         static_cast<uint32_t>(h2) << 16 | static_cast<uint32_t>(h3) << 24;
    if (all) return i + __builtin_ctz(all);
  }
  for (; i + 8 <= n; i += 8)
    if (const int h = hits(_mm256_loadu_ps(x + i)))
      return i + __builtin_ctz(static_cast<unsigned>(h));
  for (; i < n; ++i)
    if (nan ? std::isnan(x[i]) : x[i] == m) return i;
  return 0;  // unreachable: m is one of the values
}

void col_sum_f32(const float* x, int64_t rs, int64_t rows, int64_t cols, double* acc) {
  // eight rows per sweep over the accumulators, so acc is loaded and stored once per eight rows;
  // the rows are summed in float pairs first ((p0 + p1) is exact in double only when added in
  // double, so each row is widened before it is added: the order is the row order as before)
  int64_t r = 0;
  for (; r + 8 <= rows; r += 8) {
    const float* p0 = x + r * rs;
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8) {
      __m256d lo = _mm256_loadu_pd(acc + j), hi = _mm256_loadu_pd(acc + j + 4);
      for (int i = 0; i < 8; ++i) {
        const __m256 v = _mm256_loadu_ps(p0 + i * rs + j);
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
      }
      _mm256_storeu_pd(acc + j, lo);
      _mm256_storeu_pd(acc + j + 4, hi);
    }
    for (; j < cols; ++j) {
      double a = acc[j];
      for (int i = 0; i < 8; ++i) a += p0[i * rs + j];
      acc[j] = a;
    }
  }
  for (; r < rows; ++r) {
    const float* p = x + r * rs;
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8) {
      const __m256 v = _mm256_loadu_ps(p + j);
      _mm256_storeu_pd(acc + j, _mm256_add_pd(_mm256_loadu_pd(acc + j),
                                              _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
      _mm256_storeu_pd(acc + j + 4, _mm256_add_pd(_mm256_loadu_pd(acc + j + 4),
                                                  _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
    }
    for (; j < cols; ++j) acc[j] += p[j];
  }
}

void col_dev_moments_f32(const float* x, int64_t rs, int64_t rows, int64_t cols, const float* c,
                         double* s1, double* s2) {
  // as col_sum_f32: strips of up to eight rows, each sweeping the block's columns, so memory is
  // read along whole row runs and the accumulators (in L1) are loaded and stored once a strip
  for (int64_t r0 = 0; r0 < rows; r0 += 8) {
    const int64_t k = rows - r0 < 8 ? rows - r0 : 8;
    const float* p0 = x + r0 * rs;
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8) {
      const __m256d c_lo = _mm256_cvtps_pd(_mm_loadu_ps(c + j));
      const __m256d c_hi = _mm256_cvtps_pd(_mm_loadu_ps(c + j + 4));
      __m256d a_lo = _mm256_loadu_pd(s1 + j), a_hi = _mm256_loadu_pd(s1 + j + 4);
      __m256d q_lo = _mm256_loadu_pd(s2 + j), q_hi = _mm256_loadu_pd(s2 + j + 4);
      for (int64_t i = 0; i < k; ++i) {
        const __m256 v = _mm256_loadu_ps(p0 + i * rs + j);
        const __m256d d_lo = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), c_lo);
        const __m256d d_hi = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), c_hi);
        a_lo = _mm256_add_pd(a_lo, d_lo);
        a_hi = _mm256_add_pd(a_hi, d_hi);
        q_lo = _mm256_fmadd_pd(d_lo, d_lo, q_lo);
        q_hi = _mm256_fmadd_pd(d_hi, d_hi, q_hi);
      }
      _mm256_storeu_pd(s1 + j, a_lo);
      _mm256_storeu_pd(s1 + j + 4, a_hi);
      _mm256_storeu_pd(s2 + j, q_lo);
      _mm256_storeu_pd(s2 + j + 4, q_hi);
    }
    for (; j < cols; ++j) {
      double a = s1[j], q = s2[j];
      for (int64_t i = 0; i < k; ++i) {
        const double d = static_cast<double>(p0[i * rs + j]) - c[j];
        a += d;
        q += d * d;
      }
      s1[j] = a;
      s2[j] = q;
    }
  }
}

// The running extreme b after value v, as the scalar reference takes it: max_ps(v, b) is
// v > b ? v : b, which keeps b when either is NaN (and the first of equal values, -0 before +0);
// a NaN v replaces b only while b is not NaN yet, so the first NaN (its payload) wins. (The blend
// once put in every NaN v, so a later NaN replaced the first.)
inline __m256 extreme_first_nan(__m256 v, __m256 b, bool is_max) {
  const __m256 e = is_max ? _mm256_max_ps(v, b) : _mm256_min_ps(v, b);
  const __m256 take_v =
      _mm256_andnot_ps(_mm256_cmp_ps(b, b, _CMP_UNORD_Q), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  return _mm256_blendv_ps(e, v, take_v);
}

void col_maxmin_f32(const float* x, int64_t rs, int64_t rows, int64_t cols, float* best,
                    bool is_max) {
  // eight rows per sweep, best kept in a register across them (the same row order, so the
  // first NaN and the first of equal values still win); best is loaded and stored once per eight
  int64_t r = 0;
  for (; r + 8 <= rows; r += 8) {
    const float* p0 = x + r * rs;
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8) {
      __m256 m = _mm256_loadu_ps(best + j);
      for (int i = 0; i < 8; ++i) {
        const __m256 v = _mm256_loadu_ps(p0 + i * rs + j);
        m = extreme_first_nan(v, m, is_max);
      }
      _mm256_storeu_ps(best + j, m);
    }
    for (; j < cols; ++j) {
      for (int i = 0; i < 8; ++i) {
        const float v = p0[i * rs + j];
        if (std::isnan(best[j])) break;
        if (std::isnan(v) || (is_max ? v > best[j] : v < best[j])) best[j] = v;
      }
    }
  }
  for (; r < rows; ++r) {
    const float* p = x + r * rs;
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8) {
      _mm256_storeu_ps(
          best + j, extreme_first_nan(_mm256_loadu_ps(p + j), _mm256_loadu_ps(best + j), is_max));
    }
    for (; j < cols; ++j) {
      const float v = p[j];
      if (std::isnan(best[j])) continue;
      if (std::isnan(v) || (is_max ? v > best[j] : v < best[j])) best[j] = v;
    }
  }
}

void col_argmaxmin_f32(const float* x, int64_t rs, int64_t rows, int64_t cols, float* best,
                       int32_t* idx, int64_t first_row, bool is_max) {
  // strips of up to eight rows sweeping the columns, best and its row index in registers across
  // a strip. A row takes a lane when strictly better (ties keep the first), or when it is NaN and
  // the lane is not NaN yet (the first NaN wins and stays), as the element loop of argreduce
  for (int64_t r0 = 0; r0 < rows; r0 += 8) {
    const int64_t k = rows - r0 < 8 ? rows - r0 : 8;
    const float* p0 = x + r0 * rs;
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8) {
      __m256 b = _mm256_loadu_ps(best + j);
      __m256i ix = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + j));
      for (int64_t i = 0; i < k; ++i) {
        const __m256 v = _mm256_loadu_ps(p0 + i * rs + j);
        const __m256 better =
            is_max ? _mm256_cmp_ps(v, b, _CMP_GT_OQ) : _mm256_cmp_ps(b, v, _CMP_GT_OQ);
        const __m256 nan_first =
            _mm256_andnot_ps(_mm256_cmp_ps(b, b, _CMP_UNORD_Q), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        const __m256 take = _mm256_or_ps(better, nan_first);
        b = _mm256_blendv_ps(b, v, take);
        ix = _mm256_castps_si256(_mm256_blendv_ps(
            _mm256_castsi256_ps(ix),
            _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int32_t>(first_row + r0 + i))),
            take));
      }
      _mm256_storeu_ps(best + j, b);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + j), ix);
    }
    for (; j < cols; ++j) {
      for (int64_t i = 0; i < k; ++i) {
        const float v = p0[i * rs + j];
        if (std::isnan(best[j])) break;
        if (std::isnan(v) || (is_max ? v > best[j] : v < best[j])) {
          best[j] = v;
          idx[j] = static_cast<int32_t>(first_row + r0 + i);
        }
      }
    }
  }
}

}  // namespace smyrf::kernels::cpu::avx2
