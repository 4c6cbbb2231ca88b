// Pooling and nearest upsampling on CUDA (kernels/cuda/pool.cu) against the CPU ops: outputs,
// max-pool indices and the input gradients through autograd, over kernels, strides, padding,
// count_include_pad, overlapping windows (max-pool gradients that accumulate), NaN inputs and
// both float types. Passing on an NVIDIA H200 (2026-11-30).
#include <doctest/doctest.h>

#include <limits>
#include <string>

#include "autograd/ops_conv.h"
#include "cuda_test_util.h"

using namespace smyrf;
using namespace smyrf::cuda_test;

TEST_CASE("cuda: avg_pool2d, max_pool2d and upsample_nearest2d match the CPU") {
  struct Case {
    int64_t N, C, H, W, k, s, pad;
  };
  const Case cases[] = {{2, 3, 8, 8, 2, 2, 0},  {2, 4, 9, 11, 3, 2, 1}, {1, 5, 7, 6, 3, 1, 1},
                        {3, 2, 13, 5, 2, 1, 0}, {2, 2, 6, 9, 4, 3, 2},  {1, 1, 1, 1, 1, 1, 0}};
  for (DType dt : {kFloat32, kFloat64}) {
    const double tol = dt == kFloat32 ? 1e-6 : 1e-14;
    uint32_t seed = 40;
    for (const Case& c : cases)
      for (bool cip : {false, true}) {
        const std::string what = "N" + std::to_string(c.N) + " H" + std::to_string(c.H) + " W" +
                                 std::to_string(c.W) + " k" + std::to_string(c.k) + " s" +
                                 std::to_string(c.s) + " p" + std::to_string(c.pad) +
                                 (cip ? " cip " : " ") + dtype_name(dt);
        Tensor x = rnd({c.N, c.C, c.H, c.W}, seed++, dt);
        Tensor xc = leaf(x), xg = leaf(cu(x));
        Tensor ac = avg_pool2d(xc, {c.k, c.k}, {c.s, c.s}, {c.pad, c.pad}, cip);
        Tensor ag = avg_pool2d(xg, {c.k, c.k}, {c.s, c.s}, {c.pad, c.pad}, cip);
        auto [mc, ic] = max_pool2d_with_indices(xc, {c.k, c.k}, {c.s, c.s}, {c.pad, c.pad});
        auto [mg, ig] = max_pool2d_with_indices(xg, {c.k, c.k}, {c.s, c.s}, {c.pad, c.pad});
        Tensor uc = upsample_nearest2d(xc, c.k, c.s), ug = upsample_nearest2d(xg, c.k, c.s);
        const Tensor wa = rnd(ac.shape(), seed++, dt), wm = rnd(mc.shape(), seed++, dt),
                     wu = rnd(uc.shape(), seed++, dt);
        (sum(ac * wa) + sum(mc * wm) + sum(uc * wu)).backward();
        (sum(ag * cu(wa)) + sum(mg * cu(wm)) + sum(ug * cu(wu))).backward();
        check_close(ag, ac, tol, tol, what + ": avg");
        check_close(mg, mc, 0, 0, what + ": max");
        CHECK(values_of(ig) == values_of(ic));
        check_close(ug, uc, 0, 0, what + ": upsample");
        check_close(xg.grad(), xc.grad(), tol * 10, tol * 10, what + ": dx");
      }
  }
}

TEST_CASE("cuda: max_pool2d keeps the CPU's first NaN and first maximum") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // one plane of 4 x 4: ties (first maximum wins) and a NaN after a larger value
  const Tensor x =
      from_vector<float>({1, 3, 3, 0, 2, 3, 0, 0, 5, nan, 1, 1, 7, 2, 1, 9}, {1, 1, 4, 4});
  auto [mc, ic] = max_pool2d_with_indices(x, {2, 2}, {2, 2}, {0, 0});
  auto [mg, ig] = max_pool2d_with_indices(cu(x), {2, 2}, {2, 2}, {0, 0});
  check_close(mg, mc, 0, 0, "max with ties and NaN");
  CHECK(values_of(ig) == values_of(ic));
}
