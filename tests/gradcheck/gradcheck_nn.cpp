// Gradient checks: softmax, layer norm, losses, dropout.
#include "tests/gradcheck/gradcheck_cases.h"

using namespace smyrf;
using Ins = std::vector<Tensor>;

SMYRF_GRADCHECK_CASE("softmax", "over the last dim") {
  gc::check([](const Ins& in) { return softmax(in[0], -1); }, {gc::randn64({3, 5}, 300)});
}
SMYRF_GRADCHECK_CASE("softmax", "over a middle dim of a transposed input") {
  gc::check([](const Ins& in) { return softmax(in[0], 1); }, {gc::transposed({2, 3, 4}, 301)});
}
SMYRF_GRADCHECK_CASE("softmax", "large logits") {
  gc::check([](const Ins& in) { return softmax(in[0] * 20.0, 0); }, {gc::randn64({4, 2}, 302)});
}
SMYRF_GRADCHECK_CASE("log_softmax", "over the last dim") {
  gc::check([](const Ins& in) { return log_softmax(in[0], 1); }, {gc::randn64({3, 4}, 303)});
}
SMYRF_GRADCHECK_CASE("log_softmax", "over dim 0 of a strided input") {
  gc::check([](const Ins& in) { return log_softmax(in[0], 0); }, {gc::strided({3, 2, 3}, 304)});
}
// 8 or more contiguous elements after the dim: the column kernels (kernels/cpu/softmax_cols.h)
SMYRF_GRADCHECK_CASE("softmax", "over dim 0 with 9 columns") {
  gc::check([](const Ins& in) { return softmax(in[0], 0); }, {gc::randn64({3, 9}, 305)});
}
SMYRF_GRADCHECK_CASE("log_softmax", "over a middle dim with 10 columns of a transposed input") {
  gc::check([](const Ins& in) { return log_softmax(in[0], 1); },
            {gc::transposed({2, 3, 10}, 306)});
}

SMYRF_GRADCHECK_CASE("layer_norm", "with weight and bias") {
  gc::check([](const Ins& in) { return layer_norm(in[0], {4}, in[1], in[2]); },
            {gc::randn64({3, 4}, 310), gc::randn64({4}, 311), gc::randn64({4}, 312)});
}
SMYRF_GRADCHECK_CASE("layer_norm", "without affine over two trailing dims") {
  gc::check([](const Ins& in) { return layer_norm(in[0], {2, 3}); }, {gc::randn64({2, 2, 3}, 313)});
}
SMYRF_GRADCHECK_CASE("layer_norm", "weight only on a transposed input") {
  gc::check([](const Ins& in) { return layer_norm(in[0], {3}, in[1]); },
            {gc::transposed({4, 3}, 314), gc::randn64({3}, 315)});
}
SMYRF_GRADCHECK_CASE("layer_norm", "bias only") {
  gc::check([](const Ins& in) { return layer_norm(in[0], {4}, Tensor(), in[1]); },
            {gc::randn64({3, 4}, 319), gc::randn64({4}, 320)});
}
SMYRF_GRADCHECK_CASE("layer_norm", "constant weight and bias with a learnable input") {
  gc::check([](const Ins& in) { return layer_norm(in[0], {5}, in[1], in[2], 1e-3); },
            {gc::randn64({2, 5}, 316), gc::randn64({5}, 317, false), gc::randn64({5}, 318, false)});
}

SMYRF_GRADCHECK_CASE("cross_entropy", "mean over rows") {
  Tensor t = gc::indices({2, 0, 3}, {3});
  gc::check([t](const Ins& in) { return cross_entropy(in[0], t); }, {gc::randn64({3, 4}, 320)});
}
SMYRF_GRADCHECK_CASE("cross_entropy", "ignore_index with mean") {
  Tensor t = gc::indices({1, -1, 3, -1}, {4});
  GradcheckResult r = gc::check([t](const Ins& in) { return cross_entropy(in[0], t, -1); },
                                {gc::randn64({4, 5}, 321)});
  CHECK(r.elements_checked == 20);
}
SMYRF_GRADCHECK_CASE("cross_entropy", "label smoothing") {
  Tensor t = gc::indices({0, 2, 1}, {3});
  gc::check([t](const Ins& in) { return cross_entropy(in[0], t, -100, 0.1); },
            {gc::randn64({3, 3}, 322)});
}
SMYRF_GRADCHECK_CASE("cross_entropy", "label smoothing and ignore_index with sum") {
  Tensor t = gc::indices({0, 7, 3, 2}, {4});
  gc::check([t](const Ins& in) { return cross_entropy(in[0], t, 7, 0.2, Reduction::Sum); },
            {gc::randn64({4, 4}, 323)});
}
SMYRF_GRADCHECK_CASE("cross_entropy", "(N C d) logits without reduction") {
  Tensor t = gc::indices({0, 2, 1, 1, 0, 2}, {2, 3});
  gc::check([t](const Ins& in) { return cross_entropy(in[0], t, -100, 0.0, Reduction::None); },
            {gc::randn64({2, 3, 3}, 324)});
}
SMYRF_GRADCHECK_CASE("cross_entropy", "(N C d1 d2) logits with ignore_index and smoothing") {
  Tensor t = gc::indices({0, 2, -100, 1, 1, 0, 2, -100}, {2, 2, 2});
  gc::check([t](const Ins& in) { return cross_entropy(in[0], t, -100, 0.1); },
            {gc::transposed({2, 3, 2, 2}, 325)});
}
SMYRF_GRADCHECK_CASE("cross_entropy", "a single row of logits") {
  Tensor t = from_vector(std::vector<int64_t>{2}, {});
  gc::check([t](const Ins& in) { return cross_entropy(in[0], t); }, {gc::randn64({4}, 326)});
}

SMYRF_GRADCHECK_CASE("mse_loss", "mean sum and none") {
  gc::check(
      [](const Ins& in) {
        return mse_loss(in[0], in[1]) + mse_loss(in[0], in[1], Reduction::Sum) * 0.5 +
               sum(mse_loss(in[0], in[1], Reduction::None), {0});
      },
      {gc::randn64({3, 2}, 330), gc::randn64({3, 2}, 331)});
}

SMYRF_GRADCHECK_CASE("dropout", "fixed generator seed") {
  // a fresh Generator per call: every forward of the difference quotient draws the same mask
  GradcheckResult r = gc::check(
      [](const Ins& in) {
        Generator g(1234);
        return dropout(in[0], 0.4, true, &g);
      },
      {gc::randn64({4, 5}, 340)});
  CHECK(r.elements_checked == 20);
}
SMYRF_GRADCHECK_CASE("dropout", "on a strided input followed by a reduction") {
  gc::check(
      [](const Ins& in) {
        Generator g(99);
        return sum(dropout(in[0], 0.5, true, &g) * in[0], {1});
      },
      {gc::strided({3, 4}, 341)});
}
