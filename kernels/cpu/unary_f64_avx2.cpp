// AVX2 float64 unary runs (see elementwise_avx2.h unary_f64): the vector math of
// vec_math_f64_avx2.h, and the correctly rounded sqrt / division, four lanes at a time.
#include <immintrin.h>

#include "kernels/cpu/elementwise_avx2.h"
#include "kernels/cpu/vec_math_f64_avx2.h"

namespace smyrf::kernels::cpu::avx2 {
namespace {

template <typename F>
void run_f64(const double* x, double* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {  // two independent vectors an iteration (the chains are long)
    const __m256d a = f(_mm256_loadu_pd(x + i)), b = f(_mm256_loadu_pd(x + i + 4));
    _mm256_storeu_pd(y + i, a);
    _mm256_storeu_pd(y + i + 4, b);
  }
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(y + i, f(_mm256_loadu_pd(x + i)));
  if (i < n) {  // the tail through a padded copy (1.0: finite for every op)
    alignas(32) double t[4] = {1.0, 1.0, 1.0, 1.0};
    for (int64_t j = i; j < n; ++j) t[j - i] = x[j];
    _mm256_store_pd(t, f(_mm256_load_pd(t)));
    for (int64_t j = i; j < n; ++j) y[j] = t[j - i];
  }
}

}  // namespace

bool unary_f64(UnaryOp op, const double* x, double* y, int64_t n) {
  const __m256d one = _mm256_set1_pd(1.0);
  switch (op) {
    case UnaryOp::Exp:
      run_f64(x, y, n, [](__m256d v) { return exp_pd(v); });
      return true;
    case UnaryOp::Expm1:
      run_f64(x, y, n, [](__m256d v) { return expm1_pd(v); });
      return true;
    case UnaryOp::Log:
      run_f64(x, y, n, [](__m256d v) { return log_pd(v); });
      return true;
    case UnaryOp::Log1p:
      run_f64(x, y, n, [](__m256d v) { return log1p_pd(v); });
      return true;
    case UnaryOp::Tanh:
      run_f64(x, y, n, [](__m256d v) { return tanh_pd(v); });
      return true;
    case UnaryOp::Sigmoid:
      run_f64(x, y, n, [](__m256d v) { return sigmoid_pd(v); });
      return true;
    case UnaryOp::Silu:
      run_f64(x, y, n, [](__m256d v) { return silu_pd(v); });
      return true;
    case UnaryOp::Sqrt:  // IEEE sqrt and division round correctly: the reference's results
      run_f64(x, y, n, [](__m256d v) { return _mm256_sqrt_pd(v); });
      return true;
    case UnaryOp::Rsqrt:
      run_f64(x, y, n, [&](__m256d v) { return _mm256_div_pd(one, _mm256_sqrt_pd(v)); });
      return true;
    case UnaryOp::Reciprocal:
      run_f64(x, y, n, [&](__m256d v) { return _mm256_div_pd(one, v); });
      return true;
    default:
      return false;
  }
}

}  // namespace smyrf::kernels::cpu::avx2
