// Elementwise ops against double-precision loops: every unary op on odd sizes, transposed,
// stepped and expanded inputs and NaN/inf edge values; binary ops and comparisons with
// broadcasting, dtype promotion and non-contiguous operands; where, masked_fill, clamp.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "core_test_util.h"

using namespace smyrf;
using namespace smyrf::test;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// An input in several layouts, each with its logical (row-major) values as the op sees them.
struct Case {
  std::string name;
  Tensor t;
  std::vector<double> v;
};

// Contiguous 1 / 7 / 33 element vectors, a transposed matrix, a stepped slice, an expanded row.
std::vector<Case> layouts(const std::vector<double>& pool, DType dt) {
  std::vector<double> p = as_stored(pool, dt);
  auto take = [&](size_t n) {
    return std::vector<double>(p.begin(), p.begin() + static_cast<long>(n));
  };
  std::vector<Case> cs;
  for (size_t n : {1, 7, 33})
    cs.push_back({"contiguous " + std::to_string(n), make(take(n), {(int64_t)n}, dt), take(n)});
  {
    std::vector<double> b = take(5 * 11);
    Tensor base = make(b, {5, 11}, dt);
    cs.push_back({"transposed", base.t(), read_view(b, base.t())});
    Tensor s = base.slice(1, 1, 11, 3).slice(0, 0, 5, 2);
    cs.push_back({"stepped", s, read_view(b, s)});
  }
  {
    std::vector<double> b = take(9);
    Tensor base = make(b, {1, 9}, dt);
    Tensor e = base.expand({4, 9});
    cs.push_back({"expanded", e, read_view(b, e)});
  }
  return cs;
}

// Finite values plus edge values, long enough for every layout.
std::vector<double> pool_with_edges(uint32_t seed, double lo, double hi) {
  std::vector<double> v = uniform_values(64, seed, lo, hi);
  const double edges[] = {0.0, -0.0, kInf, -kInf, kNaN,  1e-30, -1e-30,
                          1.0, -1.0, 30.0, -30.0, 100.0, -100.0};
  for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); ++i) v[3 + i * 4] = edges[i];
  return v;
}

double ref_gelu(double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  bool nan_ok = true;  // whether NaN inputs are part of the contract being tested
};

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); }},
      {"log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); }},
      {"log1p", [](const Tensor& x) { return log1p(x); }, [](double x) { return std::log1p(x); }},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); },
       [](double x) { return 1.0 / std::sqrt(x); }},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double x) { return std::fabs(x); }},
      // sign and relu map NaN to 0 in this framework (PyTorch keeps NaN): not asserted here
      {"sign", [](const Tensor& x) { return sign(x); },
       [](double x) { return double((x > 0) - (x < 0)); }, false},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); },
       [](double x) { return 1.0 / (1.0 + std::exp(-x)); }},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0.0; },
       false},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2); },
       [](double x) { return x > 0 ? x : 0.2 * x; }, false},
      {"gelu", [](const Tensor& x) { return gelu(x); }, ref_gelu},
      {"silu", [](const Tensor& x) { return silu(x); },
       [](double x) { return x / (1.0 + std::exp(-x)); }},
      {"pow 3", [](const Tensor& x) { return pow(x, 3.0); },
       [](double x) { return std::pow(x, 3.0); }},
      {"pow 0.5", [](const Tensor& x) { return pow(x, 0.5); },
       [](double x) { return std::pow(x, 0.5); }},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.75); },
       [](double x) { return x < -0.5 ? -0.5 : (x > 0.75 ? 0.75 : x); }},
      {"add scalar", [](const Tensor& x) { return x + 1.5; }, [](double x) { return x + 1.5; }},
      {"mul scalar", [](const Tensor& x) { return x * -3.0; }, [](double x) { return x * -3.0; }},
      {"div scalar", [](const Tensor& x) { return x / 4.0; }, [](double x) { return x / 4.0; }},
      {"scalar minus", [](const Tensor& x) { return 2.0 - x; }, [](double x) { return 2.0 - x; }},
  };
}

void check_unary(const UnaryCase& uc, DType dt, const std::vector<double>& pool) {
  for (const Case& c : layouts(pool, dt)) {
    CAPTURE(uc.name);
    CAPTURE(dtype_name(dt));
    CAPTURE(c.name);
    std::vector<double> want(c.v.size());
    std::vector<double> in = c.v;
    for (size_t i = 0; i < in.size(); ++i) {
      if (!uc.nan_ok && std::isnan(in[i])) continue;
      want[i] = uc.ref(in[i]);
      if (dt == kFloat32) want[i] = static_cast<float>(want[i]);
    }
    Tensor y = uc.op(c.t);
    CHECK(y.dtype() == dt);
    std::vector<double> got = y.to_vector<double>();
    REQUIRE(got.size() == want.size());
    CHECK(y.shape() == c.t.shape());
    const double rtol = dt == kFloat32 ? 2e-6 : 1e-13, atol = dt == kFloat32 ? 1e-7 : 1e-15;
    int bad = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      if (!uc.nan_ok && std::isnan(in[i])) continue;
      if (!same_value(got[i], want[i], rtol, atol) && ++bad <= 3)
        FAIL_CHECK(uc.name << "(" << in[i] << ") = " << got[i] << ", want " << want[i]);
    }
  }
}

template <typename Op, typename Ref>
void check_binary(Op op, Ref ref, const Tensor& a, const std::vector<double>& av, const Tensor& b,
                  const std::vector<double>& bv, DType out_dt, double rtol = 1e-6,
                  double atol = 1e-7) {
  Shape s = bcast_shape(a.shape(), b.shape());
  std::vector<double> want(static_cast<size_t>(shape_numel(s)));
  for (size_t i = 0; i < want.size(); ++i) {
    auto idx = unravel(static_cast<int64_t>(i), s);
    want[i] = ref(av[bcast_pos(idx, a.shape())], bv[bcast_pos(idx, b.shape())]);
  }
  want = as_stored(want, out_dt);
  Tensor y = op(a, b);
  CHECK(y.dtype() == out_dt);
  check_values(y, s, want, rtol, atol);
}
}  // namespace

TEST_CASE("unary ops against double references, float32 and float64, all layouts and edge values") {
  for (const UnaryCase& uc : unary_cases()) {
    check_unary(uc, kFloat32, pool_with_edges(1, -3, 3));
    check_unary(uc, kFloat64, pool_with_edges(2, -3, 3));
  }
}

TEST_CASE("unary ops on integer and bool tensors") {
  std::vector<double> v{-3, -1, 0, 2, 5, 7, -9};
  for (DType dt : {kInt32, kInt64}) {
    CAPTURE(dtype_name(dt));
    Tensor x = make(v, {7}, dt);
    // closed over integers: the dtype stays
    CHECK(neg(x).dtype() == dt);
    check_values(neg(x), {7}, {3, 1, 0, -2, -5, -7, 9}, 0, 0);
    check_values(abs(x), {7}, {3, 1, 0, 2, 5, 7, 9}, 0, 0);
    check_values(sign(x), {7}, {-1, -1, 0, 1, 1, 1, -1}, 0, 0);
    check_values(relu(x), {7}, {0, 0, 0, 2, 5, 7, 0}, 0, 0);
    check_values(clamp(x, -2, 4), {7}, {-2, -1, 0, 2, 4, 4, -2}, 0, 0);
    CHECK(clamp(x, -2, 4).dtype() == dt);
    // transcendental ops produce float32
    Tensor e = exp(x);
    CHECK(e.dtype() == kFloat32);
    std::vector<double> want;
    for (double d : v) want.push_back(static_cast<float>(std::exp(d)));
    check_values(e, {7}, want, 2e-6, 0);
    CHECK(sqrt(x).dtype() == kFloat32);
  }
  Tensor b = from_vector(std::vector<bool>{true, false}, {2});
  CHECK(exp(b).dtype() == kFloat32);
  check_values(exp(b), {2}, {std::exp(1.0f), 1.0}, 1e-6, 0);
}

TEST_CASE("binary ops broadcast over odd shapes") {
  const Shape shapes[][2] = {{{7, 1, 33}, {5, 1}}, {{1}, {33}},      {{}, {7}},
                             {{7, 33}, {7, 33}},   {{1, 7}, {7, 1}}, {{2, 3, 1}, {1, 1, 5}}};
  for (DType dt : {kFloat32, kFloat64}) {
    for (const auto& sp : shapes) {
      CAPTURE(dtype_name(dt));
      CAPTURE(shape_str(sp[0]));
      CAPTURE(shape_str(sp[1]));
      auto av = as_stored(uniform_values(shape_numel(sp[0]), 10, -2, 2), dt);
      auto bv = as_stored(uniform_values(shape_numel(sp[1]), 11, 0.5, 2), dt);
      Tensor a = make(av, sp[0], dt), b = make(bv, sp[1], dt);
      const double rt = dt == kFloat32 ? 1e-6 : 1e-14;
      check_binary([](const Tensor& x, const Tensor& y) { return x + y; },
                   [](double x, double y) { return x + y; }, a, av, b, bv, dt, rt, 0);
      check_binary([](const Tensor& x, const Tensor& y) { return x - y; },
                   [](double x, double y) { return x - y; }, a, av, b, bv, dt, rt, 0);
      check_binary([](const Tensor& x, const Tensor& y) { return x * y; },
                   [](double x, double y) { return x * y; }, a, av, b, bv, dt, rt, 0);
      check_binary([](const Tensor& x, const Tensor& y) { return x / y; },
                   [](double x, double y) { return x / y; }, a, av, b, bv, dt, rt, 0);
      check_binary([](const Tensor& x, const Tensor& y) { return pow(y, x); },
                   [](double x, double y) { return std::pow(y, x); }, a, av, b, bv, dt, rt * 4, 0);
      check_binary([](const Tensor& x, const Tensor& y) { return maximum(x, y); },
                   [](double x, double y) { return std::max(x, y); }, a, av, b, bv, dt, 0, 0);
      check_binary([](const Tensor& x, const Tensor& y) { return minimum(x, y); },
                   [](double x, double y) { return std::min(x, y); }, a, av, b, bv, dt, 0, 0);
    }
  }
}

TEST_CASE("binary ops on non-contiguous operands") {
  for (DType dt : {kFloat32, kFloat64, kInt64}) {
    CAPTURE(dtype_name(dt));
    auto base = as_stored(int_values(9 * 33, 3), dt);
    Tensor B = make(base, {9, 33}, dt);
    auto other = as_stored(int_values(33 * 9, 4, 1, 9), dt);
    Tensor O = make(other, {33, 9}, dt);
    // transposed against contiguous, stepped against transposed, expanded against stepped
    Tensor t = B.t();                                   // (33, 9)
    Tensor s = O.slice(0, 0, 33, 3).slice(1, 0, 9, 1);  // (11, 9)
    Tensor st = B.slice(1, 0, 33, 3).t();               // (11, 9), strided both ways
    Tensor e = make(as_stored({2, 3, 4, 5, 6, 7, 8, 9, 1}, dt), {1, 9}, dt).expand({11, 9});
    auto tv = read_view(base, t), sv = read_view(other, s), stv = read_view(base, st);
    auto ev = read_view(as_stored({2, 3, 4, 5, 6, 7, 8, 9, 1}, dt), e);
    auto addf = [](const Tensor& x, const Tensor& y) { return x + y; };
    auto mulf = [](const Tensor& x, const Tensor& y) { return x * y; };
    auto subf = [](const Tensor& x, const Tensor& y) { return x - y; };
    check_binary(
        addf, [](double x, double y) { return x + y; }, t, tv, O, other, dt, 0, 0);
    check_binary(
        mulf, [](double x, double y) { return x * y; }, s, sv, st, stv, dt, 0, 0);
    check_binary(
        subf, [](double x, double y) { return x - y; }, e, ev, st, stv, dt, 0, 0);
    check_binary(
        subf, [](double x, double y) { return x - y; }, st, stv, e, ev, dt, 0, 0);
  }
}

TEST_CASE("integer division floors and int pow promotes; bool arithmetic is logical") {
  Tensor a = make({7, -7, 7, -7, 5, 0}, {6}, kInt64), b = make({2, 2, -2, -2, 0, 3}, {6}, kInt64);
  // floor division (rounding toward -inf), division by zero gives 0 instead of trapping
  check_values(div(a, b), {6}, {3, -4, -4, 3, 0, 0}, 0, 0);
  CHECK(div(a, b).dtype() == kInt64);
  Tensor p = pow(make({2, 3}, {2}, kInt32), make({3, 2}, {2}, kInt32));
  CHECK(p.dtype() == kFloat32);
  check_values(p, {2}, {8, 9}, 0, 0);
  Tensor t = from_vector(std::vector<bool>{true, true, false, false}, {4});
  Tensor f = from_vector(std::vector<bool>{true, false, true, false}, {4});
  check_values(t + f, {4}, {1, 1, 1, 0}, 0, 0);
  check_values(t * f, {4}, {1, 0, 0, 0}, 0, 0);
  CHECK((t + f).dtype() == kBool);
  // mixed int/float promotes to float
  check_values(make({1, 2}, {2}, kInt32) * make({0.5, 0.25}, {2}), {2}, {0.5, 0.5}, 0, 0);
}

TEST_CASE("NaN and inf through binary ops") {
  Tensor a = make({kNaN, 1, kInf, -kInf, kInf, 0}, {6}, kFloat32);
  Tensor b = make({1, kNaN, kInf, kInf, 1, 0}, {6}, kFloat32);
  check_values(a + b, {6}, {kNaN, kNaN, kInf, kNaN, kInf, 0}, 0, 0);
  check_values(a * b, {6}, {kNaN, kNaN, kInf, -kInf, kInf, 0}, 0, 0);
  check_values(a / b, {6}, {kNaN, kNaN, kNaN, kNaN, kInf, kNaN}, 0, 0);
  // maximum and minimum propagate NaN from either side
  check_values(maximum(a, b), {6}, {kNaN, kNaN, kInf, kInf, kInf, 0}, 0, 0);
  check_values(minimum(a, b), {6}, {kNaN, kNaN, kInf, -kInf, 1, 0}, 0, 0);
  check_values(make({1, -1, 0}, {3}) / make({0, 0, 0}, {3}), {3}, {kInf, -kInf, kNaN}, 0, 0);
}

TEST_CASE("comparisons broadcast, promote and treat NaN as unordered") {
  auto av = int_values(7 * 33, 5, -3, 3), bv = int_values(33, 6, -3, 3);
  Tensor a = make(av, {7, 33}, kInt32), b = make(bv, {33}, kFloat64);
  const std::pair<std::function<Tensor(const Tensor&, const Tensor&)>,
                  std::function<bool(double, double)>>
      ops[] = {
          {[](const Tensor& x, const Tensor& y) { return eq(x, y); },
           [](double x, double y) { return x == y; }},
          {[](const Tensor& x, const Tensor& y) { return ne(x, y); },
           [](double x, double y) { return x != y; }},
          {[](const Tensor& x, const Tensor& y) { return lt(x, y); },
           [](double x, double y) { return x < y; }},
          {[](const Tensor& x, const Tensor& y) { return le(x, y); },
           [](double x, double y) { return x <= y; }},
          {[](const Tensor& x, const Tensor& y) { return gt(x, y); },
           [](double x, double y) { return x > y; }},
          {[](const Tensor& x, const Tensor& y) { return ge(x, y); },
           [](double x, double y) { return x >= y; }},
      };
  for (const auto& [op, ref] : ops) {
    check_binary(
        op, [&](double x, double y) { return ref(x, y) ? 1.0 : 0.0; }, a, av, b, bv, kBool, 0, 0);
    // on a transposed view too
    check_binary(
        op, [&](double x, double y) { return ref(x, y) ? 1.0 : 0.0; }, a.t(), read_view(av, a.t()),
        b.unsqueeze(1), bv, kBool, 0, 0);
    Tensor n = make({kNaN, 1}, {2}), m = make({kNaN, kNaN}, {2});
    check_values(op(n, m), {2}, {ref(kNaN, kNaN) ? 1.0 : 0.0, ref(1, kNaN) ? 1.0 : 0.0}, 0, 0);
  }
  // the scalar forms
  Tensor x = make({-1, 0, 2}, {3}, kInt64);
  check_values(x > 0.5, {3}, {0, 0, 1}, 0, 0);
  check_values(x <= 0, {3}, {1, 1, 0}, 0, 0);
  check_values(x >= -0.5, {3}, {0, 1, 1}, 0, 0);
  check_values(x < 2, {3}, {1, 1, 0}, 0, 0);
  CHECK((x < 2).dtype() == kBool);
}

TEST_CASE("where and masked_fill broadcast the condition, values and mask") {
  auto xv = uniform_values(7 * 33, 7);
  Tensor x = make(xv, {7, 33}, kFloat64);
  Tensor cond = x.slice(0, 0, 1) > 0.0;  // (1, 33)
  Tensor other = make({-5}, {1}, kFloat64);
  Tensor w = where(cond, x, other);
  std::vector<double> want(xv.size());
  for (int i = 0; i < 7; ++i)
    for (int j = 0; j < 33; ++j) want[i * 33 + j] = xv[j] > 0 ? xv[i * 33 + j] : -5;
  check_values(w, {7, 33}, want, 0, 0);
  // promotion: int branch and float branch
  Tensor wi = where(make({1, 0}, {2}).to(kBool), make({1, 2}, {2}, kInt32),
                    make({0.5, 0.5}, {2}, kFloat32));
  CHECK(wi.dtype() == kFloat32);
  check_values(wi, {2}, {1, 0.5}, 0, 0);
  // masked_fill through a transposed view with a broadcast mask
  Tensor xt = x.t();  // (33, 7)
  Tensor mask = make({1, 0, 0, 1, 0, 0, 1}, {7}).to(kBool);
  Tensor mf = masked_fill(xt, mask, -kInf);
  std::vector<double> xtv = read_view(xv, xt), want2(xtv.size());
  for (size_t i = 0; i < xtv.size(); ++i) want2[i] = (i % 7) % 3 == 0 ? -kInf : xtv[i];
  check_values(mf, {33, 7}, want2, 0, 0);
  check_values(masked_fill(make({1, 2, 3}, {3}, kInt64), make({0, 1, 0}, {3}).to(kBool), 9), {3},
               {1, 9, 3}, 0, 0);
}
