// batch_norm on CUDA (kernels/cuda/batch_norm.cu) against the CPU op: training and evaluation,
// per-channel and per-sample (conditional) affine parameters, running statistics, (N, C) and
// (N, C, H, W) inputs, both float types, and the gradients of input, weight and bias. Passing
// on an NVIDIA H200 (2026-11-30).
#include <doctest/doctest.h>

#include <string>

#include "autograd/ops_conv.h"
#include "cuda_test_util.h"

using namespace smyrf;
using namespace smyrf::cuda_test;

TEST_CASE("cuda: batch_norm forward, running statistics and backward match the CPU") {
  struct Case {
    Shape x;
    bool per_sample, training;
  };
  const Case cases[] = {{{4, 3, 5, 7}, false, true},
                        {{4, 3, 5, 7}, true, true},
                        {{6, 5}, false, true},
                        {{3, 4, 2, 2}, false, false},
                        {{2, 6, 9, 1}, true, false}};
  for (DType dt : {kFloat32, kFloat64}) {
    const double tol = dt == kFloat32 ? 2e-5 : 1e-11;
    uint32_t seed = 60;
    for (const Case& c : cases) {
      const int64_t N = c.x[0], C = c.x[1];
      const Shape affine = c.per_sample ? Shape{N, C} : Shape{C};
      const std::string what = shape_str(c.x) + (c.per_sample ? " per-sample" : "") +
                               (c.training ? " train " : " eval ") + dtype_name(dt);
      Tensor x = rnd(c.x, seed++, dt);
      x = x * 3.0 + 5.0;  // a channel mean far from 0
      const Tensor w = rnd(affine, seed++, dt, 0.5, 1.5), b = rnd(affine, seed++, dt);
      const Tensor rm = rnd({C}, seed++, dt), rv = rnd({C}, seed++, dt, 0.5, 2.0);
      Tensor rmc = rm.clone(), rvc = rv.clone(), rmg = cu(rm), rvg = cu(rv);
      Tensor xc = leaf(x), wc = leaf(w), bc = leaf(b);
      Tensor xg = leaf(cu(x)), wg = leaf(cu(w)), bg = leaf(cu(b));
      Tensor yc = batch_norm(xc, rmc, rvc, wc, bc, c.training, 0.1, 1e-5);
      Tensor yg = batch_norm(xg, rmg, rvg, wg, bg, c.training, 0.1, 1e-5);
      const Tensor up = rnd(c.x, seed++, dt);
      sum(yc * up).backward();
      sum(yg * cu(up)).backward();
      check_close(yg, yc, tol, tol, what + ": y");
      check_close(rmg, rmc, tol, tol, what + ": running mean");
      check_close(rvg, rvc, tol, tol, what + ": running var");
      check_close(xg.grad(), xc.grad(), tol * 10, tol * 10, what + ": dx");
      check_close(wg.grad(), wc.grad(), tol * 10, tol * 10, what + ": dw");
      check_close(bg.grad(), bc.grad(), tol * 10, tol * 10, what + ": db");
    }
  }
}
