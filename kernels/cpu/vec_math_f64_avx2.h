// Vectorised float64 math for AVX2+FMA (4 lanes): exp, expm1, log, log1p, tanh, sigmoid, silu.
// Inline, and only for translation units compiled with -mavx2 -mfma (the *_avx2.cpp files).
//
// Until 2026-11-29 every float64 transcendental op ran libm per element (through a switch;
// sqrt and log of negative numbers also took libm's errno path): 8M doubles, 2 threads, exp 37
// ms, tanh 110, sqrt 49, log 58 against PyTorch's 6.9, 21, 2.8 and 13.
//
// Method: the textbook reductions with Cody-Waite constants (ln 2 split so that k ln2_hi is
// exact for |k| < 2^20), Taylor / atanh series long enough that truncation stays below 2^-56,
// evaluated by Horner with FMA. Accuracy against libm, checked on dense sweeps and edge values
// in tests/kernels/test_unary_f64.cpp:
//   exp_pd    <= 1 ulp (0.84 measured, release and sanitizer builds alike; subnormal results
//             within 1 unit of their last place), x > 709.78 -> +inf, x < -745.2 -> 0, +-inf
//             and NaN as libm.
//   expm1_pd  <= 2.5 ulp (2.2 measured, near x = 0.37); x < -40 -> -1.
//   log_pd    <= 1.5 ulp on (0, inf] (1.1 measured), subnormal inputs included; 0 -> -inf,
//             x < 0 -> NaN.
//   log1p_pd  <= 2 ulp on (-1, inf] (1.5 measured); -1 -> -inf, x < -1 -> NaN.
//   tanh_pd   <= 3 ulp (2.5 measured); sigmoid_pd, silu_pd <= 3 ulp where the result is
//             normal and 1 + e^-x finite (x > -709.78; below, 0 as the scalar formula gives).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <limits>

namespace smyrf::kernels::cpu::avx2 {

namespace f64_detail {
constexpr double kLog2e = 1.4426950408889634074;
// ln 2 = kLn2Hi + kLn2Lo; kLn2Hi has 32 significant bits, so k kLn2Hi is exact for |k| < 2^20
constexpr double kLn2Hi = 6.93147180369123816490e-01;
constexpr double kLn2Lo = 1.90821492927058770002e-10;

inline __m256d set(double v) { return _mm256_set1_pd(v); }
inline __m256d fma(__m256d a, __m256d b, __m256d c) { return _mm256_fmadd_pd(a, b, c); }

// 2^k for integral k in [-1022, 1023], built in the exponent field
inline __m256d pow2i(__m256d k) {
  const __m256i e =
      _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(k)), _mm256_set1_epi64x(1023));
  return _mm256_castsi256_pd(_mm256_slli_epi64(e, 52));
}

// q(r) = sum_{n=1}^{D} r^(n-1) / n!, so that e^r - 1 = q r and e^r = fma(q, r, 1). D = 13 is
// exact to 2^-56 relative for |r| <= ln(2) / 2 (the next term, r^14 / 14!, is below 2^-57 of e^r
// and 2^-56 of e^r - 1); pow_ps's 2^f (vec_math_avx2.h) takes D = 11. The callers fuse the last
// step themselves: GCC contracts a separate multiply and add into one FMA in some builds and
// not in others (exp measured 0.84 ulp in one, 1.09 in the other).
template <int D = 13>
inline __m256d expm1_reduced_q(__m256d r) {
  static_assert(D >= 2 && D <= 13, "degree 2 .. 13");
  constexpr double kInvFact[14] = {1.0,
                                   1.0,
                                   0.5,
                                   1.6666666666666666e-01,
                                   4.1666666666666664e-02,
                                   8.3333333333333332e-03,
                                   1.3888888888888889e-03,
                                   1.9841269841269841e-04,
                                   2.4801587301587302e-05,
                                   2.7557319223985888e-06,
                                   2.7557319223985893e-07,
                                   2.5052108385441720e-08,
                                   2.0876756987868099e-09,
                                   1.6059043836821613e-10};  // 1 / n!
  __m256d p = set(kInvFact[D]);
  for (int k = D - 1; k >= 1; --k) p = fma(p, r, set(kInvFact[k]));
  return p;
}

// x = m 2^e with m in [sqrt(1/2), sqrt 2) (e returned as a double), for positive normal x
inline __m256d split_sqrt2(__m256d x, __m256d* e) {
  const __m256i bits = _mm256_castpd_si256(x);
  // the biased exponent as a double: its 11 bits or'ed into the mantissa of 2^52
  const __m256d magic = set(4503599627370496.0);  // 2^52
  *e = _mm256_sub_pd(
      _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64(bits, 52), _mm256_castpd_si256(magic))),
      set(4503599627370496.0 + 1023.0));
  __m256d m = _mm256_castsi256_pd(
      _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi64x(0x000FFFFFFFFFFFFFll)),
                      _mm256_set1_epi64x(0x3FF0000000000000ll)));  // [1, 2)
  const __m256d big = _mm256_cmp_pd(m, set(1.4142135623730951), _CMP_GT_OQ);
  *e = _mm256_add_pd(*e, _mm256_and_pd(big, set(1.0)));
  return _mm256_blendv_pd(m, _mm256_mul_pd(m, set(0.5)), big);
}

// x = k ln 2 + r, |r| <= ln(2) / 2 (k rounded to nearest)
inline __m256d reduce_ln2(__m256d x, __m256d* k) {
  *k =
      _mm256_round_pd(_mm256_mul_pd(x, set(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm256_fnmadd_pd(*k, set(kLn2Lo), _mm256_fnmadd_pd(*k, set(kLn2Hi), x));
}

inline __m256d is_nan(__m256d x) { return _mm256_cmp_pd(x, x, _CMP_UNORD_Q); }
}  // namespace f64_detail

inline __m256d exp_pd(__m256d x) {
  using namespace f64_detail;
  // clamped so that k stays in [-1083, 1025]: the result is 0 / inf there anyway
  const __m256d xc = _mm256_min_pd(_mm256_max_pd(x, set(-750.0)), set(710.0));
  __m256d k;
  const __m256d r = reduce_ln2(xc, &k);
  const __m256d p = fma(expm1_reduced_q<>(r), r, set(1.0));
  // 2^k in two factors, each within the normal range: results near overflow and in the
  // subnormal range come out right
  const __m256d k1 = _mm256_floor_pd(_mm256_mul_pd(k, set(0.5)));
  const __m256d y = _mm256_mul_pd(_mm256_mul_pd(p, pow2i(k1)), pow2i(_mm256_sub_pd(k, k1)));
  return _mm256_blendv_pd(y, x, is_nan(x));
}

inline __m256d expm1_pd(__m256d x) {
  using namespace f64_detail;
  // e^x - 1 = 2^k (e^r - 1) + (2^k - 1), one rounding (FMA); |k| <= 58 on [-40, 40], where 2^k
  // is exact. Beyond: e^x (its - 1 is below half an ulp past 37) and -1 (e^-40 < 2^-57).
  const __m256d xc = _mm256_min_pd(_mm256_max_pd(x, set(-40.0)), set(40.0));
  __m256d k;
  const __m256d r = reduce_ln2(xc, &k);
  const __m256d s = pow2i(k);
  __m256d y = fma(s, _mm256_mul_pd(expm1_reduced_q<>(r), r), _mm256_sub_pd(s, set(1.0)));
  const __m256d big = _mm256_cmp_pd(x, set(40.0), _CMP_GT_OQ);
  if (_mm256_movemask_pd(big)) y = _mm256_blendv_pd(y, exp_pd(x), big);
  y = _mm256_blendv_pd(y, set(-1.0), _mm256_cmp_pd(x, set(-40.0), _CMP_LT_OQ));
  return _mm256_blendv_pd(y, x, is_nan(x));
}

// log(x) for x > 0 finite; other inputs handled by log_pd
inline __m256d log_positive(__m256d x) {
  using namespace f64_detail;
  // subnormals scaled into the normal range first
  const __m256d tiny = _mm256_cmp_pd(x, set(std::numeric_limits<double>::min()), _CMP_LT_OQ);
  x = _mm256_blendv_pd(x, _mm256_mul_pd(x, set(18014398509481984.0)), tiny);  // 2^54
  __m256d e;
  const __m256d m = split_sqrt2(x, &e);
  e = _mm256_sub_pd(e, _mm256_and_pd(tiny, set(54.0)));
  // log(1 + f) = 2 atanh(s) = f - s (f - T), s = f / (2 + f), T = 2 (z / 3 + z^2 / 5 + ...),
  // z = s^2 <= 0.0295 (|f| <= sqrt 2 - 1): to z^10 / 21 the series is exact to 2^-57
  const __m256d f = _mm256_sub_pd(m, set(1.0));
  const __m256d s = _mm256_div_pd(f, _mm256_add_pd(f, set(2.0)));
  const __m256d z = _mm256_mul_pd(s, s);
  __m256d t = set(2.0 / 21);
  t = fma(t, z, set(2.0 / 19));
  t = fma(t, z, set(2.0 / 17));
  t = fma(t, z, set(2.0 / 15));
  t = fma(t, z, set(2.0 / 13));
  t = fma(t, z, set(2.0 / 11));
  t = fma(t, z, set(2.0 / 9));
  t = fma(t, z, set(2.0 / 7));
  t = fma(t, z, set(2.0 / 5));
  t = fma(t, z, set(2.0 / 3));
  t = _mm256_mul_pd(t, z);
  const __m256d log_m = _mm256_fnmadd_pd(s, _mm256_sub_pd(f, t), f);
  return fma(e, set(kLn2Hi), fma(e, set(kLn2Lo), log_m));
}

inline __m256d log_pd(__m256d x) {
  using namespace f64_detail;
  __m256d y = log_positive(x);
  const __m256d inf = set(std::numeric_limits<double>::infinity());
  y = _mm256_blendv_pd(y, _mm256_sub_pd(_mm256_setzero_pd(), inf),
                       _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_EQ_OQ));
  y = _mm256_blendv_pd(y, set(std::numeric_limits<double>::quiet_NaN()),
                       _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_LT_OQ));
  // +inf and NaN are their own logs
  return _mm256_blendv_pd(y, x, _mm256_or_pd(_mm256_cmp_pd(x, inf, _CMP_EQ_OQ), is_nan(x)));
}

inline __m256d log1p_pd(__m256d x) {
  using namespace f64_detail;
  // log(u) with u = 1 + x rounded, corrected by the rounding: log(u + d) ~ log(u) + d / u,
  // d = x - (u - 1) (exact); u == 1 gives x itself
  const __m256d u = _mm256_add_pd(x, set(1.0));
  const __m256d d = _mm256_sub_pd(x, _mm256_sub_pd(u, set(1.0)));
  __m256d y = _mm256_add_pd(log_pd(u), _mm256_div_pd(d, u));
  const __m256d inf = set(std::numeric_limits<double>::infinity());
  y = _mm256_blendv_pd(y, _mm256_sub_pd(_mm256_setzero_pd(), inf),
                       _mm256_cmp_pd(x, set(-1.0), _CMP_EQ_OQ));
  return _mm256_blendv_pd(y, x, _mm256_or_pd(_mm256_cmp_pd(x, inf, _CMP_EQ_OQ), is_nan(x)));
}

inline __m256d tanh_pd(__m256d x) {
  using namespace f64_detail;
  // tanh |x| = t / (t + 2), t = expm1(2 |x|); 1 to double precision past |x| = 20
  const __m256d sign = _mm256_and_pd(x, set(-0.0));
  const __m256d ax = _mm256_min_pd(_mm256_andnot_pd(set(-0.0), x), set(20.0));
  const __m256d t = expm1_pd(_mm256_add_pd(ax, ax));
  const __m256d y = _mm256_or_pd(_mm256_div_pd(t, _mm256_add_pd(t, set(2.0))), sign);
  return _mm256_blendv_pd(y, x, is_nan(x));
}

inline __m256d sigmoid_pd(__m256d x) {
  using namespace f64_detail;
  return _mm256_div_pd(set(1.0),
                       _mm256_add_pd(set(1.0), exp_pd(_mm256_sub_pd(_mm256_setzero_pd(), x))));
}

// x / (1 + e^-x), the reference's formula (silu(-inf) is NaN there too)
inline __m256d silu_pd(__m256d x) {
  using namespace f64_detail;
  return _mm256_div_pd(x, _mm256_add_pd(set(1.0), exp_pd(_mm256_sub_pd(_mm256_setzero_pd(), x))));
}

}  // namespace smyrf::kernels::cpu::avx2
