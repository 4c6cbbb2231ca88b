// Golden test against PyTorch: a tiny GPT and a tiny BERT (2 layers, d 32) loaded with the
// weights of tests/golden/*.safetensors (written by tests/golden/make_golden.py with torch 1.13)
// must reproduce PyTorch's logits, loss, every parameter gradient, and the parameters after 3
// AdamW steps, each to 1e-5 relative (max |ours - torch| / max |torch| per tensor).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>

#include "core/safetensors.h"
#include "models/bert.h"
#include "models/gpt.h"
#include "train/optim.h"

using namespace smyrf;
namespace fs = std::filesystem;

namespace {

std::string golden_path(const std::string& file) {
  // next to this source, so the test runs from any working directory
  return (fs::path(__FILE__).parent_path().parent_path() / "golden" / file).string();
}

double rel_error(const Tensor& ours, const Tensor& ref) {
  REQUIRE(ours.shape() == ref.shape());
  auto a = ours.contiguous().to(kFloat64).to_vector<double>();
  auto b = ref.contiguous().to(kFloat64).to_vector<double>();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return scale > 0 ? diff / scale : diff;
}

double max_abs(const Tensor& x) {
  double m = 0;
  for (double v : x.contiguous().to(kFloat64).to_vector<double>()) m = std::max(m, std::fabs(v));
  return m;
}

// The key bias shifts every score of a query by the same q.b, which softmax ignores: its gradient
// is identically zero.
bool zero_gradient(const std::string& name) {
  return name.find("attn.k_proj.bias") != std::string::npos;
}

void check_golden(const std::string& file) {
  SafetensorsContents g = load_safetensors(golden_path(file));
  std::map<std::string, Tensor> t(g.tensors.begin(), g.tensors.end());
  models::ModelConfig c;
  c.kind = g.metadata.at("kind");
  c.vocab_size = std::stoll(g.metadata.at("vocab"));
  c.layers = std::stoll(g.metadata.at("layers"));
  c.d_model = std::stoll(g.metadata.at("d_model"));
  c.heads = std::stoll(g.metadata.at("heads"));
  c.context = std::stoll(g.metadata.at("context"));
  auto model = models::make_model(c);
  NamedTensors init;
  for (auto& [name, v] : g.tensors)
    if (name.rfind("param.", 0) == 0) init.emplace_back(name.substr(6), v);
  model->load_state_dict(init);  // strict: the names must be exactly ours

  const Tensor idx = t.at("input.idx"), targets = t.at("input.targets");
  Tensor logits = model->forward(idx, {});
  Tensor loss = models::TransformerLM::loss(logits, targets);
  CHECK(rel_error(logits, t.at("out.logits")) < 1e-5);
  CHECK(rel_error(loss.reshape({1}), t.at("out.loss")) < 1e-5);
  loss.backward();
  auto params = model->named_parameters();
  REQUIRE(params.size() == init.size());
  double grad_scale = 0;
  for (auto& [name, p] : params) grad_scale = std::max(grad_scale, max_abs(t.at("grad." + name)));
  for (auto& [name, p] : params) {
    CAPTURE(name);
    REQUIRE(p.grad().defined());
    if (zero_gradient(name)) {
      // exactly 0 in exact arithmetic: both sides hold rounding noise, so bound it absolutely
      CHECK(max_abs(p.grad()) < 1e-5 * grad_scale);
      continue;
    }
    CHECK(rel_error(p.grad(), t.at("grad." + name)) < 1e-5);
  }

  // 3 AdamW steps, grouped as train/lm_train.cpp groups them
  train::ParamGroup decay{{}, 0.1}, no_decay{{}, 0.0};
  for (auto& [name, p] : params) {
    const bool emb =
        name.find(".wte.") != std::string::npos || name.find(".wpe.") != std::string::npos;
    (p.dim() >= 2 && !emb ? decay : no_decay).params.push_back(p);
  }
  train::AdamW opt({decay, no_decay}, train::AdamW::Options{}
                                          .set_lr(1e-3)
                                          .set_betas(0.9, 0.999)
                                          .set_eps(1e-8)
                                          .set_weight_decay(0.1));
  model->zero_grad();
  for (int s = 0; s < 3; ++s) {
    opt.zero_grad();
    models::TransformerLM::loss(model->forward(idx, {}), targets).backward();
    opt.step();
  }
  for (auto& [name, p] : params) {
    CAPTURE(name);
    // Adam divides the noise of a zero gradient by its own size: +-lr steps on either side
    if (!zero_gradient(name)) CHECK(rel_error(p, t.at("step3." + name)) < 1e-5);
  }
}

}  // namespace

TEST_CASE("golden: tiny GPT matches PyTorch (logits, loss, gradients, 3 AdamW steps)") {
  check_golden("gpt_tiny.safetensors");
}

TEST_CASE("golden: tiny BERT matches PyTorch (logits, loss, gradients, 3 AdamW steps)") {
  check_golden("bert_tiny.safetensors");
}
