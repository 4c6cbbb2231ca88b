// conv2d on CUDA (cuDNN) against the CPU op (im2col + our GEMM): output and the gradients of
// input, weight and bias through autograd, over strides, padding, dilation, groups and 1x1
// kernels, float32 and float64. Runs only with a GPU (exit 77 = skipped otherwise). All pass on an
// NVIDIA H200 (first GPU run, 2026-11-28).
#include <doctest/doctest.h>

#include "autograd/ops_conv.h"
#include "cuda_test_util.h"

using namespace smyrf;
using namespace smyrf::cuda_test;

TEST_CASE("cuda: conv2d forward and backward match the CPU") {
  struct Case {
    int64_t N, C, H, W, K, R, stride, pad, dil, groups;
  };
  const Case cases[] = {{2, 3, 9, 11, 5, 3, 1, 1, 1, 1},  {3, 8, 16, 16, 16, 3, 2, 1, 1, 1},
                        {2, 8, 12, 12, 8, 3, 1, 2, 2, 1}, {2, 8, 7, 7, 12, 3, 1, 1, 1, 4},
                        {4, 16, 8, 8, 32, 1, 1, 0, 1, 1}, {1, 4, 5, 5, 6, 5, 1, 2, 1, 2}};
  for (DType dt : {kFloat32, kFloat64}) {
    const double rtol = dt == kFloat32 ? 1e-4 : 1e-10, atol = dt == kFloat32 ? 1e-4 : 1e-11;
    uint32_t seed = 1;
    for (const Case& c : cases) {
      const Tensor x = rnd({c.N, c.C, c.H, c.W}, seed++, dt);
      const Tensor w = rnd({c.K, c.C / c.groups, c.R, c.R}, seed++, dt, -0.5, 0.5);
      const Tensor b = rnd({c.K}, seed++, dt);
      Tensor xc = leaf(x), wc = leaf(w), bc = leaf(b);
      Tensor yc = conv2d(xc, wc, bc, c.stride, c.pad, c.dil, c.groups);
      const Tensor up = rnd(yc.shape(), seed++, dt);
      sum(yc * up).backward();
      Tensor xg = leaf(cu(x)), wg = leaf(cu(w)), bg = leaf(cu(b));
      Tensor yg = conv2d(xg, wg, bg, c.stride, c.pad, c.dil, c.groups);
      sum(yg * cu(up)).backward();
      const std::string what = "conv N" + std::to_string(c.N) + " C" + std::to_string(c.C) + " K" +
                               std::to_string(c.K) + " R" + std::to_string(c.R) + " " +
                               dtype_name(dt);
      check_close(yg, yc, rtol, atol, what + ": y");
      check_close(xg.grad(), xc.grad(), rtol, atol, what + ": dx");
      check_close(wg.grad(), wc.grad(), rtol * 10, atol * 10, what + ": dw");
      check_close(bg.grad(), bc.grad(), rtol * 10, atol * 10, what + ": db");
    }
  }
}
