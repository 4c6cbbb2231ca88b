// Winograd F(4x4, 3x3) convolution (kernels/cpu/winograd.h) against a naive double-precision
// convolution: all three passes, AVX2 and scalar tile transforms, odd image sizes (partial edge
// tiles), padding 0, 1, 2 and asymmetric, channel counts that are not multiples of 8, tile counts
// that are not multiples of the 8-tile lane groups, more tiles than one block, one image.
//
// Tolerance. Winograd rounds differently from the direct sum: the input transform scales a patch
// in [-1, 1] by up to 25 (B^T d B), the output transform by up to 81 (A^T m A) and the filter
// transform by 1/576..1, so float32 errors are not a few ulps of each output but ~1e-7 times
// those scales. Measured, relative to the largest |reference| of the pass: 1e-6..1e-5 (up to
// 1e-5 at 128 channels) for all three passes, AVX2 and scalar; the checks allow 5e-5 (a wrong
// index or a missed tile gives O(1)). The tile transforms themselves are checked against the
// matrix definitions in double, and AVX2 against scalar, to 1e-5 relative.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/conv.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/winograd.h"
#include "tests/kernels/conv_reference.h"

using namespace smyrf::kernels::cpu;

namespace {

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

Conv2dGeometry make(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t ph, int64_t pw) {
  Conv2dGeometry g;
  g.N = N, g.C = C, g.H = H, g.W = W, g.K = K, g.R = 3, g.S = 3;
  g.pad_h = ph, g.pad_w = pw;
  g.P = conv2d_out_size(H, 3, 1, ph, 1);
  g.Q = conv2d_out_size(W, 3, 1, pw, 1);
  return g;
}

using smyrf::test::conv_reference;

// Largest |got - want| relative to the largest |want|.
double relative_error(const std::vector<float>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::fabs(double(got[i]) - want[i]);
    if (!(e <= worst)) worst = e;  // NaN propagates
    scale = std::max(scale, std::fabs(want[i]));
  }
  return worst / std::max(scale, 1e-30);
}

}  // namespace

TEST_CASE("winograd F(4x4,3x3) conv2d matches the naive convolution: AVX2 and scalar") {
  const std::vector<Conv2dGeometry> cases = {
      make(2, 5, 9, 7, 7, 1, 1),    // odd sizes: partial tiles at the bottom and right
      make(3, 9, 4, 4, 10, 1, 1),   // 4x4 images: one tile each, 3 of 8 lanes used
      make(1, 3, 11, 13, 4, 0, 0),  // valid convolution, one image
      make(2, 4, 6, 5, 3, 2, 2),    // padding 2 (backward data pads by 0)
      make(2, 6, 7, 10, 5, 1, 0),   // asymmetric padding
      make(2, 6, 10, 7, 5, 0, 2),
      make(5, 17, 8, 8, 19, 1, 1),    // 20 tiles: the threads' blocks end mid lane group
      make(3, 8, 32, 30, 9, 1, 1),    // 192 tiles: three 64-tile blocks
      make(2, 64, 16, 16, 72, 1, 1),  // wide layers (the sgemm paths the model uses)
      make(4, 128, 4, 4, 128, 1, 1),  // BigGAN's 4x4 block
  };
  for (Isa isa : {Isa::Avx2, Isa::Scalar}) {
    const Isa prev = set_active_isa(isa);
    uint32_t seed = 300;
    for (const auto& g : cases) {
      INFO("isa " << isa_name(active_isa()) << " N=" << g.N << " C=" << g.C << " H=" << g.H
                  << " W=" << g.W << " K=" << g.K << " pad=" << g.pad_h << "," << g.pad_w);
      REQUIRE(conv2d_winograd_supports(g));
      const auto x = random_floats(static_cast<size_t>(g.N * g.C * g.H * g.W), seed);
      const auto w = random_floats(static_cast<size_t>(g.K * g.C * 9), seed + 1);
      const auto b = random_floats(static_cast<size_t>(g.K), seed + 2);
      const auto dy = random_floats(static_cast<size_t>(g.N * g.K * g.P * g.Q), seed + 3);
      seed += 13;
      const smyrf::test::ConvReference ref = conv_reference(g, x, w, b, dy);
      std::vector<float> y(ref.y.size(), 7.0f), dx(ref.dx.size(), 7.0f), dw(ref.dw.size(), 7.0f),
          db(ref.db.size(), 7.0f);  // 7: stale values a kernel forgot to overwrite show up
      conv2d_winograd_forward(g, x.data(), w.data(), b.data(), y.data());
      conv2d_winograd_backward_data(g, dy.data(), w.data(), dx.data());
      conv2d_winograd_backward_filter(g, x.data(), dy.data(), dw.data(), db.data());
      const double ey = relative_error(y, ref.y), edx = relative_error(dx, ref.dx),
                   edw = relative_error(dw, ref.dw), edb = relative_error(db, ref.db);
      MESSAGE("rel err fwd " << ey << " bwd data " << edx << " bwd filter " << edw);
      CHECK(ey <= 5e-5);
      CHECK(edx <= 5e-5);
      CHECK(edw <= 5e-5);
      CHECK(edb <= 1e-5);
    }
    set_active_isa(prev);
  }
}

namespace {
// The F(4x4, 3x3) matrices, for the definitions the tile transforms are checked against.
constexpr double kBT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                              {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
constexpr double kAT[4][6] = {
    {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
constexpr double kG[6][3] = {{1.0 / 4, 0, 0},
                             {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                             {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                             {1.0 / 24, 1.0 / 12, 1.0 / 6},
                             {1.0 / 24, -1.0 / 12, 1.0 / 6},
                             {0, 0, 1}};

void expect_near_rel(float got, double want, double scale, const char* what) {
  INFO(what << ": got " << got << " want " << want);
  CHECK(std::fabs(got - want) <= 1e-5 * scale);
}
}  // namespace

TEST_CASE("winograd tile transforms equal their matrix definitions: AVX2 and scalar") {
  const int64_t ld = 11;  // a leading dimension that is neither 8 nor aligned
  const auto d = random_floats(36 * 8, 41);
  const auto m = random_floats(36 * ld, 42);
  const auto dy = random_floats(16 * 8, 43);
  using Input = void (*)(const float*, float*, int64_t);
  using Output = void (*)(const float*, int64_t, float, float*);
  struct Variant {
    const char* name;
    Input input;
    Output output;
    Input grad_output;
  };
  const Variant variants[] = {
      {"scalar", winograd::input_transform_scalar, winograd::output_transform_scalar,
       winograd::grad_output_transform_scalar},
      {"avx2", winograd::input_transform_avx2, winograd::output_transform_avx2,
       winograd::grad_output_transform_avx2}};
  for (const Variant& var : variants) {
    if (std::string(var.name) == "avx2" && !cpu_has_avx2_fma()) continue;
    INFO("variant " << var.name);
    std::vector<float> v(36 * ld, 9.0f), y(16 * 8, 9.0f), dm(36 * ld, 9.0f);
    var.input(d.data(), v.data(), ld);
    var.output(m.data(), ld, 0.5f, y.data());
    var.grad_output(dy.data(), dm.data(), ld);
    for (int l = 0; l < 8; ++l) {
      for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 6; ++j) {
          double s = 0;  // (B^T d B)[i][j]
          for (int a = 0; a < 6; ++a)
            for (int b = 0; b < 6; ++b) s += kBT[i][a] * d[(a * 6 + b) * 8 + l] * kBT[j][b];
          expect_near_rel(v[(i * 6 + j) * ld + l], s, 100, "input transform");
          double t = 0;  // (A dy A^T)[i][j]
          for (int p = 0; p < 4; ++p)
            for (int q = 0; q < 4; ++q) t += kAT[p][i] * dy[(p * 4 + q) * 8 + l] * kAT[q][j];
          expect_near_rel(dm[(i * 6 + j) * ld + l], t, 100, "grad output transform");
        }
      for (int p = 0; p < 4; ++p)
        for (int q = 0; q < 4; ++q) {
          double s = 0.5;  // (A^T m A)[p][q] + bias
          for (int i = 0; i < 6; ++i)
            for (int j = 0; j < 6; ++j) s += kAT[p][i] * m[(i * 6 + j) * ld + l] * kAT[q][j];
          expect_near_rel(y[(p * 4 + q) * 8 + l], s, 100, "output transform");
        }
    }
    // lanes past the 8 a call owns stay untouched
    CHECK(v[8] == 9.0f);
    CHECK(dm[ld - 1] == 9.0f);
  }
}

TEST_CASE("winograd filter transform and its adjoint equal G g G^T and G^T du G") {
  const int64_t K = 3, C = 5, KC = K * C;
  const auto w = random_floats(static_cast<size_t>(KC * 9), 51);
  const auto du = random_floats(static_cast<size_t>(36 * KC), 52);
  std::vector<float> u(static_cast<size_t>(36 * KC)), dw(static_cast<size_t>(KC * 9));
  winograd::filter_transform(w.data(), K, C, u.data());
  winograd::filter_transform_adjoint(du.data(), K, C, dw.data());
  for (int64_t kc = 0; kc < KC; ++kc) {
    for (int i = 0; i < 6; ++i)
      for (int j = 0; j < 6; ++j) {
        double s = 0;
        for (int r = 0; r < 3; ++r)
          for (int c = 0; c < 3; ++c) s += kG[i][r] * w[kc * 9 + r * 3 + c] * kG[j][c];
        expect_near_rel(u[(i * 6 + j) * KC + kc], s, 1, "filter transform");
      }
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) {
        double s = 0;
        for (int i = 0; i < 6; ++i)
          for (int j = 0; j < 6; ++j) s += kG[i][r] * du[(i * 6 + j) * KC + kc] * kG[j][c];
        expect_near_rel(dw[kc * 9 + r * 3 + c], s, 1, "filter transform adjoint");
      }
  }
}

TEST_CASE("winograd conv2d is only offered for 3x3, stride 1, no dilation, one group, pad <= 2") {
  CHECK(conv2d_winograd_supports(make(2, 4, 8, 8, 4, 1, 1)));
  CHECK(conv2d_winograd_supports(make(2, 4, 8, 8, 4, 2, 0)));
  Conv2dGeometry g = make(2, 4, 8, 8, 4, 3, 3);
  CHECK_FALSE(conv2d_winograd_supports(g));  // pad 3: backward data would need negative padding
  g = make(2, 4, 8, 8, 4, 1, 1);
  g.stride_h = 2, g.P = conv2d_out_size(8, 3, 2, 1, 1);
  CHECK_FALSE(conv2d_winograd_supports(g));
  g = make(2, 4, 8, 8, 4, 1, 1);
  g.groups = 2;
  CHECK_FALSE(conv2d_winograd_supports(g));
  g = make(2, 4, 8, 8, 4, 1, 1);
  g.dil_w = 2, g.Q = conv2d_out_size(8, 3, 1, 1, 2);
  CHECK_FALSE(conv2d_winograd_supports(g));
  g = make(2, 4, 8, 8, 4, 1, 1);
  g.R = g.S = 5, g.P = g.Q = 6;
  CHECK_FALSE(conv2d_winograd_supports(g));
  // BigGAN's wide blocks take it, thin image layers do not
  CHECK(conv2d_winograd_applies(make(32, 128, 16, 16, 128, 1, 1), ConvPass::Forward));
  CHECK(conv2d_winograd_applies(make(32, 32, 8, 8, 32, 1, 1), ConvPass::BackwardFilter));
  CHECK_FALSE(conv2d_winograd_applies(make(32, 32, 32, 32, 32, 1, 1), ConvPass::BackwardFilter));
  CHECK_FALSE(conv2d_winograd_applies(make(32, 128, 32, 32, 3, 1, 1), ConvPass::Forward));
}

TEST_CASE("winograd patch gather: AVX2 equals scalar, zero outside the plane and in empty lanes") {
  // 5 x 7 and 9 x 37 planes: patches hanging over every edge (origins -2..+4), fully outside,
  // inside, and empty lanes; half the trials are runs of 8 side-by-side tiles of one plane (the
  // AVX2 deinterleave path), the others random lanes. The scalar twin reads element by element
  // with explicit bounds.
  std::mt19937 gen(5);
  for (int trial = 0; trial < 400; ++trial) {
    const bool wide = trial % 4 >= 2, run = trial % 2 == 1;
    const int64_t H = wide ? 9 : 5, W = wide ? 37 : 7;
    const auto planes = random_floats(static_cast<size_t>(3 * H * W), 77 + trial);
    winograd::PatchLanes p;
    for (int l = 0; l < 8; ++l) {
      p.plane[l] = gen() % 7 == 0 ? nullptr : planes.data() + (gen() % 3) * H * W;
      p.h0[l] = static_cast<int64_t>(gen() % (H + 8)) - 7;  // above, across, inside, below
      p.w0[l] = static_cast<int64_t>(gen() % (W + 8)) - 7;
      if (run && l == 0) p.plane[0] = planes.data() + (gen() % 3) * H * W;
      if (run && l > 0) {  // tile l beside tile l - 1
        p.plane[l] = p.plane[0];
        p.h0[l] = p.h0[0];
        p.w0[l] = p.w0[0] + 4 * l;
      }
    }
    std::vector<float> want(36 * 8, 9.0f), got(36 * 8, 7.0f);
    winograd::gather_patches_scalar(p, H, W, want.data());
    if (!cpu_has_avx2_fma()) continue;
    winograd::gather_patches_avx2(p, H, W, got.data());
    CAPTURE(trial);
    CHECK(got == want);
    for (int l = 0; l < 8; ++l)  // spot-check the scalar twin's definition
      for (int a = 0; a < 6; ++a)
        for (int b = 0; b < 6; ++b) {
          const int64_t h = p.h0[l] + a, w = p.w0[l] + b;
          const bool in = p.plane[l] && h >= 0 && h < H && w >= 0 && w < W;
          REQUIRE(want[(6 * a + b) * 8 + l] == (in ? p.plane[l][h * W + w] : 0.0f));
        }
  }
}

TEST_CASE(
    "winograd tile scatter and gather: AVX2 equals scalar for full, partial and empty lanes") {
  // 8 lanes of 4x4 output tiles into a 10 x 14 image: 8 distinct cells of its 3 x 4 tile grid,
  // so the bottom row of tiles is cut to 2 rows and the right column to 2 columns; empty lanes;
  // elements no tile covers keep their sentinel.
  const auto y = random_floats(16 * 8, 91);
  std::mt19937 gen(7);
  const int64_t H = 10, W = 14;
  for (int trial = 0; trial < 100; ++trial) {
    std::vector<int> cells(12);
    for (int c = 0; c < 12; ++c) cells[c] = c;
    std::shuffle(cells.begin(), cells.end(), gen);
    std::vector<float> want(H * W, -3.0f), got(H * W, -3.0f);
    winograd::TileLanes tw, tg;
    for (int l = 0; l < 8; ++l) {
      const int64_t oh = 4 * (cells[l] / 4), ow = 4 * (cells[l] % 4);
      const bool empty = gen() % 6 == 0;
      tw.np[l] = tg.np[l] = static_cast<int>(std::min<int64_t>(4, H - oh));
      tw.nq[l] = tg.nq[l] = static_cast<int>(std::min<int64_t>(4, W - ow));
      tw.origin[l] = empty ? nullptr : want.data() + oh * W + ow;
      tg.origin[l] = empty ? nullptr : got.data() + oh * W + ow;
    }
    winograd::scatter_tiles_scalar(y.data(), tw, W);
    // and back: the gather of the same lanes reads each tile's own elements, zeros elsewhere
    winograd::ConstTileLanes cw;
    for (int l = 0; l < 8; ++l) {
      cw.origin[l] = tw.origin[l];
      cw.np[l] = tw.np[l];
      cw.nq[l] = tw.nq[l];
    }
    std::vector<float> back_want(16 * 8, 5.0f), back_got(16 * 8, 6.0f);
    winograd::gather_tiles_scalar(cw, W, back_want.data());
    for (int l = 0; l < 8; ++l)
      for (int p = 0; p < 4; ++p)
        for (int q = 0; q < 4; ++q) {
          const bool in = cw.origin[l] && p < cw.np[l] && q < cw.nq[l];
          REQUIRE(back_want[(p * 4 + q) * 8 + l] == (in ? y[(p * 4 + q) * 8 + l] : 0.0f));
        }
    if (!cpu_has_avx2_fma()) continue;
    winograd::scatter_tiles_avx2(y.data(), tg, W);
    winograd::gather_tiles_avx2(cw, W, back_got.data());
    CAPTURE(trial);
    CHECK(got == want);
    CHECK(back_got == back_want);
  }
}
