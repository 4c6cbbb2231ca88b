// Reductions over any set of dims with keepdim, against double loops: sum, mean, amax/amin,
// max/min with indices, argmax/argmin, var, std, norm, logsumexp; non-contiguous inputs,
// integer dtypes, NaN/inf and empty dims.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core_test_util.h"

using namespace smyrf;
using namespace smyrf::test;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// Groups the values of a tensor of shape s by the output position of a reduction over dims.
struct Groups {
  Shape out_keep;  // shape with reduced dims as 1
  Shape out;       // with or without them, per keepdim
  std::vector<std::vector<double>> g;
};

Groups group(const std::vector<double>& v, const Shape& s, std::vector<int64_t> dims,
             bool keepdim) {
  const int64_t nd = static_cast<int64_t>(s.size());
  if (dims.empty())
    for (int64_t d = 0; d < nd; ++d) dims.push_back(d);
  for (auto& d : dims) d = d < 0 ? d + nd : d;
  Groups r;
  r.out_keep = s;
  for (int64_t d : dims) r.out_keep[d] = 1;
  for (int64_t d = 0; d < nd; ++d) {
    bool red = std::find(dims.begin(), dims.end(), d) != dims.end();
    if (!red || keepdim) r.out.push_back(red ? 1 : s[d]);
  }
  r.g.resize(static_cast<size_t>(shape_numel(r.out_keep)));
  for (size_t i = 0; i < v.size(); ++i) {
    auto idx = unravel(static_cast<int64_t>(i), s);
    for (int64_t d : dims) idx[d] = 0;
    r.g[ravel(idx, r.out_keep)].push_back(v[i]);
  }
  return r;
}

double ref_sum(const std::vector<double>& g) {
  double s = 0;
  for (double x : g) s += x;
  return s;
}
double ref_mean(const std::vector<double>& g) { return ref_sum(g) / g.size(); }
double ref_max(const std::vector<double>& g) {
  double m = -kInf;
  for (double x : g) {
    if (std::isnan(x)) return x;
    m = std::max(m, x);
  }
  return m;
}
double ref_min(const std::vector<double>& g) {
  double m = kInf;
  for (double x : g) {
    if (std::isnan(x)) return x;
    m = std::min(m, x);
  }
  return m;
}
double ref_var(const std::vector<double>& g, int correction) {
  double m = ref_mean(g), s = 0;
  for (double x : g) s += (x - m) * (x - m);
  return s / (static_cast<double>(g.size()) - correction);
}
double ref_lse(const std::vector<double>& g) {
  double m = ref_max(g);
  if (std::isinf(m)) return m;  // all -inf -> -inf; any +inf -> +inf
  double s = 0;
  for (double x : g) s += std::exp(x - m);
  return m + std::log(s);
}

template <typename Op, typename Ref>
void check_reduce(Op op, Ref ref, const Tensor& x, const std::vector<double>& xv,
                  const std::vector<int64_t>& dims, bool keepdim, double rtol,
                  double atol = 1e-12) {
  CAPTURE(shape_str(x.shape()));
  CAPTURE(shape_str(Shape(dims)));
  CAPTURE(keepdim);
  Groups gr = group(xv, x.shape(), dims, keepdim);
  std::vector<double> want;
  for (const auto& g : gr.g) want.push_back(ref(g));
  check_values(op(x, dims, keepdim), gr.out, want, rtol, atol);
}

// A (7, 5, 33) float tensor in three layouts: contiguous, permuted, and a stepped slice.
struct Input {
  Tensor t;
  std::vector<double> v;
};
std::vector<Input> inputs(DType dt) {
  std::vector<double> v = as_stored(uniform_values(7 * 5 * 33, 31, -3, 3), dt);
  Tensor c = make(v, {7, 5, 33}, dt);
  Tensor p = c.permute({2, 0, 1});
  Tensor s = make(as_stored(uniform_values(7 * 10 * 33, 32, -3, 3), dt), {7, 10, 33}, dt)
                 .slice(1, 1, 10, 2);
  std::vector<double> sv = read_view(as_stored(uniform_values(7 * 10 * 33, 32, -3, 3), dt), s);
  return {{c, v}, {p, read_view(v, p)}, {s, sv}};
}

const std::vector<std::vector<int64_t>> kDimSets = {{}, {0}, {1}, {-1}, {0, 2}, {1, 2}, {0, 1, 2}};
}  // namespace

TEST_CASE("sum and mean over any dims with keepdim, float32 and float64, any layout") {
  for (DType dt : {kFloat32, kFloat64}) {
    const double rt = dt == kFloat32 ? 1e-5 : 1e-12;
    for (const Input& in : inputs(dt))
      for (const auto& dims : kDimSets)
        for (bool keep : {false, true}) {
          check_reduce([](const Tensor& x, auto d, bool k) { return sum(x, d, k); }, ref_sum, in.t,
                       in.v, dims, keep, rt, 1e-5);
          check_reduce([](const Tensor& x, auto d, bool k) { return mean(x, d, k); }, ref_mean,
                       in.t, in.v, dims, keep, rt, 1e-6);
        }
  }
}

TEST_CASE("amax, amin, var, std, norm and logsumexp over any dims") {
  for (DType dt : {kFloat32, kFloat64}) {
    const double rt = dt == kFloat32 ? 2e-5 : 1e-11;
    for (const Input& in : inputs(dt))
      for (const auto& dims : kDimSets)
        for (bool keep : {false, true}) {
          check_reduce([](const Tensor& x, auto d, bool k) { return amax(x, d, k); }, ref_max, in.t,
                       in.v, dims, keep, 0, 0);
          check_reduce([](const Tensor& x, auto d, bool k) { return amin(x, d, k); }, ref_min, in.t,
                       in.v, dims, keep, 0, 0);
          check_reduce([](const Tensor& x, auto d, bool k) { return var(x, d, 1, k); },
                       [](const std::vector<double>& g) { return ref_var(g, 1); }, in.t, in.v, dims,
                       keep, rt, 1e-6);
          check_reduce([](const Tensor& x, auto d, bool k) { return var(x, d, 0, k); },
                       [](const std::vector<double>& g) { return ref_var(g, 0); }, in.t, in.v, dims,
                       keep, rt, 1e-6);
          check_reduce([](const Tensor& x, auto d, bool k) { return smyrf::std(x, d, 1, k); },
                       [](const std::vector<double>& g) { return std::sqrt(ref_var(g, 1)); }, in.t,
                       in.v, dims, keep, rt, 1e-6);
          check_reduce([](const Tensor& x, auto d, bool k) { return norm(x, 2.0, d, k); },
                       [](const std::vector<double>& g) {
                         double s = 0;
                         for (double e : g) s += e * e;
                         return std::sqrt(s);
                       },
                       in.t, in.v, dims, keep, rt, 1e-6);
          check_reduce([](const Tensor& x, auto d, bool k) { return logsumexp(x, d, k); }, ref_lse,
                       in.t, in.v, dims, keep, rt, 1e-6);
        }
  }
}

TEST_CASE("norm with p = 1, 3 and inf") {
  std::vector<double> v = uniform_values(7 * 33, 40);
  Tensor x = make(v, {7, 33}, kFloat64);
  for (double p : {1.0, 3.0, kInf}) {
    CAPTURE(p);
    check_reduce([p](const Tensor& t, auto d, bool k) { return norm(t, p, d, k); },
                 [p](const std::vector<double>& g) {
                   double s = 0;
                   for (double e : g)
                     s = std::isinf(p) ? std::max(s, std::fabs(e)) : s + std::pow(std::fabs(e), p);
                   return std::isinf(p) ? s : std::pow(s, 1.0 / p);
                 },
                 x, v, {1}, false, 1e-12);
  }
}

TEST_CASE("the 2-norm's gradient: x / norm, and zero (as PyTorch) for a row whose norm is zero") {
  Tensor x = make({0, 0, 0, 3, 4, 0}, {2, 3}, kFloat64).requires_grad_();
  Tensor y = norm(x, 2.0, {1});
  check_values(y.detach(), {2}, {0, 5}, 0, 0);
  sum(y).backward();
  check_values(x.grad(), {2, 3}, {0, 0, 0, 0.6, 0.8, 0}, 1e-15, 0);
  // keepdim and a float32 input over all dims
  Tensor z = make({1, -2, 2, 4}, {2, 2}).requires_grad_();
  norm(z, 2.0, {}, true).backward(ones({1, 1}));
  check_values(z.grad(), {2, 2}, {0.2, -0.4, 0.4, 0.8}, 1e-6, 0);
}

TEST_CASE("max/min along a dim return values and first indices; argmax/argmin") {
  // ties: the first index wins
  Tensor x = make({1, 3, 3, 0, 2, -1, -1, 5}, {2, 4}, kFloat32);
  auto [mv, mi] = max(x, 1);
  check_values(mv, {2}, {3, 5}, 0, 0);
  check_values(mi, {2}, {1, 3}, 0, 0);
  CHECK(mi.dtype() == kInt64);
  auto [nv, ni] = min(x, 1, true);
  check_values(nv, {2, 1}, {0, -1}, 0, 0);
  check_values(ni, {2, 1}, {3, 1}, 0, 0);
  check_values(argmax(x, 0), {4}, {1, 0, 0, 1}, 0, 0);
  check_values(argmin(x, -1, true), {2, 1}, {3, 1}, 0, 0);
  // against a loop on odd shapes, transposed, every dtype
  for (DType dt : {kInt32, kInt64, kFloat32, kFloat64}) {
    std::vector<double> v = as_stored(int_values(7 * 33, 41, -5, 5), dt);
    Tensor base = make(v, {7, 33}, dt);
    for (const Tensor& t : {base, base.t()}) {
      std::vector<double> tv = read_view(v, t);
      for (int64_t d : {0, 1}) {
        CAPTURE(dtype_name(dt));
        CAPTURE(d);
        const int64_t n = t.size(d), m = t.size(1 - d);
        std::vector<double> want_max, want_min;
        for (int64_t o = 0; o < m; ++o) {
          int64_t bi = 0, si = 0;
          auto at = [&](int64_t i) { return d == 0 ? tv[i * m + o] : tv[o * n + i]; };
          for (int64_t i = 1; i < n; ++i) {
            if (at(i) > at(bi)) bi = i;
            if (at(i) < at(si)) si = i;
          }
          want_max.push_back(static_cast<double>(bi));
          want_min.push_back(static_cast<double>(si));
        }
        check_values(argmax(t, d), {m}, want_max, 0, 0);
        check_values(argmin(t, d), {m}, want_min, 0, 0);
      }
    }
  }
}

TEST_CASE("integer and bool reductions") {
  std::vector<double> v = int_values(7 * 33, 42, -100, 100);
  for (DType dt : {kInt32, kInt64}) {
    CAPTURE(dtype_name(dt));
    Tensor x = make(v, {7, 33}, dt);
    for (const auto& dims : std::vector<std::vector<int64_t>>{{}, {0}, {1}}) {
      check_reduce([](const Tensor& t, auto d, bool k) { return sum(t, d, k); }, ref_sum, x, v,
                   dims, false, 0, 0);
      check_reduce([](const Tensor& t, auto d, bool k) { return amax(t, d, k); }, ref_max, x, v,
                   dims, true, 0, 0);
      check_reduce([](const Tensor& t, auto d, bool k) { return amin(t, d, k); }, ref_min, x, v,
                   dims, false, 0, 0);
    }
    CHECK(sum(x).dtype() == dt);
    // the mean of integers is a float32
    CHECK(mean(x).dtype() == kFloat32);
    CHECK(mean(x).item() == doctest::Approx(ref_mean(v)).epsilon(1e-6));
  }
  Tensor b = make({1, 0, 1, 1}, {4}).to(kBool);
  CHECK(sum(b).item<int64_t>() == 3);  // bool sums count
}

TEST_CASE("prod over any dims: float32, float64 and int64, zeros, NaN and inf times 0") {
  // the products run four multiply chains on contiguous runs (kernels/cpu/reduce.cpp): runs of
  // 33 (a tail of 1), 5 and 7, in every layout of inputs()
  auto prod = [](const Tensor& x, const std::vector<int64_t>& d, bool k) {
    return raw::reduce(raw::ReduceKind::Prod, x, d, k);
  };
  auto ref_prod = [](const std::vector<double>& g) {
    double p = 1;
    for (double x : g) p *= x;
    return p;
  };
  for (DType dt : {kFloat32, kFloat64}) {
    CAPTURE(dtype_name(dt));
    const double rt = dt == kFloat32 ? 1e-5 : 1e-12;
    {  // the contiguous (7, 5, 33) input with values near 1 (products of up to 1155 in range)
      std::vector<double> v = inputs(dt)[0].v;
      for (double& x : v) x = as_stored({1.0 + x * 0.01}, dt)[0];
      const Tensor x = make(v, {7, 5, 33}, dt);
      for (const auto& dims : kDimSets)
        for (bool keep : {false, true}) check_reduce(prod, ref_prod, x, v, dims, keep, rt, 0);
    }
    for (const Input& in : inputs(dt))  // strided layouts, short runs: values up to 3
      for (const auto& dims : std::vector<std::vector<int64_t>>{{1}, {0, 1}})
        check_reduce(prod, ref_prod, in.t, in.v, dims, false, rt, 1e-30);
    // zeros, NaN, inf * 0 in rows of 9 (two chains of four and a tail)
    const std::vector<double> e = {1,    2, 0, 4, 5, 6, 7, 8, 9, 1,  2,  kNaN, 4, 5, 6, 7, 8, 9,
                                   kInf, 2, 3, 4, 5, 0, 7, 8, 9, -1, -2, 3,    4, 5, 6, 7, 8, -9};
    check_reduce(prod, ref_prod, make(e, {4, 9}, dt), e, {1}, false, rt, 0);
    // rows of 40 (float32: AVX2's 16-wide body and a tail of 8): 0 times inf, a NaN, a row of
    // values near 1, a row with a negative zero
    std::vector<double> w = as_stored(uniform_values(4 * 40, 47, 0.5, 1.5), dt);
    w[5] = 0, w[20] = kInf, w[40 + 3] = kNaN, w[120 + 17] = -0.0;
    check_reduce(prod, ref_prod, make(w, {4, 40}, dt), w, {1}, false, rt, 0);
  }
  const std::vector<double> iv = int_values(7 * 13, 43, -3, 3);
  for (DType dt : {kInt32, kInt64}) {
    CAPTURE(dtype_name(dt));
    check_reduce(prod, ref_prod, make(iv, {7, 13}, dt), iv, {1}, false, 0, 0);
  }
}

TEST_CASE("reductions propagate NaN and handle inf; empty dims") {
  Tensor x = make({1, kNaN, 3, 4, 5, 6}, {2, 3}, kFloat32);
  check_values(sum(x, {1}), {2}, {kNaN, 15}, 0, 0);
  check_values(amax(x, {1}), {2}, {kNaN, 6}, 0, 0);
  check_values(amin(x, {0}), {3}, {1, kNaN, 3}, 0, 0);
  check_values(argmax(x, 1), {2}, {1, 2}, 0, 0);  // NaN wins argmax, as in PyTorch
  // float64 and int64 rows (the branch-free running max / min): NaN anywhere in a row, ties
  Tensor d =
      make({1, 7, kNaN, 2, 9, 9, -3, kNaN, 5, 5, 5, 5, 0, -1, -8, 4, 4, kNaN}, {3, 6}, kFloat64);
  check_values(amax(d, {1}), {3}, {kNaN, kNaN, kNaN}, 0, 0);
  Tensor d2 = make({1, 7, 3, 2, 9, 9, -3, 0, 5, 5, 5, 5, 0, -1, -8, 4, 4, 2}, {3, 6}, kFloat64);
  check_values(amax(d2, {1}), {3}, {9, 5, 4}, 0, 0);
  check_values(amin(d2, {1}), {3}, {1, -3, -8}, 0, 0);
  check_values(amin(d, {0}), {6}, {-3, kNaN, kNaN, 2, 4, kNaN}, 0, 0);
  Tensor li = make({1, 7, 3, 2, 9, 9, -3, 0, 5, 5, 5, 5}, {2, 6}, kInt64);
  check_values(amax(li, {1}), {2}, {9, 5}, 0, 0);
  check_values(amin(li, {1}), {2}, {1, -3}, 0, 0);
  Tensor inf = make({kInf, 1, -kInf, -kInf, 2, 3}, {2, 3}, kFloat64);
  check_values(sum(inf, {1}), {2}, {kNaN, -kInf}, 0, 0);
  check_values(amax(inf, {1}), {2}, {kInf, 3}, 0, 0);
  // logsumexp: a row of -inf is -inf (not NaN); a row with +inf is +inf
  Tensor l = make({-kInf, -kInf, kInf, 1, 0, 0}, {3, 2}, kFloat64);
  check_values(logsumexp(l, {1}), {3}, {-kInf, kInf, std::log(2.0)}, 1e-15, 0);
  Tensor lf = make({-kInf, -kInf, kInf, 1, 0, 0}, {3, 2}, kFloat32);
  check_values(logsumexp(lf, {1}), {3}, {-kInf, kInf, static_cast<float>(std::log(2.0))}, 1e-7, 0);
  // sums over an empty dim are 0; mean of nothing is NaN
  Tensor e = zeros({3, 0});
  check_values(sum(e, {1}), {3}, {0, 0, 0}, 0, 0);
  check_values(mean(e, {1}), {3}, {kNaN, kNaN, kNaN}, 0, 0);
  check_values(sum(e, {0}), {0}, {}, 0, 0);
  // a large sum in float32 is accumulated accurately (double accumulators)
  Tensor big = full({1000003}, 0.1);
  CHECK(sum(big).item() == doctest::Approx(1000003 * static_cast<double>(0.1f)).epsilon(1e-6));
  // scalars
  CHECK(sum(scalar_tensor(2.5)).item() == 2.5);
  CHECK(amax(scalar_tensor(2.5), {0}).item() == 2.5);
}

TEST_CASE("long reductions split across threads agree with the loop") {
  // big enough for the threaded row and column paths, with an odd tail
  const int64_t rows = 4099, cols = 33;
  std::vector<double> v = uniform_values(rows * cols, 43);
  Tensor x = make(v, {rows, cols}, kFloat32);
  std::vector<double> vs = as_stored(v, kFloat32);
  check_reduce([](const Tensor& t, auto d, bool k) { return sum(t, d, k); }, ref_sum, x, vs, {0},
               false, 1e-5, 1e-4);
  check_reduce([](const Tensor& t, auto d, bool k) { return amax(t, d, k); }, ref_max, x, vs, {0},
               false, 0, 0);
  check_reduce([](const Tensor& t, auto d, bool k) { return amin(t, d, k); }, ref_min, x, vs, {},
               false, 0, 0);
  check_reduce([](const Tensor& t, auto d, bool k) { return sum(t, d, k); }, ref_sum, x, vs, {},
               false, 1e-6, 1e-3);
  // a (40, 9, 101) float over dims (0, 2): the outer slabs split between threads, each run of
  // 101 added into the thread's 9 accumulators (kernels/cpu/reduce.cpp outer_inner_sum_f32)
  std::vector<double> v3 = as_stored(uniform_values(40 * 9 * 101, 44), kFloat32);
  const Tensor x3 = make(v3, {40, 9, 101}, kFloat32);
  for (bool keep : {false, true}) {
    check_reduce([](const Tensor& t, auto d, bool k) { return sum(t, d, k); }, ref_sum, x3, v3,
                 {0, 2}, keep, 1e-6, 1e-4);
    check_reduce([](const Tensor& t, auto d, bool k) { return mean(t, d, k); }, ref_mean, x3, v3,
                 {0, 2}, keep, 1e-6, 1e-6);
  }
}

TEST_CASE("float64 and integer columns: sum, prod, max, min, the rows split between threads") {
  // kernels/cpu/reduce.cpp column_reduce: (11001, 3) has one task of 3 columns, fewer than the
  // threads, so the rows are split and the partials combined in thread order; (37, 2100) has
  // two column blocks of one task each. NaN / inf late in the columns (the second thread's
  // share), integer extremes anywhere.
  for (const Shape& shape : {Shape{11001, 3}, Shape{37, 2100}}) {
    const int64_t n = shape[0] * shape[1];
    std::vector<double> u = uniform_values(n, 44, -3, 3);
    std::vector<double> near1(u);
    for (double& x : near1) x = 1.0 + x * 1e-3;  // products of thousands of terms stay in range
    std::vector<double> edge(u);
    edge[static_cast<size_t>((shape[0] - 3) * shape[1] + 1)] = kNaN;
    edge[static_cast<size_t>((shape[0] - 2) * shape[1] + 2)] = kInf;
    edge[static_cast<size_t>(shape[1])] = -kInf;
    for (const auto* v : {&u, &edge}) {
      const Tensor x = make(*v, shape, kFloat64);
      check_reduce([](const Tensor& t, auto d, bool k) { return sum(t, d, k); }, ref_sum, x, *v,
                   {0}, false, 1e-12, 1e-9);
      check_reduce([](const Tensor& t, auto d, bool k) { return amax(t, d, k); }, ref_max, x, *v,
                   {0}, false, 0, 0);
      check_reduce([](const Tensor& t, auto d, bool k) { return amin(t, d, k); }, ref_min, x, *v,
                   {0}, true, 0, 0);
    }
    check_reduce(
        [](const Tensor& t, auto d, bool k) { return raw::reduce(raw::ReduceKind::Prod, t, d, k); },
        [](const std::vector<double>& g) {
          double p = 1;
          for (double x : g) p *= x;
          return p;
        },
        make(near1, shape, kFloat64), near1, {0}, false, 1e-12, 0);
    const std::vector<double> iv = int_values(static_cast<size_t>(n), 45, -1000000, 1000000);
    for (DType dt : {kInt32, kInt64}) {
      CAPTURE(dtype_name(dt));
      const Tensor x = make(iv, shape, dt);
      check_reduce([](const Tensor& t, auto d, bool k) { return sum(t, d, k); }, ref_sum, x, iv,
                   {0}, false, 0, 0);
      check_reduce([](const Tensor& t, auto d, bool k) { return amax(t, d, k); }, ref_max, x, iv,
                   {0}, false, 0, 0);
      check_reduce([](const Tensor& t, auto d, bool k) { return amin(t, d, k); }, ref_min, x, iv,
                   {0}, false, 0, 0);
    }
  }
}

TEST_CASE("argmax / argmin down float64 and integer columns: first index, first NaN, split rows") {
  // kernels/cpu/reduce.cpp column_argreduce: (11001, 3) splits the rows between threads (the
  // results combined in row order), (37, 2100) has two column blocks; values in [-3, 3] tie
  // everywhere, and column 1 of the float64 data holds two NaN (the first must win)
  for (const Shape& shape : {Shape{11001, 3}, Shape{37, 2100}}) {
    const int64_t n = shape[0], m = shape[1];
    std::vector<double> v = int_values(static_cast<size_t>(n * m), 46, -3, 3);
    for (DType dt : {kInt32, kInt64, kFloat64}) {
      std::vector<double> w = v;
      if (dt == kFloat64) {
        w[static_cast<size_t>((n / 2 + 1) * m + 1)] = kNaN;
        w[static_cast<size_t>((n - 1) * m + 1)] = kNaN;
      }
      CAPTURE(dtype_name(dt));
      CAPTURE(n);
      std::vector<double> want_max, want_min;
      for (int64_t j = 0; j < m; ++j) {
        int64_t bi = 0, si = 0;
        for (int64_t i = 1; i < n; ++i) {
          const double x = w[static_cast<size_t>(i * m + j)];
          const double b = w[static_cast<size_t>(bi * m + j)],
                       sm = w[static_cast<size_t>(si * m + j)];
          if (!std::isnan(b) && (std::isnan(x) || x > b)) bi = i;
          if (!std::isnan(sm) && (std::isnan(x) || x < sm)) si = i;
        }
        want_max.push_back(static_cast<double>(bi));
        want_min.push_back(static_cast<double>(si));
      }
      const Tensor x = make(w, shape, dt);
      check_values(argmax(x, 0), {m}, want_max, 0, 0);
      check_values(argmin(x, 0), {m}, want_min, 0, 0);
    }
  }
}

TEST_CASE("sum_squares over a strided float32 tensor and a float64 one; integer tensors refused") {
  std::vector<double> v = uniform_values(30 * 40, 77);
  Tensor x = make(v, {30, 40}).t();  // (40, 30), strided
  long double want = 0;
  for (double e : as_stored(v, kFloat32)) want += static_cast<long double>(e) * e;
  Tensor s = raw::sum_squares(x);
  CHECK(s.dim() == 0);
  CHECK(s.dtype() == kFloat64);
  CHECK(s.item<double>() == doctest::Approx(static_cast<double>(want)).epsilon(1e-14));
  long double want64 = 0;
  for (double e : v) want64 += static_cast<long double>(e) * e;
  CHECK(raw::sum_squares(make(v, {30, 40}, kFloat64)).item<double>() ==
        doctest::Approx(static_cast<double>(want64)).epsilon(1e-14));
  check_error([] { raw::sum_squares(zeros({2}, TensorOptions(kInt32))); },
              {"[sum_squares]", "int32", "float32 or float64"});
}

TEST_CASE("integer max / min over rows: the extreme at every position of rows of 1 to 13") {
  // the row loop keeps four chains over i mod 4 and a tail: every position must win once
  for (DType dt : {kInt32, kInt64})
    for (int64_t n = 1; n <= 13; ++n) {
      CAPTURE(dtype_name(dt));
      CAPTURE(n);
      std::vector<double> v(static_cast<size_t>(n * n), 0.0), vmax, vmin;
      for (int64_t r = 0; r < n; ++r)
        for (int64_t c = 0; c < n; ++c)
          v[r * n + c] = c == r ? 50.0 : static_cast<double>((c * 7 + r) % 11 - 5);
      for (int64_t r = 0; r < n; ++r) {
        vmax.push_back(50.0);
        double lo = 50.0;
        for (int64_t c = 0; c < n; ++c) lo = std::min(lo, v[r * n + c]);
        vmin.push_back(lo);
      }
      const Tensor x = make(v, {n, n}, dt);
      check_values(raw::reduce(raw::ReduceKind::Max, x, {1}, false), {n}, vmax, 0, 0);
      check_values(raw::reduce(raw::ReduceKind::Min, x, {1}, false), {n}, vmin, 0, 0);
      // and the minimum moved to every position
      for (auto& e : v) e = -e;
      for (auto& e : vmin) e = -e;
      const Tensor y = make(v, {n, n}, dt);
      check_values(raw::reduce(raw::ReduceKind::Min, y, {1}, false), {n},
                   std::vector<double>(n, -50.0), 0, 0);
      check_values(raw::reduce(raw::ReduceKind::Max, y, {1}, false), {n}, vmin, 0, 0);
    }
}
