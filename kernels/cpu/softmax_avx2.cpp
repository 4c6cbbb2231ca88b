// AVX2 float32 softmax / log_softmax / cross-entropy row kernels (see softmax_avx2.h). Tails go
// through masked loads (padded with the neutral value of the pass) so every element sees the
// same vector formula.
#include "kernels/cpu/softmax_avx2.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/reduce_avx2.h"
#include "kernels/cpu/row_avx2.h"
#include "kernels/cpu/vec_math_avx2.h"

namespace smyrf::kernels::cpu::avx2 {
namespace {
using rows::kFlush;
using rows::load_tail;
using rows::neg_inf;
using rows::row_sum;
using rows::RowPrefetch;

// Rows up to this many floats stay in L1/L2 between passes. Longer softmax rows go in chunks of
// this size (softmax_row_chunked), softmax and log_softmax alike.
constexpr int64_t kCachedRow = 16384;
// Cross-entropy reads its row twice (sum + max, then exp-sum): rows up to 256 KiB stay in L2.
constexpr int64_t kCachedLogits = 65536;

void fill_row(float* y, int64_t n, float v) {
  for (int64_t i = 0; i < n; ++i) y[i] = v;
}

// Online max and sum of exp(x - max) over the row in one read: per lane, every 32 elements the
// running sum is rescaled by exp(m_old - m_new) once (1.25 exp per 8 elements instead of 2).
// Returns max (NaN if the row has a NaN) and the sum in *s.
float online_max_sum(const float* x, int64_t n, double* s) {
  const __m256 lowest = _mm256_set1_ps(std::numeric_limits<float>::lowest());
  __m256 m = lowest, acc = _mm256_setzero_ps();
  __m256 nan = _mm256_setzero_ps();
  auto block = [&](__m256 v0, __m256 v1, __m256 v2, __m256 v3) {
    nan = _mm256_or_ps(nan, _mm256_or_ps(_mm256_cmp_ps(v0, v1, _CMP_UNORD_Q),
                                         _mm256_cmp_ps(v2, v3, _CMP_UNORD_Q)));
    const __m256 bm = _mm256_max_ps(_mm256_max_ps(v0, v1), _mm256_max_ps(v2, v3));
    const __m256 mn = _mm256_max_ps(m, bm);
    __m256 e = _mm256_add_ps(
        _mm256_add_ps(exp_nonpos_ps(_mm256_sub_ps(v0, mn)), exp_nonpos_ps(_mm256_sub_ps(v1, mn))),
        _mm256_add_ps(exp_nonpos_ps(_mm256_sub_ps(v2, mn)), exp_nonpos_ps(_mm256_sub_ps(v3, mn))));
    acc = _mm256_fmadd_ps(acc, exp_nonpos_ps(_mm256_sub_ps(m, mn)), e);
    m = mn;
  };
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    block(_mm256_loadu_ps(x + i), _mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(x + i + 16),
          _mm256_loadu_ps(x + i + 24));
  if (i < n) {
    __m256 v[4];
    for (int k = 0; k < 4; ++k) {
      const int64_t j = i + 8 * k;
      v[k] = j >= n ? neg_inf() : load_tail(x + j, n - j < 8 ? n - j : 8, neg_inf());
    }
    block(v[0], v[1], v[2], v[3]);
  }
  if (_mm256_movemask_ps(nan)) {
    *s = std::numeric_limits<double>::quiet_NaN();
    return std::numeric_limits<float>::quiet_NaN();
  }
  // + inf anywhere makes the reference NaN (exp(inf - inf)); the lane math already has NaN then
  const float mx = hmax_ps(m);
  *s =
      hsum_pd(add_widened(_mm256_setzero_pd(),
                          _mm256_mul_ps(acc, exp_nonpos_ps(_mm256_sub_ps(m, _mm256_set1_ps(mx))))));
  // a sum of 0 means no entry above -inf (the max of a finite entry contributes exp(0) = 1)
  return *s == 0 ? -std::numeric_limits<float>::infinity() : mx;
}

}  // namespace

namespace {
// y = exp(x - m) over one cached run; returns the sum (in double).
double exp_store_sum(const float* x, float* y, int64_t n, float m, RowPrefetch& pf) {
  const __m256 mv = _mm256_set1_ps(m);
  return row_sum(n, [&](int64_t i, bool tail) {
    if (tail) {
      const __m256i k = tail_mask(n - i);
      __m256 e = exp_nonpos_ps(_mm256_sub_ps(load_tail(x + i, n - i, neg_inf()), mv));
      _mm256_maskstore_ps(y + i, k, e);
      return e;
    }
    if (i % 16 == 0) pf.step();
    __m256 e = exp_nonpos_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
    _mm256_storeu_ps(y + i, e);
    return e;
  });
}

void scale_row(float* y, int64_t n, float f) {
  const __m256 fv = _mm256_set1_ps(f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), fv));
  if (i < n) {
    const __m256i k = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, k, _mm256_mul_ps(_mm256_maskload_ps(y + i, k), fv));
  }
}

// softmax / log_softmax of a row longer than kCachedRow, in chunks of kCachedRow: each chunk
// gets its own max m_c and sum s_c of exp(x - m_c) while it is in cache (softmax also stores the
// exps), one exp per element where the online form needs 1.25 (log) or 2.25 (softmax). With
// M = max m_c and S = sum s_c exp(m_c - M), softmax scales each chunk by exp(m_c - M) / S (x read
// once, y twice) and log_softmax writes x - M - log S (x read twice, as online).
void softmax_row_chunked(const float* x, float* y, int64_t n, bool log) {
  const int64_t nc = (n + kCachedRow - 1) / kCachedRow;
  std::vector<float> cm(static_cast<size_t>(nc));
  std::vector<double> cs(static_cast<size_t>(nc));
  RowPrefetch none(nullptr, 0);
  float M = -std::numeric_limits<float>::infinity();
  for (int64_t c = 0; c < nc; ++c) {
    const int64_t b = c * kCachedRow, len = n - b < kCachedRow ? n - b : kCachedRow;
    const float m = maxmin_f32(x + b, len, true);  // NaN if any NaN
    if (std::isnan(m)) return fill_row(y, n, std::numeric_limits<float>::quiet_NaN());
    cm[c] = m;
    if (std::isinf(m) && m < 0) {  // an all -inf chunk: no weight (softmax: zeros)
      if (!log) fill_row(y + b, len, 0.f);
      cs[c] = 0;
      continue;
    }
    if (log) {
      const __m256 mv = _mm256_set1_ps(m);
      const float* xb = x + b;
      cs[c] = row_sum(len, [&](int64_t i, bool tail) {
        __m256 v = tail ? load_tail(xb + i, len - i, neg_inf()) : _mm256_loadu_ps(xb + i);
        return exp_nonpos_ps(_mm256_sub_ps(v, mv));
      });
    } else {
      cs[c] = exp_store_sum(x + b, y + b, len, m, none);
    }
    M = m > M ? m : M;
  }
  if (std::isinf(M) && M < 0) {  // every entry -inf: softmax zeros (written), log_softmax x
    if (log) std::copy(x, x + n, y);
    return;
  }
  double S = 0;
  for (int64_t c = 0; c < nc; ++c) S += cs[c] * std::exp(static_cast<double>(cm[c]) - M);
  if (log) {
    const __m256 l = _mm256_set1_ps(static_cast<float>(M + std::log(S)));
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_sub_ps(_mm256_loadu_ps(x + i), l));
    if (i < n) {
      const __m256i k = tail_mask(n - i);
      _mm256_maskstore_ps(y + i, k, _mm256_sub_ps(_mm256_maskload_ps(x + i, k), l));
    }
    return;
  }
  for (int64_t c = 0; c < nc; ++c) {
    const int64_t b = c * kCachedRow, len = n - b < kCachedRow ? n - b : kCachedRow;
    scale_row(y + b, len, static_cast<float>(std::exp(static_cast<double>(cm[c]) - M) / S));
  }
}
}  // namespace

void softmax_row_f32(const float* x, float* y, int64_t n, bool log, const float* next) {
  if (n > kCachedRow) return softmax_row_chunked(x, y, n, log);
  RowPrefetch pf(next, n);
  const float m = maxmin_f32(x, n, true);  // NaN if any NaN
  if (std::isnan(m)) return fill_row(y, n, std::numeric_limits<float>::quiet_NaN());
  if (std::isinf(m) && m < 0) {  // every entry -inf
    for (int64_t i = 0; i < n; ++i) y[i] = log ? x[i] : 0.f;
    return;
  }
  if (!log) {
    // store exp(x - m) now and scale it, while the row is still in cache
    const double s = exp_store_sum(x, y, n, m, pf);
    return scale_row(y, n, static_cast<float>(1.0 / s));
  }
  const __m256 mv = _mm256_set1_ps(m);
  const double s = row_sum(n, [&](int64_t i, bool tail) {
    if (i % 16 == 0) pf.step();
    __m256 v = tail ? load_tail(x + i, n - i, neg_inf()) : _mm256_loadu_ps(x + i);
    return exp_nonpos_ps(_mm256_sub_ps(v, mv));
  });
  const __m256 l = _mm256_set1_ps(static_cast<float>(m + std::log(s)));
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_sub_ps(_mm256_loadu_ps(x + i), l));
  if (i < n) {
    const __m256i k = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, k, _mm256_sub_ps(_mm256_maskload_ps(x + i, k), l));
  }
}

void softmax_row_backward_f32(const float* y, const float* dy, float* dx, int64_t n, bool log) {
  const __m256 zero = _mm256_setzero_ps();
  int64_t i = 0;
  if (log) {
    const double s = row_sum(n, [&](int64_t j, bool tail) {
      return tail ? load_tail(dy + j, n - j, zero) : _mm256_loadu_ps(dy + j);
    });
    const __m256 sv = _mm256_set1_ps(static_cast<float>(s));
    auto f = [&](__m256 yv, __m256 gv) { return _mm256_fnmadd_ps(exp_ps(yv), sv, gv); };
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(dx + i, f(_mm256_loadu_ps(y + i), _mm256_loadu_ps(dy + i)));
    if (i < n) {
      const __m256i k = tail_mask(n - i);
      _mm256_maskstore_ps(dx + i, k,
                          f(_mm256_maskload_ps(y + i, k), _mm256_maskload_ps(dy + i, k)));
    }
    return;
  }
  const double s = row_sum(n, [&](int64_t j, bool tail) {
    if (tail) return _mm256_mul_ps(load_tail(dy + j, n - j, zero), load_tail(y + j, n - j, zero));
    return _mm256_mul_ps(_mm256_loadu_ps(dy + j), _mm256_loadu_ps(y + j));
  });
  const __m256 sv = _mm256_set1_ps(static_cast<float>(s));
  auto f = [&](__m256 yv, __m256 gv) { return _mm256_mul_ps(yv, _mm256_sub_ps(gv, sv)); };
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dx + i, f(_mm256_loadu_ps(y + i), _mm256_loadu_ps(dy + i)));
  if (i < n) {
    const __m256i k = tail_mask(n - i);
    _mm256_maskstore_ps(dx + i, k, f(_mm256_maskload_ps(y + i, k), _mm256_maskload_ps(dy + i, k)));
  }
}

void cross_entropy_row_f32(const float* x, int64_t C, double* lse, double* sum_x,
                           const float* next) {
  double s;
  float m;
  if (C <= kCachedLogits) {
    // pass 1 (the row's only read from memory): the plain sum and the max together; a NaN
    // makes the max NaN (max_ps keeps its second operand when either is NaN: x goes second)
    const __m256 zero = _mm256_setzero_ps();
    __m256 mx0 = neg_inf(), mx1 = mx0, nan = zero;
    *sum_x = row_sum(C, [&](int64_t i, bool tail) {
      const __m256 v = tail ? load_tail(x + i, C - i, zero) : _mm256_loadu_ps(x + i);
      const __m256 vm = tail ? load_tail(x + i, C - i, neg_inf()) : v;
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(vm, vm, _CMP_UNORD_Q));
      if ((i & 8) == 0)
        mx0 = _mm256_max_ps(mx0, vm);
      else
        mx1 = _mm256_max_ps(mx1, vm);
      return v;
    });
    m = _mm256_movemask_ps(nan) ? std::numeric_limits<float>::quiet_NaN()
                                : hmax_ps(_mm256_max_ps(mx0, mx1));
    // pass 2 (in cache): the exp-sum, the bound for this kernel, while the next row streams in
    RowPrefetch pf(next, C);
    const __m256 mv = _mm256_set1_ps(m);
    s = row_sum(C, [&](int64_t i, bool tail) {
      if (i % 16 == 0) pf.step();
      __m256 v = tail ? load_tail(x + i, C - i, neg_inf()) : _mm256_loadu_ps(x + i);
      return exp_nonpos_ps(_mm256_sub_ps(v, mv));
    });
  } else {
    const __m256 zero = _mm256_setzero_ps();
    *sum_x = row_sum(C, [&](int64_t i, bool tail) {
      return tail ? load_tail(x + i, C - i, zero) : _mm256_loadu_ps(x + i);
    });
    m = online_max_sum(x, C, &s);
  }
  // an all -inf row: the reference's exp(-inf - -inf) is NaN, and so is this
  if (std::isinf(m) && m < 0) s = std::numeric_limits<double>::quiet_NaN();
  *lse = m + std::log(s);
}

void cross_entropy_row_backward_f32(const float* x, float* dx, int64_t C, double lse, double g,
                                    double off) {
  const __m256 lv = _mm256_set1_ps(static_cast<float>(lse));
  const __m256 gv = _mm256_set1_ps(static_cast<float>(g));
  const __m256 ov = _mm256_set1_ps(static_cast<float>(off));
  auto f = [&](__m256 v) {
    return _mm256_mul_ps(gv, _mm256_sub_ps(exp_nonpos_ps(_mm256_sub_ps(v, lv)), ov));
  };
  int64_t i = 0;
  for (; i + 8 <= C; i += 8) _mm256_storeu_ps(dx + i, f(_mm256_loadu_ps(x + i)));
  if (i < C) {
    const __m256i k = tail_mask(C - i);
    _mm256_maskstore_ps(dx + i, k, f(_mm256_maskload_ps(x + i, k)));
  }
}

}  // namespace smyrf::kernels::cpu::avx2
