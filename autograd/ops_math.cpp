// Elementwise differentiable ops and their derivative rules.
#include <cmath>

#include "autograd/function.h"
#include "autograd/ops.h"
#include "core/ops.h"

namespace smyrf {
using raw::BinaryKind;
using raw::CompareKind;
using raw::UnaryKind;

namespace {
Tensor scalar_like(double s, const Tensor& a) {
  DType dt = a.dtype();
  if (!is_floating(dt) && std::floor(s) != s) dt = DType::Float32;
  if (dt == DType::Bool) dt = DType::Int64;
  return scalar_tensor(s, TensorOptions(dt));
}

// y = f(x) with dy/dx computed by `deriv(x, y)` (both without history).
template <typename Deriv>
Tensor unary_op(const char* name, UnaryKind kind, const Tensor& x, double a, double b,
                Deriv deriv) {
  Tensor y = raw::unary(kind, x, a, b);
  if (needs_grad({x})) {
    Tensor xs = alias(x), ys = alias(y);
    record(name, {x}, {y},
           [xs, ys, deriv](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             return {raw::binary(BinaryKind::Mul, g[0], deriv(xs, ys))};
           },
           {x, y});
  }
  return y;
}

// y = f(x) whose backward is one fused pass dx = backward(g, x) (a BinaryKind over g and the saved
// x): no derivative temporary, and the node keeps x only.
Tensor unary_fused_backward(const char* name, UnaryKind kind, BinaryKind backward,
                            const Tensor& x) {
  Tensor y = raw::unary(kind, x);
  if (needs_grad({x})) {
    Tensor xs = alias(x);
    record(name, {x}, {y},
           [xs, backward](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             return {raw::binary(backward, g[0], xs)};
           },
           {x});
  }
  return y;
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = raw::binary(BinaryKind::Add, a, b);
  if (needs_grad({a, b})) {
    Shape sa = a.shape(), sb = b.shape();
    record("add", {a, b}, {y}, [sa, sb](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {raw::sum_to(g[0], sa), raw::sum_to(g[0], sb)};
    });
  }
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = raw::binary(BinaryKind::Sub, a, b);
  if (needs_grad({a, b})) {
    Shape sa = a.shape(), sb = b.shape();
    record("sub", {a, b}, {y}, [sa, sb](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {raw::sum_to(g[0], sa), raw::sum_to(raw::unary(UnaryKind::Neg, g[0]), sb)};
    });
  }
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = raw::binary(BinaryKind::Mul, a, b);
  if (needs_grad({a, b})) {
    Tensor as = alias(a), bs = alias(b);
    bool ga = a.requires_grad(), gb = b.requires_grad();
    record("mul", {a, b}, {y},
           [as, bs, ga, gb](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             return {
                 ga ? raw::sum_to(raw::binary(BinaryKind::Mul, g[0], bs), as.shape()) : Tensor(),
                 gb ? raw::sum_to(raw::binary(BinaryKind::Mul, g[0], as), bs.shape()) : Tensor()};
           },
           {a, b});
  }
  return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = raw::binary(BinaryKind::Div, a, b);
  if (needs_grad({a, b})) {
    Tensor as = alias(a), bs = alias(b), ys = alias(y);
    bool gb = b.requires_grad();
    record("div", {a, b}, {y},
           [as, bs, ys, gb](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             Tensor ga = raw::binary(BinaryKind::Div, g[0], bs);
             Tensor gbv =
                 gb ? raw::sum_to(raw::unary(UnaryKind::Neg, raw::binary(BinaryKind::Mul, ga, ys)),
                                  bs.shape())
                    : Tensor();
             return {raw::sum_to(ga, as.shape()), gbv};
           },
           {a, b, y});
  }
  return y;
}

Tensor add(const Tensor& a, double s) {
  Tensor y = raw::unary(UnaryKind::AddScalar, a, s);
  if (needs_grad({a}))
    record("add_scalar", {a}, {y},
           [](const std::vector<Tensor>& g) -> std::vector<Tensor> { return {g[0]}; });
  return y;
}

Tensor mul(const Tensor& a, double s) {
  Tensor y = raw::unary(UnaryKind::MulScalar, a, s);
  if (needs_grad({a}))
    record("mul_scalar", {a}, {y}, [s](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {raw::unary(UnaryKind::MulScalar, g[0], s)};
    });
  return y;
}

Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor y = raw::binary(BinaryKind::Pow, a, b);
  if (needs_grad({a, b})) {
    Tensor as = alias(a), bs = alias(b), ys = alias(y);
    bool gb = b.requires_grad();
    record("pow", {a, b}, {y},
           [as, bs, ys, gb](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             // d/da = b a^(b-1);  d/db = y log a (0 where a == 0 and b > 0, as the limit)
             Tensor bm1 = raw::unary(UnaryKind::AddScalar, bs, -1.0);
             Tensor da = raw::binary(BinaryKind::Mul, raw::binary(BinaryKind::Mul, g[0], bs),
                                     raw::binary(BinaryKind::Pow, as, bm1));
             Tensor db;
             if (gb) {
               Tensor loga = raw::unary(UnaryKind::Log, as);
               Tensor zero_a = raw::compare_scalar(CompareKind::Eq, as, 0.0);
               loga = raw::where(zero_a, zeros_like(loga), loga);
               db = raw::sum_to(
                   raw::binary(BinaryKind::Mul, g[0], raw::binary(BinaryKind::Mul, ys, loga)),
                   bs.shape());
             }
             return {raw::sum_to(da, as.shape()), db};
           },
           {a, b, y});
  }
  return y;
}

Tensor pow(const Tensor& a, double e) {
  return unary_op("pow_scalar", UnaryKind::PowScalar, a, e, 0, [e](const Tensor& x, const Tensor&) {
    return raw::unary(UnaryKind::MulScalar, raw::unary(UnaryKind::PowScalar, x, e - 1.0), e);
  });
}

namespace {
// maximum/minimum: gradient to the selected operand, split evenly on ties
Tensor extremum(const char* name, BinaryKind kind, const Tensor& a, const Tensor& b) {
  Tensor y = raw::binary(kind, a, b);
  if (needs_grad({a, b})) {
    Tensor as = alias(a), bs = alias(b);
    record(name, {a, b}, {y},
           [as, bs, kind](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             CompareKind win = kind == BinaryKind::Maximum ? CompareKind::Gt : CompareKind::Lt;
             Tensor wa = raw::to_dtype(raw::compare(win, as, bs), g[0].dtype());
             Tensor tie = raw::unary(
                 UnaryKind::MulScalar,
                 raw::to_dtype(raw::compare(CompareKind::Eq, as, bs), g[0].dtype()), 0.5);
             Tensor fa = raw::binary(BinaryKind::Add, wa, tie);
             Tensor fb = raw::unary(UnaryKind::AddScalar, raw::unary(UnaryKind::Neg, fa), 1.0);
             return {raw::sum_to(raw::binary(BinaryKind::Mul, g[0], fa), as.shape()),
                     raw::sum_to(raw::binary(BinaryKind::Mul, g[0], fb), bs.shape())};
           },
           {a, b});
  }
  return y;
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) {
  return extremum("maximum", BinaryKind::Maximum, a, b);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return extremum("minimum", BinaryKind::Minimum, a, b);
}

Tensor neg(const Tensor& a) {
  Tensor y = raw::unary(UnaryKind::Neg, a);
  if (needs_grad({a}))
    record("neg", {a}, {y}, [](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {raw::unary(UnaryKind::Neg, g[0])};
    });
  return y;
}

Tensor exp(const Tensor& a) {
  return unary_op("exp", UnaryKind::Exp, a, 0, 0, [](const Tensor&, const Tensor& y) { return y; });
}
Tensor log(const Tensor& a) {
  return unary_op("log", UnaryKind::Log, a, 0, 0, [](const Tensor& x, const Tensor&) {
    return raw::unary(UnaryKind::Reciprocal, x);
  });
}
Tensor log1p(const Tensor& a) {
  return unary_op("log1p", UnaryKind::Log1p, a, 0, 0, [](const Tensor& x, const Tensor&) {
    return raw::unary(UnaryKind::Reciprocal, raw::unary(UnaryKind::AddScalar, x, 1.0));
  });
}
Tensor sqrt(const Tensor& a) {
  return unary_op("sqrt", UnaryKind::Sqrt, a, 0, 0, [](const Tensor&, const Tensor& y) {
    return raw::unary(UnaryKind::MulScalar, raw::unary(UnaryKind::Reciprocal, y), 0.5);
  });
}
Tensor rsqrt(const Tensor& a) {
  return unary_op("rsqrt", UnaryKind::Rsqrt, a, 0, 0, [](const Tensor& x, const Tensor& y) {
    // d/dx x^(-1/2) = -1/2 y / x
    return raw::unary(UnaryKind::MulScalar, raw::binary(BinaryKind::Div, y, x), -0.5);
  });
}
Tensor abs(const Tensor& a) {
  return unary_op("abs", UnaryKind::Abs, a, 0, 0,
                  [](const Tensor& x, const Tensor&) { return raw::unary(UnaryKind::Sign, x); });
}
Tensor sign(const Tensor& a) {
  return unary_op("sign", UnaryKind::Sign, a, 0, 0,
                  [](const Tensor& x, const Tensor&) { return zeros_like(x); });
}
Tensor tanh(const Tensor& a) {
  return unary_op("tanh", UnaryKind::Tanh, a, 0, 0, [](const Tensor&, const Tensor& y) {
    return raw::unary(UnaryKind::TanhGradFromOut, y);
  });
}
Tensor sigmoid(const Tensor& a) {
  return unary_op("sigmoid", UnaryKind::Sigmoid, a, 0, 0, [](const Tensor&, const Tensor& y) {
    return raw::unary(UnaryKind::SigmoidGradFromOut, y);
  });
}
Tensor relu(const Tensor& a) {
  // (ReluGrad's mask times g took two passes, and a mask, its conversion and the product three)
  return unary_fused_backward("relu", UnaryKind::Relu, BinaryKind::ReluBackward, a);
}
Tensor leaky_relu(const Tensor& a, double slope) {
  return unary_op(
      "leaky_relu", UnaryKind::LeakyRelu, a, slope, 0, [slope](const Tensor& x, const Tensor&) {
        Tensor pos = raw::compare_scalar(CompareKind::Gt, x, 0.0);
        return raw::where(pos, ones({}, TensorOptions(x.dtype()).set_device(x.device())),
                          full({}, slope, TensorOptions(x.dtype()).set_device(x.device())));
      });
}
Tensor gelu(const Tensor& a) {
  // (GeluGrad into a temporary times g took two passes)
  return unary_fused_backward("gelu", UnaryKind::Gelu, BinaryKind::GeluBackward, a);
}
Tensor silu(const Tensor& a) {
  return unary_op("silu", UnaryKind::Silu, a, 0, 0, [](const Tensor& x, const Tensor&) {
    return raw::unary(UnaryKind::SiluGrad, x);  // s (1 + x (1 - s)), s = sigmoid(x)
  });
}
Tensor expm1(const Tensor& a) {
  return unary_op("expm1", UnaryKind::Expm1, a, 0, 0,
                  [](const Tensor& x, const Tensor&) { return raw::unary(UnaryKind::Exp, x); });
}
Tensor sin(const Tensor& a) {
  return unary_op("sin", UnaryKind::Sin, a, 0, 0,
                  [](const Tensor& x, const Tensor&) { return raw::unary(UnaryKind::Cos, x); });
}
Tensor cos(const Tensor& a) {
  return unary_op("cos", UnaryKind::Cos, a, 0, 0, [](const Tensor& x, const Tensor&) {
    return raw::unary(UnaryKind::Neg, raw::unary(UnaryKind::Sin, x));
  });
}
Tensor softplus(const Tensor& a) {
  // max(a, 0) + log1p(exp(-|a|)) with its own gradient sigmoid(a): composed of relu and abs, the
  // chain rule gave 0 instead of 1/2 at a = 0 (both their gradients are 0 there)
  Tensor y = raw::binary(
      BinaryKind::Add, raw::unary(UnaryKind::Relu, a),
      raw::unary(
          UnaryKind::Log1p,
          raw::unary(UnaryKind::Exp, raw::unary(UnaryKind::Neg, raw::unary(UnaryKind::Abs, a)))));
  if (needs_grad({a})) {
    Tensor xs = alias(a);
    record("softplus", {a}, {y},
           [xs](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             return {raw::binary(BinaryKind::Mul, g[0], raw::unary(UnaryKind::Sigmoid, xs))};
           },
           {a});
  }
  return y;
}
Tensor clamp(const Tensor& a, double lo, double hi) {
  SMYRF_CHECK(lo <= hi, "clamp", "lower bound " << lo << " exceeds upper bound " << hi);
  return unary_op("clamp", UnaryKind::Clamp, a, lo, hi, [lo, hi](const Tensor& x, const Tensor&) {
    Tensor in = raw::logical_and(raw::compare_scalar(CompareKind::Ge, x, lo),
                                 raw::compare_scalar(CompareKind::Le, x, hi));
    return raw::to_dtype(in, x.dtype());
  });
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Tensor y = raw::where(cond, a, b);
  if (needs_grad({a, b})) {
    Tensor c = alias(cond);
    Shape sa = a.shape(), sb = b.shape();
    record(
        "where", {a, b}, {y},
        [c, sa, sb](const std::vector<Tensor>& g) -> std::vector<Tensor> {
          Tensor z = zeros({}, TensorOptions(g[0].dtype()).set_device(g[0].device()));
          return {raw::sum_to(raw::where(c, g[0], z), sa), raw::sum_to(raw::where(c, z, g[0]), sb)};
        },
        {cond});
  }
  return y;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  Tensor y = raw::masked_fill(x, mask, value);
  if (needs_grad({x})) {
    Tensor m = alias(mask);
    record("masked_fill", {x}, {y},
           [m](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             return {raw::masked_fill(g[0], m, 0.0)};
           },
           {mask});
  }
  return y;
}

Tensor eq(const Tensor& a, const Tensor& b) { return raw::compare(CompareKind::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return raw::compare(CompareKind::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return raw::compare(CompareKind::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return raw::compare(CompareKind::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return raw::compare(CompareKind::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return raw::compare(CompareKind::Ge, a, b); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double s) {
  return is_floating(a.dtype()) ? add(a, s) : add(a, scalar_like(s, a));
}
Tensor operator-(const Tensor& a, double s) { return a + (-s); }
Tensor operator*(const Tensor& a, double s) {
  return is_floating(a.dtype()) ? mul(a, s) : mul(a, scalar_like(s, a));
}
Tensor operator/(const Tensor& a, double s) {
  return is_floating(a.dtype()) ? mul(a, 1.0 / s) : div(a, scalar_like(s, a));
}
Tensor operator+(double s, const Tensor& a) { return a + s; }
Tensor operator-(double s, const Tensor& a) { return neg(a) + s; }
Tensor operator*(double s, const Tensor& a) { return a * s; }
Tensor operator/(double s, const Tensor& a) { return div(scalar_like(s, a), a); }
Tensor operator<(const Tensor& a, double s) { return raw::compare_scalar(CompareKind::Lt, a, s); }
Tensor operator>(const Tensor& a, double s) { return raw::compare_scalar(CompareKind::Gt, a, s); }
Tensor operator<=(const Tensor& a, double s) { return raw::compare_scalar(CompareKind::Le, a, s); }
Tensor operator>=(const Tensor& a, double s) { return raw::compare_scalar(CompareKind::Ge, a, s); }

}  // namespace smyrf
