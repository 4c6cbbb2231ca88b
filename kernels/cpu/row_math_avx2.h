// exp for the softmax / log-softmax / cross-entropy row kernels, cheaper than vec_math_avx2.h's
// exp_nonpos_ps. Those kernels are bound by the exp, not by memory (a 256-row cross-entropy in
// L2 ran at the same 13 GB/s as one of 16M logits), so every vector operation counts.
//
// exp(x) for x <= 0 as 2^(k/8) * exp(r): k = round(8 x log2 e), r = x - k ln2/8 in
// [-ln2/16, ln2/16]; 2^(j/8) for j = k mod 8 comes from an 8-entry table in a register
// (one vpermps, which also ignores the index bits above the low 3), exp(r) from a degree-3
// minimax polynomial (relative error 1.8e-8), and 2^floor(k/8) is added to the table entry's
// exponent bits. In a sum the final product folds into the accumulating FMA (exp_sum_acc_ps).
// For a sum, r takes one FMA: float(ln2/8) is within 2.4e-10 of ln2/8, which costs 2.7e-9 |x|
// relative (<= 2.4e-7 at x = -87, where the term is below 1.6e-38 anyway). 30% faster than
// exp_nonpos_ps in a sum loop (0.23 against 0.33 ns an element on one core, measured).
//
// Accuracy (tests/kernels/test_row_math_avx2.cpp sweeps [-87, 0] against double):
//   exp_sum_ps  <= 2.2 ulp on [-1, 0], growing to 6 ulp at -87 (the one-FMA reduction);
//               x < -87 and -inf give exp(-87) ~ 1.6e-38, not 0: only for sums of exp(x - max),
//               where such terms are far below the rounding of the leading term 1. Also valid
//               on (0, 64] (<= 4.1 ulp): the single-pass logsumexp sums about a guess up to 64
//               below the row's max. NaN and +inf inputs give NaN (the clamp keeps NaN, and
//               inf - inf in the reduction makes one): a sum with one is NaN.
//   exp_row_ps  <= 2.2 ulp on [-87, 0] (two-constant reduction), and on (0, 64] (the single-pass
//               softmax's exps about a guess), x < -87 and -inf -> 0: for stored exps. NaN as
//               above.
#pragma once
#include <immintrin.h>

#include "kernels/cpu/vec_math_avx2.h"  // pow2_eighths_ps

namespace smyrf::kernels::cpu::avx2 {

namespace row_math_detail {
// exp(x) for x clamped to [-87, 0] as scale * p: scale = 2^(k/8) exactly (the table entry with
// 2^floor(k/8) added to its exponent bits; >= 2^-126, normal), p = exp(r) ~ 1. kPrecise adds the
// low part of ln2/8 to the reduction.
template <bool kPrecise>
inline void exp_parts_ps(__m256 x, __m256* scale, __m256* p) {
  x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x);
  const __m256 magic = _mm256_set1_ps(12582912.0f);  // 1.5 * 2^23: t's low bits hold k
  const __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(11.5415603271117073f), magic);  // 8 log2 e
  const __m256 k = _mm256_sub_ps(t, magic);
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.0866433978080749512f), x);  // float(ln2 / 8)
  if (kPrecise) r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.380817903935295e-10f), r);  // the rest
  __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(1.6665102757e-1f), r, _mm256_set1_ps(5.0007818858e-1f));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0000000404f));
  *p = _mm256_fmadd_ps(q, r, _mm256_set1_ps(0.99999998167f));
  *scale = pow2_eighths_ps(t);
}
}  // namespace row_math_detail

// acc + exp(x), the exp folded into the accumulating FMA (one multiply fewer than acc + exp).
inline __m256 exp_sum_acc_ps(__m256 x, __m256 acc) {
  __m256 scale, p;
  row_math_detail::exp_parts_ps<false>(x, &scale, &p);
  return _mm256_fmadd_ps(scale, p, acc);
}

inline __m256 exp_sum_ps(__m256 x) { return exp_sum_acc_ps(x, _mm256_setzero_ps()); }

inline __m256 exp_row_ps(__m256 x) {
  const __m256 flush = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);
  __m256 scale, p;
  row_math_detail::exp_parts_ps<true>(x, &scale, &p);
  return _mm256_andnot_ps(flush, _mm256_mul_ps(scale, p));
}

}  // namespace smyrf::kernels::cpu::avx2
