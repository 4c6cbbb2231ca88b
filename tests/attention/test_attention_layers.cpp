// The attention layers (layers/attention.h): Attention (multi-head, dense or SMYRF per call) and
// SelfAttention2d (the SAGAN/BigGAN block), in float64 against plain-op references.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/ops_conv.h"
#include "layers/attention.h"

using namespace smyrf;
using namespace smyrf::layers;

namespace {

std::vector<double> values(const Tensor& t) { return t.contiguous().to_vector<double>(); }

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const std::vector<double> x = values(a), y = values(b);
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double e : values(t)) m = std::max(m, std::abs(e));
  return m;
}

std::vector<std::string> names(const NamedTensors& nt) {
  std::vector<std::string> out;
  for (const auto& [n, t] : nt) out.push_back(n);
  return out;
}

// Multi-head attention from plain ops: the reference for the layer's head split and merge.
Tensor mha_reference(Attention& m, const Tensor& x, const Tensor& kv) {
  const int64_t B = x.size(0), nq = x.size(1), nk = kv.size(1), H = m.num_heads, hd = m.head_dim;
  auto heads = [&](const Tensor& t, int64_t n) {
    return t.reshape({B, n, H, hd}).permute({0, 2, 1, 3});
  };
  const Tensor q = heads(linear(x, m.q_proj->weight, m.q_proj->bias), nq);
  const Tensor k = heads(linear(kv, m.k_proj->weight, m.k_proj->bias), nk);
  const Tensor v = heads(linear(kv, m.v_proj->weight, m.v_proj->bias), nk);
  const Tensor p = softmax(matmul(q, transpose(k, 2, 3)) * (1.0 / std::sqrt(double(hd))), -1);
  const Tensor a = matmul(p, v).permute({0, 2, 1, 3}).reshape({B, nq, m.embed_dim});
  return linear(a, m.out_proj->weight, m.out_proj->bias);
}

// BigGAN's attention forward written with bmm and softmax, as in its PyTorch code.
Tensor sagan_reference(SelfAttention2d& m, const Tensor& x) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), n = H * W;
  auto w = [](const std::shared_ptr<Module>& c) {
    return std::static_pointer_cast<Conv2d>(c)->weight;
  };
  const Tensor theta = conv2d(x, w(m.theta)).reshape({B, C / 8, n});
  const Tensor phi = max_pool2d(conv2d(x, w(m.phi)), 2).reshape({B, C / 8, n / 4});
  const Tensor g = max_pool2d(conv2d(x, w(m.g)), 2).reshape({B, C / 2, n / 4});
  const Tensor beta = softmax(matmul(transpose(theta, 1, 2), phi), -1);  // (B, n, n/4)
  const Tensor o = conv2d(matmul(g, transpose(beta, 1, 2)).reshape({B, C / 2, H, W}), w(m.o));
  return x + m.gamma * o;
}

}  // namespace

TEST_CASE("Attention: PyTorch-like parameter names and shapes") {
  Attention m(16, 4, AttentionKind::Dense, {}, 0.0, true, nullptr, kFloat64, 12);
  CHECK(names(m.named_parameters()) ==
        std::vector<std::string>{"q_proj.weight", "q_proj.bias", "k_proj.weight", "k_proj.bias",
                                 "v_proj.weight", "v_proj.bias", "out_proj.weight",
                                 "out_proj.bias"});
  CHECK(m.k_proj->weight.shape() == Shape{16, 12});
  CHECK(m.head_dim == 4);
  CHECK_THROWS_AS(Attention(15, 4), Error);
}

TEST_CASE("Attention: dense equals a plain-op multi-head reference, self and cross") {
  Generator gen(1);
  Attention m(16, 4, AttentionKind::Dense, {}, 0.0, true, &gen, kFloat64);
  const Tensor x = randn({2, 12, 16}, kFloat64, &gen), kv = randn({2, 20, 16}, kFloat64, &gen);
  CHECK(max_abs_diff(m.forward(x), mha_reference(m, x, x)) < 1e-12);
  CHECK(max_abs_diff(m.forward(x, kv), mha_reference(m, x, kv)) < 1e-12);
}

TEST_CASE("Attention: the same weights run dense or SMYRF, chosen per call") {
  Generator gen(2);
  const SmyrfConfig small{2, 8, 8, SmyrfDuplicates::Multiset};
  Attention smyrf_layer(16, 2, AttentionKind::Smyrf, small, 0.0, true, &gen, kFloat64);
  Attention dense_layer(16, 2, AttentionKind::Dense, {}, 0.0, true, &gen, kFloat64);
  dense_layer.load_state_dict(smyrf_layer.state_dict());
  const Tensor x = randn({2, 32, 16}, kFloat64, &gen);

  AttentionCall as_dense;
  as_dense.kind = AttentionKind::Dense;
  const Tensor d1 = smyrf_layer.forward(x, Tensor(), as_dense);
  const Tensor d2 = dense_layer.forward(x);
  CHECK(max_abs_diff(d1, d2) == 0.0);

  // SMYRF with small clusters is an approximation: it differs from dense
  const Tensor s = smyrf_layer.forward(x);
  CHECK(max_abs_diff(s, d2) > 1e-6);
  // ...and with one cluster it is dense, through the layer (per-call config override)
  AttentionCall one;
  one.smyrf = SmyrfConfig{3, 32, 32, SmyrfDuplicates::Multiset};
  CHECK(max_abs_diff(smyrf_layer.forward(x, Tensor(), one), d2) < 1e-12);
  // the dense layer overridden to SMYRF gives the same clusters as the SMYRF layer for a seed
  AttentionCall seeded;
  seeded.seed = 77;
  AttentionCall seeded_smyrf = seeded;
  seeded_smyrf.kind = AttentionKind::Smyrf;
  seeded_smyrf.smyrf = small;
  CHECK(max_abs_diff(smyrf_layer.forward(x, Tensor(), seeded),
                     dense_layer.forward(x, Tensor(), seeded_smyrf)) == 0.0);
}

TEST_CASE("Attention: fresh SMYRF seed per call, recorded for recomputation; masks; gradients") {
  Generator gen(3);
  Attention m(8, 2, AttentionKind::Smyrf, {2, 4, 4, SmyrfDuplicates::Multiset}, 0.0, true, &gen,
              kFloat64);
  const Tensor x = randn({2, 16, 8}, kFloat64, &gen);
  const Tensor a = m.forward(x);
  const uint64_t seed_a = m.last_seed();
  const Tensor b = m.forward(x);
  CHECK(m.last_seed() != seed_a);
  CHECK(max_abs_diff(a, b) > 0);
  AttentionCall again;
  again.seed = seed_a;
  CHECK(max_abs_diff(m.forward(x, Tensor(), again), a) == 0.0);

  // key padding: the padded tail of batch 1 must not influence its outputs
  Tensor mask = ones({2, 16}, kBool);
  mask.select(0, 1).slice(0, 12, 16).fill_(0);
  AttentionCall padded;
  padded.key_padding_mask = mask;
  padded.kind = AttentionKind::Dense;
  const Tensor p1 = m.forward(x, Tensor(), padded);
  Tensor x2 = x.clone();
  {
    NoGradGuard ng;
    x2.select(0, 1).slice(0, 12, 16).fill_(3.0);
  }
  const Tensor p2 = m.forward(x2, Tensor(), padded);
  CHECK(max_abs_diff(p1.select(0, 1).slice(0, 0, 12), p2.select(0, 1).slice(0, 0, 12)) < 1e-12);

  // gradients reach every projection through a SMYRF call
  sum(m.forward(x) * randn({2, 16, 8}, kFloat64, &gen)).backward();
  for (const auto& [name, p] : m.named_parameters()) {
    INFO(name);
    REQUIRE(p.grad().defined());
    CHECK(max_abs(p.grad()) > 0);
  }
}

TEST_CASE("Attention: attention dropout is active only in training") {
  Generator gen(4);
  Attention m(8, 2, AttentionKind::Dense, {}, 0.5, true, &gen, kFloat64);
  const Tensor x = randn({1, 10, 8}, kFloat64, &gen);
  m.eval();
  const Tensor e1 = m.forward(x), e2 = m.forward(x);
  CHECK(max_abs_diff(e1, e2) == 0.0);
  m.train();
  CHECK(max_abs_diff(m.forward(x), e1) > 1e-6);
}

TEST_CASE("SelfAttention2d: BigGAN names, shapes, identity at gamma = 0") {
  Generator gen(5);
  SelfAttention2d m(16, AttentionKind::Dense, SelfAttention2d::default_smyrf(), false, &gen,
                    kFloat64);
  CHECK(names(m.named_parameters()) ==
        std::vector<std::string>{"gamma", "theta.weight", "phi.weight", "g.weight", "o.weight"});
  CHECK(std::static_pointer_cast<Conv2d>(m.theta)->weight.shape() == Shape{2, 16, 1, 1});
  CHECK(std::static_pointer_cast<Conv2d>(m.phi)->weight.shape() == Shape{2, 16, 1, 1});
  CHECK(std::static_pointer_cast<Conv2d>(m.g)->weight.shape() == Shape{8, 16, 1, 1});
  CHECK(std::static_pointer_cast<Conv2d>(m.o)->weight.shape() == Shape{16, 8, 1, 1});
  CHECK(m.gamma.dim() == 0);
  const Tensor x = randn({2, 16, 8, 6}, kFloat64, &gen);
  const Tensor y = m.forward(x);
  CHECK(y.shape() == x.shape());
  CHECK(max_abs_diff(y, x) == 0.0);  // gamma starts at 0
  SelfAttention2d sn(16, AttentionKind::Dense, SelfAttention2d::default_smyrf(), true, &gen);
  const std::vector<std::string> sn_names = names(sn.state_dict());
  CHECK(std::find(sn_names.begin(), sn_names.end(), "theta.weight_orig") != sn_names.end());
  CHECK(std::find(sn_names.begin(), sn_names.end(), "o.weight_u") != sn_names.end());
  CHECK_THROWS_AS(m.forward(randn({1, 16, 5, 6}, kFloat64, &gen)), Error);
  CHECK_THROWS_AS(SelfAttention2d(12), Error);
}

TEST_CASE("SelfAttention2d: dense equals BigGAN's bmm formulation; gradients reach gamma") {
  Generator gen(6);
  SelfAttention2d m(16, AttentionKind::Dense, SelfAttention2d::default_smyrf(), false, &gen,
                    kFloat64);
  {
    NoGradGuard ng;
    m.gamma.fill_(0.7);
  }
  const Tensor x = randn({2, 16, 8, 6}, kFloat64, &gen);
  const Tensor y = m.forward(x);
  CHECK(max_abs_diff(y, sagan_reference(m, x)) < 1e-12);

  sum(y * randn(y.shape(), kFloat64, &gen)).backward();
  for (const auto& [name, p] : m.named_parameters()) {
    INFO(name);
    REQUIRE(p.grad().defined());
    CHECK(max_abs(p.grad()) > 0);
  }
  // at gamma = 0 the gradient still reaches gamma (it is how the block switches on)
  SelfAttention2d z(16, AttentionKind::Smyrf, {2, 16, 4, SmyrfDuplicates::Multiset}, false, &gen,
                    kFloat64);
  const Tensor yz = z.forward(x);
  sum(yz * randn(yz.shape(), kFloat64, &gen)).backward();
  REQUIRE(z.gamma.grad().defined());
  CHECK(std::abs(z.gamma.grad().item()) > 0);
}

TEST_CASE("SelfAttention2d: SMYRF with one cluster equals dense; default config at 32x32") {
  Generator gen(7);
  SelfAttention2d m(16, AttentionKind::Smyrf, {3, 48, 12, SmyrfDuplicates::Multiset}, false, &gen,
                    kFloat64);
  {
    NoGradGuard ng;
    m.gamma.fill_(1.3);
  }
  const Tensor x = randn({2, 16, 8, 6}, kFloat64, &gen);  // Nq = 48, Nk = 12
  AttentionCall dense;
  dense.kind = AttentionKind::Dense;
  CHECK(max_abs_diff(m.forward(x), m.forward(x, dense)) < 1e-12);

  SelfAttention2d big(32, AttentionKind::Smyrf, SelfAttention2d::default_smyrf(), false, &gen);
  {
    NoGradGuard ng;
    big.gamma.fill_(1.0);
  }
  const Tensor xb = randn({1, 32, 32, 32}, kFloat32, &gen);
  SmyrfDiagnostics dg;
  AttentionCall call;
  call.diagnostics = &dg;
  const Tensor yb = big.forward(xb, call);
  CHECK(yb.shape() == xb.shape());
  REQUIRE(dg.q_cluster.defined());
  CHECK(dg.q_cluster.shape() == Shape{1, 1, 2, 1024});  // 8 clusters of 128 queries, 32 keys
  CHECK(dg.k_cluster.shape() == Shape{1, 1, 2, 256});
  CHECK(dg.seed == big.last_seed());
  CHECK(max_abs_diff(yb, xb) > 0);
}
