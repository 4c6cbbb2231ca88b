// Module hooks: the capture points of the attention layers against a manual computation of the
// same q, k, v and of the upstream gradient of the attention output.
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <string>

#include "autograd/grad_mode.h"
#include "core/random.h"
#include "layers/attention.h"

using namespace smyrf;
using namespace smyrf::layers;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const auto x = a.contiguous().to_vector<double>(), y = b.contiguous().to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

// x W^T + b split into heads: (B, N, E) -> (B, H, N, E/H)
Tensor heads_of(const Tensor& x, const Linear& l, int64_t H) {
  const int64_t B = x.size(0), N = x.size(1), E = l.out_features;
  Tensor y = matmul(x, l.weight.t()) + l.bias;
  return y.reshape({B, N, H, E / H}).permute({0, 2, 1, 3});
}

}  // namespace

TEST_CASE("hooks: Attention reports q, k, v, out and grad_out as computed by hand") {
  Generator g(3);
  Attention att(8, 2, AttentionKind::Dense, {}, 0.0, true, &g, kFloat64);
  const Tensor x = randn({2, 5, 8}, kFloat64, &g);
  const Tensor r = randn({2, 5, 8}, kFloat64, &g);
  std::map<std::string, Tensor> fwd, bwd;
  const int64_t id_f = att.register_forward_hook(
      [&](const std::string& p, const Tensor& t) { fwd[p] = t.detach().clone(); });
  att.register_backward_hook([&](const std::string& p, const Tensor& t) { bwd[p] = t.clone(); });
  (att.forward(x) * r).sum().backward();

  REQUIRE(fwd.size() == 4);
  REQUIRE(bwd.size() == 1);
  {
    NoGradGuard ng;
    const Tensor q = heads_of(x, *att.q_proj, 2), k = heads_of(x, *att.k_proj, 2),
                 v = heads_of(x, *att.v_proj, 2);
    CHECK(max_abs_diff(fwd["q"], q) < 1e-12);
    CHECK(max_abs_diff(fwd["k"], k) < 1e-12);
    CHECK(max_abs_diff(fwd["v"], v) < 1e-12);
    CHECK(max_abs_diff(fwd["out"], attention(q, k, v)) < 1e-12);
    // loss = sum(r * (concat(a) W_out^T + b)): d loss / d a = r W_out, split into heads
    const Tensor da = matmul(r, att.out_proj->weight).reshape({2, 5, 2, 4}).permute({0, 2, 1, 3});
    CHECK(max_abs_diff(bwd["grad_out"], da) < 1e-12);
  }

  // a removed hook is no longer called; the other one still is
  att.remove_hook(id_f);
  fwd.clear(), bwd.clear();
  (att.forward(x) * r).sum().backward();
  CHECK(fwd.empty());
  CHECK(bwd.count("grad_out") == 1);
}

TEST_CASE("hooks: SelfAttention2d reports pooled keys and values; no grad_out without grad") {
  Generator g(5);
  SelfAttention2d att(16, AttentionKind::Dense, SelfAttention2d::default_smyrf(), false, &g,
                      kFloat64);
  const Tensor x = randn({1, 16, 4, 4}, kFloat64, &g);
  std::map<std::string, Tensor> got;
  att.register_forward_hook([&](const std::string& p, const Tensor& t) { got[p] = t; });
  att.register_backward_hook([&](const std::string& p, const Tensor& t) { got[p] = t; });
  {
    NoGradGuard ng;
    att.forward(x);
  }
  CHECK(got["q"].shape() == Shape({1, 1, 16, 2}));
  CHECK(got["k"].shape() == Shape({1, 1, 4, 2}));
  CHECK(got["v"].shape() == Shape({1, 1, 4, 8}));
  CHECK(got.count("grad_out") == 0);  // nothing requires grad under no_grad
  got.clear();
  att.forward(x).sum().backward();
  REQUIRE(got.count("grad_out") == 1);
  CHECK(got["grad_out"].shape() == Shape({1, 1, 16, 8}));
}

TEST_CASE("hooks: find_module resolves dotted names and lists the choices otherwise") {
  Sequential s;
  Generator g(1);
  s.add(std::make_shared<Attention>(8, 2, AttentionKind::Dense, SmyrfConfig{}, 0.0, true, &g));
  CHECK(dynamic_cast<Attention*>(find_module(s, "0").get()) != nullptr);
  CHECK(dynamic_cast<Linear*>(find_module(s, "0.q_proj").get()) != nullptr);
  CHECK_THROWS_WITH_AS(find_module(s, "1.attn"), doctest::Contains("0.q_proj"), Error);
}
