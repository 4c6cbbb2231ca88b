// gradcheck itself: it must pass correct gradients and catch wrong ones, non-deterministic
// backwards and backwards that write into their inputs. Wrong gradients are made by recording a
// node by hand with a deliberately broken backward (under a real op name, as record requires).
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "autograd/function.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/ops.h"
#include "core/random.h"

using namespace smyrf;
using Ins = std::vector<Tensor>;

namespace {
Tensor rn(const Shape& s, uint64_t seed) {
  Generator g(seed);
  Tensor t = randn(s, TensorOptions(DType::Float64), &g);
  t.requires_grad_();
  return t;
}
bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// y = x * x with a backward supplied by the test
Tensor square_with(const Tensor& x, BackwardFn backward) {
  Tensor y = raw::binary(raw::BinaryKind::Mul, x, x);
  record("mul", {x}, {y}, std::move(backward), {x});
  return y;
}
}  // namespace

TEST_CASE("gradcheck passes a correct gradient and reports the graph's ops") {
  GradcheckResult r = gradcheck([](const Ins& in) { return softmax(in[0] * in[1], 1); },
                                {rn({2, 3}, 1), rn({3}, 2)});
  CHECK_MESSAGE(r.ok, r.message);
  CHECK(r.message.empty());
  CHECK(r.elements_checked == 9);
  CHECK(r.max_abs_error < 1e-7);
  CHECK(r.ops == std::vector<std::string>{"mul", "softmax"});
}

TEST_CASE("gradcheck catches a wrong gradient and names the worst element") {
  Tensor x = rn({2, 3}, 3);
  GradcheckResult r = gradcheck(
      [](const Ins& in) {
        Tensor xs = alias(in[0]);
        return square_with(in[0], [xs](const std::vector<Tensor>& g) -> std::vector<Tensor> {
          // right everywhere except element [1, 2], which misses the factor 2
          Tensor d = raw::binary(raw::BinaryKind::Mul, g[0],
                                 raw::unary(raw::UnaryKind::MulScalar, xs, 2.0));
          Tensor c = raw::clone(d);
          c.data_ptr<double>()[5] *= 0.5;
          return {c};
        });
      },
      {x});
  CHECK_FALSE(r.ok);
  CHECK(r.worst_input == 0);
  CHECK(r.worst_index == Shape{1, 2});
  CHECK(r.worst_numeric == doctest::Approx(2.0 * r.worst_analytic).epsilon(1e-6));
  CHECK(contains(r.message, "gradient mismatch in 1 of 6 elements"));
  CHECK(contains(r.message, "element [1, 2]"));
  CHECK(contains(r.message, "ops in the graph: mul"));
  CHECK_FALSE(x.grad().defined());  // the caller's tensors are left alone
}

TEST_CASE("gradcheck uses a random upstream gradient so non-scalar outputs are covered") {
  // this backward is only right when every upstream gradient is equal (as with ones)
  GradcheckResult r = gradcheck(
      [](const Ins& in) {
        Tensor xs = alias(in[0]);
        return square_with(in[0], [xs](const std::vector<Tensor>& g) -> std::vector<Tensor> {
          Tensor mean_g = raw::reduce(raw::ReduceKind::Mean, g[0], {}, false);
          return {raw::binary(raw::BinaryKind::Mul, mean_g,
                              raw::unary(raw::UnaryKind::MulScalar, xs, 2.0))};
        });
      },
      {rn({4}, 4)});
  CHECK_FALSE(r.ok);
}

TEST_CASE("gradcheck catches a backward that writes into an input") {
  GradcheckResult r = gradcheck(
      [](const Ins& in) {
        Tensor xs = alias(in[0]);
        return square_with(in[0], [xs](const std::vector<Tensor>& g) -> std::vector<Tensor> {
          Tensor d = raw::binary(raw::BinaryKind::Mul, g[0],
                                 raw::unary(raw::UnaryKind::MulScalar, xs, 2.0));
          xs.data_ptr<double>()[0] += 1.0;  // scribbles on the saved input
          return {d};
        });
      },
      {rn({3}, 5)}, GradcheckOptions{});
  CHECK_FALSE(r.ok);
  CHECK(contains(r.message, "input 0 was modified"));
}

TEST_CASE("gradcheck catches a non-deterministic backward") {
  auto calls = std::make_shared<int>(0);
  GradcheckResult r = gradcheck(
      [calls](const Ins& in) {
        Tensor xs = alias(in[0]);
        return square_with(in[0], [xs, calls](const std::vector<Tensor>& g) -> std::vector<Tensor> {
          ++*calls;
          Tensor d = raw::binary(raw::BinaryKind::Mul, g[0],
                                 raw::unary(raw::UnaryKind::MulScalar, xs, 2.0));
          return {raw::unary(raw::UnaryKind::AddScalar, d, *calls % 2 ? 0.0 : 1e-13)};
        });
      },
      {rn({3}, 6)});
  CHECK_FALSE(r.ok);
  CHECK(contains(r.message, "not deterministic"));
  CHECK(*calls == 2);
}

TEST_CASE("gradcheck handles expanded inputs by summing over shared storage") {
  Generator g(7);
  Tensor base = randn({3, 1}, TensorOptions(DType::Float64), &g);
  Tensor x = raw::expand(base, {3, 4});
  x.requires_grad_();
  GradcheckResult r = gradcheck([](const Ins& in) { return in[0] * in[1]; }, {x, rn({3, 4}, 8)});
  CHECK_MESSAGE(r.ok, r.message);
  CHECK(r.elements_checked == 3 + 12);  // one per storage element of the expanded input
}

TEST_CASE("gradcheck checks transposed and strided inputs element by element") {
  Generator g(9);
  Tensor xt = raw::transpose(randn({4, 3}, TensorOptions(DType::Float64), &g), 0, 1);
  Tensor xs = raw::slice(randn({3, 9}, TensorOptions(DType::Float64), &g), 1, 0, 8, 2);
  xt.requires_grad_();
  xs.requires_grad_();
  GradcheckResult r = gradcheck([](const Ins& in) { return exp(in[0]) * in[1]; }, {xt, xs});
  CHECK_MESSAGE(r.ok, r.message);
  CHECK(r.elements_checked == 24);
}

TEST_CASE("gradcheck refuses arguments it cannot check") {
  auto msg = [](const Ins& inputs, GradcheckFn fn) -> std::string {
    try {
      gradcheck(fn, inputs);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  GradcheckFn ident = [](const Ins& in) { return in[0] * 1.0; };
  Tensor f32 = ones({2}, TensorOptions(DType::Float32).set_requires_grad());
  CHECK(contains(msg({f32}, ident), "float64"));
  Tensor x = rn({4}, 10);
  Tensor x2 = raw::slice(x, 0, 0, 2, 1);
  x2.requires_grad_();
  CHECK(contains(msg({x, x2}, [](const Ins& in) { return sum(in[0]) + sum(in[1]); }),
                 "share storage"));
  CHECK(contains(msg({tensor({1.0})}, ident), "no input requires grad"));
  CHECK(contains(msg({rn({2}, 11)}, [](const Ins& in) { return in[0].to(DType::Float32); }),
                 "float64"));
  CHECK(contains(msg({rn({2}, 12)}, [](const Ins& in) { return in[0].detach(); }),
                 "no autograd history"));
}
