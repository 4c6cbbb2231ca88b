// The backward engine: roots and explicit gradients, accumulation, grad mode, detach, graph
// lifetime (freed graphs, retain_graph, reference cycles), hooks and retain_grad.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "autograd/function.h"
#include "autograd/ops.h"
#include "core/ops.h"
#include "core/random.h"

using namespace smyrf;

namespace {
Tensor leaf(std::initializer_list<double> v) {
  Tensor t = tensor(v);
  t.requires_grad_();
  return t;
}
std::vector<double> vec(const Tensor& t) { return t.to_vector<double>(); }
// The message of the smyrf::Error thrown by f, or "" when nothing is thrown.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}
}  // namespace

TEST_CASE("backward of a scalar seeds the gradient with one") {
  Tensor x = leaf({1.0, 2.0, 3.0});
  Tensor y = sum(x * x);
  y.backward();
  CHECK(vec(x.grad()) == std::vector<double>{2.0, 4.0, 6.0});
  CHECK(x.grad().dtype() == DType::Float64);
}

TEST_CASE("backward with an explicit gradient of the output's shape") {
  Tensor x = leaf({1.0, 2.0, 3.0});
  Tensor y = x * 3.0;
  y.backward(tensor({1.0, 0.5, -2.0}));
  CHECK(vec(x.grad()) == std::vector<double>{3.0, 1.5, -6.0});
}

TEST_CASE("relu backward passes g where x > 0 and 0 elsewhere, even an inf or NaN g") {
  // one fused pass (BinaryOp::ReluBackward); x = 0 and NaN x take the zero side, and an infinite
  // or NaN upstream gradient at an inactive unit gives 0 (as PyTorch), not inf * 0 = NaN
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  Tensor x = leaf({-2.0, 0.0, 3.0, nan, -1.0, 4.0});
  relu(x).backward(tensor({5.0, 5.0, 5.0, 5.0, inf, nan}));
  const std::vector<double> g = vec(x.grad());
  CHECK(g[0] == 0.0);
  CHECK(g[1] == 0.0);
  CHECK(g[2] == 5.0);
  CHECK(g[3] == 0.0);
  CHECK(g[4] == 0.0);
  CHECK(std::isnan(g[5]));
  // float32 takes the AVX2 kernel: the same values on 37 elements (vector body and tail)
  std::vector<float> xf(37), gf(37);
  for (int i = 0; i < 37; ++i)
    xf[i] = static_cast<float>(i % 5) - 2.0f, gf[i] = i == 5 ? INFINITY : 1.5f;
  Tensor x32 = from_vector<float>(xf, {37});
  x32.requires_grad_();
  relu(x32).backward(from_vector<float>(gf, {37}));
  const std::vector<double> g32 = vec(x32.grad());
  for (int i = 0; i < 37; ++i) CHECK(g32[i] == (xf[i] > 0 ? gf[i] : 0.0f));
}

TEST_CASE("backward on a non-scalar without a gradient explains what to do") {
  Tensor x = leaf({1.0, 2.0});
  Tensor y = x * 2.0;
  std::string m = error_of([&] { y.backward(); });
  CHECK(contains(m, "only for scalar outputs"));
  CHECK(contains(m, "(2,)"));
  CHECK(x.grad().defined() == false);
  m = error_of([&] { y.backward(tensor({1.0, 2.0, 3.0})); });
  CHECK(contains(m, "gradient of shape (3,)"));
}

TEST_CASE("backward on a tensor outside the graph is an error") {
  Tensor x = tensor({1.0, 2.0});
  CHECK(contains(error_of([&] { sum(x).backward(); }), "does not require grad"));
}

TEST_CASE("gradients accumulate across backward calls until zero_grad") {
  Tensor x = leaf({1.0, -2.0});
  sum(x * x).backward();
  sum(x * 3.0).backward();
  CHECK(vec(x.grad()) == std::vector<double>{2.0 + 3.0, -4.0 + 3.0});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  sum(x).backward();
  CHECK(vec(x.grad()) == std::vector<double>{1.0, 1.0});
}

TEST_CASE("a leaf gradient owns its memory") {
  Tensor x = leaf({1.0, 2.0});
  Tensor g = tensor({5.0, 7.0});
  x.clone().backward(g);  // clone passes g straight through its backward
  REQUIRE(x.grad().defined());
  CHECK(x.grad().storage() != g.storage());
  g.fill_(0.0);
  CHECK(vec(x.grad()) == std::vector<double>{5.0, 7.0});
  // a second leaf fed by the same upstream buffer must not share storage with the first
  Tensor a = leaf({1.0}), b = leaf({2.0});
  Tensor s = a + b;  // add hands the same gradient tensor to both inputs
  s.backward(tensor({3.0}));
  CHECK(a.grad().storage() != b.grad().storage());
  a.grad().fill_(0.0);
  CHECK(vec(b.grad()) == std::vector<double>{3.0});
}

TEST_CASE("a fresh gradient nobody else holds becomes the leaf's gradient without a copy") {
  Tensor x = leaf({1.0, 2.0});
  const Storage* seen = nullptr;
  x.register_hook([&](const Tensor& g) { seen = g.storage().get(); });  // no reference kept
  sum(x * x).backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().storage().get() == seen);  // adopted
  CHECK(vec(x.grad()) == std::vector<double>{2.0, 4.0});
  sum(x * 3.0).backward();  // the adopted buffer accumulates in place
  CHECK(vec(x.grad()) == std::vector<double>{5.0, 7.0});
  // a hook that keeps the gradient tensor shares it: the leaf gets a copy of its own
  Tensor y = leaf({1.0, 2.0});
  Tensor kept;
  y.register_hook([&](const Tensor& g) { kept = g; });
  sum(y * y).backward();
  REQUIRE(kept.defined());
  CHECK(y.grad().storage() != kept.storage());
  kept.fill_(0.0);
  CHECK(vec(y.grad()) == std::vector<double>{2.0, 4.0});
}

TEST_CASE("no_grad and enable_grad guards") {
  Tensor x = leaf({1.0, 2.0});
  {
    NoGradGuard ng;
    CHECK_FALSE(GradMode::is_enabled());
    Tensor y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    {
      EnableGradGuard eg;
      Tensor z = x * 2.0;
      CHECK(z.requires_grad());
      CHECK(z.grad_fn() != nullptr);
    }
    CHECK_FALSE(GradMode::is_enabled());
  }
  CHECK(GradMode::is_enabled());
}

TEST_CASE("requires_grad propagates through ops and stops at constants") {
  Tensor x = leaf({1.0, 2.0});
  Tensor c = tensor({3.0, 4.0});
  CHECK(x.is_leaf());
  CHECK((x * c).requires_grad());
  CHECK_FALSE((x * c).is_leaf());
  CHECK_FALSE((c * c).requires_grad());
  CHECK((c * c).is_leaf());
  CHECK(x.slice(0, 0, 1).requires_grad());
  CHECK(contains(error_of([&] { arange(3).requires_grad_(); }), "only floating tensors"));
  CHECK(contains(error_of([&] { (x * c).requires_grad_(false); }), "detach"));
}

TEST_CASE("detach shares data but cuts the graph") {
  Tensor x = leaf({1.0, 2.0});
  Tensor y = x * 2.0;
  Tensor d = y.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.grad_fn() == nullptr);
  CHECK(d.storage() == y.storage());
  Tensor z = sum(d * x);  // d is a constant here: dz/dx = d = 2x
  z.backward();
  CHECK(vec(x.grad()) == std::vector<double>{2.0, 4.0});
}

TEST_CASE("a tensor used twice gets the summed gradient") {
  Tensor x = leaf({1.0, 2.0, 3.0});
  Tensor a = x * 2.0;
  Tensor b = exp(x);
  Tensor y = sum(a * b);  // diamond: x -> a, x -> b -> y
  y.backward();
  std::vector<double> g = vec(x.grad());
  for (int i = 0; i < 3; ++i) {
    double xi = i + 1.0;
    CHECK(g[i] == doctest::Approx(2.0 * std::exp(xi) + 2.0 * xi * std::exp(xi)));
  }
  Tensor w = leaf({3.0});
  sum(w * w * w).backward();  // w used three times through two nodes
  CHECK(vec(w.grad())[0] == doctest::Approx(27.0));
}

TEST_CASE("parts of a split that are not used get zero, not NaN") {
  Tensor x = leaf({1.0, 2.0, 3.0, 4.0, 5.0});
  std::vector<Tensor> parts = split(x, 2);
  REQUIRE(parts.size() == 3);
  sum(parts[1] * parts[1]).backward();
  CHECK(vec(x.grad()) == std::vector<double>{0.0, 0.0, 6.0, 8.0, 0.0});
  Tensor m = leaf({1.0, 5.0, 2.0});
  auto [values, idx] = max(m.reshape({1, 3}), 1);
  values.sum().backward();
  CHECK(vec(m.grad()) == std::vector<double>{0.0, 1.0, 0.0});
}

TEST_CASE("a second backward through a freed graph fails and retain_graph keeps it") {
  Tensor x = leaf({1.0, 2.0});
  Tensor y = sum(x * x);
  y.backward();
  std::string m = error_of([&] { y.backward(); });
  CHECK(contains(m, "second time"));
  CHECK(contains(m, "retain_graph"));

  Tensor z = sum(x * x * 3.0);
  x.zero_grad();
  z.backward(Tensor(), /*retain_graph=*/true);
  z.backward();
  CHECK(vec(x.grad()) == std::vector<double>{12.0, 24.0});
  CHECK(contains(error_of([&] { z.backward(); }), "second time"));
}

TEST_CASE("an in-place change to a saved tensor makes backward name the op") {
  SUBCASE("add_ under no_grad on a leaf") {
    Tensor x = leaf({1.0, 2.0});
    Tensor y = sum(x * x);  // mul saved x
    {
      NoGradGuard ng;
      x.add_(1.0);
    }
    std::string m = error_of([&] { y.backward(); });
    CHECK(contains(m, "[mul]"));
    CHECK(contains(m, "modified in place"));
  }
  SUBCASE("fill_ on a saved constant") {
    Tensor x = leaf({1.0, 2.0});
    Tensor c = tensor({3.0, 4.0});
    Tensor y = sum(x * c);  // mul saved c
    c.fill_(0.0);
    CHECK(contains(error_of([&] { y.backward(); }), "[mul]"));
  }
  SUBCASE("copy_ into a view of a saved output") {
    Tensor x = leaf({0.5, 1.0});
    Tensor y = exp(x);  // exp saved its output
    Tensor s = sum(y);
    y.detach().slice(0, 0, 1).copy_(tensor({9.0}));
    CHECK(contains(error_of([&] { s.backward(); }), "[exp]"));
  }
  SUBCASE("an unsaved operand may change") {
    Tensor x = leaf({1.0, 2.0});
    Tensor c = tensor({3.0, 4.0});
    Tensor y = sum(x + c);  // add saves nothing: its gradient does not depend on c
    c.fill_(0.0);
    y.backward();
    CHECK(vec(x.grad()) == std::vector<double>{1.0, 1.0});
  }
}

TEST_CASE("in-place ops on tensors that require grad throw while grad mode is on") {
  Tensor x = leaf({1.0, 2.0});
  Tensor c = tensor({1.0, 1.0});
  CHECK(contains(error_of([&] { x.add_(c); }), "[add_]"));
  CHECK(contains(error_of([&] { x.mul_(2.0); }), "[mul_]"));
  CHECK(contains(error_of([&] { c.add_(x); }), "requires grad"));
  Tensor y = x * 2.0;
  {
    NoGradGuard ng;  // even without grad mode, a computed tensor's history would be wrong
    CHECK(contains(error_of([&] { y.add_(1.0); }), "computed by an op"));
    x.add_(1.0);  // leaves may be updated, as optimizers do
  }
  CHECK(vec(x) == std::vector<double>{2.0, 3.0});
}

TEST_CASE("fill_ and copy_ refuse tensors that require grad while grad mode is on") {
  Tensor x = leaf({1.0, 2.0});
  CHECK(contains(error_of([&] { x.fill_(0.0); }), "[fill_]"));
  CHECK(contains(error_of([&] { x.copy_(tensor({3.0, 4.0})); }), "[copy_]"));
  Tensor y = x * 2.0;
  CHECK(contains(error_of([&] { y.slice(0, 0, 1).fill_(0.0); }), "[fill_]"));
  CHECK(vec(y) == std::vector<double>{2.0, 4.0});
  {
    NoGradGuard ng;  // loading weights into parameters
    x.copy_(tensor({5.0, 6.0}));
    x.fill_(1.0);
  }
  CHECK(vec(x) == std::vector<double>{1.0, 1.0});
}

TEST_CASE("hooks see the gradient and retain_grad keeps a non-leaf's gradient") {
  Tensor x = leaf({1.0, 2.0});
  std::vector<double> seen_x, seen_h;
  x.register_hook([&](const Tensor& g) { seen_x = g.to_vector<double>(); });
  Tensor h = x * 3.0;
  h.register_hook([&](const Tensor& g) { seen_h = g.to_vector<double>(); });
  h.retain_grad();
  Tensor y = sum(h * h);
  y.backward();
  CHECK(seen_h == std::vector<double>{6.0, 12.0});
  CHECK(seen_x == std::vector<double>{18.0, 36.0});
  CHECK(vec(h.grad()) == std::vector<double>{6.0, 12.0});
  Tensor k = x * 2.0;  // without retain_grad a non-leaf keeps no gradient
  sum(k).backward();
  CHECK_FALSE(k.grad().defined());
  CHECK(contains(error_of([&] { tensor({1.0}).register_hook([](const Tensor&) {}); }),
                 "does not require grad"));
}

TEST_CASE("squeeze of a dim that is not 1 leaves the input a leaf") {
  Tensor x = randn({3, 2}, TensorOptions(DType::Float64));
  x.requires_grad_();
  Tensor y = x.squeeze(0);  // nothing to squeeze: a new view, never x itself re-wired
  CHECK(x.is_leaf());
  CHECK(x.grad_fn() == nullptr);
  CHECK_FALSE(y.is_same(x));
  sum(y * 2.0).backward();
  CHECK(vec(x.grad()) == std::vector<double>(6, 2.0));
  Tensor s = tensor({4.0});
  s = s.reshape({});
  s.requires_grad_();
  Tensor s2 = s.squeeze(0);  // 0-d: nothing to squeeze either
  CHECK(s.is_leaf());
  sum(s2 * s2).backward();
  CHECK(vec(s.grad()) == std::vector<double>{8.0});
}

TEST_CASE("the graph is freed once the tensors are dropped") {
  std::weak_ptr<TensorImpl> wx, wy, wh;
  std::weak_ptr<Node> wnode;
  {
    Tensor x = leaf({1.0, 2.0, 3.0});
    Tensor h = exp(x) * x;  // exp and mul save inputs and outputs
    Tensor y = sum(softmax(h, 0) * h);
    wx = x.impl_ptr();
    wy = y.impl_ptr();
    wh = h.impl_ptr();
    wnode = h.grad_fn();
    y.backward();
    CHECK(x.grad().defined());
  }
  CHECK(wx.expired());
  CHECK(wy.expired());
  CHECK(wh.expired());
  CHECK(wnode.expired());
  {
    // without backward (graph never released) and with retain_graph, nothing may leak either
    Tensor x = leaf({1.0, 2.0});
    Tensor y = sum(exp(x) * x);
    wx = x.impl_ptr();
    wnode = y.grad_fn();
  }
  CHECK(wx.expired());
  CHECK(wnode.expired());
  {
    Tensor x = leaf({1.0, 2.0});
    Tensor h = x.squeeze(0);
    h.retain_grad();
    Tensor y = sum(h * h);
    y.backward(Tensor(), true);
    wx = x.impl_ptr();
    wh = h.impl_ptr();
  }
  CHECK(wx.expired());
  CHECK(wh.expired());
}

TEST_CASE("record refuses an op that is not in the list of differentiable ops") {
  Tensor x = leaf({1.0});
  Tensor y = raw::clone(x);
  std::string m = error_of([&] {
    record("not_an_op", {x}, {y},
           [](const std::vector<Tensor>& g) -> std::vector<Tensor> { return {g[0]}; });
  });
  CHECK(contains(m, "not_an_op"));
  CHECK(contains(m, "op_list.h"));
}

TEST_CASE("a backward returning a wrongly shaped gradient is reported with the op's name") {
  Tensor x = leaf({1.0, 2.0});
  Tensor y = raw::clone(x);
  record("clone", {x}, {y},
         [](const std::vector<Tensor>&) -> std::vector<Tensor> { return {tensor({1.0})}; });
  CHECK(contains(error_of([&] { sum(y).backward(); }), "clone backward"));
}

TEST_CASE("dtype of gradients follows the input through to_dtype") {
  Tensor x = tensor({1.0f, 2.0f});
  x.requires_grad_();
  Tensor y = sum(x.to(DType::Float64) * 2.0);
  y.backward();
  CHECK(x.grad().dtype() == DType::Float32);
  CHECK(x.grad().to_vector<float>() == std::vector<float>{2.0f, 2.0f});
}

TEST_CASE("a leaf used several times gets one summed gradient and its hook runs once") {
  Tensor x = leaf({1.0, 2.0});
  std::vector<std::vector<double>> seen;
  x.register_hook([&](const Tensor& g) { seen.push_back(g.to_vector<double>()); });
  Tensor y = sum(x * x + x * 3.0);  // three uses of x through two nodes
  y.backward();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == std::vector<double>{5.0, 7.0});
  CHECK(vec(x.grad()) == std::vector<double>{5.0, 7.0});
}

TEST_CASE("sorting a 0-d tensor keeps its gradient") {
  Tensor x = tensor({2.5}).reshape({});
  x.requires_grad_();
  auto [v, i] = sort(x);
  REQUIRE(v.requires_grad());
  (v * 3.0).backward();
  CHECK(vec(x.grad()) == std::vector<double>{3.0});
}

TEST_CASE("to() the device a tensor is already on is a no-op inside a graph") {
  Tensor x = leaf({1.0, 2.0});
  Tensor h = x * 2.0;
  Tensor same = h.to(Device::cpu());
  CHECK(same.is_same(h));
  sum(same * same).backward();
  CHECK(vec(x.grad()) == std::vector<double>{8.0, 16.0});
}

TEST_CASE("grad mode is per thread and restored after a failed backward") {
  Tensor x = leaf({1.0, 2.0});
  Tensor y = sum(x * x);
  {
    NoGradGuard ng;
    x.add_(1.0);
    bool other_thread_enabled = false;
    std::thread t([&] { other_thread_enabled = GradMode::is_enabled(); });
    t.join();
    CHECK(other_thread_enabled);
  }
  CHECK_THROWS_AS(y.backward(), Error);
  CHECK(GradMode::is_enabled());  // the engine's own no_grad scope unwound
}

TEST_CASE("broadcast and sliced gradients (sum, mean, cat) equal dense ones through the ops") {
  // sum / mean hand back a broadcast view and cat hands back slices; every consumer must read
  // them as the dense gradient they stand for, and a leaf's gradient must be its own dense copy
  Generator gen(11);
  Tensor x = randn({6, 8}, kFloat64, &gen).requires_grad_();
  Tensor w = randn({8, 5}, kFloat64, &gen);
  Tensor idx = randint(0, 8, {6, 8});
  std::vector<std::function<Tensor(const Tensor&)>> fs = {
      [](const Tensor& t) { return exp(t) * t; },
      [&](const Tensor& t) { return matmul(t, w); },
      [](const Tensor& t) { return softmax(t, 1); },
      [](const Tensor& t) { return layer_norm(t, {8}); },
      [](const Tensor& t) {
        return reshape(permute(t, {1, 0}), {4, 12});
      },
      [&](const Tensor& t) { return gather(t, 1, idx); },
      [](const Tensor& t) {
        return cat({t, exp(t)}, 1);
      },
      [](const Tensor& t) {
        return cat({t, t}, 0).view({96});
      },
  };
  for (size_t i = 0; i < fs.size(); ++i) {
    CAPTURE(i);
    x.zero_grad();
    Tensor y = fs[i](x);
    y.backward(ones(y.shape(), TensorOptions(kFloat64)));  // the dense gradient
    const std::vector<double> want = vec(x.grad());
    for (bool use_mean : {false, true}) {
      x.zero_grad();
      Tensor z = fs[i](x);
      if (use_mean)
        (mean(z) * static_cast<double>(z.numel())).backward();
      else
        sum(cat({z.reshape({-1}), z.reshape({-1})}, 0)).backward();  // sum of two copies
      const Tensor g = x.grad();
      REQUIRE(g.is_contiguous());
      const std::vector<double> got = vec(g);
      for (size_t k = 0; k < want.size(); ++k)
        CHECK(got[k] == doctest::Approx((use_mean ? 1 : 2) * want[k]).epsilon(1e-12));
    }
  }
  // the leaf's gradient is dense and its own: changing it leaves later gradients alone
  x.zero_grad();
  sum(x).backward();
  Tensor g = x.grad();
  CHECK(g.strides() == Shape{8, 1});
  g.fill_(5.0);
  sum(x).backward();
  CHECK(vec(x.grad())[7] == 6.0);
}
