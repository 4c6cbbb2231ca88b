// Gradient checks: views, copies, joining, indexing and sorting.
#include "tests/gradcheck/gradcheck_cases.h"

using namespace smyrf;
using Ins = std::vector<Tensor>;

// ---------------------------------------------------------------- views
SMYRF_GRADCHECK_CASE("view", "reshape of a contiguous input") {
  gc::check(
      [](const Ins& in) {
        return in[0].reshape({4, -1}) * in[1];
      },
      {gc::randn64({2, 3, 2}, 200), gc::randn64({3}, 201)});
}
SMYRF_GRADCHECK_CASE("view", "reshape of a transposed input copies") {
  gc::check([](const Ins& in) { return reshape(in[0], {-1}); }, {gc::transposed({3, 4}, 202)});
}
SMYRF_GRADCHECK_CASE("view", "view and unsqueeze") {
  gc::check(
      [](const Ins& in) {
        return in[0].view({3, 2}).unsqueeze(1) * in[0].view({3, 1, 2});
      },
      {gc::randn64({6}, 203)});
}
SMYRF_GRADCHECK_CASE("squeeze", "one dim and all dims") {
  gc::check([](const Ins& in) { return in[0].squeeze(1) + in[0].squeeze().unsqueeze(0); },
            {gc::randn64({3, 1, 2}, 204)});
}
SMYRF_GRADCHECK_CASE("flatten", "middle dims of a strided input") {
  gc::check([](const Ins& in) { return in[0].flatten(1, 2); }, {gc::strided({2, 3, 2}, 205)});
}
SMYRF_GRADCHECK_CASE("permute", "three dims") {
  gc::check(
      [](const Ins& in) {
        return in[0].permute({2, 0, 1}) * in[1];
      },
      {gc::randn64({2, 3, 4}, 206), gc::randn64({3}, 207)});
}
SMYRF_GRADCHECK_CASE("transpose", "negative dims and t()") {
  gc::check([](const Ins& in) { return transpose(in[0], -1, 0).t() * in[0].t(); },
            {gc::randn64({2, 3, 2}, 208)});
}
SMYRF_GRADCHECK_CASE("slice", "with a step and negative bounds") {
  gc::check([](const Ins& in) { return in[0].slice(1, 1, -1, 2); }, {gc::randn64({3, 7}, 209)});
}
SMYRF_GRADCHECK_CASE("slice", "overlapping slices summed") {
  gc::check([](const Ins& in) { return in[0].slice(0, 0, 3) * in[0].slice(0, 2, 5); },
            {gc::randn64({5, 2}, 210)});
}
SMYRF_GRADCHECK_CASE("narrow", "middle range") {
  gc::check([](const Ins& in) { return in[0].narrow(-1, 1, 2); }, {gc::transposed({3, 4}, 211)});
}
SMYRF_GRADCHECK_CASE("select", "negative index of a middle dim") {
  gc::check([](const Ins& in) { return in[0].select(1, -1) * in[0].select(1, 0); },
            {gc::randn64({2, 3, 2}, 212)});
}
SMYRF_GRADCHECK_CASE("expand", "new leading dim and a size-1 dim") {
  gc::check(
      [](const Ins& in) {
        return in[0].expand({2, 3, 4}) * in[1];
      },
      {gc::randn64({3, 1}, 213), gc::randn64({2, 3, 4}, 214)});
}
SMYRF_GRADCHECK_CASE("to_dtype", "float64 through float32 and back") {
  // the float32 round trip rounds x to ~1e-7 relative, so the step must be large enough for the
  // difference quotient to average over that rounding; the function is linear elsewhere
  GradcheckOptions o;
  o.eps = 1e-2;
  o.atol = 1e-4;
  o.rtol = 1e-4;
  gc::check([](const Ins& in) { return in[0].to(DType::Float32).to(DType::Float64) * 3.0; },
            {gc::randn64({5}, 215)}, o);
}
SMYRF_GRADCHECK_CASE("clone", "clone then multiply") {
  gc::check([](const Ins& in) { return in[0].clone() * in[0]; }, {gc::strided({2, 3}, 216)});
}
SMYRF_GRADCHECK_CASE("contiguous", "of a transposed input") {
  gc::check([](const Ins& in) { return in[0].contiguous() * 2.0; }, {gc::transposed({3, 2}, 217)});
}

// ---------------------------------------------------------------- joining and splitting
SMYRF_GRADCHECK_CASE("cat", "three inputs along dim 1 with one constant") {
  gc::check(
      [](const Ins& in) {
        return cat({in[0], in[1], in[2]}, 1);
      },
      {gc::randn64({2, 1, 3}, 220), gc::randn64({2, 2, 3}, 221, false),
       gc::transposed({2, 3, 3}, 222)});
}
SMYRF_GRADCHECK_CASE("cat", "negative dim") {
  gc::check(
      [](const Ins& in) {
        return cat({in[0], in[1]}, -1);
      },
      {gc::randn64({2, 2}, 223), gc::randn64({2, 3}, 224)});
}
SMYRF_GRADCHECK_CASE("stack", "at a middle dim") {
  gc::check(
      [](const Ins& in) {
        return stack({in[0], in[1], in[0]}, 1);
      },
      {gc::randn64({2, 3}, 225), gc::strided({2, 3}, 226)});
}
SMYRF_GRADCHECK_CASE("split", "uneven sizes recombined") {
  gc::check(
      [](const Ins& in) {
        std::vector<Tensor> p = split(in[0], std::vector<int64_t>{1, 3, 2}, 1);
        return p[0] * 2.0 + sum(p[1] * p[1], {1}, true) - sum(p[2], {1}, true);
      },
      {gc::randn64({3, 6}, 227)});
}
SMYRF_GRADCHECK_CASE("split", "by size with a remainder and an unused part") {
  gc::check(
      [](const Ins& in) {
        std::vector<Tensor> p = split(in[0], 2, 0);  // sizes 2, 2, 1: the last part is unused
        return p[0] * p[1];
      },
      {gc::randn64({5, 2}, 228)});
}
SMYRF_GRADCHECK_CASE("chunk", "three chunks of a transposed input") {
  gc::check(
      [](const Ins& in) {
        std::vector<Tensor> c = chunk(in[0], 3, -1);
        return c[0] + c[1] * c[2];
      },
      {gc::transposed({2, 6}, 229)});
}

// ---------------------------------------------------------------- indexing
SMYRF_GRADCHECK_CASE("gather", "with repeated indices") {
  Tensor idx = gc::indices({0, 0, 2, 1, 1, 1}, {2, 3});
  gc::check([idx](const Ins& in) { return gather(in[0], 1, idx); }, {gc::randn64({2, 4}, 230)});
}
SMYRF_GRADCHECK_CASE("gather", "index smaller than the input along the other dims") {
  Tensor idx = gc::indices({2, 0, 1, 1}, {1, 4});
  gc::check([idx](const Ins& in) { return gather(in[0], 0, idx); }, {gc::transposed({3, 5}, 231)});
}
SMYRF_GRADCHECK_CASE("index_select", "repeated rows") {
  Tensor idx = gc::indices({2, 0, 2, 2}, {4});
  gc::check([idx](const Ins& in) { return index_select(in[0], 0, idx); },
            {gc::randn64({3, 2}, 232)});
}
SMYRF_GRADCHECK_CASE("index_select", "along the last dim of a strided input") {
  Tensor idx = gc::indices({1, 3}, {2});
  gc::check([idx](const Ins& in) { return index_select(in[0], -1, idx); },
            {gc::strided({2, 4}, 233)});
}
SMYRF_GRADCHECK_CASE("scatter_add", "repeated targets into both operands") {
  Tensor idx = gc::indices({0, 2, 0, 1, 1, 1}, {2, 3});
  gc::check([idx](const Ins& in) { return scatter_add(in[0], 1, idx, in[1]); },
            {gc::randn64({2, 4}, 234), gc::randn64({2, 3}, 235)});
}
SMYRF_GRADCHECK_CASE("index_add", "repeated rows into both operands") {
  Tensor idx = gc::indices({1, 1, 0}, {3});
  gc::check([idx](const Ins& in) { return index_add(in[0], 0, idx, in[1]); },
            {gc::randn64({3, 2}, 236), gc::randn64({3, 2}, 237)});
}
SMYRF_GRADCHECK_CASE("embedding", "repeated ids in a 2-d batch") {
  Tensor ids = gc::indices({3, 0, 3, 1, 1, 4}, {2, 3});
  gc::check([ids](const Ins& in) { return embedding(in[0], ids); }, {gc::randn64({5, 3}, 238)});
}

// ---------------------------------------------------------------- sorting
SMYRF_GRADCHECK_CASE("sort_values", "ascending along the last dim") {
  gc::check([](const Ins& in) { return sort(in[0]).first; }, {gc::distinct({3, 4}, 240)});
}
SMYRF_GRADCHECK_CASE("sort_values", "descending along dim 0 of a transposed input") {
  Tensor x = gc::transposed({4, 3}, 241);  // randn values: distinct with probability 1
  gc::check([](const Ins& in) { return sort(in[0], 0, true).first; }, {x});
}
SMYRF_GRADCHECK_CASE("topk", "largest and smallest") {
  gc::check([](const Ins& in) { return topk(in[0], 2, 1).first + topk(in[0], 2, 1, false).first; },
            {gc::distinct({3, 5}, 242)});
}
SMYRF_GRADCHECK_CASE(
    "topk", "the partial sort along the last dim (k = 3 of 24) and the full sort along dim 0") {
  gc::check(
      [](const Ins& in) {
        return topk(in[0], 3, 1).first.sum({1}) + topk(in[0], 2, 0, false).first.sum({0}).sum();
      },
      {gc::distinct({4, 24}, 243)});
}
SMYRF_GRADCHECK_CASE("sort_values", "0-d input") {
  gc::check([](const Ins& in) { return sort(in[0]).first * in[0]; }, {gc::randn64({}, 243)});
}
