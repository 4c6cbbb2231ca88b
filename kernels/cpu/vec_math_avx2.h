// Vectorised float32 math for AVX2+FMA (8 lanes): exp, log, tanh, sigmoid, silu, the normal
// CDF and erf-based gelu / gelu'. Inline, and only for translation units compiled with
// -mavx2 -mfma (the *_avx2.cpp files).
//
// Accuracy, measured against double-precision std:: functions rounded to float (see
// tests/kernels/test_memory_kernels.cpp, which checks these bounds on dense sweeps):
//   exp_ps       <= 2 ulp over [-104, 89]; +inf -> +inf, -inf -> 0, x > 88.73 -> +inf,
//                x < -103.9 -> 0, denormal results rounded once, NaN -> NaN.
//   exp_nonpos_ps  <= 1 ulp over [-87, 88] (0.88 measured); x < -87 -> 0 (flushed, |error|
//   < 1.7e-38),
//                -inf -> 0, NaN -> NaN. For x - max and x - lse only.
//   exp_inrange_first_ps  exp_ps's contract; <= 1 ulp on [-87, 88] (exp_nonpos_ps's values).
//   log_ps       <= 2 ulp on (0, inf], denormal inputs included; 0 -> -inf, x < 0 -> NaN,
//                +inf -> +inf, NaN -> NaN.
//   tanh_ps      <= 3 ulp; sigmoid_ps, silu_ps <= 3 ulp (relative, where the result is normal).
//   silu_grad_ps 2e-6 relative + 2e-7 absolute (it has a zero near x = -1.278).
//   expm1_ps     <= 2 ulp (1.48 measured); log1p_ps <= 3 ulp on (-1, inf] (2.37 measured): dense
//                sweeps in tests/kernels/test_memory_kernels.cpp, near 0 included.
//   phi_ps       (normal CDF 0.5 (1 + erf(x / sqrt 2))) <= 16 ulp relative on the whole range,
//                including the far negative tail (<= 5 ulp there; 7.3 ulp near x ~ -1.4).
//   phi_erfcx_ps <= 8 ulp relative on [-13, 13] (5.1 measured on a 1M-point sweep, worst near
//                x = 0), its Gaussian factor exp(-x^2 / 2) <= 2 ulp (1.3 measured).
//   gelu_ps      <= 16 ulp relative on the whole range, far negative tail and denormal results
//                included: checked on every float with 1e-38 <= |x|, -15 <= x <= 100, the worst
//                is 10.4 ulp at x = -13.1 (phi_erfcx_ps's tail) and 7.86 at x = -2.838 (inside
//                gelu_logistic_ps's |x| <= 3); gelu(-inf) = NaN, as the
//                reference. gelu_grad_ps: 2e-6 relative + 2e-7 absolute (near the zero of gelu'
//                at x ~ -0.75 only an absolute bound is meaningful).
//   pow_ps       <= 1 ulp from std::pow in double rounded to float (log2 and exp2 in double);
//                C's special cases exactly (zero, infinite or NaN operands go through std::pow).
//   The bounds are tested in tests/kernels/test_vec_math_avx2.cpp and (through the elementwise
//   ops) tests/kernels/test_memory_kernels.cpp.
#pragma once
#include <immintrin.h>

#include <cmath>

#include <cstdint>

#include "kernels/cpu/vec_math_f64_avx2.h"

namespace smyrf::kernels::cpu::avx2 {

inline __m256 horner(__m256 x, __m256 c, __m256 acc) { return _mm256_fmadd_ps(acc, x, c); }

// 2^(k/8) exactly, for t a float whose low mantissa bits hold 0x400000 + k (|k| <= 1004): t =
// y + 1.5 * 2^20 (or 8 y + 1.5 * 2^23) rounds y to the nearest eighth, k = round(8 y). 2^(j/8)
// for j = k mod 8 comes from an 8-entry table in a register (one vpermps, which reads only the low
// 3 index bits; it runs off the FMA ports), and floor(k / 8) is added to the entry's exponent
// bits: shifted up by 20, the bits of k above the low 3 land on the exponent field. The result
// must stay normal (2^(k/8) >= 2^-126).
inline __m256 pow2_eighths_ps(__m256 t) {
  // 2^(j/8), j = 0..7, rounded to float
  const __m256 table = _mm256_setr_ps(
      1.0f, 1.09050773266525766f, 1.18920711500272107f, 1.29683955465100967f, 1.41421356237309505f,
      1.54221082540794082f, 1.68179283050742909f, 1.83400808640934246f);
  const __m256i ti = _mm256_castps_si256(t);
  const __m256i e = _mm256_and_si256(_mm256_slli_epi32(ti, 20), _mm256_set1_epi32(-8388608));
  return _mm256_castsi256_ps(
      _mm256_add_epi32(_mm256_castps_si256(_mm256_permutevar8x32_ps(table, ti)), e));
}

// exp(r) on [-ln2/2, ln2/2] as 1 + r + r^2 q(r), q of degree 4 fitted for relative error
// (3e-9 in double), all in Horner form: 6 FMAs (<= 0.9 ulp measured through exp_nonpos_ps).
inline __m256 exp_reduced_ps(__m256 r) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 p = _mm256_set1_ps(1.3814435806e-3f);
  p = horner(r, _mm256_set1_ps(8.3687137812e-3f), p);
  p = horner(r, _mm256_set1_ps(4.1668388993e-2f), p);
  p = horner(r, _mm256_set1_ps(1.6666521132e-1f), p);
  p = horner(r, _mm256_set1_ps(4.9999994040e-1f), p);
  p = horner(r, one, p);
  return horner(r, one, p);
}

// exp(x): n = round(x log2 e), r = x - n ln2 (two-constant Cody-Waite, exact for |n| <= 150),
// exp(r) by exp_reduced_ps, then exp(r) * 2^n applied as two power-of-two factors so results in the
// denormal range are rounded only once and 2^n never needs an exponent outside the normal range.
inline __m256 exp_ps(__m256 x) {
  const __m256 hi = _mm256_set1_ps(89.0f), lo = _mm256_set1_ps(-104.0f);
  // min/max take their second operand when either is NaN; putting x second keeps NaN as NaN.
  x = _mm256_max_ps(lo, _mm256_min_ps(hi, x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  const __m256 p = exp_reduced_ps(r);
  // n in [-150, 129]: split as n1 + n2 with both in the normal exponent range
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

// exp(x) for x <= 0 (x - max in softmax, log-sum-exp and cross-entropy), without exp_ps's
// denormal handling: results below exp(-87) = 1.6e-38 are flushed to 0 (denormal results also
// cost ~100-cycle microcode assists in the multiplies). The same Cody-Waite reduction as exp_ps,
// but n comes from the 1.5 * 2^23 rounding trick, the polynomial is pure Horner and 2^n is added
// to the exponent bits directly: 13 vector operations instead of 24 (the FMA ports bound it).
// <= 1 ulp on [-87, 88] (the test sweeps it), -inf -> 0, NaN -> NaN.
inline __m256 exp_nonpos_ps(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.0f);
  const __m256 flush = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);  // not NaN lanes
  x = _mm256_max_ps(lo, x);                               // keeps NaN (x second)
  const __m256 magic = _mm256_set1_ps(12582912.0f);       // 1.5 * 2^23
  const __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
  const __m256 n = _mm256_sub_ps(t, magic);  // round(x log2 e), exactly
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  const __m256 p = exp_reduced_ps(r);
  // t's low mantissa bits hold n (two's complement); shifted by 23 they are n << 23, the rest of
  // t's bits shift out. p in [0.7, 1.42] and n >= -125 keep the result normal.
  const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(t), 23);
  const __m256 y = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
  return _mm256_andnot_ps(flush, y);
}

// exp(x) with exp_ps's contract, cheaper when all 8 lanes lie in [-87, 88] (no denormal,
// flushed or overflowing result): those vectors take exp_nonpos_ps's arithmetic without its
// clamp and flush (12 operations, <= 1 ulp there, bit-identical to exp_nonpos_ps on that range);
// a vector with any other lane (or NaN) also evaluates exp_ps and takes it for those lanes only,
// so each lane's result depends on its own x alone. For elementwise exp, where inputs outside
// [-87, 88] are rare and the full exp_ps cost ~22 operations per vector.
inline __m256 exp_inrange_first_ps(__m256 x) {
  const __m256 in = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ),
                                  _mm256_cmp_ps(x, _mm256_set1_ps(88.0f), _CMP_LE_OQ));
  const __m256 magic = _mm256_set1_ps(12582912.0f);  // 1.5 * 2^23
  const __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
  const __m256 n = _mm256_sub_ps(t, magic);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  const __m256 p = exp_reduced_ps(r);
  const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(t), 23);
  const __m256 fast = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
  if (__builtin_expect(_mm256_movemask_ps(in) != 0xFF, 0))
    return _mm256_blendv_ps(exp_ps(x), fast, in);
  return fast;
}

// log(x) = e ln2 + log(m), m in [sqrt(1/2), sqrt(2)), log(1 + f) = f - f^2/2 + f^3 P(f).
inline __m256 log_ps(__m256 x0) {
  const __m256 min_normal = _mm256_castsi256_ps(_mm256_set1_epi32(0x00800000));
  // denormals: scale by 2^23 and subtract 23 from the exponent
  const __m256 den = _mm256_cmp_ps(x0, min_normal, _CMP_LT_OQ);
  __m256 x = _mm256_blendv_ps(x0, _mm256_mul_ps(x0, _mm256_set1_ps(8388608.0f)), den);
  const __m256i xi = _mm256_castps_si256(x);
  __m256 e =
      _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(xi, 23), _mm256_set1_epi32(126)));
  e = _mm256_sub_ps(e, _mm256_and_ps(den, _mm256_set1_ps(23.0f)));
  // mantissa in [0.5, 1)
  __m256 m = _mm256_castsi256_ps(_mm256_or_si256(
      _mm256_and_si256(xi, _mm256_set1_epi32(0x007FFFFF)), _mm256_set1_epi32(0x3F000000)));
  const __m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
  e = _mm256_sub_ps(e, _mm256_and_ps(small, _mm256_set1_ps(1.0f)));
  // f = 2m - 1 for m < sqrt(1/2), else m - 1 (both exact)
  const __m256 f = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(small, m)), _mm256_set1_ps(1.0f));
  const __m256 z = _mm256_mul_ps(f, f);
  __m256 p = _mm256_set1_ps(7.0376836292e-2f);
  p = horner(f, _mm256_set1_ps(-1.1514610310e-1f), p);
  p = horner(f, _mm256_set1_ps(1.1676998740e-1f), p);
  p = horner(f, _mm256_set1_ps(-1.2420140846e-1f), p);
  p = horner(f, _mm256_set1_ps(1.4249322787e-1f), p);
  p = horner(f, _mm256_set1_ps(-1.6668057665e-1f), p);
  p = horner(f, _mm256_set1_ps(2.0000714765e-1f), p);
  p = horner(f, _mm256_set1_ps(-2.4999993993e-1f), p);
  p = horner(f, _mm256_set1_ps(3.3333331174e-1f), p);
  __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, z), f);
  y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
  y = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5f), y);
  y = _mm256_add_ps(f, y);
  y = _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), y);
  // specials: 0 -> -inf, negative or NaN -> NaN, +inf -> +inf
  const __m256 zero = _mm256_setzero_ps();
  y = _mm256_blendv_ps(y, _mm256_set1_ps(-__builtin_inff()), _mm256_cmp_ps(x0, zero, _CMP_EQ_OQ));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()),
                       _mm256_cmp_ps(x0, _mm256_set1_ps(__builtin_inff()), _CMP_EQ_OQ));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_nanf("")),
                       _mm256_cmp_ps(x0, zero, _CMP_NGE_UQ));  // x < 0 or unordered
  return y;
}

// log(x) for x positive, normal and finite (no denormal, zero, negative or infinite input: the
// caller knows, e.g. a sum of exps about the row max, in [1, n]), or NaN (kept). log_ps's
// reduction and polynomial, the polynomial by Estrin's scheme (its error is damped by f^3 in the
// result) and without log_ps's special-value blends: a shorter dependency chain, which is what
// bounds per-row logs of short rows (8M rows of 2, 2 threads, one run: cross-entropy 12.9 ->
// 10.3 ms, logsumexp 10.4 -> 7.8). <= 2 ulp (0.80 measured). This form takes K vectors in place,
// each step for all K side by side (independent chains the core overlaps); the one-vector form
// below is K = 1, bit for bit.
template <int K>
inline void log_pos_ps(__m256 (&v)[K]) {
  __m256 e[K], f[K], z[K], z2[K], p[K];
  for (int k = 0; k < K; ++k) {
    const __m256i xi = _mm256_castps_si256(v[k]);
    e[k] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(xi, 23), _mm256_set1_epi32(126)));
    const __m256 m = _mm256_castsi256_ps(_mm256_or_si256(
        _mm256_and_si256(xi, _mm256_set1_epi32(0x007FFFFF)), _mm256_set1_epi32(0x3F000000)));
    const __m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    e[k] = _mm256_sub_ps(e[k], _mm256_and_ps(small, _mm256_set1_ps(1.0f)));
    f[k] = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(small, m)), _mm256_set1_ps(1.0f));
  }
  for (int k = 0; k < K; ++k) z[k] = _mm256_mul_ps(f[k], f[k]);
  for (int k = 0; k < K; ++k) z2[k] = _mm256_mul_ps(z[k], z[k]);
  for (int k = 0; k < K; ++k) {
    const __m256 q01 =
        horner(f[k], _mm256_set1_ps(3.3333331174e-1f), _mm256_set1_ps(-2.4999993993e-1f));
    const __m256 q23 =
        horner(f[k], _mm256_set1_ps(2.0000714765e-1f), _mm256_set1_ps(-1.6668057665e-1f));
    p[k] = _mm256_fmadd_ps(q23, z[k], q01);
  }
  for (int k = 0; k < K; ++k) {
    const __m256 q45 =
        horner(f[k], _mm256_set1_ps(1.4249322787e-1f), _mm256_set1_ps(-1.2420140846e-1f));
    const __m256 q67 =
        horner(f[k], _mm256_set1_ps(1.1676998740e-1f), _mm256_set1_ps(-1.1514610310e-1f));
    const __m256 q47 = _mm256_fmadd_ps(q67, z[k], q45);
    p[k] =
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(7.0376836292e-2f), z2[k], q47), z2[k], p[k]);
  }
  for (int k = 0; k < K; ++k) {
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p[k], z[k]), f[k]);
    y = _mm256_fmadd_ps(e[k], _mm256_set1_ps(-2.12194440e-4f), y);
    y = _mm256_fnmadd_ps(z[k], _mm256_set1_ps(0.5f), y);
    y = _mm256_add_ps(f[k], y);
    y = _mm256_fmadd_ps(e[k], _mm256_set1_ps(0.693359375f), y);
    v[k] = _mm256_add_ps(y, _mm256_sub_ps(v[k], v[k]));
  }
}

inline __m256 log_pos_ps(__m256 x) {
  __m256 v[1] = {x};
  log_pos_ps<1>(v);
  return v[0];
}

inline __m256 abs_ps(__m256 x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }

// tanh: an odd polynomial for |x| < 0.625 (where 1 - 2/(e^2x + 1) would cancel), otherwise
// 1 - 2 / (exp(2|x|) + 1) with the sign put back; exp overflow to inf gives exactly 1.
inline __m256 tanh_ps(__m256 x) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
  const __m256 a = abs_ps(x);
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
  p = horner(z, _mm256_set1_ps(2.06390887954e-2f), p);
  p = horner(z, _mm256_set1_ps(-5.37397155531e-2f), p);
  p = horner(z, _mm256_set1_ps(1.33314422036e-1f), p);
  p = horner(z, _mm256_set1_ps(-3.33332819422e-1f), p);
  const __m256 small_r = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
  const __m256 e = exp_ps(_mm256_add_ps(a, a));
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 big_r = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
  big_r = _mm256_or_ps(big_r, sign);
  return _mm256_blendv_ps(big_r, small_r, _mm256_cmp_ps(a, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
}

// sigmoid(x) = 1 / (1 + exp(-x)) for x >= 0 and e / (1 + e), e = exp(x), for x < 0: the
// exponential is always of -|x|, so it never overflows and the far negative tail (down to the
// denormal range) keeps its relative accuracy instead of flushing to 0 at x = -88.7.
inline __m256 sigmoid_ps(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 e = exp_ps(_mm256_or_ps(x, _mm256_set1_ps(-0.0f)));  // exp(-|x|)
  const __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
  return _mm256_div_ps(_mm256_blendv_ps(one, e, neg), _mm256_add_ps(one, e));
}

// silu(x) = x sigmoid(x), same split (so silu(-inf) = -inf * 0 = NaN, as the reference).
inline __m256 silu_ps(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 e = exp_ps(_mm256_or_ps(x, _mm256_set1_ps(-0.0f)));
  const __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
  return _mm256_div_ps(_mm256_blendv_ps(x, _mm256_mul_ps(x, e), neg), _mm256_add_ps(one, e));
}

// silu'(x) = s (1 + x (1 - s)), s = sigmoid_ps(x): one pass for the gradient that took five
// (sigmoid, s (1 - s), a product, a sum, then the product with the incoming gradient).
// +-inf -> NaN (0 * inf and inf * 0), as the reference.
inline __m256 silu_grad_ps(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 s = sigmoid_ps(x);
  return _mm256_mul_ps(s, _mm256_fmadd_ps(x, _mm256_sub_ps(one, s), one));
}

// expm1(x) = exp(x) - 1. For |x| < 1, x P(x) with P the Taylor series of (e^x - 1) / x to degree
// 10 (truncation < 2e-9 relative; a product, so tiny x give x and -0 gives -0); beyond, exp_ps(x)
// - 1, where the subtraction magnifies exp_ps's relative error by at most e / (e - 1) = 1.58.
// +inf -> +inf, -inf -> -1, NaN -> NaN.
inline __m256 expm1_ps(__m256 x) {
  __m256 p = _mm256_set1_ps(2.5052108385e-8f);  // 1 / 11!
  p = horner(x, _mm256_set1_ps(2.7557319224e-7f), p);
  p = horner(x, _mm256_set1_ps(2.7557319224e-6f), p);
  p = horner(x, _mm256_set1_ps(2.4801587302e-5f), p);
  p = horner(x, _mm256_set1_ps(1.9841269841e-4f), p);
  p = horner(x, _mm256_set1_ps(1.3888888889e-3f), p);
  p = horner(x, _mm256_set1_ps(8.3333333333e-3f), p);
  p = horner(x, _mm256_set1_ps(4.1666666667e-2f), p);
  p = horner(x, _mm256_set1_ps(1.6666666667e-1f), p);
  p = horner(x, _mm256_set1_ps(0.5f), p);
  p = horner(x, _mm256_set1_ps(1.0f), p);
  const __m256 small = _mm256_mul_ps(x, p);
  const __m256 big = _mm256_sub_ps(exp_ps(x), _mm256_set1_ps(1.0f));
  return _mm256_blendv_ps(big, small, _mm256_cmp_ps(abs_ps(x), _mm256_set1_ps(1.0f), _CMP_LT_OQ));
}

// log1p(x) = log(u) x / (u - 1) with u = 1 + x rounded: u - 1 is exact, and the ratio corrects
// log(u) for the rounding of u (Goldberg, "What every computer scientist should know about
// floating-point arithmetic", 1991, theorem 4); x itself where u == 1 (tiny x, -0). -1 -> -inf,
// x < -1 -> NaN, +inf -> +inf, NaN -> NaN.
inline __m256 log1p_ps(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 u = _mm256_add_ps(one, x);
  const __m256 d = _mm256_sub_ps(u, one);
  __m256 y = _mm256_mul_ps(log_ps(u), _mm256_div_ps(x, d));
  y = _mm256_blendv_ps(y, x, _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_EQ_OQ));
  return _mm256_blendv_ps(y, u, _mm256_cmp_ps(u, _mm256_set1_ps(__builtin_inff()), _CMP_EQ_OQ));
}

// Normal CDF Phi(x) = 0.5 (1 + erf(x / sqrt 2)) with relative accuracy in both tails, and the
// Gaussian factor exp(-x^2 / 2) it computes on the way (gelu' needs it).
//   |z| < 1 (z = x / sqrt 2): 0.5 + 0.5 erf(z), erf by an odd polynomial (no cancellation:
//     Phi >= 0.079 there). phi_small_ps is this branch alone.
//   |z| >= 1: erfc(|z|) = exp(-z^2) t Q(t), t = 1 / (1 + |z| / 2), Q a degree-8 polynomial:
//     exp(z^2) erfc(z) / t is smooth and bounded on t in (0, 2/3], and its relative minimax fit
//     on |z| in [1, 10] (past 10 the result under/overflows anyway) is 2.3e-9 in double and
//     1.2e-8 with float coefficients (fitted with mpmath/numpy; 1 ulp is 6e-8). One polynomial
//     and one division replace a per-lane choice between two fits in 1 / z^2, which cost a blend
//     per coefficient; the whole tail is ~40% fewer instructions.
//     Phi = 0.5 erfc(|z|) for x < 0 and 1 - 0.5 erfc(|z|) for x > 0.
//   exp(-z^2) is taken as exp(-hi) (1 - lo) where hi + lo = x^2 / 2 exactly (an FMA split), so
//   the tail does not lose the ~z^2 ulps that rounding z^2 first would cost.
inline __m256 phi_small_ps(__m256 z) {
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 z2 = _mm256_mul_ps(z, z);
  __m256 t = _mm256_set1_ps(7.853861353153693e-5f);
  t = horner(z2, _mm256_set1_ps(-8.010193625184903e-4f), t);
  t = horner(z2, _mm256_set1_ps(5.188327685732524e-3f), t);
  t = horner(z2, _mm256_set1_ps(-2.685381193529856e-2f), t);
  t = horner(z2, _mm256_set1_ps(1.128358514861418e-1f), t);
  t = horner(z2, _mm256_set1_ps(-3.761262582423300e-1f), t);
  t = horner(z2, _mm256_set1_ps(1.128379165726710e0f), t);
  return _mm256_fmadd_ps(_mm256_mul_ps(t, z), half, half);
}

// The |z| >= 1 branch (valid for every x; callers blend it with phi_small_ps below |z| = 1).
inline __m256 phi_tail_ps(__m256 x, __m256 a, __m256* gauss) {
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  // exp(-x^2/2) with the product split exactly
  const __m256 xx = _mm256_mul_ps(x, x);
  const __m256 xx_lo = _mm256_fmsub_ps(x, x, xx);
  const __m256 h = _mm256_mul_ps(xx, half);
  // where x^2 overflowed the split is meaningless (inf - inf); drop it there
  const __m256 h_lo = _mm256_and_ps(
      _mm256_mul_ps(xx_lo, half), _mm256_cmp_ps(xx, _mm256_set1_ps(__builtin_inff()), _CMP_LT_OQ));
  // exp_nonpos_ps unless a lane needs exp_ps's denormal results (x^2 / 2 > 87, |x| > 13.19:
  // rare, and then the whole vector takes the exact-tail path)
  const __m256 mh = _mm256_xor_ps(h, _mm256_set1_ps(-0.0f));
  __m256 g = _mm256_movemask_ps(_mm256_cmp_ps(h, _mm256_set1_ps(87.0f), _CMP_GT_OQ))
                 ? exp_ps(mh)
                 : exp_nonpos_ps(mh);
  g = _mm256_fnmadd_ps(g, h_lo, g);
  *gauss = g;
  const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(a, half, one));
  __m256 q = _mm256_set1_ps(-3.929162398e-02f);
  q = horner(t, _mm256_set1_ps(2.234517038e-01f), q);
  q = horner(t, _mm256_set1_ps(-4.093618095e-01f), q);
  q = horner(t, _mm256_set1_ps(2.256711274e-01f), q);
  q = horner(t, _mm256_set1_ps(-6.864928640e-03f), q);
  q = horner(t, _mm256_set1_ps(1.986953914e-01f), q);
  q = horner(t, _mm256_set1_ps(2.434364259e-01f), q);
  q = horner(t, _mm256_set1_ps(2.823839486e-01f), q);
  q = horner(t, _mm256_set1_ps(2.820842266e-01f), q);
  // 0.5 erfc(|z|) = (g t) (0.5 Q): Q * 0.5 is exact
  const __m256 erfc_half = _mm256_mul_ps(_mm256_mul_ps(g, t), _mm256_mul_ps(q, half));
  const __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ);
  return _mm256_blendv_ps(erfc_half, _mm256_sub_ps(one, erfc_half), pos);
}

inline __m256 phi_ps(__m256 x, __m256* gauss) {
  const __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.707106781186547524f));
  const __m256 a = abs_ps(z);
  const __m256 phi_small = phi_small_ps(z);
  const __m256 phi_tail = phi_tail_ps(x, a, gauss);
  // a < 1 or NaN takes the polynomial (which carries the NaN)
  const __m256 use_small = _mm256_cmp_ps(a, _mm256_set1_ps(1.0f), _CMP_NGE_UQ);
  return _mm256_blendv_ps(phi_tail, phi_small, use_small);
}

// x Phi(x) for |x| < sqrt 2 only (0.5 + x U(x^2), U = phi_small_ps's coefficients times
// 0.5 / sqrt(2) / 2^k, so z = x / sqrt 2 is not formed; 11 operations). gelu_ps used it as an
// all-lanes-small shortcut; it stays for callers that know their inputs are small.
inline __m256 gelu_small_x_ps(__m256 x) {
  const __m256 x2 = _mm256_mul_ps(x, x);
  __m256 u = _mm256_set1_ps(4.3386864229e-07f);
  u = horner(x2, _mm256_set1_ps(-8.8500972359e-06f), u);
  u = horner(x2, _mm256_set1_ps(1.1464692780e-04f), u);
  u = horner(x2, _mm256_set1_ps(-1.1867820325e-03f), u);
  u = horner(x2, _mm256_set1_ps(9.9733744684e-03f), u);
  u = horner(x2, _mm256_set1_ps(-6.6490356946e-02f), u);
  u = horner(x2, _mm256_set1_ps(3.9894227992e-01f), u);
  return _mm256_mul_ps(x, _mm256_fmadd_ps(x, u, _mm256_set1_ps(0.5f)));
}

// Phi(x) and exp(-x^2 / 2) by one branch-free formula on the whole range (gelu_ps and
// gelu_grad_ps use it; phi_ps above is the older two-piece form, kept with its contract):
//   0.5 erfc(a) = exp(-a^2) t Q(t), a = |x| / sqrt 2, t = 1 / (1 + a / 2) in (0, 1],
//   Phi = 0.5 erfc(a) for x < 0 and 1 - 0.5 erfc(a) for x > 0 (no cancellation: 0.5 erfc <= 0.5).
// exp(a^2) erfc(a) / t is smooth on t in (0, 1], and one degree-9 polynomial fits it for
// relative error on a in [0, 10] (1.985e-8 with these float coefficients, 1.2e-7 through float
// Horner; fitted with mpmath/numpy, Lawson-weighted least squares, coefficients rounded to float
// one at a time with the rest refitted; 0.5 is folded in, which is exact). So the small-|x|
// polynomial and the erfc tail of phi_ps are no longer two paths blended per lane: ~36 vector
// operations for every vector, none of them data-dependent branches (the lane-mask shortcut of
// the old gelu_ps mispredicted on N(0, 1) data, where 25% of vectors had all |x| < sqrt 2).
//   exp(-x^2 / 2) is exp(-hi) (1 - lo) with hi + lo = x^2 / 2 exactly (an FMA split), as in
// phi_tail_ps. |x| is clamped to 16 there (the Gaussian is 0 in float past 14.5, and x^2
// cannot overflow); t keeps the unclamped |x| so that +-inf give t = 0 and NaN stays NaN.
// Only vectors with a lane past |x| = 13.19 (-x^2 / 2 < -87, denormal or zero results) take
// exp_ps's exact-denormal path; that branch is never taken on ordinary activations.
inline __m256 phi_erfcx_ps(__m256 x, __m256* gauss) {
  const __m256 ax = abs_ps(x);
  const __m256 t = _mm256_div_ps(
      _mm256_set1_ps(1.0f),
      _mm256_fmadd_ps(ax, _mm256_set1_ps(0.353553390593273762f), _mm256_set1_ps(1.0f)));
  // -x^2 / 2 = mh + mh_lo exactly (nh = -xc / 2 is exact)
  const __m256 xc = _mm256_min_ps(ax, _mm256_set1_ps(16.0f));
  const __m256 nh = _mm256_mul_ps(xc, _mm256_set1_ps(-0.5f));
  const __m256 mh = _mm256_mul_ps(nh, xc);
  const __m256 mh_lo = _mm256_fmsub_ps(nh, xc, mh);
  __m256 g = _mm256_movemask_ps(_mm256_cmp_ps(mh, _mm256_set1_ps(-87.0f), _CMP_LT_OQ))
                 ? exp_ps(mh)
                 : exp_nonpos_ps(mh);
  g = _mm256_fmadd_ps(g, mh_lo, g);
  *gauss = g;
  // 0.5 Q(t), Horner
  __m256 q = _mm256_set1_ps(0.5f * 0.01228280644863844f);
  q = horner(t, _mm256_set1_ps(0.5f * -0.12324997782707214f), q);
  q = horner(t, _mm256_set1_ps(0.5f * 0.42891985177993774f), q);
  q = horner(t, _mm256_set1_ps(0.5f * -0.6700143814086914f), q);
  q = horner(t, _mm256_set1_ps(0.5f * 0.4212702512741089f), q);
  q = horner(t, _mm256_set1_ps(0.5f * -0.09831688553094864f), q);
  q = horner(t, _mm256_set1_ps(0.5f * 0.22554205358028412f), q);
  q = horner(t, _mm256_set1_ps(0.5f * 0.23864470422267914f), q);
  q = horner(t, _mm256_set1_ps(0.5f * 0.2828570604324341f), q);
  q = horner(t, _mm256_set1_ps(0.5f * 0.2820644974708557f), q);
  const __m256 erfc_half = _mm256_mul_ps(_mm256_mul_ps(g, t), q);
  const __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ);
  return _mm256_blendv_ps(erfc_half, _mm256_sub_ps(_mm256_set1_ps(1.0f), erfc_half), pos);
}

// gelu(x) for |x| <= 3 only, as x sigmoid(s(x)) = x / (1 + exp(-s(x))) with s = logit(Phi):
// s is odd and smooth, s(x) = x S(x^2); the code evaluates w = -s / ln 2 = x W(x^2) and
// exp(-s) = 2^w, with W a degree-7 polynomial fitted for absolute error in w on |x| <= 3 (1.2e-7
// with these float coefficients, 6.3e-7 through float Horner, most of it W's last rounding
// times |x|; mpmath/numpy, Lawson-weighted least squares, coefficients rounded to float one at a
// time with the rest refitted). The relative error of Phi is about ln 2 times the absolute
// error of w (times 1 - Phi), so w is never rounded on its own: 2^w = 2^(k/8) 2^r with k =
// round(8 x W) taken from the exact product by one FMA with the rounding constant
// (pow2_eighths_ps's table gives 2^(k/8)) and r = x W - k/8 by one more FMA from the exact
// product, rounded once (|r| <= 1/16), 2^r by a degree-3 polynomial (relative 2.8e-8 with these
// float coefficients on |r| <= 1/16 + 1e-3, fitted like W); the table is a vpermps. No tails,
// clamps or special values: 14 multiplies and FMAs and one add a vector (the two FMA ports are
// the bound). History, in L1, ns an element per thread: a degree-6 polynomial on |r| <= 1/2, 16
// FMAs and an add, 0.61-0.66; the table with w rounded and its error w_lo (an FMA split) added
// back to r in three adds, 0.54-0.58 (2026-11-28); the two FMAs from the exact product, the same
// worst case on every float of [-3, 3] as that form (results differ in the last bits) and 8-10%
// faster in L1 (0.52-0.56 against 0.58-0.60, one interleaved run, 2026-11-29). <= 7.9 ulp on every
// float of [-3, 3] (7.86 at x = -2.838, where |w| ~ 9); gelu_ps checks the range.
inline __m256 gelu_logistic_ps(__m256 x) {
  const __m256 u = _mm256_mul_ps(x, x);
  // W = -S log2(e): w = x W(x^2) = -s / ln 2, so exp(-s) = 2^w (fitted as such, not rescaled)
  __m256 W = _mm256_set1_ps(-5.499199984271286e-10f);
  W = horner(u, _mm256_set1_ps(1.3596401338134001e-08f), W);
  W = horner(u, _mm256_set1_ps(1.398045981204632e-07f), W);
  W = horner(u, _mm256_set1_ps(-9.94187212199904e-06f), W);
  W = horner(u, _mm256_set1_ps(0.00015500849985983223f), W);
  W = horner(u, _mm256_set1_ps(0.0001004575751721859f), W);
  W = horner(u, _mm256_set1_ps(-0.10483850538730621f), W);
  W = horner(u, _mm256_set1_ps(-2.30220890045166f), W);
  // k = round(8 w) by the 1.5 * 2^20 trick (ulp 1/8 there) on the exact product x W (|w| <= 9.6),
  // and r = x W - k/8 from the exact product too, rounded once: w itself is never rounded
  const __m256 magic = _mm256_set1_ps(1572864.0f);
  const __m256 t = _mm256_fmadd_ps(x, W, magic);
  const __m256 r = _mm256_fmsub_ps(x, W, _mm256_sub_ps(t, magic));
  __m256 p = _mm256_set1_ps(0.055488274f);
  p = horner(r, _mm256_set1_ps(0.24025883f), p);
  p = horner(r, _mm256_set1_ps(0.69314724f), p);
  p = horner(r, _mm256_set1_ps(1.0f), p);
  // 1 + 2^w = 1 + 2^(k/8) p in one FMA
  const __m256 den = _mm256_fmadd_ps(pow2_eighths_ps(t), p, _mm256_set1_ps(1.0f));
  return _mm256_div_ps(x, den);
}

// gelu(x) = x Phi(x) (erf form, as the reference). Lanes with |x| <= 3 take gelu_logistic_ps,
// the others (beyond 3, inf, NaN) x phi_erfcx_ps(x), accurate on the whole range; each lane's
// result depends on its own x only (not on its neighbours, the alignment or the thread split).
// Only vectors with such a lane evaluate phi_erfcx_ps: 2.1% of them on N(0, 1) data, so the
// branch is predicted (unlike the old |x| < sqrt 2 shortcut, which 25% of vectors took in
// random order); data with a much wider spread pays mispredictions, down to about the old speed.
inline __m256 gelu_ps(__m256 x) {
  const __m256 out = _mm256_cmp_ps(abs_ps(x), _mm256_set1_ps(3.0f), _CMP_NLE_UQ);
  const __m256 fast = gelu_logistic_ps(x);
  if (__builtin_expect(_mm256_movemask_ps(out) != 0, 0)) {
    __m256 g;
    return _mm256_blendv_ps(fast, _mm256_mul_ps(x, phi_erfcx_ps(x, &g)), out);
  }
  return fast;
}

// gelu'(x) = Phi(x) + x exp(-x^2/2) / sqrt(2 pi).
inline __m256 gelu_grad_ps(__m256 x) {
  __m256 g;
  const __m256 phi = phi_erfcx_ps(x, &g);
  return _mm256_fmadd_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.398942280401432678f)), g, phi);
}

// Horizontal reductions of one register.
// sin (is_cos false) or cos of x for |x| <= kSinCosMaxArg; other lanes (and inf / NaN) must be
// taken by the caller (sincos_ps below does). Cody-Waite: j = the even integer nearest |x| 4/pi
// from above, r = |x| - j pi/4 with pi/4 in three parts short enough that j times each is exact
// for j < 2^14, then the sine or the cosine minimax polynomial of r on [-pi/4, pi/4] (the Cephes
// coefficients) by the quadrant, and the sign by the octant. Against double sin / cos on 4M
// uniform samples of [-8192, 8192] and [-4, 4] plus the floats nearest k pi / 2: at most 9.2e-8
// absolute (the reduction's error, growing with |x|) and 1.54 ulp where |result| >= 1/32; the
// test holds it to 1.2e-7 and 2 ulp, with exact signs and sin(-0) = -0. (This is the Cephes
// single-precision scheme, also used by the zlib-licensed sse_mathfun; written here from it.)
inline constexpr float kSinCosMaxArg = 8192.0f;
inline __m256 sincos_inrange_ps(__m256 x, bool is_cos) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 ax = _mm256_andnot_ps(sign_mask, x);
  __m256i j = _mm256_cvttps_epi32(_mm256_mul_ps(ax, _mm256_set1_ps(1.27323954473516f)));
  j = _mm256_and_si256(_mm256_add_epi32(j, _mm256_set1_epi32(1)), _mm256_set1_epi32(~1));
  const __m256 y = _mm256_cvtepi32_ps(j);
  if (is_cos) j = _mm256_sub_epi32(j, _mm256_set1_epi32(2));
  // octant bit 4 flips the sign (for cos: when clear, after the shift by 2); sin is odd
  const __m256i flip = _mm256_slli_epi32(is_cos ? _mm256_andnot_si256(j, _mm256_set1_epi32(4))
                                                : _mm256_and_si256(j, _mm256_set1_epi32(4)),
                                         29);
  __m256 sign = _mm256_castsi256_ps(flip);
  if (!is_cos) sign = _mm256_xor_ps(sign, _mm256_and_ps(x, sign_mask));
  // quadrant bit 2: 0 takes the sine polynomial, set takes the cosine one
  const __m256 use_sin = _mm256_castsi256_ps(
      _mm256_cmpeq_epi32(_mm256_and_si256(j, _mm256_set1_epi32(2)), _mm256_setzero_si256()));
  __m256 r = _mm256_fmadd_ps(y, _mm256_set1_ps(-0.78515625f), ax);
  r = _mm256_fmadd_ps(y, _mm256_set1_ps(-2.4187564849853515625e-4f), r);
  r = _mm256_fmadd_ps(y, _mm256_set1_ps(-3.77489497744594108e-8f), r);
  const __m256 z = _mm256_mul_ps(r, r);
  __m256 c =
      horner(z, _mm256_set1_ps(-1.388731625493765e-3f), _mm256_set1_ps(2.443315711809948e-5f));
  c = horner(z, _mm256_set1_ps(4.166664568298827e-2f), c);
  c = _mm256_fmadd_ps(_mm256_mul_ps(c, z), z,
                      _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), z, _mm256_set1_ps(1.0f)));
  __m256 s = horner(z, _mm256_set1_ps(8.3321608736e-3f), _mm256_set1_ps(-1.9515295891e-4f));
  s = horner(z, _mm256_set1_ps(-1.6666654611e-1f), s);
  s = _mm256_fmadd_ps(_mm256_mul_ps(s, z), r, r);
  return _mm256_xor_ps(_mm256_blendv_ps(c, s, use_sin), sign);
}

// sin / cos of every lane: lanes beyond kSinCosMaxArg, inf and NaN go through the double
// reference one by one (rare; the result equals the scalar path's there).
inline __m256 sincos_ps(__m256 x, bool is_cos) {
  const __m256 v = sincos_inrange_ps(x, is_cos);
  const __m256 far = _mm256_cmp_ps(abs_ps(x), _mm256_set1_ps(kSinCosMaxArg), _CMP_NLE_UQ);
  if (_mm256_testz_ps(far, far)) return v;
  alignas(32) float xs[8], out[8];
  _mm256_store_ps(xs, x);
  _mm256_store_ps(out, v);
  const int m = _mm256_movemask_ps(far);
  for (int i = 0; i < 8; ++i)
    if (m >> i & 1) {
      const double d = xs[i];
      out[i] = static_cast<float>(is_cos ? std::cos(d) : std::sin(d));
    }
  return _mm256_load_ps(out);
}

inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline double hsum_pd(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}
// widen 8 floats and add them to a 4-lane double accumulator
inline __m256d add_widened(__m256d acc, __m256 v) {
  acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
  return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}
// max / min of the lanes (no NaN handling: callers check NaN separately)
inline float hmax_ps(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Mask of the first k lanes (0 <= k <= 8), for maskload / maskstore tails.
inline __m256i tail_mask(int64_t k) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(k)), idx);
}

// ---------------------------------------------------------------- pow, through double precision
// log2(x) for 4 positive normal doubles (every float > 0, subnormals included, is one): x =
// m 2^e with m in [sqrt(1/2), sqrt 2), log2(m) = (2 / ln 2) atanh(s), s = (m - 1) / (m + 1),
// |s| <= 0.1716, by its odd series to s^19 (truncation < 2^-49 relative). Absolute error about
// 2^-50 (relative near x = 1).
inline __m256d log2_pos_pd(__m256d x) {
  __m256d e;
  const __m256d m = f64_detail::split_sqrt2(x, &e);
  const __m256d one = _mm256_set1_pd(1.0);
  const __m256d s = _mm256_div_pd(_mm256_sub_pd(m, one), _mm256_add_pd(m, one));
  const __m256d s2 = _mm256_mul_pd(s, s);
  // (2 / ln 2) / (2k + 1), k = 9 .. 0
  __m256d p = _mm256_set1_pd(0.15186263588304877);
  p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(0.16972882833987804));
  p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(0.19235933878519512));
  p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(0.22195308321368667));
  p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(0.26230818925253879));
  p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(0.3205988979753252));
  p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(0.41219858311113239));
  p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(0.57707801635558531));
  p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(0.96179669392597555));
  p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(2.8853900817779268));
  return _mm256_fmadd_pd(s, p, e);
}

// 2^t for 4 doubles, t clamped to [-160, 160] first (beyond it a float result is 0 or inf
// anyway): t = n + f, n = round(t), 2^f = exp(f ln 2) by its Taylor series to degree 11
// (vec_math_f64_avx2.h's polynomial; truncation < 2^-45 relative on |f| <= 1/2, plenty for a
// float result, and degree 13 made float pow 7% slower), times 2^n built in the exponent field.
inline __m256d exp2_clamped_pd(__m256d t) {
  t = _mm256_min_pd(_mm256_max_pd(t, _mm256_set1_pd(-160.0)), _mm256_set1_pd(160.0));
  const __m256d n = _mm256_round_pd(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256d r = _mm256_mul_pd(_mm256_sub_pd(t, n), _mm256_set1_pd(0.69314718055994531));
  const __m256d p = _mm256_fmadd_pd(f64_detail::expm1_reduced_q<11>(r), r, _mm256_set1_pd(1.0));
  // 2^n: n + 1023 lands in the low mantissa bits of n + (2^52 + 1023), shifted to the exponent
  const __m256i biased =
      _mm256_castpd_si256(_mm256_add_pd(n, _mm256_set1_pd(4503599627370496.0 + 1023.0)));
  return _mm256_mul_pd(p, _mm256_castsi256_pd(_mm256_slli_epi64(biased, 52)));
}

// |x|^b for 4 lanes of floats widened to double: 2^(b log2|x|), each step in double, so the
// float result is correctly rounded but for values within ~2^-37 of a rounding boundary.
inline __m128 pow_abs_half_ps(__m128 ax, __m128 b) {
  const __m256d t = _mm256_mul_pd(_mm256_cvtps_pd(b), log2_pos_pd(_mm256_cvtps_pd(ax)));
  return _mm256_cvtpd_ps(exp2_clamped_pd(t));
}

// pow(x, b) as std::pow in double rounded to float, <= 1 ulp from it (the double rounding
// above): lanes with x finite and nonzero and b finite go through pow_abs_half_ps, with
// x < 0 giving NaN for a non-integer b and the sign of x for an odd integer b; if any lane has
// x = 0, +-inf or NaN or b = +-inf or NaN, all 8 take std::pow (C's special cases, exactly).
inline __m256 pow_ps(__m256 x, __m256 b) {
  const __m256 ax = abs_ps(x);
  const __m256 inf = _mm256_set1_ps(__builtin_inff());
  const __m256 ok = _mm256_and_ps(_mm256_and_ps(_mm256_cmp_ps(ax, inf, _CMP_LT_OQ),
                                                _mm256_cmp_ps(ax, _mm256_setzero_ps(), _CMP_GT_OQ)),
                                  _mm256_cmp_ps(abs_ps(b), inf, _CMP_LT_OQ));
  if (_mm256_movemask_ps(ok) != 0xFF) {
    alignas(32) float xs[8], bs[8];
    _mm256_store_ps(xs, x);
    _mm256_store_ps(bs, b);
    for (int i = 0; i < 8; ++i)
      xs[i] = static_cast<float>(std::pow(static_cast<double>(xs[i]), static_cast<double>(bs[i])));
    return _mm256_load_ps(xs);
  }
  __m256 r =
      _mm256_set_m128(pow_abs_half_ps(_mm256_extractf128_ps(ax, 1), _mm256_extractf128_ps(b, 1)),
                      pow_abs_half_ps(_mm256_castps256_ps128(ax), _mm256_castps256_ps128(b)));
  const __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
  if (_mm256_movemask_ps(neg) != 0) {
    const __m256 whole = _mm256_cmp_ps(
        _mm256_round_ps(b, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), b, _CMP_EQ_OQ);
    const __m256 half = _mm256_mul_ps(b, _mm256_set1_ps(0.5f));  // exact for integers
    const __m256 odd = _mm256_andnot_ps(
        _mm256_cmp_ps(_mm256_round_ps(half, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), half,
                      _CMP_EQ_OQ),
        whole);
    r = _mm256_blendv_ps(r, _mm256_xor_ps(r, _mm256_set1_ps(-0.0f)), _mm256_and_ps(neg, odd));
    r = _mm256_blendv_ps(r, _mm256_set1_ps(__builtin_nanf("")), _mm256_andnot_ps(whole, neg));
  }
  return r;
}

}  // namespace smyrf::kernels::cpu::avx2
