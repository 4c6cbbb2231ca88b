// GPT and BERT models: parameter names and count, GPT-2 initialisation, the causal property
// (dense and SMYRF), BERT's bidirectionality, MLM masking statistics, and config round trips.
#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "models/bert.h"
#include "models/gpt.h"

using namespace smyrf;
using namespace smyrf::models;

namespace {

ModelConfig tiny(const std::string& kind = "gpt", const std::string& attention = "dense") {
  ModelConfig c;
  c.kind = kind;
  c.vocab_size = 50;
  c.context = 16;
  c.layers = 2;
  c.d_model = 32;
  c.heads = 4;
  c.attention = attention;
  c.n_hashes = 2;
  c.q_cluster_size = 4;
  c.k_cluster_size = 4;
  return c;
}

std::vector<float> row(const Tensor& logits, int64_t b, int64_t t) {
  return logits.select(0, b).select(0, t).contiguous().to_vector<float>();
}

}  // namespace

TEST_CASE("gpt: PyTorch-style parameter names and count") {
  Generator gen(1);
  GPT m(tiny(), &gen);
  auto named = m.named_parameters();
  std::set<std::string> names;
  for (auto& [n, p] : named) names.insert(n);
  for (const char* want :
       {"transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight",
        "transformer.h.0.ln_1.bias", "transformer.h.0.attn.q_proj.weight",
        "transformer.h.0.attn.k_proj.bias", "transformer.h.0.attn.v_proj.weight",
        "transformer.h.1.attn.out_proj.weight", "transformer.h.1.ln_2.bias",
        "transformer.h.1.mlp.c_fc.weight", "transformer.h.1.mlp.c_proj.bias",
        "transformer.ln_f.weight", "transformer.ln_f.bias"})
    CHECK_MESSAGE(names.count(want) == 1, want);
  CHECK(named.size() == 2 + 2 * 16 + 2);
  // wte + wpe + 2 * (ln_1 + 4 projections + ln_2 + c_fc + c_proj) + ln_f; the head is tied
  const int64_t per_layer = 64 + 4 * (32 * 32 + 32) + 64 + (32 * 128 + 128) + (128 * 32 + 32);
  CHECK(m.num_parameters() == 50 * 32 + 16 * 32 + 2 * per_layer + 64);
  CHECK(m.transformer->h[1]->mlp->c_fc->weight.shape() == Shape{128, 32});
}

TEST_CASE("gpt: GPT-2 initialisation scales the residual projections") {
  ModelConfig c = tiny();
  c.d_model = 64;
  c.layers = 8;
  Generator gen(2);
  GPT m(c, &gen);
  auto stdev = [](const Tensor& t) {
    auto v = t.to_vector<float>();
    double s = 0;
    for (float x : v) s += double(x) * x;
    return std::sqrt(s / v.size());
  };
  auto& b = m.transformer->h[3];
  CHECK(stdev(b->attn->q_proj->weight) == doctest::Approx(0.02).epsilon(0.05));
  CHECK(stdev(m.transformer->wte->weight) == doctest::Approx(0.02).epsilon(0.1));
  CHECK(stdev(b->attn->out_proj->weight) == doctest::Approx(0.02 / 4.0).epsilon(0.05));
  CHECK(stdev(b->mlp->c_proj->weight) == doctest::Approx(0.02 / 4.0).epsilon(0.05));
  CHECK(stdev(b->mlp->c_fc->bias) == 0.0);
  CHECK(b->ln_1->weight.to_vector<float>() == std::vector<float>(64, 1.f));
}

TEST_CASE("gpt: logits at position i do not depend on tokens after i (dense and SMYRF)") {
  for (const char* attention : {"dense", "smyrf"}) {
    CAPTURE(attention);
    Generator gen(3);
    GPT m(tiny("gpt", attention), &gen);
    m.eval();
    NoGradGuard ng;
    Tensor a = randint(0, 50, {2, 16}, DType::Int64, &gen);
    const int64_t cut = 6;
    Tensor b = a.clone();
    {
      Tensor tail = randint(0, 50, {2, 16 - cut - 1}, DType::Int64, &gen);
      b.slice(1, cut + 1, 16).copy_(tail);
    }
    ForwardOptions o;
    o.seed = 77;  // same clusters for both inputs (SMYRF)
    Tensor la = m.forward(a, o), lb = m.forward(b, o);
    CHECK(la.shape() == Shape{2, 16, 50});
    for (int64_t bi = 0; bi < 2; ++bi) {
      for (int64_t t = 0; t <= cut; ++t) CHECK(row(la, bi, t) == row(lb, bi, t));
      CHECK(row(la, bi, 15) != row(lb, bi, 15));  // the test can fail: later positions change
    }
  }
}

TEST_CASE("gpt: attention is overridable per call; SMYRF with one cluster equals dense") {
  ModelConfig c = tiny("bert", "smyrf");
  c.q_cluster_size = c.k_cluster_size = 16;  // one cluster holds the whole sequence
  Generator gen(4);
  BERT m(c, &gen);
  m.eval();
  NoGradGuard ng;
  Tensor x = randint(0, 49, {2, 16}, DType::Int64, &gen);
  ForwardOptions dense;
  dense.attention = layers::AttentionKind::Dense;
  ForwardOptions smyrf;
  smyrf.seed = 5;
  auto d = m.forward(x, dense).to_vector<float>(), s = m.forward(x, smyrf).to_vector<float>();
  REQUIRE(d.size() == s.size());
  double worst = 0;
  for (size_t i = 0; i < d.size(); ++i) worst = std::max(worst, double(std::fabs(d[i] - s[i])));
  CHECK(worst < 1e-4);
  ForwardOptions small = smyrf;
  small.smyrf = layers::SmyrfConfig{1, 4, 4, SmyrfDuplicates::Multiset};
  auto s2 = m.forward(x, small).to_vector<float>();
  double diff = 0;
  for (size_t i = 0; i < d.size(); ++i) diff = std::max(diff, double(std::fabs(d[i] - s2[i])));
  CHECK(diff > 1e-4);  // 4 clusters of 4: a different function
}

TEST_CASE("bert: every position sees every token") {
  Generator gen(5);
  BERT m(tiny("bert"), &gen);
  m.eval();
  NoGradGuard ng;
  Tensor a = randint(0, 49, {1, 16}, DType::Int64, &gen);
  Tensor b = a.clone();
  b.select(1, 15).fill_(a.select(1, 15).item<int64_t>() == 3 ? 4 : 3);
  CHECK(row(m.forward(a), 0, 0) != row(m.forward(b), 0, 0));
  CHECK(m.mask_id() == 49);
}

TEST_CASE("bert: MLM masks 15% of positions with the 80/10/10 rule") {
  Generator gen(6);
  const int64_t B = 64, T = 200, mask_id = 1000;
  Tensor tok = randint(0, mask_id, {B, T}, DType::Int64, &gen);
  MlmBatch mb = mask_tokens(tok, mask_id, gen);
  auto in = mb.inputs.to_vector<int64_t>(), tg = mb.targets.to_vector<int64_t>(),
       orig = tok.to_vector<int64_t>();
  int64_t chosen = 0, masked = 0, replaced = 0, kept = 0;
  for (int64_t b = 0; b < B; ++b) {
    int64_t per_row = 0;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t i = b * T + t;
      if (tg[i] == -100) {
        CHECK(in[i] == orig[i]);  // unchosen positions are untouched
        continue;
      }
      ++per_row;
      CHECK(tg[i] == orig[i]);
      if (in[i] == mask_id)
        ++masked;
      else if (in[i] == orig[i])
        ++kept;  // includes the rare random draw of the same id
      else
        ++replaced;
      CHECK(in[i] >= 0);
      CHECK(in[i] <= mask_id);
    }
    CHECK(per_row == 30);  // exactly round(0.15 * 200) per sequence
    chosen += per_row;
  }
  const double n = static_cast<double>(chosen);
  // binomial standard deviations at n = 1920: 0.9%, 0.7%: bounds at about 4 sigma
  CHECK(masked / n == doctest::Approx(0.8).epsilon(0.05));
  CHECK(replaced / n == doctest::Approx(0.1).epsilon(0.3));
  CHECK(kept / n == doctest::Approx(0.1).epsilon(0.3));
  // a short sequence still gets one target
  MlmBatch one = mask_tokens(randint(0, 10, {3, 2}, DType::Int64, &gen), 10, gen);
  int64_t n1 = 0;
  for (int64_t v : one.targets.to_vector<int64_t>()) n1 += v != -100;
  CHECK(n1 == 3);
  CHECK_THROWS(mask_tokens(full({1, 4}, 10, DType::Int64), 10, gen));  // ids must be < mask_id
}

TEST_CASE("models: config JSON round trip and validation") {
  ModelConfig c = tiny("bert", "smyrf");
  c.dropout = 0.1;
  ModelConfig d = ModelConfig::from_json(c.to_json());
  CHECK(d.to_json() == c.to_json());
  CHECK(ModelConfig::from_json(nlohmann::json::object()).to_json() == ModelConfig{}.to_json());
  auto bad = c.to_json();
  bad["heads"] = 5;
  CHECK_THROWS_WITH(ModelConfig::from_json(bad), doctest::Contains("multiple of heads"));
  bad = c.to_json();
  bad["attention"] = "sparse";
  CHECK_THROWS_WITH(ModelConfig::from_json(bad), doctest::Contains("sparse"));
  bad = c.to_json();
  bad["layers"] = "four";
  CHECK_THROWS(ModelConfig::from_json(bad));
  Generator gen(7);
  GPT m(tiny(), &gen);
  CHECK_THROWS_WITH(m.forward(zeros({1, 17}, DType::Int64)), doctest::Contains("context"));
}
