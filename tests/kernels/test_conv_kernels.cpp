// conv2d forward / backward-data / backward-filter, pooling and nearest upsampling against naive
// double-precision loops written straight from the definitions, on odd sizes, strides, padding,
// dilation and groups; float32 through both sgemm variants (AVX2 and scalar) and float64.
//
// Tolerance for float32: each output is a sum of `terms` products of values in [-1, 1]; the
// GEMM's rounding is a few ulps per term, so |err| <= 1e-6 * (terms + 1) * 8 is generous for a
// correct kernel and still orders of magnitude below any indexing mistake (O(1) errors).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/reduce_avx2.h"
#include "tests/kernels/conv_reference.h"
#include "tests/kernels/kernel_test_util.h"

using namespace smyrf::kernels::cpu;

namespace {

std::vector<double> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

template <typename T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

Conv2dGeometry make(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S,
                    int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                    int64_t groups) {
  Conv2dGeometry g;
  g.N = N, g.C = C, g.H = H, g.W = W, g.K = K, g.R = R, g.S = S;
  g.stride_h = sh, g.stride_w = sw, g.pad_h = ph, g.pad_w = pw, g.dil_h = dh, g.dil_w = dw;
  g.groups = groups;
  g.P = conv2d_out_size(H, R, sh, ph, dh);
  g.Q = conv2d_out_size(W, S, sw, pw, dw);
  return g;
}

using smyrf::test::conv_reference;

template <typename T>
void expect_close(const std::vector<T>& got, const std::vector<double>& want, double tol,
                  const char* what) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(e <= worst)) worst = e, at = i;
  }
  INFO(what << ": worst error " << worst << " at " << at << " (got " << got[at] << ", want "
            << want[at] << ")");
  CHECK(worst <= tol);
}

template <typename T>
void check_conv(const Conv2dGeometry& g, bool with_bias, uint32_t seed) {
  INFO("N=" << g.N << " C=" << g.C << " H=" << g.H << " W=" << g.W << " K=" << g.K << " R=" << g.R
            << " S=" << g.S << " stride=" << g.stride_h << "," << g.stride_w << " pad=" << g.pad_h
            << "," << g.pad_w << " dil=" << g.dil_h << "," << g.dil_w << " groups=" << g.groups);
  REQUIRE(g.P > 0);
  REQUIRE(g.Q > 0);
  const int64_t Cg = g.C / g.groups;
  const auto x = random_values(static_cast<size_t>(g.N * g.C * g.H * g.W), seed);
  const auto w = random_values(static_cast<size_t>(g.K * Cg * g.R * g.S), seed + 1);
  const auto b =
      with_bias ? random_values(static_cast<size_t>(g.K), seed + 2) : std::vector<double>{};
  const auto dy = random_values(static_cast<size_t>(g.N * g.K * g.P * g.Q), seed + 3);
  const smyrf::test::ConvReference ref = conv_reference(g, x, w, b, dy);

  const double eps = std::is_same<T, float>::value ? 1e-6 : 1e-14;
  const double tol_y = 8 * eps * (Cg * g.R * g.S + 2);
  const double tol_dx = 8 * eps * (g.K / g.groups * g.R * g.S + 2);
  const double tol_dw = 8 * eps * (g.N * g.P * g.Q + 2);

  auto xt = cast<T>(x), wt = cast<T>(w), bt = cast<T>(b), dyt = cast<T>(dy);
  std::vector<T> y(ref.y.size(), T(7)), dx(ref.dx.size(), T(7)), dw(ref.dw.size(), T(7)),
      db(ref.db.size(), T(7));  // 7: stale values a kernel forgot to overwrite show up
  conv2d_forward<T>(g, xt.data(), wt.data(), with_bias ? bt.data() : nullptr, y.data());
  conv2d_backward_data<T>(g, dyt.data(), wt.data(), dx.data());
  conv2d_backward_filter<T>(g, xt.data(), dyt.data(), dw.data(), db.data());
  expect_close(y, ref.y, tol_y, "forward");
  expect_close(dx, ref.dx, tol_dx, "backward data");
  expect_close(dw, ref.dw, tol_dw, "backward filter");
  expect_close(db, ref.db, tol_dw, "bias gradient");
}

std::vector<Conv2dGeometry> conv_cases() {
  return {
      make(2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // 3x3 same padding, odd sizes
      make(3, 5, 9, 8, 6, 3, 2, 2, 1, 1, 0, 1, 1, 1),    // rectangular kernel, mixed stride
      make(2, 4, 11, 10, 3, 3, 3, 1, 2, 2, 2, 2, 2, 1),  // dilation 2 with padding 2
      make(3, 4, 6, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 2),    // 2 groups, stride 2
      make(2, 6, 5, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 6),    // depthwise
      make(5, 5, 6, 7, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1),    // pointwise (no im2col)
      make(2, 6, 5, 5, 4, 1, 1, 1, 1, 0, 0, 1, 1, 2),    // pointwise, grouped
      make(2, 4, 7, 6, 5, 1, 1, 2, 2, 0, 0, 1, 1, 1),    // 1x1 stride 2 (needs im2col)
      make(2, 3, 4, 4, 2, 6, 6, 1, 1, 1, 1, 1, 1, 1),    // kernel = padded input: 1x1 output
      make(1, 8, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1),   // one image: the GEMM is threaded
      make(3, 2, 5, 5, 3, 4, 4, 3, 3, 2, 2, 1, 1, 1),    // big padding and stride 3
      make(4, 32, 8, 8, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1),
      make(3, 3, 17, 16, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1),  // large image: one image per GEMM
      make(3, 4, 16, 16, 5, 1, 1, 1, 1, 0, 0, 1, 1,
           1),  // pointwise, one image per GEMM  // BigGAN-like block
  };
}

}  // namespace

TEST_CASE("conv2d kernels match the naive loops: float32 AVX2 and scalar sgemm") {
  for (Isa isa : {Isa::Avx2, Isa::Scalar}) {
    const Isa prev = set_active_isa(isa);
    INFO("isa " << isa_name(active_isa()));
    uint32_t seed = 10;
    for (const auto& g : conv_cases()) {
      check_conv<float>(g, true, seed);
      check_conv<float>(g, false, seed + 100);
      seed += 7;
    }
    set_active_isa(prev);
  }
}

// The direct stride-1 kernels (conv_direct.h), called directly so every case runs them whatever
// the im2col/direct heuristic picks: channel counts that leave 1, 2 or 3 channels after the
// 4-channel tiles (and K = 1, the single-channel tile), odd image sizes whose last pixel tile is
// partial, rectangular kernels, asymmetric and zero padding, dilation, padding wider than the
// kernel (forward and filter only: backward data needs pad <= dil*(R-1)), one image.
TEST_CASE("direct conv2d kernels match the naive loops: AVX2 and scalar") {
  const std::vector<Conv2dGeometry> cases = {
      make(3, 5, 9, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1),      // K = 7: 4 + 3
      make(2, 3, 11, 13, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // K = 6: 4 + 2
      make(2, 4, 8, 8, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1),      // K = 5: 4 + 1
      make(2, 32, 8, 8, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1),     // K = 1 (G's grayscale output)
      make(2, 32, 12, 12, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1),   // K = 3 (RGB output)
      make(2, 6, 10, 9, 8, 3, 2, 1, 1, 1, 0, 1, 1, 1),     // rectangular kernel, pad (1, 0)
      make(2, 4, 9, 11, 4, 3, 3, 1, 1, 0, 0, 1, 1, 1),     // valid convolution
      make(2, 3, 11, 10, 6, 3, 3, 1, 1, 2, 2, 2, 2, 1),    // dilation 2, pad 2
      make(2, 3, 9, 9, 4, 3, 3, 1, 1, 2, 1, 1, 1, 1),      // pad (2, 1) = dil*(R-1): the limit
      make(2, 3, 7, 8, 4, 2, 2, 1, 1, 2, 2, 1, 1, 1),      // pad 2 > dil*(R-1) = 1: no bwd data
      make(1, 7, 5, 5, 9, 5, 5, 1, 1, 2, 2, 1, 1, 1),      // 5x5, one image
      make(3, 32, 32, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1),  // BigGAN CPU block, long rows
      make(4, 32, 4, 4, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // 4x4 images: a third of the row is pad
  };
  for (Isa isa : {Isa::Avx2, Isa::Scalar}) {
    const Isa prev = set_active_isa(isa);
    uint32_t seed = 900;
    for (const auto& g : cases) {
      INFO("isa " << isa_name(active_isa()) << " N=" << g.N << " C=" << g.C << " H=" << g.H
                  << " W=" << g.W << " K=" << g.K << " R=" << g.R << " S=" << g.S
                  << " pad=" << g.pad_h << "," << g.pad_w << " dil=" << g.dil_h);
      REQUIRE(conv2d_direct_supports(g, ConvPass::Forward));
      const auto x = random_values(static_cast<size_t>(g.N * g.C * g.H * g.W), seed);
      const auto w = random_values(static_cast<size_t>(g.K * g.C * g.R * g.S), seed + 1);
      const auto b = random_values(static_cast<size_t>(g.K), seed + 2);
      const auto dy = random_values(static_cast<size_t>(g.N * g.K * g.P * g.Q), seed + 3);
      seed += 11;
      const smyrf::test::ConvReference ref = conv_reference(g, x, w, b, dy);
      const double eps = 1e-6;
      auto xt = cast<float>(x), wt = cast<float>(w), bt = cast<float>(b), dyt = cast<float>(dy);
      std::vector<float> y(ref.y.size(), 7.0f), dx(ref.dx.size(), 7.0f), dw(ref.dw.size(), 7.0f),
          db(ref.db.size(), 7.0f);
      conv2d_direct_forward(g, xt.data(), wt.data(), bt.data(), y.data());
      expect_close(y, ref.y, 8 * eps * (g.C * g.R * g.S + 2), "direct forward");
      conv2d_direct_backward_filter(g, xt.data(), dyt.data(), dw.data(), db.data());
      expect_close(dw, ref.dw, 8 * eps * (g.N * g.P * g.Q + 2), "direct backward filter");
      expect_close(db, ref.db, 8 * eps * (g.N * g.P * g.Q + 2), "direct bias gradient");
      const bool data_ok = g.pad_h <= g.dil_h * (g.R - 1) && g.pad_w <= g.dil_w * (g.S - 1);
      CHECK(conv2d_direct_supports(g, ConvPass::BackwardData) == data_ok);
      if (data_ok) {
        conv2d_direct_backward_data(g, dyt.data(), wt.data(), dx.data());
        expect_close(dx, ref.dx, 8 * eps * (g.K * g.R * g.S + 2), "direct backward data");
      }
    }
    set_active_isa(prev);
  }
}

TEST_CASE("direct conv2d is only offered for stride 1, one group and kernels above 1x1") {
  CHECK_FALSE(
      conv2d_direct_supports(make(2, 4, 8, 8, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1), ConvPass::Forward));
  CHECK_FALSE(
      conv2d_direct_supports(make(2, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2), ConvPass::Forward));
  CHECK_FALSE(
      conv2d_direct_supports(make(2, 4, 8, 8, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1), ConvPass::Forward));
  CHECK(conv2d_direct_applies(make(32, 32, 16, 16, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1),
                              ConvPass::BackwardFilter));
}

TEST_CASE("conv2d kernels match the naive loops: float64") {
  uint32_t seed = 500;
  for (const auto& g : conv_cases()) {
    check_conv<double>(g, true, seed);
    seed += 7;
  }
}

TEST_CASE("conv2d output size arithmetic") {
  CHECK(conv2d_out_size(32, 3, 1, 1, 1) == 32);
  CHECK(conv2d_out_size(7, 3, 2, 1, 1) == 4);
  CHECK(conv2d_out_size(11, 3, 1, 2, 2) == 11);
  CHECK(conv2d_out_size(4, 7, 1, 1, 1) == 0);  // kernel larger than the padded input
}

// --------------------------------------------------------------------------- pooling

namespace {
Pool2dGeometry pool(int64_t planes, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t sh,
                    int64_t sw, int64_t ph, int64_t pw) {
  Pool2dGeometry g;
  g.planes = planes, g.H = H, g.W = W, g.kh = kh, g.kw = kw;
  g.stride_h = sh, g.stride_w = sw, g.pad_h = ph, g.pad_w = pw;
  g.P = conv2d_out_size(H, kh, sh, ph, 1);
  g.Q = conv2d_out_size(W, kw, sw, pw, 1);
  return g;
}

// Visits every in-image cell of every output window.
template <typename F>
void for_each_window_cell(const Pool2dGeometry& g, F f) {
  for (int64_t pl = 0; pl < g.planes; ++pl)
    for (int64_t p = 0; p < g.P; ++p)
      for (int64_t q = 0; q < g.Q; ++q)
        for (int64_t i = 0; i < g.kh; ++i)
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t h = p * g.stride_h - g.pad_h + i, w = q * g.stride_w - g.pad_w + j;
            if (h < 0 || h >= g.H || w < 0 || w >= g.W) continue;
            f(pl, (pl * g.P + p) * g.Q + q, (pl * g.H + h) * g.W + w);
          }
}

std::vector<Pool2dGeometry> pool_cases() {
  return {pool(3, 8, 8, 2, 2, 2, 2, 0, 0),
          pool(2, 7, 9, 3, 3, 2, 2, 1, 1),
          pool(4, 5, 6, 3, 2, 1, 2, 1, 1),
          pool(1, 32, 32, 2, 2, 2, 2, 0, 0),
          pool(3, 6, 5, 4, 4, 3, 1, 2, 0),
          pool(2, 7, 9, 2, 2, 2, 2, 0, 0)};  // 2x2 fast path with an odd last row and column
}
}  // namespace

TEST_CASE("avg_pool2d forward and backward match the definition, with and without pad counting") {
  for (const auto& g : pool_cases()) {
    for (bool include_pad : {true, false}) {
      INFO("H=" << g.H << " W=" << g.W << " k=" << g.kh << "x" << g.kw << " pad=" << g.pad_h << ","
                << g.pad_w << " include_pad=" << include_pad);
      const auto x = random_values(static_cast<size_t>(g.planes * g.H * g.W), 3);
      const auto dy = random_values(static_cast<size_t>(g.planes * g.P * g.Q), 4);
      std::vector<double> count(dy.size(), 0.0), sum(dy.size(), 0.0), want_dx(x.size(), 0.0);
      for_each_window_cell(g,
                           [&](int64_t, int64_t o, int64_t i) { count[o] += 1, sum[o] += x[i]; });
      std::vector<double> want_y(dy.size());
      for (size_t o = 0; o < dy.size(); ++o) {
        const double d = include_pad ? static_cast<double>(g.kh * g.kw) : count[o];
        want_y[o] = sum[o] / d;
        count[o] = d;
      }
      for_each_window_cell(g,
                           [&](int64_t, int64_t o, int64_t i) { want_dx[i] += dy[o] / count[o]; });
      std::vector<float> y(dy.size()), dx(x.size(), 7.0f);
      auto xf = cast<float>(x), dyf = cast<float>(dy);
      avg_pool2d_forward<float>(g, xf.data(), y.data(), include_pad);
      avg_pool2d_backward<float>(g, dyf.data(), dx.data(), include_pad);
      expect_close(y, want_y, 1e-5, "avg forward");
      expect_close(dx, want_dx, 1e-5, "avg backward");
    }
  }
}

TEST_CASE("max_pool2d returns PyTorch-style argmax indices and routes gradients to them") {
  for (const auto& g : pool_cases()) {
    INFO("H=" << g.H << " W=" << g.W << " k=" << g.kh << "x" << g.kw << " pad=" << g.pad_h);
    const auto x = random_values(static_cast<size_t>(g.planes * g.H * g.W), 5);
    const auto dy = random_values(static_cast<size_t>(g.planes * g.P * g.Q), 6);
    std::vector<double> best(dy.size(), -1e300), want_dx(x.size(), 0.0);
    std::vector<int64_t> arg(dy.size(), -1);
    for_each_window_cell(g, [&](int64_t pl, int64_t o, int64_t i) {
      if (x[i] > best[o]) best[o] = x[i], arg[o] = i - pl * g.H * g.W;
    });
    for (size_t o = 0; o < dy.size(); ++o)
      want_dx[static_cast<int64_t>(o) / (g.P * g.Q) * g.H * g.W + arg[o]] += dy[o];
    std::vector<double> y(dy.size()), dx(x.size(), 7.0);
    std::vector<int64_t> idx(dy.size(), -5);
    max_pool2d_forward<double>(g, x.data(), y.data(), idx.data());
    max_pool2d_backward<double>(g, dy.data(), idx.data(), dx.data());
    expect_close(y, best, 0.0, "max values");
    CHECK(idx == arg);
    expect_close(dx, want_dx, 1e-12, "max backward");
  }
}

TEST_CASE("max_pool2d: ties keep the first maximum and NaN propagates") {
  const Pool2dGeometry g = pool(1, 2, 4, 2, 2, 2, 2, 0, 0);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {1, 3, 0, nan,  //
                                3, 2, 5, 9};
  std::vector<float> y(2);
  std::vector<int64_t> idx(2);
  max_pool2d_forward<float>(g, x.data(), y.data(), idx.data());
  CHECK(y[0] == 3.0f);
  CHECK(idx[0] == 1);  // first of the two 3s in scan order
  CHECK(std::isnan(y[1]));
  CHECK(idx[1] == 3);
}

TEST_CASE("upsample_nearest2d repeats pixels and its backward sums the blocks") {
  const int64_t planes = 3, H = 3, W = 5, fh = 2, fw = 3;
  const auto x = random_values(static_cast<size_t>(planes * H * W), 8);
  const auto dy = random_values(static_cast<size_t>(planes * H * fh * W * fw), 9);
  std::vector<double> want_y(dy.size()), want_dx(x.size(), 0.0);
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t oh = 0; oh < H * fh; ++oh)
      for (int64_t ow = 0; ow < W * fw; ++ow) {
        const int64_t o = (pl * H * fh + oh) * W * fw + ow, i = (pl * H + oh / fh) * W + ow / fw;
        want_y[o] = x[i];
        want_dx[i] += dy[o];
      }
  std::vector<double> y(dy.size()), dx(x.size(), 7.0);
  upsample_nearest2d_forward<double>(planes, H, W, fh, fw, x.data(), y.data());
  upsample_nearest2d_backward<double>(planes, H, W, fh, fw, dy.data(), dx.data());
  expect_close(y, want_y, 0.0, "upsample forward");
  expect_close(dx, want_dx, 1e-12, "upsample backward");
}

TEST_CASE("max_pool2d 2x2 / stride 2, float32: the AVX2 rows equal the scalar loop bit for bit") {
  if (!cpu_has_avx2_fma()) return;
  // odd H and W (a last row and column outside every window), Q = 18: two vector steps and a
  // tail; small integers for ties, NaN (first wins), -inf, and -0 gradients
  const Pool2dGeometry g = pool(3, 7, 37, 2, 2, 2, 2, 0, 0);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x(static_cast<size_t>(g.planes * g.H * g.W));
  std::mt19937 gen(3);
  for (auto& v : x) v = static_cast<float>(gen() % 5);
  for (size_t i = 0; i < x.size(); i += 11) x[i] = nan;
  for (size_t i = 5; i < x.size(); i += 13) x[i] = -inf;
  for (size_t i = 0; i < 2 * 37; ++i) x[i] = -inf;  // whole windows of -inf
  // windows with two NaNs (the first in window order is reported), in the vector body
  for (size_t w : {size_t(1 * 7 * 37 + 2 * 37 + 4), size_t(2 * 7 * 37 + 4 * 37 + 12)})
    x[w] = 1.f, x[w + 1] = nan, x[w + 37] = nan, x[w + 38] = 4.f;
  std::vector<float> dy(static_cast<size_t>(g.planes * g.P * g.Q));
  for (size_t i = 0; i < dy.size(); ++i)
    dy[i] = i % 7 == 0 ? -0.f : static_cast<float>(gen() % 9) - 4.f;
  std::vector<float> y[2], dx[2];
  std::vector<int64_t> idx[2];
  for (int v = 0; v < 2; ++v) {
    kernel_test::IsaGuard guard(v ? Isa::Avx2 : Isa::Scalar);
    y[v].assign(dy.size(), 5.f);
    idx[v].assign(dy.size(), -5);
    dx[v].assign(x.size(), 7.f);
    max_pool2d_forward<float>(g, x.data(), y[v].data(), idx[v].data());
    max_pool2d_backward<float>(g, dy.data(), idx[v].data(), dx[v].data());
  }
  CHECK(idx[0] == idx[1]);
  CHECK(std::memcmp(y[0].data(), y[1].data(), y[0].size() * 4) == 0);
  CHECK(std::memcmp(dx[0].data(), dx[1].data(), dx[0].size() * 4) == 0);
  // and the scalar loop's own rules, spot-checked: a NaN window reports its first NaN
  int nan_windows = 0;
  for (size_t o = 0; o < y[1].size(); ++o) nan_windows += std::isnan(y[1][o]);
  CHECK(nan_windows > 10);
  CHECK(idx[1][static_cast<size_t>(1 * g.P * g.Q + 1 * g.Q + 2)] == 2 * 37 + 5);
}

TEST_CASE(
    "conv2d bias gradient and batch-norm statistics: AVX2 plane sums equal the long-double sums") {
  // float32 planes go through avx2::sum_f32 / sum_sq_dev_f32 (four chains in double), the
  // scalar twin through one double chain: both within double rounding of the exact sums
  if (!cpu_has_avx2_fma()) return;
  using kernel_test::both;
  for (int64_t L :
       {int64_t{1}, int64_t{15}, int64_t{16}, int64_t{17}, int64_t{1024}, int64_t{1031}}) {
    CAPTURE(L);
    const int64_t N = 3, C = 5;
    std::vector<float> x = kernel_test::randn(static_cast<size_t>(N * C * L), 700 + L, 2.f);
    for (size_t i = 0; i < x.size(); i += 7) x[i] += 40.f;  // a large mean: the second pass matters
    std::vector<long double> sum(C, 0), mean(C), var(C, 0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t l = 0; l < L; ++l) sum[c] += x[(n * C + c) * L + l];
    for (int64_t c = 0; c < C; ++c) mean[c] = sum[c] / (N * L);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t l = 0; l < L; ++l) {
          const long double d = x[(n * C + c) * L + l] - mean[c];
          var[c] += d * d;
        }
    Conv2dGeometry g;
    g.N = N, g.K = C, g.P = 1, g.Q = L;
    both([&](bool vec) {
      CAPTURE(vec);
      std::vector<float> db(C), m(C), v(C);
      conv2d_backward_bias<float>(g, x.data(), db.data());
      batch_norm_stats<float>(x.data(), N, C, L, m.data(), v.data());
      for (int64_t c = 0; c < C; ++c) {
        CHECK(db[c] == doctest::Approx(static_cast<double>(sum[c])).epsilon(1e-6));
        CHECK(m[c] == doctest::Approx(static_cast<double>(mean[c])).epsilon(1e-6));
        CHECK(v[c] == doctest::Approx(static_cast<double>(var[c] / (N * L))).epsilon(1e-6));
      }
    });
  }
  // the AVX2 deviation sum alone, in double, against long double (body and tail, any shift)
  for (int64_t n : {int64_t{0}, int64_t{5}, int64_t{16}, int64_t{33}, int64_t{4099}}) {
    std::vector<float> x = kernel_test::randn(static_cast<size_t>(n), 800 + n, 3.f);
    for (double c : {0.0, 1.5, -1e3}) {
      long double want = 0;
      for (float e : x)
        want += (static_cast<long double>(e) - c) * (static_cast<long double>(e) - c);
      CHECK(avx2::sum_sq_dev_f32(x.data(), n, c) ==
            doctest::Approx(static_cast<double>(want)).epsilon(1e-13));
    }
  }
}

TEST_CASE("2x nearest upsample, float32: the AVX2 rows equal the scalar loops bit for bit") {
  if (!cpu_has_avx2_fma()) return;
  // W = 19: two vector steps and a tail; random values with -0 (blocks of -0: the backward's sums
  // start from +0), NaN and inf
  std::mt19937 gen(11);
  auto fill = [&](std::vector<float>& v) {
    for (size_t i = 0; i < v.size(); ++i) {
      const uint32_t r = gen() % 29;
      v[i] = r == 0   ? std::numeric_limits<float>::quiet_NaN()
             : r == 1 ? std::numeric_limits<float>::infinity()
             : r < 6  ? -0.f
                      : std::uniform_real_distribution<float>(-3.f, 3.f)(gen);
    }
  };
  const int64_t planes = 4, H = 5, W = 19;
  std::vector<float> u(static_cast<size_t>(planes * H * W)),
      du(static_cast<size_t>(planes * 4 * H * W));
  fill(u), fill(du);
  // whole blocks of -0 (rows 2h and 2h + 1 of an output plane, 2W floats apart)
  for (size_t r = 0; r + 4 * W < du.size(); r += 12 * W)
    du[r] = du[r + 1] = du[r + 2 * W] = du[r + 2 * W + 1] = -0.f;
  std::vector<float> uy[2], udx[2];
  for (int v = 0; v < 2; ++v) {
    kernel_test::IsaGuard guard(v ? Isa::Avx2 : Isa::Scalar);
    uy[v].assign(du.size(), 5.f);
    udx[v].assign(u.size(), 7.f);
    upsample_nearest2d_forward<float>(planes, H, W, 2, 2, u.data(), uy[v].data());
    upsample_nearest2d_backward<float>(planes, H, W, 2, 2, du.data(), udx[v].data());
  }
  CHECK(std::memcmp(uy[0].data(), uy[1].data(), uy[0].size() * 4) == 0);
  CHECK(std::memcmp(udx[0].data(), udx[1].data(), udx[0].size() * 4) == 0);
  // and the definitions, spot-checked: a copied pixel (row 1, column 7 of plane 0 is u[0][3]),
  // and blocks of -0 summed from +0
  CHECK(std::memcmp(&uy[1][static_cast<size_t>(2 * W + 7)], &u[3], 4) == 0);
  int plus_zero = 0, minus_zero = 0;
  for (float v : udx[1])
    if (v == 0.f) ++(std::signbit(v) ? minus_zero : plus_zero);
  CHECK(plus_zero > 0);
  CHECK(minus_zero == 0);
}
