// AVX2 Adam update (see optim_avx2.h). Contraction is off for this file's functions so the
// double arithmetic is the scalar loop's operation for operation (optim.cpp is compiled without
// FMA); the float results are then equal bit for bit (tests/kernels/test_optim_avx2.cpp; a
// fused multiply-add in the denominator alone did not change them there, the double-level
// difference vanishing in the rounding to float).
#include "kernels/cpu/optim_avx2.h"

#include <immintrin.h>

#include "kernels/cpu/adam_element.h"

namespace smyrf::kernels::cpu::avx2 {

__attribute__((optimize("fp-contract=off"))) void adam_update_f32(
    float* p, const float* g, float* m, float* v, int64_t n, double wd, bool decoupled,
    double beta1, double beta2, double step_size, double inv_sqrt_bc2, double eps, double lr) {
  const __m256d b1 = _mm256_set1_pd(beta1), b2 = _mm256_set1_pd(beta2);
  const __m256d c1 = _mm256_set1_pd(1 - beta1), c2 = _mm256_set1_pd(1 - beta2);
  const __m256d ss = _mm256_set1_pd(step_size), isb = _mm256_set1_pd(inv_sqrt_bc2);
  const __m256d ep = _mm256_set1_pd(eps), lw = _mm256_set1_pd(lr * wd), w = _mm256_set1_pd(wd);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m256d gi = _mm256_cvtps_pd(_mm_loadu_ps(g + i));
    __m256d pi = _mm256_cvtps_pd(_mm_loadu_ps(p + i));
    if (wd != 0) {
      if (decoupled)
        pi = _mm256_sub_pd(pi, _mm256_mul_pd(lw, pi));  // pi -= lr * wd * pi
      else
        gi = _mm256_add_pd(gi, _mm256_mul_pd(w, pi));  // gi += wd * pi
    }
    const __m256d mi = _mm256_add_pd(_mm256_mul_pd(b1, _mm256_cvtps_pd(_mm_loadu_ps(m + i))),
                                     _mm256_mul_pd(c1, gi));
    const __m256d vi = _mm256_add_pd(_mm256_mul_pd(b2, _mm256_cvtps_pd(_mm_loadu_ps(v + i))),
                                     _mm256_mul_pd(_mm256_mul_pd(c2, gi), gi));
    _mm_storeu_ps(m + i, _mm256_cvtpd_ps(mi));
    _mm_storeu_ps(v + i, _mm256_cvtpd_ps(vi));
    // pi - step_size * mi / (sqrt(vi) * inv_sqrt_bc2 + eps)
    const __m256d den = _mm256_add_pd(_mm256_mul_pd(_mm256_sqrt_pd(vi), isb), ep);
    _mm_storeu_ps(p + i,
                  _mm256_cvtpd_ps(_mm256_sub_pd(pi, _mm256_div_pd(_mm256_mul_pd(ss, mi), den))));
  }
  for (; i < n; ++i)  // the scalar loop's element
    adam_element(p + i, g[i], m + i, v + i, lr, beta1, beta2, eps, wd, decoupled, step_size,
                 inv_sqrt_bc2);
}

}  // namespace smyrf::kernels::cpu::avx2
