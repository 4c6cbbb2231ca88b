// Float64 unary ops under AVX2 (kernels/cpu/unary_f64_avx2.cpp, vec_math_f64_avx2.h) against
// long double references: the ulp bounds the header states, on dense sweeps, random bit
// patterns and the edge values (zeros, infinities, NaN, subnormals, the overflow and underflow
// thresholds); sqrt, rsqrt and reciprocal equal the scalar path exactly.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/elementwise.h"
#include "tests/kernels/kernel_test_util.h"

using namespace smyrf::kernels::cpu;
using kernel_test::IsaGuard;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// The op over x as one contiguous run (the 4-wide body, the pair loop and the padded tail).
std::vector<double> run(UnaryOp op, const std::vector<double>& x, Isa isa) {
  IsaGuard g(isa);
  std::vector<double> y(x.size());
  const int64_t sizes[1] = {static_cast<int64_t>(x.size())}, st[1] = {1};
  unary<double>(op, 0, 0, 1, sizes, x.data(), st, y.data(), st);
  return y;
}

// Distance of got from the long double ref in units of the double ulp at ref (subnormal
// results: units of the smallest subnormal); 0 for matching NaN / infinities, huge otherwise.
double ulps(double got, long double ref) {
  const double rd = static_cast<double>(ref);
  if (std::isnan(rd) || std::isnan(got)) return std::isnan(rd) && std::isnan(got) ? 0 : 1e300;
  if (std::isinf(rd) || std::isinf(got)) {
    if (rd == got) return 0;
    // a result just past the largest double may round either way
    const long double top = std::numeric_limits<double>::max();
    return std::fabs(ref) > top * (1 - 1e-16L) && std::fabs(got) >= static_cast<double>(top)
               ? 0
               : 1e300;
  }
  const double u = std::fabs(rd) < std::numeric_limits<double>::min()
                       ? std::numeric_limits<double>::denorm_min()
                       : std::ldexp(1.0, std::ilogb(rd) - 52);
  return static_cast<double>(std::fabs(static_cast<long double>(got) - ref) / u);
}

// Checks that the AVX2 op is within `bound` ulps of ref over x (the worst case and where it lies
// are reported on failure). normal_only: results whose reference is subnormal are left out
// (sigmoid and silu divide by 1 + e^-x, which overflows before the quotient leaves the subnormal
// range, in the scalar reference as here).
void check_ulps(UnaryOp op, const std::vector<double>& x,
                const std::function<long double(long double)>& ref, const char* name, double bound,
                bool normal_only = false) {
  const auto y = run(op, x, Isa::Avx2);
  double worst = 0, at = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const long double r = ref(static_cast<long double>(x[i]));
    if (normal_only && std::fabs(r) < std::numeric_limits<double>::min()) continue;
    const double e = ulps(y[i], r);
    if (e > worst) worst = e, at = x[i];
  }
  INFO(std::string(name) << ": worst " << worst << " ulp at x = " << at);
  CHECK(worst <= bound);
}

std::vector<double> dense(double lo, double hi, int n) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = lo + (hi - lo) * i / (n - 1);
  return v;
}

// random doubles with uniformly drawn exponents between 2^lo and 2^hi, signs as asked
std::vector<double> log_uniform(int lo, int hi, int n, bool negative_too, uint32_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> m(1.0, 2.0);
  std::uniform_int_distribution<int> e(lo, hi);
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) {
    x = std::ldexp(m(gen), e(gen));
    if (negative_too && (gen() & 1)) x = -x;
  }
  return v;
}

const std::vector<double> kEdges = {0.0,
                                    -0.0,
                                    kInf,
                                    -kInf,
                                    kNaN,
                                    1.0,
                                    -1.0,
                                    std::numeric_limits<double>::min(),
                                    std::numeric_limits<double>::denorm_min(),
                                    -std::numeric_limits<double>::denorm_min(),
                                    std::numeric_limits<double>::max(),
                                    -std::numeric_limits<double>::max(),
                                    709.782712893384,
                                    709.7827128933841,
                                    -708.3964185322641,
                                    -745.1332191019411,
                                    -745.1332191019412,
                                    40.0,
                                    -40.0,
                                    1e-300,
                                    -1e-300,
                                    20.0,
                                    -20.0};

std::vector<double> with_edges(std::vector<double> v) {
  v.insert(v.end(), kEdges.begin(), kEdges.end());
  return v;
}

bool have_avx2() {
  if (!cpu_has_avx2_fma()) MESSAGE("no AVX2+FMA here: float64 vector math checks skipped");
  return cpu_has_avx2_fma();
}
}  // namespace

TEST_CASE("float64 exp / expm1 under AVX2: ulp bounds on sweeps, subnormal results, specials") {
  if (!have_avx2()) return;
  auto xs = with_edges(dense(-746, 710, 400001));
  for (double x : log_uniform(-1074, 9, 100000, true, 1)) xs.push_back(x);
  check_ulps(
      UnaryOp::Exp, xs, [](long double x) { return expl(x); }, "exp", 1.0);
  auto ms = with_edges(dense(-50, 50, 400001));
  for (double x : dense(-1e-3, 1e-3, 20001)) ms.push_back(x);
  for (double x : log_uniform(-1074, 9, 100000, true, 2)) ms.push_back(x);
  check_ulps(
      UnaryOp::Expm1, ms, [](long double x) { return expm1l(x); }, "expm1", 2.5);
}

TEST_CASE("float64 log / log1p under AVX2: ulp bounds, subnormal inputs, near 1, specials") {
  if (!have_avx2()) return;
  auto xs = with_edges(log_uniform(-1074, 1023, 400000, false, 3));
  for (int k = -2000; k <= 2000; ++k) xs.push_back(1.0 + k * std::ldexp(1.0, -52));
  for (double x : dense(0.5, 2.0, 100001)) xs.push_back(x);
  for (double x : log_uniform(-1074, 1023, 1000, true, 4)) xs.push_back(x);  // negatives: NaN
  check_ulps(
      UnaryOp::Log, xs, [](long double x) { return logl(x); }, "log", 1.5);
  auto ps = with_edges(log_uniform(-1074, 1023, 200000, false, 5));
  for (double x : dense(-0.999999, 3, 200001)) ps.push_back(x);
  for (double x : log_uniform(-60, -1, 100000, true, 6)) ps.push_back(x);  // both sides of 0
  ps.push_back(-1.5);
  check_ulps(
      UnaryOp::Log1p, ps, [](long double x) { return log1pl(x); }, "log1p", 2.0);
}

TEST_CASE("float64 tanh / sigmoid / silu under AVX2: ulp bounds, tails, specials") {
  if (!have_avx2()) return;
  auto ts = with_edges(dense(-25, 25, 400001));
  for (double x : log_uniform(-1074, 3, 100000, true, 7)) ts.push_back(x);
  check_ulps(
      UnaryOp::Tanh, ts, [](long double x) { return tanhl(x); }, "tanh", 3.0);
  auto ss = with_edges(dense(-760, 760, 400001));
  for (double x : log_uniform(-1074, 9, 100000, true, 8)) ss.push_back(x);
  auto sig = [](long double x) { return 1.0L / (1.0L + expl(-x)); };
  check_ulps(UnaryOp::Sigmoid, ss, sig, "sigmoid", 3.0, true);
  // silu's reference formula x / (1 + e^-x) gives -0 once e^-x overflows (x < -709.78), in the
  // scalar path as here (PyTorch's x sigmoid(x) too): the bound holds above
  std::vector<double> su;
  for (double x : ss)
    if (!(x < -709.78)) su.push_back(x);
  auto silu = [](long double x) { return x / (1.0L + expl(-x)); };
  check_ulps(UnaryOp::Silu, su, silu, "silu", 3.0, true);
  const auto far = run(UnaryOp::Silu, {-710.0, -800.0, -kInf}, Isa::Avx2);
  CHECK(far[0] == 0.0);
  CHECK(far[1] == 0.0);
  CHECK(std::isnan(far[2]));
}

TEST_CASE("float64 sqrt / rsqrt / reciprocal under AVX2 equal the scalar path bit for bit") {
  if (!have_avx2()) return;
  auto xs = with_edges(log_uniform(-1074, 1023, 100003, true, 9));
  for (UnaryOp op : {UnaryOp::Sqrt, UnaryOp::Rsqrt, UnaryOp::Reciprocal}) {
    CAPTURE(static_cast<int>(op));
    const auto a = run(op, xs, Isa::Avx2), s = run(op, xs, Isa::Scalar);
    size_t bad = 0;
    for (size_t i = 0; i < xs.size(); ++i)
      if (!(a[i] == s[i] || (std::isnan(a[i]) && std::isnan(s[i])))) ++bad;
    CHECK(bad == 0);
  }
}

TEST_CASE("float64 unary runs of every length: the padded tail writes nothing past the end") {
  if (!have_avx2()) return;
  for (int64_t n = 0; n <= 13; ++n) {
    CAPTURE(n);
    std::vector<double> x(static_cast<size_t>(n) + 1, 0.5), y(static_cast<size_t>(n) + 1, -7.0);
    for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = 0.1 * static_cast<double>(i);
    IsaGuard g(Isa::Avx2);
    const int64_t sizes[1] = {n}, st[1] = {1};
    unary<double>(UnaryOp::Exp, 0, 0, 1, sizes, x.data(), st, y.data(), st);
    for (int64_t i = 0; i < n; ++i)
      CHECK(y[static_cast<size_t>(i)] == doctest::Approx(std::exp(0.1 * static_cast<double>(i))));
    CHECK(y[static_cast<size_t>(n)] == -7.0);
  }
}
