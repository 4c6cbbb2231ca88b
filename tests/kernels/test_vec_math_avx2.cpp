// The inline AVX2 math of kernels/cpu/vec_math_avx2.h called directly (this file is built with
// -mavx2 -mfma, like the kernels), for the helpers that no elementwise op exposes on its own.
#include <doctest/doctest.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
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

namespace {
const double kRs2 = 0.70710678118654752440;
double gelu_ref(double x) { return 0.5 * x * std::erfc(-x * kRs2); }
double phi_ref(double x) { return 0.5 * std::erfc(-x * kRs2); }

// Applies f to v (any length) 8 lanes at a time.
template <typename F>
std::vector<float> apply8(const std::vector<float>& v, F f) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); i += 8) {
    alignas(32) float in[8] = {}, r[8];
    for (size_t k = 0; k < 8 && i + k < v.size(); ++k) in[k] = v[i + k];
    _mm256_store_ps(r, f(_mm256_load_ps(in)));
    for (size_t k = 0; k < 8 && i + k < v.size(); ++k) out[i + k] = r[k];
  }
  return out;
}

std::vector<float> sweep(double lo, double hi, int n) {
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>(lo + (hi - lo) * i / (n - 1));
  return x;
}

// worst ulp distance of got against ref over xs, and where
template <typename R>
std::pair<double, float> worst_ulp(const std::vector<float>& xs, const std::vector<float>& got,
                                   R ref) {
  double worst = 0;
  float at = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double e = ulps(got[i], ref(xs[i]));
    if (e > worst) worst = e, at = xs[i];
  }
  return {worst, at};
}
}  // namespace

TEST_CASE("vec math: gelu_ps within 16 ulp on the whole range, tails and specials included") {
  if (!have_avx2()) return;
  // [-3, 3] is gelu_logistic_ps's (all lanes inside), beyond it phi_erfcx_ps's; past -14.1 the
  // result is a denormal (ulps counts denormal steps) and below -14.5 it is 0.
  for (auto [lo, hi] : {std::pair<double, double>{-3, 3}, {-15, -3}, {3, 20}, {-1e-3, 1e-3}}) {
    const auto x = sweep(lo, hi, 1 << 21);
    const auto y = apply8(x, avx2::gelu_ps);
    const auto [w, at] = worst_ulp(x, y, gelu_ref);
    INFO("gelu on [" << lo << ", " << hi << "]: " << w << " ulp at x = " << at);
    CHECK(w <= 16);
  }
  // lanes mixing the two paths (a lane past |x| = 3 sends the whole vector to the tail form)
  {
    std::vector<float> x;
    for (int pattern = 0; pattern < 256; ++pattern)
      for (int lane = 0; lane < 8; ++lane) {
        const float v = 0.013f * static_cast<float>(pattern) + 0.07f * static_cast<float>(lane);
        const bool far = (pattern >> lane) & 1;
        x.push_back((far ? 3.01f + 3.f * v : 0.8f * v) * (lane % 3 == 0 ? -1.f : 1.f));
      }
    const auto [w, at] = worst_ulp(x, apply8(x, avx2::gelu_ps), gelu_ref);
    INFO("gelu mixed lanes: " << w << " ulp at x = " << at);
    CHECK(w <= 16);
  }
  const std::vector<float> s = {kInf,    -kInf, kNaN,   0.f,        -0.f,        1e-45f,
                                -1e-45f, 3.f,   -3.f,   3.0000002f, -3.0000002f, 1e30f,
                                -1e30f,  3e38f, -3e38f, -14.f};
  const auto y = apply8(s, avx2::gelu_ps);
  CHECK(y[0] == kInf);
  CHECK(std::isnan(y[1]));  // -inf * Phi(-inf) = -inf * 0, as the reference
  CHECK(std::isnan(y[2]));
  CHECK((y[3] == 0.f && !std::signbit(y[3])));
  CHECK((y[4] == 0.f && std::signbit(y[4])));
  for (size_t i = 5; i < s.size(); ++i) {
    INFO("gelu(" << s[i] << ") = " << y[i] << ", want " << gelu_ref(s[i]));
    CHECK(ulps(y[i], gelu_ref(s[i])) <= 16);
  }
}

TEST_CASE("vec math: gelu_logistic_ps within 8 ulp on [-3, 3]; phi_erfcx_ps relative everywhere") {
  if (!have_avx2()) return;
  const auto x = sweep(-3, 3, 1 << 21);
  const auto [w, at] = worst_ulp(x, apply8(x, avx2::gelu_logistic_ps), gelu_ref);
  INFO("gelu_logistic: " << w << " ulp at x = " << at);
  CHECK(w <= 8);
  // Phi and the Gaussian factor, relative, down to where Phi leaves the normal range
  const auto xp = sweep(-13, 13, 1 << 20);
  std::vector<float> gs(xp.size());
  size_t k = 0;
  const auto phi = apply8(xp, [&](__m256 v) {
    __m256 g;
    const __m256 r = avx2::phi_erfcx_ps(v, &g);
    alignas(32) float t[8];
    _mm256_store_ps(t, g);
    for (int l = 0; l < 8 && k < gs.size(); ++l) gs[k++] = t[l];
    return r;
  });
  const auto [wp, atp] = worst_ulp(xp, phi, phi_ref);
  INFO("phi_erfcx: " << wp << " ulp at x = " << atp);
  CHECK(wp <= 8);
  const auto [wg, atg] = worst_ulp(xp, gs, [](double v) { return std::exp(-0.5 * v * v); });
  INFO("exp(-x^2/2): " << wg << " ulp at x = " << atg);
  CHECK(wg <= 2);
}

TEST_CASE("vec math: gelu_grad_ps against the erfc form, relative away from its zero") {
  if (!have_avx2()) return;
  const auto x = sweep(-15, 15, 1 << 20);
  const auto g = apply8(x, avx2::gelu_grad_ps);
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    const double r = phi_ref(v) + v * 0.3989422804014327 * std::exp(-0.5 * v * v);
    // near the zero of gelu' (x ~ -0.75) only the absolute error means something
    if (std::fabs(g[i] - r) > 2e-6 * std::fabs(r) + 2e-7) {
      INFO("gelu'(" << v << ") = " << g[i] << ", want " << r);
      CHECK(false);
      break;
    }
  }
  const auto s = apply8({kNaN, kInf, -kInf, 0.f}, avx2::gelu_grad_ps);
  CHECK(std::isnan(s[0]));
  CHECK(std::isnan(s[1]));  // 1 + inf * 0, as the reference
  CHECK(std::isnan(s[2]));
  CHECK(s[3] == 0.5f);
}

TEST_CASE("vec math: exp_inrange_first_ps equals exp_nonpos_ps on [-87, 88], exp_ps outside") {
  if (!have_avx2()) return;
  // dense in-range sweep: bit-identical to exp_nonpos_ps there (its <= 1 ulp is tested above)
  const auto x = sweep(-87, 88, 1 << 20);
  const auto a = apply8(x, avx2::exp_inrange_first_ps), b = apply8(x, avx2::exp_nonpos_ps);
  CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
  // lanes outside the range, mixed with in-range lanes in every pattern, take exp_ps per lane
  std::vector<float> m;
  const float far[] = {-kInf, kInf, kNaN, -87.5f, -100.f, -104.f, 88.5f, 89.f};
  for (int pattern = 0; pattern < 256; ++pattern)
    for (int lane = 0; lane < 8; ++lane)
      m.push_back((pattern >> lane) & 1 ? far[(pattern + lane) % 8]
                                        : -80.f + 0.61f * static_cast<float>(pattern + 7 * lane));
  const auto got = apply8(m, avx2::exp_inrange_first_ps), in = apply8(m, avx2::exp_nonpos_ps),
             full = apply8(m, avx2::exp_ps);
  for (size_t i = 0; i < m.size(); ++i) {
    const bool inside = m[i] >= -87.f && m[i] <= 88.f;
    const float want = inside ? in[i] : full[i];
    if (!(std::memcmp(&got[i], &want, 4) == 0 || (std::isnan(got[i]) && std::isnan(want)))) {
      INFO("exp(" << m[i] << ") = " << got[i] << ", want " << want);
      CHECK(false);
      break;
    }
  }
}

namespace {
// pow_ps over (x, b) pairs, 8 at a time; the reference is std::pow in double rounded to float
std::vector<float> pow_lanes(const std::vector<float>& x, const std::vector<float>& b) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i + 8 <= x.size(); i += 8)
    _mm256_storeu_ps(y.data() + i,
                     avx2::pow_ps(_mm256_loadu_ps(x.data() + i), _mm256_loadu_ps(b.data() + i)));
  return y;
}
float pow_ref(float x, float b) {
  return static_cast<float>(std::pow(static_cast<double>(x), static_cast<double>(b)));
}
bool same_bits_or_nan(float got, float want) {
  if (std::isnan(want)) return std::isnan(got);
  return std::memcmp(&got, &want, sizeof got) == 0;
}
}  // namespace

TEST_CASE("vec math: pow_ps within 1 ulp of std::pow, near overflow and underflow too") {
  if (!have_avx2()) return;
  std::mt19937 gen(42);
  std::uniform_real_distribution<float> mag(-40.f, 40.f), expo(-12.f, 12.f);
  const int n = 1 << 20;
  std::vector<float> x(n), b(n);
  for (int i = 0; i < n; ++i) {
    x[i] = std::pow(10.f, mag(gen) * 0.95f) * (i % 5 == 0 ? -1.f : 1.f);
    // integers (negative bases keep a sign), halves and general exponents
    const float e = expo(gen);
    b[i] = i % 3 == 0 ? std::round(e) : (i % 3 == 1 ? std::round(2 * e) / 2 : e);
  }
  // 2^b and 0.5^b around the float range's ends; x near 1 with large exponents
  for (int i = 0; i < 4096; ++i) {
    x[i] = i % 2 ? 2.f : 0.5f;
    b[i] = -155.f + 285.f * static_cast<float>(i) / 4096.f;
    x[4096 + i] = 1.f + static_cast<float>(i - 2048) * 1.1920929e-7f;
    b[4096 + i] = static_cast<float>(i) * 4096.f;
  }
  const std::vector<float> y = pow_lanes(x, b);
  double worst = 0;
  int64_t exact = 0;
  float wx = 0, wb = 0;
  for (int i = 0; i < n; ++i) {
    const double e = ulps(y[i], std::pow(static_cast<double>(x[i]), static_cast<double>(b[i])));
    if (e > worst) worst = e, wx = x[i], wb = b[i];
    exact += same_bits_or_nan(y[i], pow_ref(x[i], b[i]));
  }
  INFO("pow_ps: " << worst << " ulp at x = " << wx << ", b = " << wb << "; " << exact << " of " << n
                  << " as the reference");
  CHECK(worst <= 1.0);
  CHECK(exact >= n - n / 1000);  // all but the rare values at a rounding boundary
}

TEST_CASE("vec math: pow_ps special cases equal C's, lane by lane, mixed with ordinary lanes") {
  if (!have_avx2()) return;
  const float tiny = std::numeric_limits<float>::denorm_min();
  const float big = std::numeric_limits<float>::max();
  const std::vector<float> xs = {0.f, -0.f, kInf, -kInf, kNaN, 1.f,   -1.f, tiny, -tiny,
                                 big, -big, 2.f,  -2.f,  0.5f, -0.5f, 3.7f, -3.7f};
  const std::vector<float> bs = {0.f,        -0.f,  1.f,   -1.f,   2.f,   3.f,   -3.f,
                                 0.5f,       -0.5f, kInf,  -kInf,  kNaN,  1e10f, -1e10f,
                                 16777217.f, 2.5f,  127.f, -149.f, 1e-30f};
  std::vector<float> x, b;
  for (float xv : xs)
    for (float bv : bs) {
      x.push_back(xv), b.push_back(bv);
      x.push_back(1.5f), b.push_back(2.25f);  // an ordinary lane beside every special one
    }
  while (x.size() % 8) x.push_back(1.f), b.push_back(1.f);
  const std::vector<float> y = pow_lanes(x, b);
  int bad = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = pow_ref(x[i], b[i]);
    // ordinary lanes: within 1 ulp; a lane whose result is 0 / inf / NaN or whose operand is
    // special: exactly C's value, sign included
    const bool special = !std::isfinite(x[i]) || x[i] == 0 || !std::isfinite(b[i]) ||
                         !std::isfinite(want) || want == 0;
    const bool ok = special ? same_bits_or_nan(y[i], want) : ulps(y[i], want) <= 1.0;
    if (!ok && bad++ < 8)
      FAIL_CHECK("pow(" << x[i] << ", " << b[i] << ") = " << y[i] << ", want " << want);
  }
  CHECK(bad == 0);
}

TEST_CASE("vec math: pow_ps's double steps, log2_pos_pd and exp2_clamped_pd, to 2^-45") {
  if (!have_avx2()) return;
  // log2 over every float binade's worth of mantissas (absolute error: log2 crosses 0 at 1) and
  // exp2 over [-150, 150] (relative error)
  double worst_log = 0, worst_exp = 0;
  for (int i = 0; i < (1 << 18); ++i) {
    alignas(32) double x[4], l[4], t[4], e[4];
    for (int j = 0; j < 4; ++j) {
      const int k = 4 * i + j;
      x[j] = std::ldexp(1.0 + static_cast<double>(k % 65536) / 65536.0, (k / 65536) % 250 - 125);
      t[j] = -150.0 + 300.0 * static_cast<double>(k) / static_cast<double>(1 << 20);
    }
    _mm256_store_pd(l, avx2::log2_pos_pd(_mm256_load_pd(x)));
    _mm256_store_pd(e, avx2::exp2_clamped_pd(_mm256_load_pd(t)));
    for (int j = 0; j < 4; ++j) {
      worst_log = std::max(worst_log, std::fabs(l[j] - std::log2(x[j])));
      worst_exp = std::max(worst_exp, std::fabs(e[j] / std::exp2(t[j]) - 1.0));
    }
  }
  INFO("log2_pos_pd: " << worst_log << " absolute; exp2_clamped_pd: " << worst_exp << " relative");
  CHECK(worst_log < std::ldexp(1.0, -45));
  CHECK(worst_exp < std::ldexp(1.0, -45));
}

TEST_CASE("vec math: log_pos_ps within 2 ulp on positive normal floats, NaN kept; K-way equal") {
  if (!have_avx2()) return;
  // [1, 64] densely (sums of exps about a row max), then random bit patterns over every normal
  // exponent
  std::vector<float> x;
  for (int i = 0; i < (1 << 20); ++i) x.push_back(static_cast<float>(1.0 + 63.0 * i / (1 << 20)));
  std::mt19937 gen(7);
  std::uniform_int_distribution<uint32_t> bits(0x00800000u, 0x7F7FFFFFu);
  for (int i = 0; i < (1 << 20); ++i) {
    const uint32_t u = bits(gen);
    float v;
    std::memcpy(&v, &u, 4);
    x.push_back(v);
  }
  for (float v : {1.f, 2.f, 0.70710677f, 0.70710683f, std::numeric_limits<float>::min(),
                  std::numeric_limits<float>::max(), 1.0000001f, 0.99999994f})
    x.push_back(v);
  while (x.size() % 64) x.push_back(1.5f);
  std::vector<float> y(x.size()), yk(x.size());
  for (size_t i = 0; i < x.size(); i += 8)
    _mm256_storeu_ps(y.data() + i, avx2::log_pos_ps(_mm256_loadu_ps(x.data() + i)));
  for (size_t i = 0; i < x.size(); i += 64) {  // the 8-way form, vector by vector the same
    __m256 v[8];
    for (int k = 0; k < 8; ++k) v[k] = _mm256_loadu_ps(x.data() + i + 8 * k);
    avx2::log_pos_ps<8>(v);
    for (int k = 0; k < 8; ++k) _mm256_storeu_ps(yk.data() + i + 8 * k, v[k]);
  }
  double worst = 0;
  float at = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = ulps(y[i], std::log(double(x[i])));
    if (e > worst) worst = e, at = x[i];
  }
  INFO("log_pos: " << worst << " ulp at x = " << at);
  CHECK(worst <= 2);
  CHECK(std::memcmp(y.data(), yk.data(), y.size() * sizeof(float)) == 0);
  alignas(32) float s[8] = {kNaN, 1.f, -kNaN, 4.f, kNaN, 1.f, 1.f, 1.f}, r[8];
  _mm256_store_ps(r, avx2::log_pos_ps(_mm256_load_ps(s)));
  CHECK(std::isnan(r[0]));
  CHECK(r[1] == 0.f);
  CHECK(std::isnan(r[2]));
  CHECK(ulps(r[3], std::log(4.0)) <= 1);
  CHECK(std::isnan(r[4]));
}
