// The inline AVX2 math of kernels/cpu/vec_math_avx2.h called directly (this file is built with
// -mavx2 -mfma, like the kernels), for the helpers that no elementwise op exposes on its own.
#include <doctest/doctest.h>
#include <immintrin.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/vec_math_avx2.h"

using namespace smyrf::kernels::cpu;

namespace {
const float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

bool have_avx2() {
  if (!cpu_has_avx2_fma()) MESSAGE("no AVX2+FMA here: vec math checks skipped");
  return cpu_has_avx2_fma();
}

// distance in float ulps between got and ref (ref in double)
double ulps(float got, double ref) {
  const float rf = static_cast<float>(ref);
  if (std::isnan(rf) || std::isnan(got)) return std::isnan(rf) && std::isnan(got) ? 0 : 1e30;
  if (std::isinf(rf) || std::isinf(got)) return rf == got ? 0 : 1e30;
  const double u = std::fabs(rf) < std::numeric_limits<float>::min()
                       ? std::numeric_limits<float>::denorm_min()
                       : std::ldexp(1.0, std::ilogb(rf) - 23);
  return std::fabs(got - ref) / u;
}
}  // namespace

TEST_CASE("vec math: exp_nonpos within 1 ulp on [-87, 88], flushed to 0 below, specials") {
  if (!have_avx2()) return;
  const int n = 1 << 20;
  std::vector<float> x(n), y(n);
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>(-87.0 + 175.0 * i / (n - 1));
  x[n - 1] = 88.f;
  for (int i = 0; i < n; i += 8)
    _mm256_storeu_ps(y.data() + i, avx2::exp_nonpos_ps(_mm256_loadu_ps(x.data() + i)));
  double worst = 0;
  float at = 0;
  for (int i = 0; i < n; ++i) {
    const double e = ulps(y[i], std::exp(double(x[i])));
    if (e > worst) worst = e, at = x[i];
  }
  INFO("exp_nonpos: " << worst << " ulp at x = " << at);
  CHECK(worst <= 1);
  alignas(32) float s[8] = {-kInf, kNaN, -87.01f, -100.f, -1e30f, 0.f, -0.f, -87.f}, r[8];
  _mm256_store_ps(r, avx2::exp_nonpos_ps(_mm256_load_ps(s)));
  CHECK(r[0] == 0.f);
  CHECK(std::isnan(r[1]));
  CHECK(r[2] == 0.f);
  CHECK(r[3] == 0.f);
  CHECK(r[4] == 0.f);
  CHECK(r[5] == 1.f);
  CHECK(r[6] == 1.f);
  CHECK(ulps(r[7], std::exp(-87.0)) <= 2);
}
