// Gradient checks: reductions (several dims, with and without keepdim), linear algebra and the
// composite statistics built from them.
#include <cmath>
#include <limits>

#include "tests/gradcheck/gradcheck_cases.h"

using namespace smyrf;
using Ins = std::vector<Tensor>;

// ---------------------------------------------------------------- sum / mean
SMYRF_GRADCHECK_CASE("sum", "all dims to a scalar") {
  gc::check([](const Ins& in) { return sum(in[0]); }, {gc::randn64({2, 3, 4}, 100)});
}
SMYRF_GRADCHECK_CASE("sum", "two dims without keepdim") {
  gc::check([](const Ins& in) { return sum(in[0], {0, 2}); }, {gc::randn64({2, 3, 4}, 101)});
}
SMYRF_GRADCHECK_CASE("sum", "two negative dims with keepdim") {
  gc::check([](const Ins& in) { return in[0].sum({-1, -3}, true); }, {gc::randn64({2, 3, 4}, 102)});
}
SMYRF_GRADCHECK_CASE("sum", "strided input over its last dim") {
  gc::check([](const Ins& in) { return sum(in[0], {1}); }, {gc::strided({3, 4}, 103)});
}
SMYRF_GRADCHECK_CASE("sum", "0-d input") {
  gc::check([](const Ins& in) { return sum(in[0]) * 3.0; }, {gc::randn64({}, 104)});
}
SMYRF_GRADCHECK_CASE("mean", "two dims with keepdim") {
  gc::check([](const Ins& in) { return mean(in[0], {0, 1}, true); }, {gc::randn64({3, 2, 4}, 105)});
}
SMYRF_GRADCHECK_CASE("mean", "two dims without keepdim over a transposed input") {
  gc::check([](const Ins& in) { return in[0].mean({0, 2}); }, {gc::transposed({2, 3, 4}, 106)});
}
SMYRF_GRADCHECK_CASE("mean", "all dims of an expanded input") {
  gc::check([](const Ins& in) { return mean(in[0]); }, {gc::expanded({3, 4}, 0, 107)});
}

// ---------------------------------------------------------------- amax / amin
SMYRF_GRADCHECK_CASE("amax", "distinct values over two dims") {
  gc::check([](const Ins& in) { return amax(in[0], {0, 2}); }, {gc::distinct({3, 2, 4}, 110)});
}
SMYRF_GRADCHECK_CASE("amax", "keepdim over the last dim") {
  gc::check([](const Ins& in) { return amax(in[0], {-1}, true); }, {gc::distinct({4, 5}, 111)});
}
SMYRF_GRADCHECK_CASE("amax", "pairwise ties share the gradient") {
  // each row has its maximum twice: the even split (1/2 each) is what central differences
  // measure at a two-way tie, so this checks the tie rule and not just the untied path
  std::vector<double> v = {0.5, 1.5, -0.3, 1.5, /**/ 2.0, -1.0, 2.0, 0.1};
  Tensor x = from_vector(v, {2, 4}, TensorOptions(DType::Float64).set_requires_grad());
  gc::check([](const Ins& in) { return amax(in[0], {1}); }, {x});
}
SMYRF_GRADCHECK_CASE("amin", "distinct values over all dims") {
  gc::check([](const Ins& in) { return amin(in[0]); }, {gc::distinct({3, 4}, 112)});
}
SMYRF_GRADCHECK_CASE("amin", "pairwise ties over two dims with keepdim") {
  std::vector<double> v = {0.4, -2.0, 0.9, -2.0, 1.0, 3.0};
  Tensor x = from_vector(v, {1, 2, 3}, TensorOptions(DType::Float64).set_requires_grad());
  gc::check([](const Ins& in) { return amin(in[0], {1, 2}, true); }, {x});
}

SMYRF_GRADCHECK_CASE("max_dim", "values of max along a dim") {
  gc::check([](const Ins& in) { return max(in[0], 1).first; }, {gc::distinct({3, 4}, 113)});
}
SMYRF_GRADCHECK_CASE("max_dim", "values of max along dim 0 with keepdim") {
  gc::check(
      [](const Ins& in) {
        auto [v, i] = max(in[0], 0, true);
        CHECK(i.dtype() == DType::Int64);
        return v;
      },
      {gc::distinct({3, 2, 2}, 114)});
}
SMYRF_GRADCHECK_CASE("min_dim", "values of min along the last dim") {
  gc::check([](const Ins& in) { return min(in[0], -1).first; }, {gc::distinct({2, 5}, 115)});
}

// ---------------------------------------------------------------- logsumexp and statistics
SMYRF_GRADCHECK_CASE("logsumexp", "two dims without keepdim") {
  gc::check([](const Ins& in) { return logsumexp(in[0], {0, 2}); }, {gc::randn64({2, 3, 4}, 120)});
}
SMYRF_GRADCHECK_CASE("logsumexp", "last dim with keepdim and large values") {
  gc::check([](const Ins& in) { return logsumexp(in[0] * 30.0, {-1}, true); },
            {gc::randn64({3, 4}, 121)});
}
SMYRF_GRADCHECK_CASE("logsumexp", "a -inf entry in a row") {
  // masked logits: the -inf entry has zero weight and its neighbours a finite gradient
  Tensor mask = from_vector(std::vector<bool>{false, true, false, false}, {4});
  gc::check(
      [mask](const Ins& in) {
        return logsumexp(masked_fill(in[0], mask, -std::numeric_limits<double>::infinity()), {1});
      },
      {gc::randn64({2, 4}, 122)});
}
SMYRF_GRADCHECK_CASE("var", "unbiased over two dims") {
  gc::check([](const Ins& in) { return var(in[0], {0, 2}); }, {gc::randn64({3, 2, 4}, 123)});
}
SMYRF_GRADCHECK_CASE("var", "biased over all dims with keepdim") {
  gc::check([](const Ins& in) { return var(in[0], {}, 0, true); }, {gc::randn64({3, 4}, 124)});
}
SMYRF_GRADCHECK_CASE("std", "over the last dim") {
  gc::check([](const Ins& in) { return smyrf::std(in[0], {-1}); }, {gc::randn64({3, 5}, 125)});
}
SMYRF_GRADCHECK_CASE("norm", "p = 1 over a dim") {
  gc::check([](const Ins& in) { return norm(in[0], 1.0, {1}); }, {gc::away_from_zero({3, 4}, 126)});
}
SMYRF_GRADCHECK_CASE("norm", "p = 2 over all dims") {
  gc::check([](const Ins& in) { return norm(in[0]); }, {gc::randn64({3, 4}, 127)});
}
SMYRF_GRADCHECK_CASE("norm", "p = 2 over a dim and over two dims with keepdim") {
  gc::check([](const Ins& in) { return norm(in[0], 2.0, {1}); }, {gc::randn64({3, 4}, 135)});
  gc::check(
      [](const Ins& in) {
        return norm(in[0], 2.0, {0, 2}, true);
      },
      {gc::transposed({2, 3, 2}, 136)});
}
SMYRF_GRADCHECK_CASE("norm", "p = 3 over two dims with keepdim") {
  gc::check(
      [](const Ins& in) {
        return norm(in[0], 3.0, {0, 2}, true);
      },
      {gc::away_from_zero({2, 3, 2}, 128)});
}
SMYRF_GRADCHECK_CASE("norm", "p = inf over a dim") {
  // distinct magnitudes: flip the signs of distinct values so |x| has a unique maximum
  Tensor x = gc::distinct({3, 4}, 129);
  {
    double* p = x.data_ptr<double>();
    for (int i = 0; i < 12; ++i) p[i] = (i % 2 ? -1 : 1) * (std::fabs(p[i]) + 0.05 + 0.003 * i);
  }
  gc::check([](const Ins& in) { return norm(in[0], std::numeric_limits<double>::infinity(), {1}); },
            {x});
}

// ---------------------------------------------------------------- linear algebra
SMYRF_GRADCHECK_CASE("matmul", "matrix times matrix") {
  gc::check([](const Ins& in) { return matmul(in[0], in[1]); },
            {gc::randn64({3, 4}, 130), gc::randn64({4, 2}, 131)});
}
SMYRF_GRADCHECK_CASE("matmul", "transposed and strided operands") {
  gc::check([](const Ins& in) { return in[0].matmul(in[1]); },
            {gc::transposed({3, 4}, 132), gc::strided({4, 2}, 133)});
}
SMYRF_GRADCHECK_CASE("matmul", "batch broadcasting of both operands") {
  gc::check([](const Ins& in) { return matmul(in[0], in[1]); },
            {gc::randn64({2, 1, 3, 4}, 134), gc::randn64({3, 4, 2}, 135)});
}
SMYRF_GRADCHECK_CASE("matmul", "non-contiguous batched input times a shared matrix") {
  // the weight gradient folds the batch into one GEMM (reshape copies a non-contiguous input)
  gc::check([](const Ins& in) { return matmul(transpose(in[0], 0, 1), in[1]); },
            {gc::randn64({3, 2, 4}, 147), gc::randn64({4, 5}, 148)});
}
SMYRF_GRADCHECK_CASE("matmul", "vector times batched matrix") {
  gc::check([](const Ins& in) { return matmul(in[0], in[1]); },
            {gc::randn64({4}, 136), gc::randn64({2, 4, 3}, 137)});
}
SMYRF_GRADCHECK_CASE("matmul", "batched matrix times vector") {
  gc::check([](const Ins& in) { return matmul(in[0], in[1]); },
            {gc::randn64({2, 3, 4}, 138), gc::randn64({4}, 139)});
}
SMYRF_GRADCHECK_CASE("matmul", "vector dot vector") {
  gc::check([](const Ins& in) { return matmul(in[0], in[1]); },
            {gc::randn64({5}, 140), gc::randn64({5}, 141)});
}
SMYRF_GRADCHECK_CASE("bmm", "batched matrices") {
  gc::check([](const Ins& in) { return bmm(in[0], in[1]); },
            {gc::randn64({2, 3, 4}, 142), gc::randn64({2, 4, 2}, 143)});
}
SMYRF_GRADCHECK_CASE("linear", "with bias on a 3-d input") {
  gc::check([](const Ins& in) { return linear(in[0], in[1], in[2]); },
            {gc::randn64({2, 3, 4}, 144), gc::randn64({5, 4}, 145), gc::randn64({5}, 146)});
}
SMYRF_GRADCHECK_CASE("linear", "without bias") {
  gc::check([](const Ins& in) { return linear(in[0], in[1]); },
            {gc::randn64({3, 4}, 147), gc::randn64({2, 4}, 148)});
}
SMYRF_GRADCHECK_CASE("linear", "non-contiguous input and transposed weight; 1-d input") {
  // the input is folded to (rows, K) with a copy; the weight view is made contiguous
  gc::check([](const Ins& in) { return linear(transpose(in[0], 0, 1), in[1], in[2]); },
            {gc::randn64({3, 2, 4}, 149), gc::transposed({5, 4}, 150), gc::randn64({5}, 151)});
  gc::check([](const Ins& in) { return linear(in[0], in[1], in[2]); },
            {gc::randn64({4}, 152), gc::randn64({3, 4}, 153), gc::randn64({3}, 154)});
}
