// Gradient checks: elementwise arithmetic and activations.
//
// Edge values are kept away from kinks by construction (gc::away_from_zero for abs/sign/relu,
// values at least 0.1 from clamp bounds, positive inputs for log/sqrt/rsqrt/pow), except where a
// case checks a tie on purpose (maximum/minimum: central differences at a tie give exactly 1/2,
// which is the documented split).
#include "tests/gradcheck/gradcheck_cases.h"

using namespace smyrf;
using Ins = std::vector<Tensor>;

// ---------------------------------------------------------------- binary arithmetic
SMYRF_GRADCHECK_CASE("add", "same shape") {
  gc::check([](const Ins& in) { return add(in[0], in[1]); },
            {gc::randn64({3, 4}, 1), gc::randn64({3, 4}, 2)});
}
SMYRF_GRADCHECK_CASE("add", "broadcasting both operands") {
  gc::check([](const Ins& in) { return in[0] + in[1]; },
            {gc::randn64({3, 1, 4}, 3), gc::randn64({2, 1}, 4)});
}
SMYRF_GRADCHECK_CASE("add", "transposed plus strided inputs") {
  gc::check([](const Ins& in) { return in[0] + in[1]; },
            {gc::transposed({3, 4}, 5), gc::strided({3, 4}, 6)});
}
SMYRF_GRADCHECK_CASE("add", "expanded input and a 0-d operand") {
  gc::check([](const Ins& in) { return in[0] + in[1]; },
            {gc::expanded({3, 4}, 1, 7), gc::randn64({}, 8)});
}
SMYRF_GRADCHECK_CASE("add", "only the second operand requires grad") {
  gc::check([](const Ins& in) { return in[0] + in[1]; },
            {gc::randn64({2, 3}, 9, false), gc::randn64({3}, 10)});
}

SMYRF_GRADCHECK_CASE("sub", "broadcasting both operands") {
  gc::check([](const Ins& in) { return in[0] - in[1]; },
            {gc::randn64({4, 1}, 11), gc::randn64({1, 3}, 12)});
}
SMYRF_GRADCHECK_CASE("sub", "strided minus expanded") {
  gc::check([](const Ins& in) { return sub(in[0], in[1]); },
            {gc::strided({2, 3}, 13), gc::expanded({2, 3}, 0, 14)});
}

SMYRF_GRADCHECK_CASE("mul", "broadcasting both operands") {
  gc::check([](const Ins& in) { return in[0] * in[1]; },
            {gc::randn64({2, 1, 3}, 15), gc::randn64({4, 1}, 16)});
}
SMYRF_GRADCHECK_CASE("mul", "same tensor used twice") {
  gc::check([](const Ins& in) { return in[0] * in[0]; }, {gc::randn64({5}, 17)});
}
SMYRF_GRADCHECK_CASE("mul", "transposed times expanded") {
  gc::check([](const Ins& in) { return mul(in[0], in[1]); },
            {gc::transposed({3, 4}, 18), gc::expanded({3, 4}, 0, 19)});
}

SMYRF_GRADCHECK_CASE("div", "broadcasting both operands") {
  gc::check([](const Ins& in) { return in[0] / in[1]; },
            {gc::randn64({3, 1}, 20), gc::away_from_zero({1, 4}, 21, 0.5, 2.0)});
}
SMYRF_GRADCHECK_CASE("div", "scalar over tensor") {
  gc::check([](const Ins& in) { return 2.0 / in[0]; }, {gc::away_from_zero({2, 3}, 22, 0.5, 2.0)});
}
SMYRF_GRADCHECK_CASE("div", "denominator only requires grad") {
  gc::check([](const Ins& in) { return in[0] / in[1]; },
            {gc::randn64({2, 3}, 23, false), gc::away_from_zero({3}, 24, 0.5, 2.0)});
}

SMYRF_GRADCHECK_CASE("pow", "positive base and broadcast exponent") {
  gc::check([](const Ins& in) { return pow(in[0], in[1]); },
            {gc::uniform64({3, 4}, 0.5, 2.0, 25), gc::uniform64({4}, -1.5, 2.5, 26)});
}
SMYRF_GRADCHECK_CASE("pow", "base only requires grad with integer exponents") {
  // integer exponents make negative bases well defined
  Tensor e = gc::indices({2, 3, 1}, {3}).to(DType::Float64);
  gc::check([](const Ins& in) { return pow(in[0], in[1]); }, {gc::randn64({2, 3}, 27), e});
}

SMYRF_GRADCHECK_CASE("maximum", "broadcasting both operands") {
  // every pair (a_i, b_j) differs by at least 0.05: no tie within eps
  Tensor a = from_vector(std::vector<double>{-0.7, 0.2, 1.1}, {3, 1},
                         TensorOptions(DType::Float64).set_requires_grad());
  Tensor b = from_vector(std::vector<double>{-1.0, -0.25, 0.5, 1.4}, {4},
                         TensorOptions(DType::Float64).set_requires_grad());
  gc::check([](const Ins& in) { return maximum(in[0], in[1]); }, {a, b});
}
SMYRF_GRADCHECK_CASE("maximum", "exact ties split the gradient in half") {
  Tensor a = gc::distinct({6}, 30);
  Tensor b = a.detach().clone();
  b.data_ptr<double>()[1] += 0.3;  // non-tied elements on both sides
  b.data_ptr<double>()[4] -= 0.3;
  b.requires_grad_();
  gc::check([](const Ins& in) { return maximum(in[0], in[1]); }, {a, b});
}
SMYRF_GRADCHECK_CASE("minimum", "broadcasting both operands") {
  Tensor a = from_vector(std::vector<double>{-0.9, 0.3, 0.05, 1.2, -0.4, 0.7}, {2, 3},
                         TensorOptions(DType::Float64).set_requires_grad());
  Tensor b = from_vector(std::vector<double>{0.1, -0.6, 0.9}, {3},
                         TensorOptions(DType::Float64).set_requires_grad());
  gc::check([](const Ins& in) { return minimum(in[0], in[1]); }, {a, b});
}
SMYRF_GRADCHECK_CASE("minimum", "exact ties split the gradient in half") {
  Tensor a = gc::distinct({5}, 33);
  Tensor b = a.detach().clone();
  b.data_ptr<double>()[0] += 0.3;
  b.requires_grad_();
  gc::check([](const Ins& in) { return minimum(in[0], in[1]); }, {a, b});
}

SMYRF_GRADCHECK_CASE("mul_scalar", "tensor times double") {
  gc::check([](const Ins& in) { return in[0] * 2.5; }, {gc::strided({3, 2}, 34)});
}
SMYRF_GRADCHECK_CASE("add_scalar", "tensor plus double") {
  gc::check([](const Ins& in) { return (in[0] + 1.5) * in[0]; }, {gc::randn64({4}, 35)});
}
SMYRF_GRADCHECK_CASE("sub_scalar", "double minus tensor and tensor minus double") {
  gc::check([](const Ins& in) { return (3.0 - in[0]) * (in[0] - 0.5); }, {gc::randn64({4}, 36)});
}
SMYRF_GRADCHECK_CASE("rdiv_scalar", "tensor divided by double") {
  gc::check([](const Ins& in) { return in[0] / 4.0; }, {gc::randn64({4}, 37)});
}

// ---------------------------------------------------------------- unary
SMYRF_GRADCHECK_CASE("neg", "transposed input") {
  gc::check([](const Ins& in) { return -in[0]; }, {gc::transposed({2, 3}, 40)});
}
SMYRF_GRADCHECK_CASE("pow_scalar", "cube of signed values") {
  gc::check([](const Ins& in) { return pow(in[0], 3.0); }, {gc::randn64({2, 3}, 41)});
}
SMYRF_GRADCHECK_CASE("pow_scalar", "fractional and negative exponents of positive values") {
  gc::check([](const Ins& in) { return pow(in[0], 0.5) + in[0].pow(-2.0); },
            {gc::uniform64({5}, 0.5, 2.0, 42)});
}
SMYRF_GRADCHECK_CASE("exp", "strided input") {
  gc::check([](const Ins& in) { return exp(in[0]); }, {gc::strided({3, 3}, 43)});
}
SMYRF_GRADCHECK_CASE("log", "positive input") {
  gc::check([](const Ins& in) { return log(in[0]); }, {gc::uniform64({2, 4}, 0.2, 3.0, 44)});
}
SMYRF_GRADCHECK_CASE("log1p", "input above -1") {
  gc::check([](const Ins& in) { return log1p(in[0]); }, {gc::uniform64({6}, -0.7, 3.0, 45)});
}
SMYRF_GRADCHECK_CASE("expm1", "near zero and away from it") {
  gc::check([](const Ins& in) { return expm1(in[0]); }, {gc::uniform64({7}, -3.0, 3.0, 146)});
}
SMYRF_GRADCHECK_CASE("sin", "several periods") {
  gc::check([](const Ins& in) { return sin(in[0]); }, {gc::uniform64({2, 4}, -7.0, 7.0, 147)});
}
SMYRF_GRADCHECK_CASE("cos", "several periods of a transposed input") {
  gc::check([](const Ins& in) { return cos(in[0]); }, {gc::transposed({3, 4}, 148)});
}
SMYRF_GRADCHECK_CASE("softplus", "both signs and large magnitudes") {
  gc::check([](const Ins& in) { return softplus(in[0]); }, {gc::uniform64({9}, -30.0, 30.0, 149)});
  gc::check([](const Ins& in) { return softplus(in[0]); }, {gc::uniform64({5}, -0.01, 0.01, 152)});
}
SMYRF_GRADCHECK_CASE("bce_logits",
                     "binary_cross_entropy_with_logits: soft targets and reductions") {
  gc::check(
      [](const Ins& in) {
        return binary_cross_entropy_with_logits(in[0], in[1]) +
               binary_cross_entropy_with_logits(in[0], in[1], Reduction::Sum) * 0.5 +
               sum(binary_cross_entropy_with_logits(in[0], in[1], Reduction::None), {0});
      },
      {gc::uniform64({3, 4}, -4.0, 4.0, 150), gc::uniform64({3, 4}, 0.0, 1.0, 151)});
}
SMYRF_GRADCHECK_CASE("sqrt", "positive input") {
  gc::check([](const Ins& in) { return sqrt(in[0]); }, {gc::uniform64({2, 3}, 0.2, 3.0, 46)});
}
SMYRF_GRADCHECK_CASE("rsqrt", "positive input") {
  gc::check([](const Ins& in) { return rsqrt(in[0]); }, {gc::uniform64({2, 3}, 0.2, 3.0, 47)});
}
SMYRF_GRADCHECK_CASE("abs", "values away from zero") {
  gc::check([](const Ins& in) { return abs(in[0]); }, {gc::away_from_zero({3, 4}, 48)});
}
SMYRF_GRADCHECK_CASE("sign", "values away from zero have zero gradient") {
  // sign alone has zero gradient, so multiply by x to keep a non-trivial path through the graph
  GradcheckResult r =
      gc::check([](const Ins& in) { return sign(in[0]) * in[0]; }, {gc::away_from_zero({6}, 49)});
  CHECK(r.max_abs_error < 1e-6);
}
SMYRF_GRADCHECK_CASE("tanh", "wide range") {
  gc::check([](const Ins& in) { return tanh(in[0]); }, {gc::uniform64({7}, -4.0, 4.0, 50)});
}
SMYRF_GRADCHECK_CASE("sigmoid", "wide range") {
  gc::check([](const Ins& in) { return sigmoid(in[0]); }, {gc::uniform64({7}, -6.0, 6.0, 51)});
}
SMYRF_GRADCHECK_CASE("relu", "values away from zero") {
  gc::check([](const Ins& in) { return relu(in[0]); }, {gc::away_from_zero({3, 3}, 52)});
}
SMYRF_GRADCHECK_CASE("leaky_relu", "values away from zero with slope 0.2") {
  gc::check([](const Ins& in) { return leaky_relu(in[0], 0.2); }, {gc::away_from_zero({3, 3}, 53)});
}
SMYRF_GRADCHECK_CASE("gelu", "wide range") {
  gc::check([](const Ins& in) { return gelu(in[0]); }, {gc::uniform64({8}, -4.0, 4.0, 54)});
}
SMYRF_GRADCHECK_CASE("silu", "wide range") {
  gc::check([](const Ins& in) { return silu(in[0]); }, {gc::uniform64({8}, -5.0, 5.0, 55)});
}
SMYRF_GRADCHECK_CASE("clamp", "values inside and outside but away from the bounds") {
  // bounds -0.5 and 0.5; every value is at least 0.1 from either bound
  std::vector<double> v = {-1.2, -0.8, -0.35, -0.1, 0.0, 0.2, 0.39, 0.61, 0.9, 1.7};
  Tensor x = from_vector(v, {2, 5}, TensorOptions(DType::Float64).set_requires_grad());
  GradcheckResult r = gc::check([](const Ins& in) { return clamp(in[0], -0.5, 0.5); }, {x});
  CHECK(r.elements_checked == 10);
}

// ---------------------------------------------------------------- selection
SMYRF_GRADCHECK_CASE("where", "broadcast condition and operands") {
  Tensor cond = from_vector(std::vector<bool>{true, false, false, true}, {4});
  gc::check([cond](const Ins& in) { return where(cond, in[0], in[1]); },
            {gc::randn64({3, 4}, 60), gc::randn64({3, 1}, 61)});
}
SMYRF_GRADCHECK_CASE("masked_fill", "broadcast mask over a transposed input") {
  Tensor mask = from_vector(std::vector<bool>{true, false, true}, {3, 1});
  gc::check([mask](const Ins& in) { return masked_fill(in[0], mask, -7.0); },
            {gc::transposed({3, 4}, 62)});
}
