// Gradient checks: conv2d, pooling, nearest upsampling, batch norm (autograd/ops_conv.h).
#include "autograd/ops_conv.h"
#include "tests/gradcheck/gradcheck_cases.h"

using namespace smyrf;
using Ins = std::vector<Tensor>;

SMYRF_GRADCHECK_CASE("conv2d", "3x3 same padding with bias") {
  gc::check(
      [](const Ins& in) { return conv2d(in[0], in[1], in[2], 1, 1); },
      {gc::randn64({2, 3, 5, 4}, 900), gc::randn64({4, 3, 3, 3}, 901), gc::randn64({4}, 902)});
}
SMYRF_GRADCHECK_CASE("conv2d", "stride 2 dilation 2 groups 2 on a transposed input") {
  gc::check(
      [](const Ins& in) {
        return conv2d(in[0], in[1], in[2], {2, 1}, {2, 1}, {2, 1}, 2);
      },
      {gc::transposed({2, 4, 6, 7}, 903), gc::randn64({6, 2, 3, 2}, 904), gc::randn64({6}, 905)});
}
SMYRF_GRADCHECK_CASE("conv2d", "pointwise without bias") {
  gc::check([](const Ins& in) { return conv2d(in[0], in[1]); },
            {gc::randn64({3, 4, 3, 3}, 906), gc::randn64({2, 4, 1, 1}, 907)});
}
SMYRF_GRADCHECK_CASE("conv2d", "weight only with a constant input") {
  gc::check([](const Ins& in) { return conv2d(in[0], in[1], Tensor(), 2, 1); },
            {gc::randn64({2, 2, 5, 5}, 908, false), gc::randn64({3, 2, 3, 3}, 909)});
}

SMYRF_GRADCHECK_CASE("avg_pool2d", "2x2 stride 2") {
  gc::check([](const Ins& in) { return avg_pool2d(in[0], 2); }, {gc::randn64({2, 3, 4, 6}, 910)});
}
SMYRF_GRADCHECK_CASE("avg_pool2d", "3x3 stride 2 padding 1 without counting the padding") {
  gc::check(
      [](const Ins& in) {
        return avg_pool2d(in[0], {3, 3}, {2, 2}, {1, 1}, false);
      },
      {gc::strided({2, 2, 5, 5}, 911)});
}

SMYRF_GRADCHECK_CASE("max_pool2d", "2x2 stride 2 on distinct values") {
  gc::check([](const Ins& in) { return max_pool2d(in[0], 2); }, {gc::distinct({2, 2, 4, 6}, 912)});
}
SMYRF_GRADCHECK_CASE("max_pool2d", "3x3 stride 2 padding 1 with overlapping windows") {
  gc::check(
      [](const Ins& in) {
        return max_pool2d(in[0], {3, 3}, {2, 2}, {1, 1});
      },
      {gc::distinct({1, 3, 5, 5}, 913)});
}

SMYRF_GRADCHECK_CASE("upsample_nearest2d", "factor 2") {
  gc::check([](const Ins& in) { return upsample_nearest2d(in[0], 2); },
            {gc::randn64({2, 3, 3, 4}, 914)});
}
SMYRF_GRADCHECK_CASE("upsample_nearest2d", "factors 3 and 1 on a transposed input") {
  gc::check([](const Ins& in) { return upsample_nearest2d(in[0], 3, 1); },
            {gc::transposed({1, 2, 3, 4}, 915)});
}

SMYRF_GRADCHECK_CASE("batch_norm", "training with per-channel affine and running stats") {
  Tensor rm = zeros({3}, kFloat64), rv = ones({3}, kFloat64);
  gc::check(
      [rm, rv](const Ins& in) { return batch_norm(in[0], rm, rv, in[1], in[2], true, 0.1, 1e-5); },
      {gc::randn64({4, 3, 2, 3}, 916), gc::randn64({3}, 917), gc::randn64({3}, 918)});
}
SMYRF_GRADCHECK_CASE("batch_norm", "training with per-sample affine (conditional batch norm)") {
  gc::check(
      [](const Ins& in) {
        return batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true, 0.1, 1e-5);
      },
      {gc::randn64({3, 2, 3, 3}, 919), gc::randn64({3, 2}, 920), gc::randn64({3, 2}, 921)});
}
SMYRF_GRADCHECK_CASE("batch_norm", "training without affine on (N C) input") {
  gc::check(
      [](const Ins& in) { return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true); },
      {gc::randn64({5, 3}, 922)});
}
SMYRF_GRADCHECK_CASE("batch_norm", "evaluation with running statistics") {
  Tensor rm = gc::randn64({3}, 923, false), rv = gc::uniform64({3}, 0.5, 2.0, 924, false);
  gc::check([rm, rv](const Ins& in) { return batch_norm(in[0], rm, rv, in[1], in[2], false); },
            {gc::randn64({2, 3, 2, 2}, 925), gc::randn64({3}, 926), gc::randn64({3}, 927)});
}
