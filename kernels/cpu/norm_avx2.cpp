// AVX2 float32 row kernels. Sums over a row are accumulated in float lanes and folded into double
// every kFlush elements, so long rows keep double-like accuracy at float speed. Tails go through
// masked loads (padded with the neutral value of the pass) so every element sees the same
// vector formula.
#include "kernels/cpu/norm_avx2.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/reduce_avx2.h"
#include "kernels/cpu/vec_math_avx2.h"

namespace smyrf::kernels::cpu::avx2 {
namespace {

constexpr int64_t kFlush = 1024;
// Rows up to this many floats stay in L1/L2 between passes. Longer softmax rows go in chunks of
// this size (softmax_row_chunked), softmax and log_softmax alike.
constexpr int64_t kCachedRow = 16384;
// Cross-entropy reads its row twice (sum + max, then exp-sum): rows up to 256 KiB stay in L2.
constexpr int64_t kCachedLogits = 65536;

inline __m256 neg_inf() { return _mm256_set1_ps(-std::numeric_limits<float>::infinity()); }

// Software prefetch of the row this thread handles next, one 64-byte line per step(), issued
// from the passes that work on a row already in cache (exp-sum, variance, write). Without it the
// row's passes alternate between waiting on memory (first read) and computing with memory idle;
// with it the next row streams in while this one computes. Rows up to 16 KiB go to L1, longer
// ones to L2 (they would evict the current row from L1). A null row prefetches nothing.
struct RowPrefetch {
  const char* p;
  const char* end;
  bool l1;
  RowPrefetch(const float* row, int64_t n)
      : p(reinterpret_cast<const char*>(row)),
        end(row ? reinterpret_cast<const char*>(row + n) : nullptr),
        l1(n <= 4096) {}
  inline void step() {
    if (p < end) {
      if (l1)
        _mm_prefetch(p, _MM_HINT_T0);
      else
        _mm_prefetch(p, _MM_HINT_T1);
      p += 64;
    }
  }
};

// Masked tail load with `pad` in the lanes past the end.
inline __m256 load_tail(const float* p, int64_t k, __m256 pad) {
  const __m256i m = tail_mask(k);
  return _mm256_blendv_ps(pad, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}

// sum over the row of f(i, 8 lanes at i); f gets `pad` lanes past the end, and must map them to 0.
template <typename F>
inline double row_sum(int64_t n, F f) {
  double total = 0;
  for (int64_t b = 0; b < n; b += kFlush) {
    const int64_t e = b + kFlush < n ? b + kFlush : n;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int64_t i = b;
    for (; i + 16 <= e; i += 16) {
      a0 = _mm256_add_ps(a0, f(i, false));
      a1 = _mm256_add_ps(a1, f(i + 8, false));
    }
    for (; i + 8 <= e; i += 8) a0 = _mm256_add_ps(a0, f(i, false));
    if (i < e) a1 = _mm256_add_ps(a1, f(i, true));
    total += hsum_pd(add_widened(_mm256_setzero_pd(), _mm256_add_ps(a0, a1)));
  }
  return total;
}

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

void layernorm_row_f32(const float* x, const float* w, const float* b, float* y, int64_t n,
                       double eps, double* mean, double* rstd, const float* next) {
  RowPrefetch pf(next, n);
  const __m256 zero = _mm256_setzero_ps();
  // the mean of x - x[0]: float lanes then add values of the row's spread, not of its mean,
  // so a large common offset does not cost accuracy
  const __m256 shift = _mm256_set1_ps(x[0]);
  const double mu = x[0] + row_sum(n, [&](int64_t i, bool tail) {
                             return tail ? _mm256_sub_ps(load_tail(x + i, n - i, shift), shift)
                                         : _mm256_sub_ps(_mm256_loadu_ps(x + i), shift);
                           }) / n;
  // mean as float hi + lo: x - hi is exact for x near the mean, so rows with a large mean do
  // not lose the ~ulp(mean) that a float mean alone would cost every xhat
  const float mu_hi = static_cast<float>(mu);
  const __m256 mv = _mm256_set1_ps(mu_hi);
  const __m256 mlo = _mm256_set1_ps(static_cast<float>(mu - mu_hi));
  // two-pass variance (the row is in cache): no cancellation for rows with a large mean
  const double v = row_sum(n, [&](int64_t i, bool tail) {
    if (i % 32 == 0) pf.step();  // half the next row here, the rest in the write pass
    __m256 d =
        tail ? _mm256_and_ps(_mm256_sub_ps(_mm256_sub_ps(load_tail(x + i, n - i, mv), mv), mlo),
                             _mm256_castsi256_ps(tail_mask(n - i)))
             : _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv), mlo);
    return _mm256_mul_ps(d, d);
  });
  const double rs = 1.0 / std::sqrt(v / n + eps);
  const __m256 rv = _mm256_set1_ps(static_cast<float>(rs));
  const __m256 one = _mm256_set1_ps(1.0f);
  auto f = [&](__m256 xv, __m256 wv, __m256 bv) {
    return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_sub_ps(xv, mv), mlo), rv), wv, bv);
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (i % 32 == 0) pf.step();
    _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i), w ? _mm256_loadu_ps(w + i) : one,
                              b ? _mm256_loadu_ps(b + i) : zero));
  }
  if (i < n) {
    const __m256i k = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, k,
                        f(_mm256_maskload_ps(x + i, k), w ? _mm256_maskload_ps(w + i, k) : one,
                          b ? _mm256_maskload_ps(b + i, k) : zero));
  }
  *mean = mu;
  *rstd = rs;
}

void layernorm_row_backward_f32(const float* dy, const float* x, double mean, double rstd,
                                const float* w, float* dx, float* tw, float* tb, int64_t n,
                                const float* next_dy, const float* next_x) {
  RowPrefetch pf_dy(next_dy, n), pf_x(next_x, n);
  const float mu_hi = static_cast<float>(mean);  // hi + lo, as in the forward
  const __m256 mv = _mm256_set1_ps(mu_hi);
  const __m256 mlo = _mm256_set1_ps(static_cast<float>(mean - mu_hi));
  const __m256 rv = _mm256_set1_ps(static_cast<float>(rstd));
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  // pass 1: sum(g) and sum(g xhat), g = dy w; dw / db partials into the caller's float rows
  __m256 sg0 = zero, sg1 = zero, sgx0 = zero, sgx1 = zero;
  double sg = 0, sgx = 0;
  auto step = [&](int64_t i, __m256i k, bool tail, __m256& ag, __m256& agx) {
    const __m256 gv = tail ? _mm256_maskload_ps(dy + i, k) : _mm256_loadu_ps(dy + i);
    const __m256 xv = tail ? _mm256_maskload_ps(x + i, k) : _mm256_loadu_ps(x + i);
    const __m256 wv = w ? (tail ? _mm256_maskload_ps(w + i, k) : _mm256_loadu_ps(w + i)) : one;
    // masked lanes: x = 0 gives xhat = -mean rstd, but g = 0 there, so both sums get 0
    const __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_sub_ps(xv, mv), mlo), rv);
    const __m256 g = _mm256_mul_ps(gv, wv);
    ag = _mm256_add_ps(ag, g);
    agx = _mm256_fmadd_ps(g, xh, agx);
    if (tw || tb) {
      const __m256 gx = _mm256_mul_ps(gv, xh);
      if (!tail) {
        if (tw) _mm256_storeu_ps(tw + i, _mm256_add_ps(_mm256_loadu_ps(tw + i), gx));
        if (tb) _mm256_storeu_ps(tb + i, _mm256_add_ps(_mm256_loadu_ps(tb + i), gv));
      } else {  // masked lanes: gx = gv = 0 there, and the store leaves them alone
        if (tw) _mm256_maskstore_ps(tw + i, k, _mm256_add_ps(_mm256_maskload_ps(tw + i, k), gx));
        if (tb) _mm256_maskstore_ps(tb + i, k, _mm256_add_ps(_mm256_maskload_ps(tb + i, k), gv));
      }
    }
  };
  for (int64_t b = 0; b < n; b += kFlush) {
    const int64_t e = b + kFlush < n ? b + kFlush : n;
    int64_t i = b;
    const __m256i full = _mm256_set1_epi32(-1);
    for (; i + 16 <= e; i += 16) {
      step(i, full, false, sg0, sgx0);
      step(i + 8, full, false, sg1, sgx1);
    }
    for (; i + 8 <= e; i += 8) step(i, full, false, sg0, sgx0);
    if (i < e) step(i, tail_mask(e - i), true, sg1, sgx1);
    sg += hsum_pd(add_widened(_mm256_setzero_pd(), _mm256_add_ps(sg0, sg1)));
    sgx += hsum_pd(add_widened(_mm256_setzero_pd(), _mm256_add_ps(sgx0, sgx1)));
    sg0 = sg1 = sgx0 = sgx1 = zero;
  }
  // pass 2: dx = rstd (g - sg/n - xhat sgx/n)
  const __m256 a = _mm256_set1_ps(static_cast<float>(sg / n));
  const __m256 c = _mm256_set1_ps(static_cast<float>(sgx / n));
  auto f = [&](__m256 gv, __m256 xv, __m256 wv) {
    const __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_sub_ps(xv, mv), mlo), rv);
    const __m256 g = _mm256_mul_ps(gv, wv);
    return _mm256_mul_ps(rv, _mm256_fnmadd_ps(xh, c, _mm256_sub_ps(g, a)));
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (i % 16 == 0) pf_dy.step(), pf_x.step();
    _mm256_storeu_ps(dx + i, f(_mm256_loadu_ps(dy + i), _mm256_loadu_ps(x + i),
                               w ? _mm256_loadu_ps(w + i) : one));
  }
  if (i < n) {
    const __m256i k = tail_mask(n - i);
    _mm256_maskstore_ps(dx + i, k,
                        f(_mm256_maskload_ps(dy + i, k), _mm256_maskload_ps(x + i, k),
                          w ? _mm256_maskload_ps(w + i, k) : one));
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
