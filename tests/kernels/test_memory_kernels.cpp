// The memory-bound CPU kernels (elementwise, reductions, softmax, layer norm, cross-entropy):
// every AVX2 path against the scalar reference on odd sizes, unaligned pointers, transposed /
// broadcast / flipped index spaces and edge values; the vector math against double precision.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
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
#include "kernels/cpu/elementwise_avx2.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/streaming_store.h"
#include "tests/kernels/kernel_test_util.h"

using namespace smyrf::kernels::cpu;
using kernel_test::both;
using kernel_test::close;
using kernel_test::IsaGuard;
using kernel_test::randn;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const int64_t kSizes[] = {1, 7, 33, 1000, 4099};

// Runs fn under the scalar reference and under AVX2. Returns false (and the test skips the
// comparison) on a machine or build without AVX2.
bool have_avx2() {
  if (!cpu_has_avx2_fma()) MESSAGE("no AVX2+FMA here: AVX2 comparisons skipped");
  return cpu_has_avx2_fma();
}

// A buffer whose data() is one float past a 32-byte boundary, to exercise unaligned access.
struct Unaligned {
  std::vector<float> store;
  float* p;
  explicit Unaligned(size_t n, float fill = 0.f) : store(n + 9, fill) {
    auto addr = reinterpret_cast<uintptr_t>(store.data());
    size_t skip = ((32 - addr % 32) % 32) / sizeof(float) + 1;
    p = store.data() + skip;
  }
  Unaligned(const std::vector<float>& v) : Unaligned(v.size()) { std::copy(v.begin(), v.end(), p); }
  float& operator[](size_t i) { return p[i]; }
};

void check_close(const float* got, const float* want, int64_t n, double rel, double abs,
                 const char* what) {
  int64_t bad = -1;
  for (int64_t i = 0; i < n && bad < 0; ++i)
    if (!close(got[i], want[i], rel, abs)) bad = i;
  INFO(std::string(what) << " n=" << n << " first mismatch at " << bad << ": got "
                         << (bad >= 0 ? got[bad] : 0.f) << " want "
                         << (bad >= 0 ? want[bad] : 0.f));
  CHECK(bad < 0);
}

// distance in float ulps between got and ref (ref in double), denormal ulps below FLT_MIN
double ulps(float got, double ref) {
  const float rf = static_cast<float>(ref);
  if (std::isnan(rf) || std::isnan(got)) return std::isnan(rf) && std::isnan(got) ? 0 : 1e30;
  if (std::isinf(rf) || std::isinf(got)) return rf == got ? 0 : 1e30;
  const double u = std::fabs(rf) < std::numeric_limits<float>::min()
                       ? std::numeric_limits<float>::denorm_min()
                       : std::ldexp(1.0, std::ilogb(rf) - 23);
  return std::fabs(got - ref) / u;
}

std::vector<float> edge_values() {
  return {0.f,   -0.f,   1.f,   -1.f, kInf,  -kInf,  kNaN, 1e-45f, -1e-45f, 1e-38f,
          3e38f, -3e38f, 88.7f, 89.f, -87.f, -104.f, 1e6f, -1e6f,  0.5f,    2.f};
}

}  // namespace

TEST_CASE("vec math: exp, log, tanh, sigmoid, silu, gelu within their ulp bounds") {
  if (!have_avx2()) return;
  struct Case {
    const char* name;
    UnaryOp op;
    std::function<double(double)> f;
    double lo, hi, max_ulp;
  };
  const double rs2 = 1.0 / std::sqrt(2.0);
  const Case cases[] = {
      {"exp", UnaryOp::Exp, [](double x) { return std::exp(x); }, -110, 95, 2},
      {"tanh", UnaryOp::Tanh, [](double x) { return std::tanh(x); }, -12, 12, 3},
      {"sigmoid", UnaryOp::Sigmoid, [](double x) { return 1 / (1 + std::exp(-x)); }, -103, 30, 3},
      {"silu", UnaryOp::Silu, [](double x) { return x / (1 + std::exp(-x)); }, -80, 30, 4},
      {"gelu", UnaryOp::Gelu, [&](double x) { return 0.5 * x * std::erfc(-x * rs2); }, -13, 13, 16},
      {"expm1", UnaryOp::Expm1, [](double x) { return std::expm1(x); }, -20, 89, 2},
      {"expm1 near 0", UnaryOp::Expm1, [](double x) { return std::expm1(x); }, -1.5, 1.5, 2},
      {"expm1 tiny", UnaryOp::Expm1, [](double x) { return std::expm1(x); }, -1e-4, 1e-4, 2},
      {"log1p", UnaryOp::Log1p, [](double x) { return std::log1p(x); }, -0.9999, 1e4, 3},
      {"log1p near 0", UnaryOp::Log1p, [](double x) { return std::log1p(x); }, -0.9, 1.5, 3},
      {"log1p tiny", UnaryOp::Log1p, [](double x) { return std::log1p(x); }, -1e-4, 1e-4, 3},
  };
  for (const auto& c : cases) {
    const int n = 1 << 20;
    std::vector<float> x(n), y(n);
    for (int i = 0; i < n; ++i) x[i] = static_cast<float>(c.lo + (c.hi - c.lo) * i / (n - 1));
    REQUIRE(avx2::unary_f32(c.op, 0, 0, x.data(), y.data(), n));
    double worst = 0;
    float at = 0;
    for (int i = 0; i < n; ++i) {
      const double e = ulps(y[i], c.f(x[i]));
      if (e > worst) worst = e, at = x[i];
    }
    INFO(c.name << ": " << worst << " ulp at x = " << at);
    CHECK(worst <= c.max_ulp);
  }
  // log over every 997th positive float bit pattern, denormals included
  std::vector<float> x, y;
  for (uint32_t b = 1; b < 0x7f800000u; b += 997) {
    float f;
    std::memcpy(&f, &b, 4);
    x.push_back(f);
  }
  y.resize(x.size());
  avx2::unary_f32(UnaryOp::Log, 0, 0, x.data(), y.data(), static_cast<int64_t>(x.size()));
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, ulps(y[i], std::log(double(x[i]))));
  INFO("log: " << worst << " ulp");
  CHECK(worst <= 2);
  // gelu': relative where it is not near its zero crossing at x ~ -0.75
  {
    const int n = 1 << 18;
    std::vector<float> xs(n), ys(n);
    for (int i = 0; i < n; ++i) xs[i] = -13.f + 26.f * i / (n - 1);
    avx2::unary_f32(UnaryOp::GeluGrad, 0, 0, xs.data(), ys.data(), n);
    for (int i = 0; i < n; ++i) {
      const double v = xs[i];
      const double r = 0.5 * std::erfc(-v * rs2) + v * 0.3989422804014327 * std::exp(-0.5 * v * v);
      if (!close(ys[i], static_cast<float>(r), 2e-6, 1e-7)) {
        INFO("gelu' at " << v << " got " << ys[i] << " want " << r);
        CHECK(false);
        break;
      }
    }
  }
  // specials
  const float sx[] = {kInf, -kInf, kNaN, 89.f, 88.72f, -104.f, -103.9f, 0.f, -0.f, -1.f, 1e-45f};
  const int ns = sizeof(sx) / sizeof(float);
  float ex[ns], lg[ns], th[ns], sg[ns];
  avx2::unary_f32(UnaryOp::Exp, 0, 0, sx, ex, ns);
  avx2::unary_f32(UnaryOp::Log, 0, 0, sx, lg, ns);
  avx2::unary_f32(UnaryOp::Tanh, 0, 0, sx, th, ns);
  avx2::unary_f32(UnaryOp::Sigmoid, 0, 0, sx, sg, ns);
  CHECK(ex[0] == kInf);
  CHECK(ex[1] == 0.f);
  CHECK(std::isnan(ex[2]));
  CHECK(ex[3] == kInf);
  CHECK(ulps(ex[4], std::exp(double(88.72f))) <= 2);
  CHECK(ex[5] == 0.f);
  CHECK(ex[6] == std::numeric_limits<float>::denorm_min());  // exp(-103.9) = 7.5e-46 rounds up
  CHECK(lg[0] == kInf);
  CHECK(std::isnan(lg[1]));
  CHECK(std::isnan(lg[2]));
  CHECK(lg[7] == -kInf);
  CHECK(lg[8] == -kInf);
  CHECK(std::isnan(lg[9]));
  CHECK(lg[10] == doctest::Approx(-103.279).epsilon(1e-6));
  CHECK(th[0] == 1.f);
  CHECK(th[1] == -1.f);
  CHECK(std::isnan(th[2]));
  CHECK(sg[0] == 1.f);
  CHECK(sg[1] == 0.f);
  CHECK(sg[6] > 0.f);  // sigmoid(-103.9) is a denormal, not flushed to zero
}

TEST_CASE("vec math: gelu lanes mixing the polynomial and the tail branch agree with erfc") {
  // gelu_ps skips the tail when all 8 lanes have |x| < sqrt 2 and the polynomial when none do;
  // vectors that mix both (every lane pattern of small/large) must still blend per lane.
  if (!have_avx2()) return;
  const double rs2 = 1.0 / std::sqrt(2.0);
  std::vector<float> x, y;
  for (int pattern = 0; pattern < 256; ++pattern)
    for (int lane = 0; lane < 8; ++lane) {
      const float v = 0.11f * static_cast<float>(lane + 1) + 0.003f * static_cast<float>(pattern);
      const bool big = (pattern >> lane) & 1;
      x.push_back((big ? 1.5f + 4.f * v : 0.9f * v) * (lane % 3 == 0 ? -1.f : 1.f));
    }
  y.resize(x.size());
  REQUIRE(avx2::unary_f32(UnaryOp::Gelu, 0, 0, x.data(), y.data(), static_cast<int64_t>(x.size())));
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i)
    worst = std::max(worst, ulps(y[i], 0.5 * x[i] * std::erfc(-x[i] * rs2)));
  INFO("gelu mixed lanes: " << worst << " ulp");
  CHECK(worst <= 16);
}

TEST_CASE("scalar reference: gelu tail is not flushed by 1 + erf cancellation") {
  IsaGuard g(Isa::Scalar);
  float x[2] = {-10.f, -9.f}, y[2];
  int64_t sz = 2, st = 1;
  unary<float>(UnaryOp::Gelu, 0, 0, 1, &sz, x, &st, y, &st);
  CHECK(y[0] == doctest::Approx(-7.619853e-23).epsilon(1e-5));
  CHECK(y[1] == doctest::Approx(-1.0156e-18).epsilon(1e-3));
}

TEST_CASE("unary ops: AVX2 equals the scalar reference on odd sizes, unaligned, edge values") {
  if (!have_avx2()) return;
  struct Op {
    UnaryOp op;
    double a, b, rel, abs;
  };
  const Op ops[] = {
      {UnaryOp::Neg, 0, 0, 0, 0},
      {UnaryOp::Exp, 0, 0, 2.5e-7, 0},
      {UnaryOp::Log, 0, 0, 2.5e-7, 0},
      {UnaryOp::Sqrt, 0, 0, 0, 0},
      {UnaryOp::Rsqrt, 0, 0, 1.2e-7, 0},
      {UnaryOp::Abs, 0, 0, 0, 0},
      {UnaryOp::Sign, 0, 0, 0, 0},
      {UnaryOp::Tanh, 0, 0, 3.6e-7, 0},
      {UnaryOp::Sigmoid, 0, 0, 3.6e-7, 1e-43},
      {UnaryOp::Relu, 0, 0, 0, 0},
      {UnaryOp::LeakyRelu, 0.1, 0, 1.2e-7, 0},
      {UnaryOp::Gelu, 0, 0, 2e-6, 1e-43},
      {UnaryOp::Silu, 0, 0, 5e-7, 1e-43},
      {UnaryOp::Clamp, -0.5, 0.5, 0, 0},
      {UnaryOp::Clamp, 1, -1, 0, 0},
      {UnaryOp::MulScalar, 3, 0, 0, 0},
      {UnaryOp::AddScalar, -2, 0, 0, 0},
      {UnaryOp::Square, 0, 0, 0, 0},
      {UnaryOp::Reciprocal, 0, 0, 0, 0},
      {UnaryOp::GeluGrad, 0, 0, 2e-6, 2e-7},
      {UnaryOp::TanhGradFromOut, 0, 0, 0, 0},
      {UnaryOp::SigmoidGradFromOut, 0, 0, 0, 0},
      {UnaryOp::ReluGrad, 0, 0, 0, 0},
      {UnaryOp::SiluGrad, 0, 0, 2e-6, 2e-7},
      // pow: <= 1 ulp (log2 / exp2 in double, then rounded); x^2 exact; 1 / 3 is not a float,
      // so that exponent runs the reference loop (exactly equal)
      {UnaryOp::PowScalar, 2.5, 0, 1.2e-7, 0},
      {UnaryOp::PowScalar, -1.5, 0, 1.2e-7, 0},
      {UnaryOp::PowScalar, 3, 0, 1.2e-7, 0},
      {UnaryOp::PowScalar, 2, 0, 0, 0},
      {UnaryOp::PowScalar, 1.0 / 3.0, 0, 0, 0},
      {UnaryOp::Log1p, 0, 0, 4.8e-7, 0},
      {UnaryOp::Expm1, 0, 0, 4.8e-7, 0},
      // |error| <= 1.2e-7 absolute (the argument reduction's), ~2 ulp away from the zeros
      {UnaryOp::Sin, 0, 0, 2.5e-7, 1.2e-7},
      {UnaryOp::Cos, 0, 0, 2.5e-7, 1.2e-7},
  };
  const auto edges = edge_values();
  for (int64_t n : kSizes) {
    auto v = randn(n, 7 + n, 3.f);
    for (size_t k = 0; k < edges.size() && k * 3 < static_cast<size_t>(n); ++k) v[k * 3] = edges[k];
    Unaligned x(v), y_ref(n), y_vec(n);
    const int64_t st = 1;
    for (const auto& o : ops) {
      CAPTURE(static_cast<int>(o.op));
      {
        IsaGuard g(Isa::Scalar);
        unary<float>(o.op, o.a, o.b, 1, &n, x.p, &st, y_ref.p, &st);
      }
      {
        IsaGuard g(Isa::Avx2);
        unary<float>(o.op, o.a, o.b, 1, &n, x.p, &st, y_vec.p, &st);
      }
      check_close(y_vec.p, y_ref.p, n, o.rel, o.abs, "unary");
      CHECK(y_vec.p[n] == 0.f);  // nothing written past the end
    }
  }
}

namespace {
// y = op(a, b) over a 2-D or 3-D index space with the given strides, AVX2 vs scalar.
void binary_case(BinaryOp op, std::vector<int64_t> sizes, std::vector<int64_t> as,
                 std::vector<int64_t> bs, int64_t a_off, int64_t b_off, uint32_t seed) {
  int64_t total = 1;
  for (auto s : sizes) total *= s;
  auto extent = [&](const std::vector<int64_t>& st) {
    int64_t e = 0;
    for (size_t d = 0; d < sizes.size(); ++d) e += (sizes[d] - 1) * std::abs(st[d]);
    return e + 1;
  };
  auto av = randn(extent(as) + a_off, seed), bv = randn(extent(bs) + b_off, seed + 1);
  av[0] = kNaN;
  if (bv.size() > 5) bv[5] = -0.f, av[std::min<size_t>(5, av.size() - 1)] = 0.f;
  if (bv.size() > 9) bv[9] = kInf;
  Unaligned a(av), b(bv), yr(total), yv(total);
  std::vector<int64_t> ys(sizes.size(), 1);
  for (int d = static_cast<int>(sizes.size()) - 2; d >= 0; --d) ys[d] = ys[d + 1] * sizes[d + 1];
  const int nd = static_cast<int>(sizes.size());
  for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
    IsaGuard g(isa);
    binary<float>(op, nd, sizes.data(), a.p + a_off, as.data(), b.p + b_off, bs.data(),
                  isa == Isa::Scalar ? yr.p : yv.p, ys.data());
  }
  // elementwise add/sub/mul/div/max/min are exact: AVX2 must equal the reference bit for bit
  // (NaN payloads aside); pow within 1 ulp (vec_math_avx2.h: pow_ps); gelu's backward within
  // gelu_grad_ps's 2e-6 relative + 2e-7 absolute, times |g| (randn: at most ~5) and one rounding
  const double rel = op == BinaryOp::Pow ? 1.2e-7 : op == BinaryOp::GeluBackward ? 2.2e-6 : 0;
  check_close(yv.p, yr.p, total, rel, op == BinaryOp::GeluBackward ? 1e-6 : 0, "binary");
}
}  // namespace

TEST_CASE(
    "sin / cos: AVX2 over [-8192, 8192] within 1.2e-7 and 2 ulp; far lanes as the reference") {
  // The vector sin / cos reduce |x| by pi/4 in three exact parts up to 8192 (sincos_inrange_ps);
  // beyond it, and for inf / NaN, lanes go through the double reference, so they must equal the
  // scalar path exactly. Checked: every octant and both signs (uniform samples), the float
  // nearest each multiple of pi / 2 up to 8192 (where sin or cos is near zero and only the
  // absolute bound holds), signed zeros, tiny values, the 8192 boundary and far arguments mixed
  // into the same vectors as in-range ones.
  if (!have_avx2()) return;
  std::vector<float> v;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> wide(-8192.f, 8192.f), near(-7.f, 7.f);
  for (int i = 0; i < 200000; ++i) v.push_back(i % 2 ? wide(rng) : near(rng));
  for (int k = 1; k < 5215; ++k) v.push_back(static_cast<float>(k * 1.5707963267948966));
  for (float e : {0.f, -0.f, 1e-30f, -1e-30f, 1e-45f, 8191.999f, 8192.f, 8192.001f, -8192.001f,
                  1e6f, -3e9f, 1e30f, kInf, -kInf, kNaN})
    v.push_back(e);
  const int64_t n = static_cast<int64_t>(v.size()), st = 1;
  Unaligned x(v), yv(n);
  for (UnaryOp op : {UnaryOp::Sin, UnaryOp::Cos}) {
    CAPTURE(static_cast<int>(op));
    {
      IsaGuard g(Isa::Avx2);
      unary<float>(op, 0, 0, 1, &n, x.p, &st, yv.p, &st);
    }
    int bad = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double xd = v[static_cast<size_t>(i)];
      const double ref = op == UnaryOp::Sin ? std::sin(xd) : std::cos(xd);
      const float got = yv.p[i];
      bool ok;
      if (std::isnan(ref)) {
        ok = std::isnan(got);
      } else if (std::fabs(xd) > 8192.0) {
        ok = got == static_cast<float>(ref);
      } else {
        const float rf = static_cast<float>(ref);
        const double ulp = std::nextafter(std::fabs(rf), kInf) - std::fabs(rf);
        const double err = std::fabs(got - ref);
        ok = err <= 1.2e-7 && (std::fabs(ref) < 1.0 / 32 || err <= 2 * ulp) &&
             (rf == 0 || std::signbit(rf) == std::signbit(got));
      }
      if (op == UnaryOp::Sin && xd == 0) ok = ok && std::signbit(got) == std::signbit(xd);
      if (!ok && bad++ < 5) FAIL_CHECK("x = " << xd << ": " << got << ", want " << ref);
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("binary ops: contiguous, broadcast, transposed, flipped and permuted operands") {
  if (!have_avx2()) return;
  const BinaryOp ops[] = {BinaryOp::Add, BinaryOp::Sub,          BinaryOp::Mul,
                          BinaryOp::Div, BinaryOp::Maximum,      BinaryOp::Minimum,
                          BinaryOp::Pow, BinaryOp::ReluBackward, BinaryOp::GeluBackward};
  uint32_t seed = 1;
  for (BinaryOp op : ops) {
    CAPTURE(static_cast<int>(op));
    for (int64_t n : kSizes) {
      binary_case(op, {n}, {1}, {1}, 0, 0, ++seed);
      binary_case(op, {n}, {1}, {0}, 0, 0, ++seed);       // scalar broadcast
      binary_case(op, {n}, {-1}, {1}, n - 1, 0, ++seed);  // flipped view
    }
    // 37x517 and 300x20 cross the 32 x 256 tiles with partial 8-row strips and column tails
    for (auto [r, c] : {std::pair<int64_t, int64_t>{33, 7},
                        {7, 33},
                        {100, 129},
                        {130, 67},
                        {37, 517},
                        {300, 20}}) {
      binary_case(op, {r, c}, {1, r}, {c, 1}, 0, 0, ++seed);      // a transposed
      binary_case(op, {r, c}, {c, 1}, {1, r}, 0, 0, ++seed);      // b transposed
      binary_case(op, {r, c}, {1, r}, {1, r}, 0, 0, ++seed);      // both transposed
      binary_case(op, {r, c}, {1, r}, {1, 0}, 0, 0, ++seed);      // transposed + column broadcast
      binary_case(op, {r, c}, {c, 1}, {0, 1}, 0, 0, ++seed);      // row broadcast
      binary_case(op, {r, c}, {2, 2 * r}, {c, 1}, 0, 0, ++seed);  // strided, transposed
      binary_case(op, {r, c}, {-1, -r}, {c, 1}, r * c - 1, 0, ++seed);  // flipped transpose
    }
    binary_case(op, {5, 37, 41}, {1, 5 * 41, 5}, {37 * 41, 41, 1}, 0, 0, ++seed);  // permuted
    binary_case(op, {3, 70, 65}, {70 * 65, 1, 70}, {0, 1, 0}, 0, 0, ++seed);
    // 4-D, last two dims swapped (a (2, 3, 300, 19) tensor viewed as (2, 3, 19, 300))
    binary_case(op, {2, 3, 19, 300}, {3 * 300 * 19, 300 * 19, 1, 19},
                {3 * 19 * 300, 19 * 300, 300, 1}, 0, 0, ++seed);
  }
}

TEST_CASE("binary maximum / minimum: NaN propagates, the reference's choice between +0 and -0") {
  if (!have_avx2()) return;
  std::vector<float> a = {kNaN, 1.f, 0.f, -0.f, kInf, -kInf, 2.f, kNaN, 3.f};
  std::vector<float> b = {1.f, kNaN, -0.f, 0.f, 1.f, 1.f, kNaN, kNaN, -3.f};
  const int64_t n = static_cast<int64_t>(a.size()), st = 1;
  for (BinaryOp op : {BinaryOp::Maximum, BinaryOp::Minimum}) {
    std::vector<float> yr(n), yv(n);
    {
      IsaGuard g(Isa::Scalar);
      binary<float>(op, 1, &n, a.data(), &st, b.data(), &st, yr.data(), &st);
    }
    {
      IsaGuard g(Isa::Avx2);
      binary<float>(op, 1, &n, a.data(), &st, b.data(), &st, yv.data(), &st);
    }
    for (int64_t i = 0; i < n; ++i) {
      CHECK(std::isnan(yv[i]) == std::isnan(yr[i]));
      if (!std::isnan(yr[i])) CHECK(std::signbit(yv[i]) == std::signbit(yr[i]));
      if (!std::isnan(yr[i])) CHECK(yv[i] == yr[i]);
    }
    CHECK(std::isnan(yr[0]));
    CHECK(std::isnan(yr[1]));
  }
}

TEST_CASE("unary on transposed and strided inputs goes through the tiled path exactly") {
  if (!have_avx2()) return;
  // 100x129 and 70x75 leave tiles whose rows and columns are not multiples of the 8x8 block.
  for (auto [r, c] : {std::pair<int64_t, int64_t>{9, 8},
                      {64, 64},
                      {100, 129},
                      {257, 33},
                      {70, 75},
                      {15, 200},
                      {37, 517},
                      {21, 300}}) {
    for (UnaryOp op : {UnaryOp::Exp, UnaryOp::Gelu, UnaryOp::Neg, UnaryOp::Sin}) {
      auto v = randn(static_cast<size_t>(2 * r * c), r + c);
      v[3] = kNaN;
      v[4] = -kInf;
      // the output is contiguous or has padded rows (stride c + 3: the padding must stay 7)
      Unaligned x(v), yr(r * (c + 3), 7.f), yv(r * (c + 3), 7.f);
      const int64_t sizes[2] = {r, c};
      for (int64_t ld : {c, c + 3}) {
        const int64_t ys[2] = {ld, 1};
        for (auto xs : {std::vector<int64_t>{1, r}, std::vector<int64_t>{2, 2 * r},
                        std::vector<int64_t>{2 * c, 2}}) {
          for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
            IsaGuard g(isa);
            unary<float>(op, 0, 0, 2, sizes, x.p, xs.data(), isa == Isa::Scalar ? yr.p : yv.p, ys);
          }
          check_close(yv.p, yr.p, r * (c + 3), 2e-6, 1e-44, "unary strided");
        }
      }
    }
  }
}

TEST_CASE(
    "binary ops with a row or column broadcast over short rows: runs of rows, either operand") {
  if (!have_avx2()) return;
  // y (R, n) = a op b with one operand broadcast: a (1, n) row down (strides (0, 1)) or an (R, 1)
  // column along the rows (strides (cs, 0), cs 1 or 3). Rows shorter than 256 floats are done
  // k = ceil(256 / n) at a time against a k n-float run of the other operand, the last R % k
  // rows alone. AVX2 equals the scalar loop exactly for these IEEE ops.
  for (int64_t n : {1, 3, 8, 9, 16, 100, 255, 256}) {
    const int64_t k = (256 + n - 1) / n;
    for (int64_t R : {2 * k - 1, 2 * k, 5 * k + 3, int64_t(1000)}) {
      for (int64_t cs : {int64_t(0), int64_t(1), int64_t(3)}) {  // 0: the row operand
        auto va = randn(static_cast<size_t>(R * n), static_cast<uint32_t>(R + n));
        auto vb = randn(static_cast<size_t>(cs ? R * cs : n), static_cast<uint32_t>(n) + 1);
        va[1] = kNaN;
        vb[0] = -0.f;
        vb[vb.size() - 1] = kInf;
        Unaligned full(va), other(vb), yr(R * n, 3.f), yv(R * n, 3.f);
        const int64_t sizes[2] = {R, n}, st_full[2] = {n, 1}, st_row[2] = {0, 1},
                      st_col[2] = {cs, 0};
        const int64_t* st_other = cs ? st_col : st_row;
        for (BinaryOp op :
             {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Maximum}) {
          for (bool other_first : {false, true}) {
            CAPTURE(n);
            CAPTURE(R);
            CAPTURE(cs);
            CAPTURE(static_cast<int>(op));
            CAPTURE(other_first);
            for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
              IsaGuard g(isa);
              float* y = isa == Isa::Scalar ? yr.p : yv.p;
              if (other_first)
                binary<float>(op, 2, sizes, other.p, st_other, full.p, st_full, y, st_full);
              else
                binary<float>(op, 2, sizes, full.p, st_full, other.p, st_other, y, st_full);
            }
            int64_t bad = -1;
            for (int64_t i = 0; i <= R * n && bad < 0; ++i)  // and the guard float after the end
              if (std::memcmp(yv.p + i, yr.p + i, sizeof(float)) != 0) bad = i;
            INFO("first difference at " << bad);
            CHECK(bad < 0);
          }
        }
      }
    }
  }
}

TEST_CASE("compare and where over short rows: full / row / column / scalar operands") {
  if (!have_avx2()) return;
  // (R, n) with every operand a contiguous block, a broadcast row (0, 1), a column (cs, 0) with
  // cs 1 or 3, or a scalar (0, 0): short rows go k = ceil(256 / n) at a time as one run
  // (kernels/cpu/short_row_runs.h), the last R % k rows through the general loop. Exact equality
  // with the element loop, and nothing written past the end.
  struct Kind {
    const char* name;
    int64_t s0, s1, span;  // span: elements the operand needs, per row (0: a fixed count)
  };
  for (int64_t n : {1, 3, 8, 13, 100}) {
    const int64_t k = (256 + n - 1) / n;
    for (int64_t R : {2 * k - 1, 2 * k, 5 * k + 3}) {
      const Kind kinds[] = {{"full", n, 1, n},
                            {"row", 0, 1, 0},
                            {"col1", 1, 0, 1},
                            {"col3", 3, 0, 3},
                            {"scalar", 0, 0, 0}};
      auto size_of = [&](const Kind& kd) { return kd.span ? R * kd.span : (kd.s1 ? n : 1); };
      const int64_t sizes[2] = {R, n}, ys[2] = {n, 1};
      // enough for every kind: full (R n), col3 (3 R), row and scalar (n)
      std::vector<uint8_t> cstore(static_cast<size_t>(R * std::max<int64_t>(n, 3) + n));
      for (size_t i = 0; i < cstore.size(); ++i) cstore[i] = (i * 7 + i / 3) % 3 == 0;
      const bool* c = reinterpret_cast<const bool*>(cstore.data());
      for (const Kind& ka : kinds) {
        for (const Kind& kb : kinds) {
          auto va = randn(static_cast<size_t>(size_of(ka)), static_cast<uint32_t>(R + n));
          auto vb = randn(static_cast<size_t>(size_of(kb)), static_cast<uint32_t>(R + 2 * n));
          va[0] = kNaN;
          vb[vb.size() - 1] = -kInf;
          for (size_t i = 1; i < va.size() && i < vb.size(); i += 4) vb[i] = va[i];  // ties
          Unaligned a(va), b(vb);
          const int64_t as[2] = {ka.s0, ka.s1}, bs[2] = {kb.s0, kb.s1};
          CAPTURE(n);
          CAPTURE(R);
          CAPTURE(ka.name);
          CAPTURE(kb.name);
          for (CompareOp op : {CompareOp::Lt, CompareOp::Ne}) {
            std::vector<uint8_t> yr(static_cast<size_t>(R * n) + 1, 9), yv = yr;
            for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
              IsaGuard g(isa);
              compare<float>(op, 2, sizes, a.p, as, b.p, bs,
                             reinterpret_cast<bool*>(isa == Isa::Scalar ? yr.data() : yv.data()),
                             ys);
            }
            CHECK(yr == yv);
          }
          for (const Kind& kc : kinds) {
            CAPTURE(kc.name);
            const int64_t cs[2] = {kc.s0, kc.s1};
            Unaligned yr(R * n, 4.f), yv(R * n, 4.f);
            for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
              IsaGuard g(isa);
              where<float>(2, sizes, c, cs, a.p, as, b.p, bs, isa == Isa::Scalar ? yr.p : yv.p, ys);
            }
            CHECK(std::memcmp(yr.p, yv.p, sizeof(float) * (R * n + 1)) == 0);
          }
        }
      }
    }
  }
}

TEST_CASE("compare / where / bool to float: AVX2 runs against the element loop") {
  if (!have_avx2()) return;
  // contiguous and broadcast (stride 0) operands, odd lengths (the 8-lane body and the scalar
  // tail), NaN, +-0 and infinities; where and the conversion also at a streaming-store size
  for (int64_t n : {int64_t(1), int64_t(7), int64_t(8), int64_t(9), int64_t(31), int64_t(1000),
                    kStreamingStoreMinBytes / 4 + 5}) {
    auto va = randn(static_cast<size_t>(n), static_cast<uint32_t>(n));
    auto vb = randn(static_cast<size_t>(n), static_cast<uint32_t>(n) + 7);
    for (int64_t i = 0; i < n; i += 5) vb[i] = va[i];  // equal pairs
    va[0] = kNaN;
    if (n > 2) va[1] = 0.f, vb[1] = -0.f;
    if (n > 3) va[2] = kInf, vb[3] = -kInf;
    Unaligned a(va), b(vb);
    std::vector<uint8_t> cbytes(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) cbytes[i] = (i * 7 + i / 3) % 3 == 0;
    const bool* c = reinterpret_cast<const bool*>(cbytes.data());
    const int64_t len[1] = {n}, one[1] = {1}, zero[1] = {0};
    const bool small = n < 100000;
    const int64_t mid = (n - 1) / 2;  // the element a broadcast (stride 0) operand reads
    if (small) {
      for (CompareOp op : {CompareOp::Eq, CompareOp::Ne, CompareOp::Lt, CompareOp::Le,
                           CompareOp::Gt, CompareOp::Ge}) {
        for (int bst : {0, 1}) {
          for (int ast : {0, 1}) {
            CAPTURE(n);
            CAPTURE(static_cast<int>(op));
            CAPTURE(ast);
            CAPTURE(bst);
            std::vector<uint8_t> yr(static_cast<size_t>(n) + 1, 9),
                yv(static_cast<size_t>(n) + 1, 9);
            for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
              IsaGuard g(isa);
              compare<float>(op, 1, len, a.p + (ast ? 0 : mid), ast ? one : zero,
                             b.p + (bst ? 0 : mid), bst ? one : zero,
                             reinterpret_cast<bool*>(isa == Isa::Scalar ? yr.data() : yv.data()),
                             one);
            }
            CHECK(yr == yv);
          }
        }
      }
    }
    for (int cst : {0, 1}) {
      for (int bst : {0, 1}) {
        if (!small && (cst == 0 || bst == 0)) continue;
        CAPTURE(n);
        CAPTURE(cst);
        CAPTURE(bst);
        Unaligned yr(n, 4.f), yv(n, 4.f);
        for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
          IsaGuard g(isa);
          where<float>(1, len, c + (cst ? 0 : mid), cst ? one : zero, a.p, one,
                       b.p + (bst ? 0 : mid), bst ? one : zero, isa == Isa::Scalar ? yr.p : yv.p,
                       one);
        }
        CHECK(std::memcmp(yr.p, yv.p, sizeof(float) * (n + 1)) == 0);
      }
    }
    Unaligned fr(n, 4.f), fv(n, 4.f);
    for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
      IsaGuard g(isa);
      convert<bool, float>(1, len, c, one, isa == Isa::Scalar ? fr.p : fv.p, one);
    }
    CHECK(std::memcmp(fr.p, fv.p, sizeof(float) * (n + 1)) == 0);
  }
}

TEST_CASE("float copies of transposed, permuted, flipped and broadcast sources: bit for bit") {
  if (!have_avx2()) return;
  // convert<float, float> (contiguous(), clone, copy_into): the tiled path for transposed and
  // permuted sources, copy_f32 for contiguous and broadcast runs, the element loop otherwise;
  // AVX2 must equal the scalar loop bit for bit (NaN payloads, -0 and denormals included)
  struct Case {
    std::vector<int64_t> sizes, xs;
    int64_t extent;  // floats of source the strides span (from x)
    int64_t start;   // offset of element 0 (flipped sources start at the end)
  };
  const std::vector<Case> cases = {
      {{37, 300}, {1, 37}, 37 * 300, 0},                   // transposed
      {{4096, 16}, {1, 4096}, 4096 * 16, 0},               // transposed, 16 columns
      {{300, 8}, {1, 300}, 300 * 8, 0},                    // one vector a row
      {{9, 7}, {1, 9}, 63, 0},                             // rows shorter than a vector
      {{5, 6, 40}, {1, 5, 30}, 5 * 6 * 40, 0},             // permute(2, 0, 1) of (40, 5, 6)
      {{3, 70, 33}, {70 * 33, 1, 70}, 3 * 70 * 33, 0},     // per-matrix transpose of a batch
      {{50, 77}, {77, -1}, 50 * 77, 76},                   // last dim flipped
      {{64, 100}, {0, 1}, 100, 0},                         // a row broadcast down
      {{64, 100}, {1, 0}, 64, 0},                          // a column broadcast across
      {{2051, 4099}, {1, 2051}, int64_t(2051) * 4099, 0},  // streaming-size output, transposed
  };
  for (const auto& c : cases) {
    CAPTURE(c.sizes.size());
    CAPTURE(c.sizes.back());
    auto v = randn(static_cast<size_t>(c.extent), static_cast<uint32_t>(c.extent));
    v[0] = kNaN;
    v[c.extent / 2] = -0.f;
    v[c.extent - 1] = 1e-41f;  // denormal
    Unaligned x(v);
    int64_t n = 1;
    for (int64_t d : c.sizes) n *= d;
    std::vector<int64_t> ys(c.sizes.size());
    for (int64_t d = static_cast<int64_t>(ys.size()) - 1, st = 1; d >= 0; --d)
      ys[d] = st, st *= c.sizes[d];
    Unaligned yr(n, 5.f), yv(n, 5.f);
    for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
      IsaGuard g(isa);
      convert<float, float>(static_cast<int>(c.sizes.size()), c.sizes.data(), x.p + c.start,
                            c.xs.data(), isa == Isa::Scalar ? yr.p : yv.p, ys.data());
    }
    int64_t bad = -1;
    for (int64_t i = 0; i <= n && bad < 0; ++i)  // and the guard float after the end
      if (std::memcmp(yv.p + i, yr.p + i, sizeof(float)) != 0) bad = i;
    INFO("first difference at " << bad << " of " << n << ": " << (bad >= 0 ? yv.p[bad] : 0.f)
                                << " vs " << (bad >= 0 ? yr.p[bad] : 0.f));
    CHECK(bad < 0);
  }
}

namespace {
void reduce_case(ReduceOp op, std::vector<int64_t> kept, std::vector<int64_t> ks,
                 std::vector<int64_t> red, std::vector<int64_t> rs, size_t extent, uint32_t seed,
                 bool edges) {
  auto v = randn(extent, seed);
  if (edges) {
    v[extent / 3] = kNaN;
    v[extent / 2] = kInf;
    v[extent / 5] = -kInf;
  }
  Unaligned x(v);
  int64_t n_out = 1;
  for (auto k : kept) n_out *= k;
  std::vector<float> yr(n_out), yv(n_out);
  for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
    IsaGuard g(isa);
    reduce<float>(op, static_cast<int>(kept.size()), kept.data(), ks.data(),
                  static_cast<int>(red.size()), red.data(), rs.data(), x.p,
                  isa == Isa::Scalar ? yr.data() : yv.data());
  }
  // sums: the AVX2 path adds in float lanes folded into double every 1024 elements
  check_close(yv.data(), yr.data(), n_out, op == ReduceOp::Sum ? 1e-6 : 0,
              op == ReduceOp::Sum ? 1e-4 : 0, "reduce");
}
}  // namespace

TEST_CASE("reductions: rows, columns, transposed, tall-narrow and full reductions") {
  if (!have_avx2()) return;
  uint32_t seed = 100;
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min}) {
    CAPTURE(static_cast<int>(op));
    for (bool edges : {false, true}) {
      for (int64_t n : kSizes) {
        // full reduction of a contiguous run
        reduce_case(op, {}, {}, {n}, {1}, n, ++seed, edges && n > 7);
        // row reduction of (3, n) and column reduction of (n, 3) / (n, 37)
        reduce_case(op, {3}, {n}, {n}, {1}, 3 * n, ++seed, edges && n > 7);
        reduce_case(op, {3}, {1}, {n}, {3}, 3 * n, ++seed, edges && n > 7);
        reduce_case(op, {37}, {1}, {n}, {37}, 37 * n, ++seed, edges && n > 7);
        // a transposed (37, n) tensor reduced along its last dim is a column reduction
        reduce_case(op, {n}, {1}, {37}, {n}, 37 * n, ++seed, edges && n > 7);
        // 3-D: kept (2, n) contiguous, reduced middle dim
        reduce_case(op, {2, 33}, {33 * n, 1}, {n}, {33}, 2 * 33 * n, ++seed, edges && n > 7);
      }
      // long runs: the thread-split full reduction, tall-narrow columns, wide columns
      reduce_case(op, {}, {}, {300001}, {1}, 300001, ++seed, edges);
      reduce_case(op, {2}, {300001}, {300001}, {1}, 600002, ++seed, edges);
      reduce_case(op, {3}, {1}, {100003}, {3}, 300009, ++seed, edges);
      reduce_case(op, {1500}, {1}, {201}, {1500}, 1500 * 201, ++seed, edges);
    }
  }
}

TEST_CASE("column max / min sweep eight rows at a time: first NaN and first of equal zeros win") {
  // Column reductions of (rows, cols) sweep eight rows per pass with the running extreme in a
  // register. Columns crafted so that the order inside one pass decides the result: two NaNs
  // with different payloads (the first must win), -0 before +0 (max and min keep the first),
  // an infinity after a NaN (ignored), and the 4096-column block edge (4101 columns: two blocks,
  // the second with a 5-column scalar tail); 19 rows = two passes and three tail rows.
  if (!have_avx2()) return;
  auto bits = [](float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
  };
  auto from_bits = [](uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  };
  const int64_t rows = 19, cols = 4101;
  auto v = randn(static_cast<size_t>(rows * cols), 71);
  auto at = [&](int64_t r, int64_t c) -> float& { return v[static_cast<size_t>(r * cols + c)]; };
  for (int64_t c : {int64_t(3), int64_t(4095), int64_t(4100)}) {
    for (int64_t r = 0; r < rows; ++r) at(r, c) = -1.0f;
    at(2, c) = from_bits(0x7fc00001u);
    at(6, c) = from_bits(0x7fc00002u);
    at(7, c) = kInf;
  }
  for (int64_t c : {int64_t(5), int64_t(4097)}) {
    for (int64_t r = 0; r < rows; ++r) at(r, c) = -2.0f;
    at(9, c) = -0.0f;
    at(11, c) = 0.0f;
  }
  Unaligned x(v);
  const int64_t kept[] = {cols}, ks[] = {1}, red[] = {rows}, rs[] = {cols};
  for (ReduceOp op : {ReduceOp::Max, ReduceOp::Min}) {
    std::vector<float> yr(cols), yv(cols);
    for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
      IsaGuard g(isa);
      reduce<float>(op, 1, kept, ks, 1, red, rs, x.p, isa == Isa::Scalar ? yr.data() : yv.data());
    }
    int bad = 0;
    for (int64_t c = 0; c < cols; ++c)
      if (bits(yr[c]) != bits(yv[c]) && bad++ < 5)
        FAIL_CHECK("column " << c << ": " << yv[c] << " want " << yr[c]);
    CHECK(bad == 0);
    CHECK(bits(yv[4095]) == 0x7fc00001u);
    if (op == ReduceOp::Max) CHECK(std::signbit(yv[5]));
  }
}

TEST_CASE("reductions over short rows: eight rows at a time, NaN and inf rows, kept layouts") {
  if (!have_avx2()) return;
  // rows of n <= 64 floats reduced along the row go through 8 x 8 transposes (reduce.cpp:
  // short_row_reduce_f32) when the kept index space is whole consecutive rows; other kept
  // layouts (every other row) take the row loop. Both against the scalar reference.
  for (int64_t n = 1; n <= 65; ++n) {
    for (int64_t rows : {int64_t(8), int64_t(141)}) {
      auto v = randn(static_cast<size_t>(2 * rows * n), static_cast<uint32_t>(rows * 100 + n));
      v[3 * n + n / 2] = kNaN;                             // a NaN row
      v[9 * n] = kInf;                                     // a +inf row
      v[10 * n + n - 1] = -kInf;                           // a -inf row
      if (n > 1) v[11 * n] = kInf, v[11 * n + 1] = -kInf;  // inf - inf: a NaN sum
      Unaligned x(v);
      for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min}) {
        // kept (rows) at stride n; kept (rows / 3, 3) at strides (3 n, n), the same rows; and
        // kept (rows) at stride 2 n (not consecutive)
        struct Kept {
          std::vector<int64_t> sizes, strides;
        };
        const std::vector<Kept> layouts = {
            {{rows}, {n}}, {{rows / 3, 3}, {3 * n, n}}, {{rows}, {2 * n}}};
        for (const auto& k : layouts) {
          CAPTURE(n);
          CAPTURE(rows);
          CAPTURE(static_cast<int>(op));
          CAPTURE(k.strides.back());
          int64_t n_out = 1;
          for (int64_t d : k.sizes) n_out *= d;
          std::vector<float> yr(n_out + 1, 7.f), yv(n_out + 1, 7.f);
          const int64_t red_sizes[1] = {n}, red_strides[1] = {1};
          for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
            IsaGuard g(isa);
            reduce<float>(op, static_cast<int>(k.sizes.size()), k.sizes.data(), k.strides.data(), 1,
                          red_sizes, red_strides, x.p, isa == Isa::Scalar ? yr.data() : yv.data());
          }
          check_close(yv.data(), yr.data(), n_out + 1, op == ReduceOp::Sum ? 1e-6 : 0,
                      op == ReduceOp::Sum ? 2e-5 : 0, "short-row reduce");
        }
      }
    }
  }
}

namespace {
// argmax / argmin of `rows` rows of n floats, `stride` apart, by the element loop and by the
// vector path: they must agree (the vector path's answer is returned)
std::vector<int64_t> argreduce_both(bool is_max, const float* x, int64_t rows, int64_t stride,
                                    int64_t n) {
  const int64_t kept[1] = {rows}, ks[1] = {stride};
  std::vector<int64_t> yr(rows + 1, -7), yv(rows + 1, -7);
  both([&](bool vec) {
    argreduce<float>(is_max, 1, kept, ks, n, 1, x, vec ? yv.data() : yr.data());
  });
  CHECK(yr == yv);
  return yv;
}
}  // namespace

TEST_CASE("argmax / argmin over short rows: first of ties, first NaN, kept layouts") {
  if (!have_avx2()) return;
  // consecutive rows of n <= 64 go eight at a time through 8 x 8 transposes (reduce.cpp
  // argreduce); every other row takes the element loop. Values are small integers (ties
  // everywhere), with NaN rows (two NaN: the first wins), +-inf and a row of all -inf.
  for (int64_t n = 1; n <= 65; ++n) {
    for (int64_t rows : {int64_t(8), int64_t(141)}) {
      std::vector<float> v(static_cast<size_t>(2 * rows * n));
      for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 7919 + i / 5) % 4);
      v[3 * n + n / 2] = kNaN;
      v[3 * n + n - 1] = kNaN;
      v[9 * n + n / 3] = kInf;
      v[10 * n + n - 1] = -kInf;
      for (int64_t i = 0; i < n; ++i) v[11 * n + i] = -kInf;
      Unaligned x(v);
      for (bool is_max : {true, false}) {
        for (int64_t stride : {n, 2 * n}) {
          CAPTURE(n);
          CAPTURE(rows);
          CAPTURE(is_max);
          CAPTURE(stride);
          argreduce_both(is_max, x.p, rows, stride, n);
        }
      }
    }
  }
}

TEST_CASE("argmax / argmin over long rows: first of ties, first NaN, signed zeros") {
  if (!have_avx2()) return;
  // rows of n > 64 (and strided rows of any n >= 8) take the vector scan (reduce_avx2.cpp
  // argmaxmin_f32): the extreme, then its first lane, in 32-, 8- and 1-wide steps
  for (int64_t n : {8, 9, 31, 32, 33, 65, 100, 1000, 4099}) {
    const int64_t rows = 12;
    std::vector<float> v(static_cast<size_t>(rows * n));
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 7919 + i / 3) % 5);
    auto row = [&](int64_t r) { return v.data() + r * n; };
    row(1)[n - 1] = 9.f;   // the max in the last lane (the scalar tail)
    row(2)[n / 2] = kNaN;  // two NaN: the first wins
    row(2)[n - 1] = kNaN;
    row(3)[n - 1] = kNaN;                             // a NaN past every vector step
    for (int64_t i = 0; i < n; ++i) row(4)[i] = 0.f;  // -0 and +0 tie: the first of them
    row(4)[n / 3] = -0.f;
    for (int64_t i = 0; i < n; ++i) row(5)[i] = -kInf;
    row(6)[0] = kInf, row(6)[n - 1] = kInf;           // ties at both ends
    for (int64_t i = 0; i < n; ++i) row(7)[i] = 1.f;  // all equal
    row(8)[n - 2] = -9.f;                             // the min near the end
    Unaligned x(v);
    for (bool is_max : {true, false}) {
      CAPTURE(n);
      CAPTURE(is_max);
      const std::vector<int64_t> yv = argreduce_both(is_max, x.p, rows, n, n);
      if (is_max) CHECK(yv[1] == n - 1);
      CHECK(yv[2] == n / 2);
    }
  }
}

TEST_CASE("argmax / argmin down columns: first of ties, first NaN, signed zeros") {
  if (!have_avx2()) return;
  // a strided reduced dim under a contiguous kept last dim of >= 8 (reduce_avx2.cpp
  // col_argmaxmin_f32): the edge columns of the long-row case above, laid out down the columns,
  // with (outer, n, inner) blocks that end inside a vector and past a 1024-column block
  for (int64_t n : {2, 9, 33, 1000}) {
    for (int64_t inner : {8, 13, 1030}) {
      const int64_t outer = 2;
      std::vector<float> v(static_cast<size_t>(outer * n * inner));
      for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 7919 + i / 3) % 5);
      auto at = [&](int64_t o, int64_t r, int64_t j) -> float& {
        return v[static_cast<size_t>((o * n + r) * inner + j)];
      };
      for (int64_t o = 0; o < outer; ++o) {
        at(o, n - 1, 1) = 9.f;   // the max in the last row
        at(o, n / 2, 2) = kNaN;  // two NaN: the first wins
        at(o, n - 1, 2) = kNaN;
        at(o, n - 1, 3) = kNaN;
        for (int64_t r = 0; r < n; ++r) at(o, r, 4) = 0.f;  // -0 and +0 tie
        at(o, n / 3, 4) = -0.f;
        for (int64_t r = 0; r < n; ++r) at(o, r, 5) = -kInf;
        at(o, 0, 6) = kInf, at(o, n - 1, 6) = kInf;
        for (int64_t r = 0; r < n; ++r) at(o, r, 7) = 1.f;
        at(o, n - 1, inner - 1) = -9.f;  // the min in the last column and row
      }
      const int64_t kept[2] = {outer, inner}, ks[2] = {n * inner, 1};
      for (bool is_max : {true, false}) {
        CAPTURE(n);
        CAPTURE(inner);
        CAPTURE(is_max);
        std::vector<int64_t> yr(outer * inner + 1, -7), yv(outer * inner + 1, -7);
        both([&](bool vec) {
          argreduce<float>(is_max, 2, kept, ks, n, inner, v.data(), vec ? yv.data() : yr.data());
        });
        CHECK(yr == yv);
        if (is_max) CHECK(yv[1] == n - 1);
        CHECK(yv[2] == n / 2);
        if (!is_max) CHECK(yv[inner + inner - 1] == n - 1);
      }
    }
  }
}

TEST_CASE("scalar reference: a softmax row of NaN and -inf is NaN, not zeros") {
  IsaGuard g(Isa::Scalar);
  float x[2] = {kNaN, -kInf}, y[2];
  softmax_rows<float>(x, y, 1, 2, false);
  CHECK(std::isnan(y[0]));
  CHECK(std::isnan(y[1]));
  softmax_rows<float>(x, y, 1, 2, true);
  CHECK(std::isnan(y[1]));
}

TEST_CASE("softmax / log_softmax forward and backward: AVX2 vs scalar, edge rows") {
  if (!have_avx2()) return;
  // 20011: the chunked (softmax) and online (log_softmax) long-row paths; 40000: three chunks
  const int64_t ns[] = {1, 7, 33, 1000, 4099, 20011, 40000};
  for (int64_t n : ns) {
    const int64_t rows = 9;
    auto v = randn(rows * n, n, 4.f);
    // row 1: all -inf; row 2: some -inf; row 3: a NaN; row 4: +inf; row 5: huge; row 6: tiny
    for (int64_t i = 0; i < n; ++i) v[1 * n + i] = -kInf;
    for (int64_t i = 0; i < n; i += 2) v[2 * n + i] = -kInf;
    v[3 * n + n / 2] = kNaN;
    v[4 * n + n / 3] = kInf;
    for (int64_t i = 0; i < n; ++i) v[5 * n + i] *= 1e30f;
    for (int64_t i = 0; i < n; ++i) v[6 * n + i] *= 1e-30f;
    for (int64_t i = 0; i < n; ++i) v[7 * n + i] = 80.f + v[7 * n + i];  // exp would overflow
    // row 8: the first 16384 entries -inf (for n = 20011, a whole chunk of the long-row path)
    for (int64_t i = 0; i < std::min<int64_t>(n - 1, 16384); ++i) v[8 * n + i] = -kInf;
    Unaligned x(v), dy(randn(rows * n, n + 1));
    for (bool log : {false, true}) {
      CAPTURE(log);
      CAPTURE(n);
      Unaligned yr(rows * n), yv(rows * n), dr(rows * n), dv(rows * n);
      both([&](bool vec) { softmax_rows<float>(x.p, vec ? yv.p : yr.p, rows, n, log); });
      check_close(yv.p, yr.p, rows * n, log ? 1e-6 : 2e-6, log ? 1e-5 : 1e-12, "softmax fwd");
      // backward from the reference output (skip rows with NaN/inf: both give NaN there)
      both([&](bool vec) {
        softmax_rows_backward<float>(yr.p, dy.p, vec ? dv.p : dr.p, rows, n, log);
      });
      for (int64_t r : {0, 2, 5, 6, 7, 8})
        check_close(dv.p + r * n, dr.p + r * n, n, 2e-5,
                    2e-6 * std::sqrt(double(n)) * (log ? 1 : 0.01), "softmax bwd");
      CHECK(yv.p[rows * n] == 0.f);
      CHECK(dv.p[rows * n] == 0.f);
    }
  }
}

namespace {
// layernorm_rows and layernorm_rows_backward over rows x n, AVX2 against scalar (outputs, mean,
// rstd, dx, and with affine dw / db, whose AVX2 side starts at `stale` to show it is overwritten).
void check_layernorm(const Unaligned& x, const Unaligned& w, const Unaligned& b,
                     const Unaligned& dy, int64_t rows, int64_t n, bool affine, float stale) {
  Unaligned yr(rows * n), yv(rows * n), dxr(rows * n), dxv(rows * n);
  std::vector<float> mr(rows), mv(rows), sr(rows), sv(rows), dwr(n), dwv(n, stale), dbr(n),
      dbv(n, stale);
  const float* wp = affine ? w.p : nullptr;
  const float* bp = affine ? b.p : nullptr;
  both([&](bool vec) {
    layernorm_rows<float>(x.p, wp, bp, vec ? yv.p : yr.p, vec ? mv.data() : mr.data(),
                          vec ? sv.data() : sr.data(), rows, n, 1e-5);
  });
  check_close(yv.p, yr.p, rows * n, 2e-5, 2e-5, "layernorm fwd");
  check_close(mv.data(), mr.data(), rows, 1e-6, 1e-6, "mean");
  check_close(sv.data(), sr.data(), rows, 1e-5, 0, "rstd");
  both([&](bool vec) {
    layernorm_rows_backward<float>(dy.p, x.p, mr.data(), sr.data(), wp, vec ? dxv.p : dxr.p,
                                   affine ? (vec ? dwv.data() : dwr.data()) : nullptr,
                                   affine ? (vec ? dbv.data() : dbr.data()) : nullptr, rows, n);
  });
  check_close(dxv.p, dxr.p, rows * n, 1e-4, 1e-4, "layernorm dx");
  if (affine) {
    check_close(dwv.data(), dwr.data(), n, 1e-4, 1e-4, "layernorm dw");
    check_close(dbv.data(), dbr.data(), n, 1e-6, 1e-5, "layernorm db");
  }
}
}  // namespace

TEST_CASE("layernorm forward and backward: AVX2 vs scalar, with and without affine") {
  if (!have_avx2()) return;
  for (int64_t n : kSizes) {
    for (int64_t rows : {1, 5, 70}) {
      auto v = randn(rows * n, rows + n, 2.f);
      for (int64_t i = 0; i < n; ++i) v[i] += 1000.f;  // a large mean
      Unaligned x(v), w(randn(n, 3)), b(randn(n, 4)), dy(randn(rows * n, 5));
      for (bool affine : {false, true}) {
        CAPTURE(n);
        CAPTURE(rows);
        CAPTURE(affine);
        check_layernorm(x, w, b, dy, rows, n, affine, 0.f);
      }
    }
  }
}

TEST_CASE("layernorm rows split between threads: AVX2 vs scalar, forward and backward") {
  if (!have_avx2()) return;
  // rows of >= 2^17 floats (kernels/cpu/split_rows.h): fewer than two a thread split forward
  // and backward, any number backward. Part moments combined across threads (a large mean on
  // the first row, a shifted second half on another), part sums of the backward, dw / db owned
  // by columns and accumulated over the rows
  const int saved = omp_get_max_threads();
  for (int threads : {2, 3, 4}) {
    omp_set_num_threads(threads);
    for (int64_t n : {int64_t{1} << 17, (int64_t{3} << 16) + 5}) {
      for (int64_t rows : {1, 3, 9}) {  // 9: whole rows forward, split backward
        CAPTURE(threads);
        CAPTURE(n);
        CAPTURE(rows);
        auto v = randn(rows * n, static_cast<uint32_t>(rows + n + threads), 2.f);
        for (int64_t i = 0; i < n; ++i) v[i] += 1000.f;
        if (rows > 1)
          for (int64_t i = n / 2; i < n; ++i) v[n + i] = v[n + i] * 0.01f + 50.f;
        Unaligned x(v), w(randn(n, 3)), b(randn(n, 4)), dy(randn(rows * n, 5));
        for (bool affine : {false, true}) {
          CAPTURE(affine);
          check_layernorm(x, w, b, dy, rows, n, affine, 7.f);  // the split path overwrites dw / db
        }
      }
    }
  }
  omp_set_num_threads(saved);
}

TEST_CASE("var down the columns: AVX2 and scalar against a double two-pass reference") {
  // (outer, n, inner) with the variance over n: narrow and wide blocks, inner not a multiple of
  // 8, one row (divisor 0 with correction 1), large means, an outlying first entry, a NaN and an
  // inf column
  struct Shape {
    int64_t outer, n, inner;
  } shapes[] = {{1, 4096, 1000}, {3, 37, 517}, {2, 1, 70}, {1, 300, 2049}, {5, 9, 64}};
  for (auto [outer, n, inner] : shapes) {
    for (int64_t corr : {0, 1}) {
      CAPTURE(outer);
      CAPTURE(n);
      CAPTURE(inner);
      CAPTURE(corr);
      auto v = randn(outer * n * inner, static_cast<uint32_t>(n + inner), 3.f);
      for (int64_t r = 0; r < n; ++r) {
        v[r * inner + 1] += 5000.f;  // column 1: a large mean
        // column 4: a mean 10^12 times its spread, which cancels every digit of unshifted
        // float moments and most of unshifted double ones (the single sweep shifts by the
        // column's first entry)
        v[r * inner + 4] = 1e12f + 65536.f * static_cast<float>(r % 7);
      }
      v[5] = 1e6f;  // column 5: a first entry far from the rest
      v[(n - 1) * inner + 2] = std::numeric_limits<float>::quiet_NaN();
      v[3] = std::numeric_limits<float>::infinity();
      std::vector<double> want(outer * inner);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < inner; ++j) {
          double s = 0, m2 = 0;
          for (int64_t r = 0; r < n; ++r) s += v[(o * n + r) * inner + j];
          const double mean = s / n;
          for (int64_t r = 0; r < n; ++r) {
            const double d = v[(o * n + r) * inner + j] - mean;
            m2 += d * d;
          }
          const double div = static_cast<double>(std::max<int64_t>(n - corr, 0));
          want[o * inner + j] = std::isfinite(mean) ? m2 / div : std::nan("");
        }
      std::vector<float> got(outer * inner);
      for (bool vec : {false, true}) {
        if (vec && !have_avx2()) continue;
        CAPTURE(vec);
        IsaGuard g(vec ? Isa::Avx2 : Isa::Scalar);
        var_cols<float>(v.data(), got.data(), outer, n, inner, corr);
        int64_t bad = -1;
        for (int64_t i = 0; i < outer * inner && bad < 0; ++i) {
          const double w = want[i], x = got[i];
          const bool ok =
              std::isnan(w)
                  ? std::isnan(x)
                  : (std::isinf(w) ? x == w : std::fabs(x - w) <= 1e-5 * std::fabs(w) + 1e-6);
          if (!ok) bad = i;
        }
        INFO("first mismatch at " << bad << ": got " << (bad >= 0 ? got[bad] : 0.f) << " want "
                                  << (bad >= 0 ? want[bad] : 0.0));
        CHECK(bad < 0);
      }
    }
  }
}

TEST_CASE("cross-entropy forward and backward: AVX2 vs scalar, smoothing, ignore_index") {
  if (!have_avx2()) return;
  // 70001: past kCachedLogits, the online single-read path
  for (int64_t C : {1, 7, 33, 1000, 4099, 20011, 70001}) {
    const int64_t rows = 6;
    auto v = randn(rows * C, C, 3.f);
    for (int64_t i = 0; i < C; i += 3) v[2 * C + i] = -kInf;  // some -inf logits
    for (int64_t i = 0; i < C; ++i) v[3 * C + i] += 70.f;     // large logits
    if (C > 1) v[4 * C + 1] = kNaN;
    Unaligned x(v), g(randn(rows, 9));
    std::vector<int64_t> t(rows);
    for (int64_t r = 0; r < rows; ++r) t[r] = (r * 7919 + 1) % C;
    t[2] = C > 3 ? 1 : 0;  // a finite target in the row with -inf entries
    t[5] = -100;           // ignored
    for (double eps : {0.0, 0.1}) {
      CAPTURE(C);
      CAPTURE(eps);
      std::vector<float> lr(rows), lv(rows), er(rows), ev(rows);
      both([&](bool vec) {
        cross_entropy_rows<float>(x.p, t.data(), vec ? lv.data() : lr.data(),
                                  vec ? ev.data() : er.data(), rows, C, -100, eps);
      });
      // eps > 0 with a -inf logit makes the smoothed loss inf: both agree on that too
      check_close(lv.data(), lr.data(), rows, 1e-5, 1e-5, "ce loss");
      check_close(ev.data(), er.data(), rows, 1e-6, 1e-6, "ce lse");
      Unaligned dr(rows * C), dv(rows * C);
      both([&](bool vec) {
        cross_entropy_rows_backward<float>(x.p, t.data(), er.data(), g.p, vec ? dv.p : dr.p, rows,
                                           C, -100, eps);
      });
      check_close(dv.p, dr.p, rows * C, 1e-5, 1e-7, "ce dlogits");
      CHECK(dv.p[rows * C] == 0.f);
    }
  }
}

TEST_CASE("sum_squares: AVX2 and scalar against long double, any thread count gives one result") {
  for (int64_t n :
       {int64_t{0}, int64_t{1}, int64_t{15}, int64_t{16}, int64_t{17}, kSumSquaresBlock - 1,
        kSumSquaresBlock, kSumSquaresBlock + 1, 3 * kSumSquaresBlock + 12345}) {
    CAPTURE(n);
    auto v = randn(n, 90 + n, 3.f);
    if (n > 5) v[5] = 1e4f, v[n - 1] = 3e-30f;  // a large and a tiny square
    long double want = 0;
    for (float e : v) want += static_cast<long double>(e) * e;
    std::vector<double> vd(v.begin(), v.end());
    both([&](bool) {
      double got1, got2;
      {
        omp_set_num_threads(1);
        got1 = sum_squares(v.data(), n);
        omp_set_num_threads(2);
        got2 = sum_squares(v.data(), n);
      }
      CHECK(got1 == got2);  // fixed blocks: the same sum for any thread count
      // double sums in different orders: ~n 2^-53 apart at worst
      CHECK(static_cast<double>(want) == doctest::Approx(got1).epsilon(1e-12));
      CHECK(static_cast<double>(want) == doctest::Approx(sum_squares(vd.data(), n)).epsilon(1e-12));
    });
  }
  // squares beyond float's range (a float product would be inf); 20 values: body and tail
  std::vector<float> big(20, 1e20f);
  const double b = big[0];
  both([&](bool) {
    CHECK(sum_squares(big.data(), 20) == doctest::Approx(20 * b * b).epsilon(1e-14));
  });
}

TEST_CASE("full reductions of float64 / int32 / int64 split between threads equal one thread's") {
  // one output, one long contiguous run: each thread reduces a chunk, the chunks are combined
  const int64_t n = 300001;
  std::mt19937 gen(5);
  std::vector<int64_t> l(n);
  std::vector<int32_t> i32(n);
  std::vector<double> d(n);
  for (int64_t i = 0; i < n; ++i) {
    l[i] = static_cast<int64_t>(gen() % 2000001) - 1000000;
    i32[i] = static_cast<int32_t>(gen() % 7) - 3 + (i % 3 == 0 ? 1 : 0);
    d[i] = static_cast<double>(static_cast<int32_t>(gen() % 2001) - 1000) / 7.0;
  }
  l[n - 1] = 5000000;   // the max in the last chunk
  l[0] = -5000000;      // the min in the first
  d[n / 2 + 17] = 1e6;  // past the middle: the second thread's chunk
  const int64_t one = 1;
  auto run = [&](auto* x, ReduceOp op, int threads) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(x)>>;
    T y{};
    omp_set_num_threads(threads);
    reduce<T>(op, 0, nullptr, nullptr, 1, &n, &one, x, &y);
    omp_set_num_threads(2);
    return y;
  };
  long double dsum = 0;
  int64_t lsum = 0;
  uint32_t iprod = 1;
  for (int64_t i = 0; i < n; ++i)
    dsum += d[i], lsum += l[i], iprod *= static_cast<uint32_t>(i32[i]);
  CHECK(run(l.data(), ReduceOp::Sum, 2) == lsum);
  CHECK(run(l.data(), ReduceOp::Max, 2) == 5000000);
  CHECK(run(l.data(), ReduceOp::Min, 2) == -5000000);
  CHECK(run(i32.data(), ReduceOp::Prod, 2) == run(i32.data(), ReduceOp::Prod, 1));
  CHECK(static_cast<uint32_t>(run(i32.data(), ReduceOp::Prod, 2)) == iprod);  // wraps alike
  CHECK(run(i32.data(), ReduceOp::Sum, 2) == run(i32.data(), ReduceOp::Sum, 1));
  CHECK(run(d.data(), ReduceOp::Sum, 2) ==
        doctest::Approx(static_cast<double>(dsum)).epsilon(1e-13));
  CHECK(run(d.data(), ReduceOp::Max, 2) == 1e6);
  d[n - 5] = std::numeric_limits<double>::quiet_NaN();  // NaN in the last chunk wins
  CHECK(std::isnan(run(d.data(), ReduceOp::Max, 2)));
  CHECK(std::isnan(run(d.data(), ReduceOp::Min, 2)));
}
