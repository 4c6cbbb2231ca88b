// matmul / bmm (1-D operands, batch broadcasting, transposed and stepped operands), softmax and
// log_softmax over any dim, layer_norm, cross_entropy (ignore_index, label smoothing, (N, C, d)
// logits) and mse_loss, against double loops.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "core_test_util.h"

using namespace smyrf;
using namespace smyrf::test;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// Reference matmul of logical row-major values with NumPy semantics.
std::vector<double> ref_matmul(const std::vector<double>& a, Shape sa, const std::vector<double>& b,
                               Shape sb, Shape& out_shape) {
  const bool a1 = sa.size() == 1, b1 = sb.size() == 1;
  if (a1) sa.insert(sa.begin(), 1);
  if (b1) sb.push_back(1);
  const int64_t M = sa[sa.size() - 2], K = sa.back(), N = sb.back();
  Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  Shape batch = bcast_shape(ba, bb);
  std::vector<double> out;
  for (int64_t bi = 0; bi < shape_numel(batch); ++bi) {
    auto idx = unravel(bi, batch);
    const int64_t oa = bcast_pos(idx, ba) * M * K, ob = bcast_pos(idx, bb) * K * N;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += a[oa + i * K + k] * b[ob + k * N + j];
        out.push_back(s);
      }
  }
  out_shape = batch;
  if (!a1) out_shape.push_back(M);
  if (!b1) out_shape.push_back(N);
  return out;
}

void check_matmul(const Tensor& a, const std::vector<double>& av, const Tensor& b,
                  const std::vector<double>& bv, double rtol, double atol) {
  CAPTURE(shape_str(a.shape()));
  CAPTURE(shape_str(b.shape()));
  CAPTURE(shape_str(a.strides()));
  CAPTURE(shape_str(b.strides()));
  Shape s;
  std::vector<double> want = ref_matmul(av, a.shape(), bv, b.shape(), s);
  check_values(matmul(a, b), s, want, rtol, atol);
}

std::vector<double> ref_softmax_rows(const std::vector<double>& v, int64_t n, bool log) {
  std::vector<double> out(v.size());
  for (size_t r = 0; r * n < v.size(); ++r) {
    double m = -kInf;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, v[r * n + i]);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += std::exp(v[r * n + i] - m);
    for (int64_t i = 0; i < n; ++i)
      out[r * n + i] = log ? v[r * n + i] - m - std::log(s) : std::exp(v[r * n + i] - m) / s;
  }
  return out;
}
}  // namespace

TEST_CASE("matmul on odd shapes, 1-D operands and batch broadcasting") {
  const Shape cases[][2] = {{{1, 1}, {1, 1}},          {{7, 33}, {33, 5}}, {{33}, {33, 7}},
                            {{7, 33}, {33}},           {{33}, {33}},       {{3, 7, 5}, {5, 1}},
                            {{2, 1, 7, 5}, {3, 5, 4}}, {{5}, {2, 5, 3}},   {{1, 4, 1}, {1, 33}},
                            {{4, 0}, {0, 3}},          {{0, 5}, {5, 3}}};
  for (DType dt : {kFloat32, kFloat64}) {
    for (const auto& c : cases) {
      CAPTURE(dtype_name(dt));
      auto av = as_stored(uniform_values(shape_numel(c[0]), 50), dt);
      auto bv = as_stored(uniform_values(shape_numel(c[1]), 51), dt);
      check_matmul(make(av, c[0], dt), av, make(bv, c[1], dt), bv, dt == kFloat32 ? 1e-5 : 1e-13,
                   dt == kFloat32 ? 1e-5 : 1e-13);
    }
  }
  // bmm is matmul for (B, M, K) @ (B, K, N)
  auto av = uniform_values(3 * 7 * 5, 52), bv = uniform_values(3 * 5 * 33, 53);
  Tensor a = make(av, {3, 7, 5}, kFloat64), b = make(bv, {3, 5, 33}, kFloat64);
  Shape s;
  check_values(bmm(a, b), {3, 7, 33}, ref_matmul(av, {3, 7, 5}, bv, {3, 5, 33}, s), 1e-13, 1e-13);
}

TEST_CASE("matmul on transposed, stepped and expanded operands") {
  for (DType dt : {kFloat32, kFloat64}) {
    CAPTURE(dtype_name(dt));
    const double rt = dt == kFloat32 ? 1e-5 : 1e-13;
    auto av = as_stored(uniform_values(33 * 7, 54), dt),
         bv = as_stored(uniform_values(9 * 33, 55), dt);
    Tensor A = make(av, {33, 7}, dt), B = make(bv, {9, 33}, dt);
    // A^T (7, 33) @ B^T (33, 9): both transposed, no copy expected
    check_matmul(A.t(), read_view(av, A.t()), B.t(), read_view(bv, B.t()), rt, rt);
    // stepped rows and stepped columns
    Tensor As = A.slice(0, 0, 33, 3);  // (11, 7), row stride 21
    Tensor Bs = B.slice(1, 0, 33, 3);  // (9, 11), column stride 3: must be copied
    check_matmul(Bs, read_view(bv, Bs), As, read_view(av, As), rt, rt);
    // an expanded batch (stride 0) and an expanded row inside the matrix
    Tensor row = make(as_stored(uniform_values(7, 56), dt), {1, 7}, dt);
    Tensor Ae = row.expand({5, 7});  // (5, 7) with row stride 0
    check_matmul(Ae, read_view(as_stored(uniform_values(7, 56), dt), Ae), A.t(),
                 read_view(av, A.t()), rt, rt);
    Tensor batch = A.t().unsqueeze(0).expand({4, 7, 33});
    check_matmul(batch, read_view(av, batch), B.t(), read_view(bv, B.t()), rt, rt);
    // a permuted 3-D operand
    auto cv = as_stored(uniform_values(5 * 3 * 4, 57), dt);
    Tensor C = make(cv, {5, 3, 4}, dt).permute({1, 0, 2});  // (3, 5, 4)
    auto dv = as_stored(uniform_values(3 * 4 * 2, 58), dt);
    Tensor D = make(dv, {3, 2, 4}, dt).transpose(1, 2);  // (3, 4, 2)
    check_matmul(C, read_view(cv, C), D, read_view(dv, D), rt, rt);
  }
}

TEST_CASE("softmax and log_softmax over every dim, any layout") {
  for (DType dt : {kFloat32, kFloat64}) {
    std::vector<double> v = as_stored(uniform_values(7 * 5 * 33, 60, -5, 5), dt);
    Tensor c = make(v, {7, 5, 33}, dt);
    for (const Tensor& x : {c, c.permute({2, 0, 1}), c.slice(2, 0, 33, 4)}) {
      std::vector<double> xv = read_view(v, x);
      for (int64_t d = 0; d < 3; ++d)
        for (bool lg : {false, true}) {
          CAPTURE(dtype_name(dt));
          CAPTURE(shape_str(x.shape()));
          CAPTURE(d);
          CAPTURE(lg);
          // move d last, reference on rows, move back
          Shape s = x.shape();
          const int64_t n = s[d];
          std::vector<double> rows;
          std::vector<int64_t> where;
          for (int64_t i = 0; i < x.numel(); ++i) {
            auto idx = unravel(i, s);
            if (idx[d] != 0) continue;
            for (int64_t k = 0; k < n; ++k) {
              idx[d] = k;
              where.push_back(ravel(idx, s));
              rows.push_back(xv[where.back()]);
            }
          }
          std::vector<double> r = ref_softmax_rows(rows, n, lg), want(xv.size());
          for (size_t i = 0; i < where.size(); ++i) want[where[i]] = r[i];
          Tensor y = lg ? log_softmax(x, d) : softmax(x, d);
          check_values(y, s, want, dt == kFloat32 ? 2e-5 : 1e-12, dt == kFloat32 ? 1e-6 : 1e-14);
        }
    }
  }
}

TEST_CASE("softmax edge values: -inf entries, a row of -inf, NaN, huge logits, negative dim") {
  Tensor x = make({-kInf, 0, 0, -kInf, -kInf, -kInf, 1000, 0, -1000, kNaN, 1, 2}, {4, 3});
  std::vector<double> y = softmax(x, -1).to_vector<double>();
  CHECK(y[0] == 0.0);
  CHECK(y[1] == doctest::Approx(0.5));
  for (int i = 3; i < 6; ++i) CHECK(y[i] == 0.0);  // all masked: zeros, not NaN
  CHECK(y[6] == doctest::Approx(1.0));             // no overflow
  CHECK(y[7] == 0.0);
  for (int i = 9; i < 12; ++i) CHECK(std::isnan(y[i]));
  std::vector<double> l = log_softmax(x, 1).to_vector<double>();
  CHECK(l[0] == -kInf);
  CHECK(l[1] == doctest::Approx(-std::log(2.0)));
  CHECK(l[6] == doctest::Approx(0.0));
  CHECK(l[7] == doctest::Approx(-1000.0));
  // 0-d and empty inputs
  CHECK(softmax(scalar_tensor(3.0), 0).item() == 1.0);
  CHECK(softmax(zeros({0, 4}), 1).shape() == Shape{0, 4});
}

TEST_CASE("layer_norm over trailing dims with and without affine parameters") {
  for (DType dt : {kFloat32, kFloat64}) {
    CAPTURE(dtype_name(dt));
    const int64_t rows = 7, n = 33;
    std::vector<double> v = as_stored(uniform_values(rows * n, 61, -3, 5), dt);
    std::vector<double> w = as_stored(uniform_values(n, 62), dt),
                        b = as_stored(uniform_values(n, 63), dt);
    Tensor x = make(v, {rows, n}, dt);
    for (bool affine : {false, true}) {
      std::vector<double> want(v.size());
      for (int64_t r = 0; r < rows; ++r) {
        double m = 0, var = 0;
        for (int64_t i = 0; i < n; ++i) m += v[r * n + i];
        m /= n;
        for (int64_t i = 0; i < n; ++i) var += (v[r * n + i] - m) * (v[r * n + i] - m);
        var /= n;
        for (int64_t i = 0; i < n; ++i) {
          double h = (v[r * n + i] - m) / std::sqrt(var + 1e-5);
          want[r * n + i] = affine ? h * w[i] + b[i] : h;
        }
      }
      Tensor y =
          affine ? layer_norm(x, {n}, make(w, {n}, dt), make(b, {n}, dt)) : layer_norm(x, {n});
      check_values(y, {rows, n}, want, dt == kFloat32 ? 1e-5 : 1e-12,
                   dt == kFloat32 ? 1e-5 : 1e-12);
      // the same over (rows, 3, 11) normalising the last two dims, from a transposed view
      Tensor xt = make(v, {rows, n}, dt).t().contiguous().t();  // non-contiguous, same values
      CHECK_FALSE(xt.is_contiguous());
      Tensor y3 = affine ? layer_norm(xt.reshape({rows, 3, 11}), {3, 11}, make(w, {3, 11}, dt),
                                      make(b, {3, 11}, dt))
                         : layer_norm(xt.reshape({rows, 3, 11}), {3, 11});
      check_values(y3, {rows, 3, 11}, want, dt == kFloat32 ? 1e-5 : 1e-12,
                   dt == kFloat32 ? 1e-5 : 1e-12);
    }
  }
}

TEST_CASE("cross_entropy: reductions, ignore_index, label smoothing, (N, C, d) logits") {
  for (DType dt : {kFloat32, kFloat64}) {
    CAPTURE(dtype_name(dt));
    const int64_t N = 7, C = 33;
    std::vector<double> lv = as_stored(uniform_values(N * C, 70, -4, 4), dt);
    std::vector<int64_t> tv{0, 32, 5, -100, 17, 5, 1};
    Tensor logits = make(lv, {N, C}, dt);
    Tensor target = from_vector(tv, {N});
    for (double eps : {0.0, 0.1}) {
      CAPTURE(eps);
      std::vector<double> per(N, 0.0);
      double total = 0;
      int valid = 0;
      for (int64_t r = 0; r < N; ++r) {
        if (tv[r] == -100) continue;
        double m = -kInf, s = 0, mean_x = 0;
        for (int64_t c = 0; c < C; ++c) m = std::max(m, lv[r * C + c]);
        for (int64_t c = 0; c < C; ++c)
          s += std::exp(lv[r * C + c] - m), mean_x += lv[r * C + c] / C;
        const double lse = m + std::log(s);
        per[r] = (1 - eps) * (lse - lv[r * C + tv[r]]) + eps * (lse - mean_x);
        total += per[r];
        ++valid;
      }
      const double rt = dt == kFloat32 ? 1e-5 : 1e-12;
      check_values(cross_entropy(logits, target, -100, eps, Reduction::None), {N}, per, rt, rt);
      check_values(cross_entropy(logits, target, -100, eps, Reduction::Sum), {}, {total}, rt, rt);
      check_values(cross_entropy(logits, target, -100, eps), {}, {total / valid}, rt, rt);
      // int32 targets and a transposed logits view give the same
      Tensor lt = make(lv, {N, C}, dt).t().contiguous().t();
      check_values(cross_entropy(lt, target.to(kInt32), -100, eps, Reduction::None), {N}, per, rt,
                   rt);
    }
  }
  // (N, C, d) logits with (N, d) targets equal the (N*d, C) form
  std::vector<double> lv = uniform_values(2 * 5 * 3, 71);
  Tensor l3 = make(lv, {2, 5, 3}, kFloat64);
  Tensor t3 = from_vector(std::vector<int64_t>{0, 4, 2, 1, 1, 3}, {2, 3});
  Tensor flat = l3.permute({0, 2, 1}).reshape({6, 5});
  check_values(cross_entropy(l3, t3, -100, 0.0, Reduction::None), {2, 3},
               cross_entropy(flat, t3.reshape({6}), -100, 0.0, Reduction::None).to_vector<double>(),
               1e-14, 1e-14);
  // every target ignored: the mean is NaN, as in PyTorch
  Tensor all_ignored = from_vector(std::vector<int64_t>{-1, -1}, {2});
  CHECK(std::isnan(cross_entropy(make({1, 2, 3, 4}, {2, 2}), all_ignored, -1).item()));
}

TEST_CASE("mse_loss against a loop, with broadcasting-free shapes and every reduction") {
  std::vector<double> a = uniform_values(7 * 33, 80), b = uniform_values(7 * 33, 81);
  Tensor x = make(a, {7, 33}, kFloat64), y = make(b, {33, 7}, kFloat64).t();
  std::vector<double> yv = read_view(b, y), sq(a.size());
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) sq[i] = (a[i] - yv[i]) * (a[i] - yv[i]), s += sq[i];
  check_values(mse_loss(x, y, Reduction::None), {7, 33}, sq, 1e-14, 0);
  check_values(mse_loss(x, y, Reduction::Sum), {}, {s}, 1e-13, 0);
  check_values(mse_loss(x, y), {}, {s / a.size()}, 1e-13, 0);
  // float32 (the sum in float64, the loss in float32), empty inputs, integer inputs
  Tensor xf = make(a, {7, 33}), yf = make(b, {33, 7}).t();
  CHECK(mse_loss(xf, yf).dtype() == kFloat32);
  check_values(mse_loss(xf, yf), {}, {s / a.size()}, 1e-5, 0);
  CHECK(std::isnan(mse_loss(zeros({0, 3}), zeros({0, 3})).item<double>()));
  CHECK(mse_loss(zeros({0, 3}), zeros({0, 3}), Reduction::Sum).item<double>() == 0.0);
  check_values(mse_loss(make({1, 5}, {2}, kInt64), make({3, 1}, {2}, kInt64), Reduction::Sum), {},
               {20}, 0, 0);
}

TEST_CASE("softplus and binary_cross_entropy_with_logits: stable for any logit, against a loop") {
  const std::vector<double> z{-1000, -100, -20, -1, -1e-3, 0, 1e-3, 1, 20, 100, 1000};
  const std::vector<double> t{0, 1, 0.3, 1, 0, 0.5, 1, 0, 0.9, 0, 1};
  std::vector<double> sp, bce, sig;
  for (double v : z) {
    const double s = std::max(v, 0.0) + std::log1p(std::exp(-std::fabs(v)));
    sp.push_back(s);
    sig.push_back(1.0 / (1.0 + std::exp(-v)));
  }
  double total = 0;
  for (size_t i = 0; i < z.size(); ++i) bce.push_back(sp[i] - z[i] * t[i]), total += bce.back();
  for (DType dt : {kFloat32, kFloat64}) {
    CAPTURE(dtype_name(dt));
    const double tol = dt == kFloat32 ? 2e-6 : 1e-14;
    Tensor x = make(z, {11}, dt).requires_grad_();
    // softplus(-100) = 3.7e-44 is a float32 denormal: an absolute bound there
    check_values(softplus(x), {11}, sp, tol, dt == kFloat32 ? 1e-44 : 0);
    sum(softplus(x)).backward();  // the gradient is sigmoid(x), also at +-1000
    check_values(x.grad(), {11}, sig, tol, 1e-30);
    const Tensor tt = make(t, {11}, dt);
    check_values(binary_cross_entropy_with_logits(x, tt, Reduction::None), {11}, bce, tol, 0);
    check_values(binary_cross_entropy_with_logits(x, tt, Reduction::Sum), {}, {total}, tol, 0);
    check_values(binary_cross_entropy_with_logits(x, tt), {}, {total / 11}, tol, 0);
  }
  check_error(
      [] {
        binary_cross_entropy_with_logits(zeros({2, 3}), zeros({3, 2}));
      },
      {"[binary_cross_entropy_with_logits]", "(2, 3)", "(3, 2)"});
}

TEST_CASE("sin, cos and expm1 through autograd: values as the raw ops, gradients cos, -sin, exp") {
  const std::vector<double> v = uniform_values(40, 91, -6, 6);
  Tensor x = make(v, {40}, kFloat64).requires_grad_();
  std::vector<double> s, c, e;
  for (double a : v) s.push_back(std::sin(a)), c.push_back(std::cos(a)), e.push_back(std::expm1(a));
  check_values(sin(x), {40}, s, 1e-15, 1e-15);
  check_values(cos(x), {40}, c, 1e-15, 1e-15);
  check_values(expm1(x), {40}, e, 1e-15, 0);
  sum(sin(x) + cos(x) + expm1(x)).backward();
  std::vector<double> g;
  for (double a : v) g.push_back(std::cos(a) - std::sin(a) + std::exp(a));
  check_values(x.grad(), {40}, g, 1e-14, 1e-14);
}
