// AVX2 float32 layer-norm row kernels (see norm_avx2.h). Tails go through masked loads (padded
// with the neutral value of the pass) so every element sees the same vector formula.
#include "kernels/cpu/norm_avx2.h"

#include <immintrin.h>

#include <cmath>

#include "kernels/cpu/row_avx2.h"
#include "kernels/cpu/vec_math_avx2.h"

namespace smyrf::kernels::cpu::avx2 {
using rows::kFlush;
using rows::load_tail;
using rows::row_sum;
using rows::RowPrefetch;

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

}  // namespace smyrf::kernels::cpu::avx2
