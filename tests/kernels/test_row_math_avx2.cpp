// The exp of kernels/cpu/row_math_avx2.h against double (this file is built with -mavx2 -mfma,
// like the kernels that use it).
#include <doctest/doctest.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/row_math_avx2.h"

using namespace smyrf::kernels::cpu;

namespace {
constexpr float kInf = std::numeric_limits<float>::infinity();
}  // namespace

TEST_CASE("row_math_avx2: exp_row_ps and exp_sum_ps against double on [-87, 0] (and on [0, 64])") {
  if (!cpu_has_avx2_fma()) return;
  using namespace smyrf::kernels::cpu::avx2;
  double worst_row = 0, worst_sum_near = 0, worst_sum_far = 0;
  float at = 0;
  for (double xv = -87.0; xv <= 0.0; xv += 3.1e-5) {
    const float x = static_cast<float>(xv);
    float r[8], s[8];
    _mm256_storeu_ps(r, exp_row_ps(_mm256_setr_ps(x, x, x, x, x, x, x, x)));
    _mm256_storeu_ps(s, exp_sum_ps(_mm256_set1_ps(x)));
    const double ref = std::exp(static_cast<double>(x));
    const double ulp = std::nextafter(static_cast<float>(ref), kInf) - static_cast<float>(ref);
    const double er = std::fabs(r[0] - ref) / ulp, es = std::fabs(s[0] - ref) / ulp;
    if (er > worst_row) worst_row = er, at = x;
    (x >= -1 ? worst_sum_near : worst_sum_far) =
        std::max(x >= -1 ? worst_sum_near : worst_sum_far, es);
  }
  INFO("exp_row_ps worst " << worst_row << " ulp at " << at);
  CHECK(worst_row <= 2.2);
  CHECK(worst_sum_near <= 2.2);
  CHECK(worst_sum_far <= 6.5);
  // above 0, up to the 64 that the single-pass softmax / logsumexp allows (its exps are taken
  // about a guess below the row's max): exp_sum_ps's one-FMA reduction costs 2.7e-9 x relative
  double worst_pos = 0, worst_row_pos = 0;
  for (double xv = 0.0; xv <= 64.0; xv += 2.3e-5) {
    const float x = static_cast<float>(xv);
    float s[8], r[8];
    _mm256_storeu_ps(s, exp_sum_ps(_mm256_set1_ps(x)));
    _mm256_storeu_ps(r, exp_row_ps(_mm256_set1_ps(x)));
    const double ref = std::exp(static_cast<double>(x));
    const double ulp = std::nextafter(static_cast<float>(ref), kInf) - static_cast<float>(ref);
    worst_pos = std::max(worst_pos, std::fabs(s[0] - ref) / ulp);
    worst_row_pos = std::max(worst_row_pos, std::fabs(r[0] - ref) / ulp);
  }
  INFO("exp_sum_ps worst on [0, 64]: " << worst_pos << " ulp, exp_row_ps " << worst_row_pos);
  CHECK(worst_pos <= 4.5);
  CHECK(worst_row_pos <= 2.2);
  // edges: exp(0) = 1; below -87 and -inf flushed (exp_row_ps) or tiny (exp_sum_ps)
  float o[8];
  _mm256_storeu_ps(
      o, exp_row_ps(_mm256_setr_ps(0.f, -kInf, -87.5f, -1e30f, -0.f, -86.9f, -1e-30f, -0.5f)));
  CHECK(o[0] == 1.f);
  CHECK(o[1] == 0.f);
  CHECK(o[2] == 0.f);
  CHECK(o[3] == 0.f);
  CHECK(o[4] == 1.f);
  CHECK(o[5] > 0.f);
  CHECK(o[6] == 1.f);
  CHECK(o[7] == doctest::Approx(std::exp(-0.5)).epsilon(3e-7));
  _mm256_storeu_ps(o, exp_sum_ps(_mm256_setr_ps(-kInf, -1e30f, -88.f, 0.f, 0.f, 0.f, 0.f, 0.f)));
  for (int k = 0; k < 3; ++k) CHECK((o[k] >= 0.f && o[k] < 2e-38f));
}
