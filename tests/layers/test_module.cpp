// Module bookkeeping (dotted names in PyTorch's order, state dicts, strict loading, train/eval)
// and the forward values of the basic layers against hand computation.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/safetensors.h"
#include "layers/linear.h"

using namespace smyrf;
using namespace smyrf::layers;

namespace {

struct Block : Module {
  std::shared_ptr<Linear> fc;
  std::shared_ptr<LayerNorm> ln;
  explicit Block(Generator* g) {
    fc = register_module("fc", std::make_shared<Linear>(4, 4, true, g));
    ln = register_module("ln", std::make_shared<LayerNorm>(Shape{4}));
  }
  Tensor forward(const Tensor& x) override { return ln->forward(relu(fc->forward(x))); }
  std::string name() const override { return "Block"; }
};

// The same structure as this PyTorch model, whose names the tests expect:
//   class Net(nn.Module):
//     def __init__(s):
//       super().__init__()
//       s.scale = nn.Parameter(torch.ones(4)); s.register_buffer('steps', torch.zeros(1,
//       dtype=torch.long)) s.emb = nn.Embedding(10, 4); s.blocks = nn.Sequential(Block(),
//       nn.Dropout(0.5), Block()) s.head = nn.Linear(4, 3, bias=False)
struct Net : Module {
  Tensor scale;
  std::shared_ptr<Embedding> emb;
  std::shared_ptr<Sequential> blocks;
  std::shared_ptr<Linear> head;
  explicit Net(Generator* g) {
    scale = register_parameter("scale", ones({4}));
    register_buffer("steps", zeros({1}, kInt64));
    emb = register_module("emb", std::make_shared<Embedding>(10, 4, g));
    blocks = register_module("blocks", std::make_shared<Sequential>());
    blocks->add(std::make_shared<Block>(g));
    blocks->add(std::make_shared<Dropout>(0.5, g));
    blocks->add(std::make_shared<Block>(g));
    head = register_module("head", std::make_shared<Linear>(4, 3, false, g));
  }
  Tensor forward(const Tensor& idx) override {
    return head->forward(blocks->forward(emb->forward(idx) * scale));
  }
};

std::vector<std::string> names(const NamedTensors& nt) {
  std::vector<std::string> out;
  for (auto& [n, t] : nt) out.push_back(n);
  return out;
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}
// Checks that a message contains `part` and shows the whole message when it does not.
#define CHECK_HAS(msg, part)                              \
  do {                                                    \
    const std::string check_has_m_ = (msg);               \
    CHECK_MESSAGE(has(check_has_m_, part), check_has_m_); \
  } while (0)

Tensor idx() { return from_vector<int64_t>({1, 7, 3, 3, 9, 0}, {2, 3}); }

}  // namespace

TEST_CASE("Module: dotted names and order match PyTorch") {
  Generator g(1);
  Net net(&g);
  // Printed by list(Net().named_parameters()) / state_dict().keys() for the model above.
  const std::vector<std::string> params = {"scale",
                                           "emb.weight",
                                           "blocks.0.fc.weight",
                                           "blocks.0.fc.bias",
                                           "blocks.0.ln.weight",
                                           "blocks.0.ln.bias",
                                           "blocks.2.fc.weight",
                                           "blocks.2.fc.bias",
                                           "blocks.2.ln.weight",
                                           "blocks.2.ln.bias",
                                           "head.weight"};
  const std::vector<std::string> state = {"scale",
                                          "steps",
                                          "emb.weight",
                                          "blocks.0.fc.weight",
                                          "blocks.0.fc.bias",
                                          "blocks.0.ln.weight",
                                          "blocks.0.ln.bias",
                                          "blocks.2.fc.weight",
                                          "blocks.2.fc.bias",
                                          "blocks.2.ln.weight",
                                          "blocks.2.ln.bias",
                                          "head.weight"};
  CHECK(names(net.named_parameters()) == params);
  CHECK(names(net.state_dict()) == state);
  CHECK(names(net.named_buffers()) == std::vector<std::string>{"steps"});
  CHECK(names(net.named_parameters(false)) == std::vector<std::string>{"scale"});
  std::vector<std::string> mods;
  for (auto& [n, m] : net.named_modules()) mods.push_back(n);
  CHECK(mods == std::vector<std::string>{"emb", "blocks", "blocks.0", "blocks.0.fc", "blocks.0.ln",
                                         "blocks.1", "blocks.2", "blocks.2.fc", "blocks.2.ln",
                                         "head"});
  // shapes follow PyTorch: Linear weight (out, in)
  CHECK(net.head->weight.shape() == Shape{3, 4});
  CHECK(net.blocks->named_parameters()[0].second.shape() == Shape{4, 4});
  for (auto& [n, p] : net.named_parameters()) CHECK(p.requires_grad());
}

TEST_CASE("Module: parameter counts") {
  Generator g(1);
  CHECK(Linear(4, 3).num_parameters() == 15);
  CHECK(Linear(4, 3, false).num_parameters() == 12);
  CHECK(Embedding(10, 4).num_parameters() == 40);
  CHECK(LayerNorm(Shape{2, 3}).num_parameters() == 12);
  CHECK(LayerNorm(Shape{4}, 1e-5, false).num_parameters() == 0);
  CHECK(Net(&g).num_parameters() == 112);  // sum(p.numel() for p in Net().parameters())
}

TEST_CASE("Module: a tensor registered twice (tied weights) is one parameter") {
  struct Tied : Module {
    Tied() {
      Tensor w = ones({2, 3});
      register_parameter("a", w);
      register_parameter("b", w);
      register_parameter("c", zeros({3}));
    }
  } m;
  CHECK(names(m.named_parameters()) == std::vector<std::string>{"a", "c"});
  CHECK(m.parameters().size() == 2);
  CHECK(m.num_parameters() == 9);
  CHECK(names(m.state_dict()) == std::vector<std::string>{"a", "b", "c"});  // as torch's state_dict
}

TEST_CASE("Module: state_dict through safetensors into a fresh model gives identical outputs") {
  Generator g1(1), g2(2);
  Net a(&g1), b(&g2);
  a.eval();
  b.eval();
  const Tensor x = idx();
  const std::vector<float> ya = a.forward(x).to_vector<float>();
  REQUIRE(ya != b.forward(x).to_vector<float>());
  SafetensorsContents c = safetensors_parse(safetensors_serialize(a.state_dict()));
  b.load_state_dict(c.tensors);
  CHECK(b.forward(x).to_vector<float>() == ya);
  // loading copies values: later changes to the file's tensors do not alias the model
  c.tensors[0].second.fill_(5.0);
  CHECK(b.forward(x).to_vector<float>() == ya);
  CHECK(b.scale.requires_grad());
}

TEST_CASE("Module: load_state_dict errors name the offending keys and leave the module unchanged") {
  Generator g1(1), g2(2);
  Net a(&g1), b(&g2);
  const std::vector<float> before = b.head->weight.to_vector<float>();
  NamedTensors sd = a.state_dict();

  SUBCASE("missing and unexpected") {
    NamedTensors s2;
    for (auto& [n, t] : sd)
      if (n != "blocks.0.fc.bias" && n != "steps") s2.emplace_back(n, t);
    s2.emplace_back("blocks.3.fc.weight", ones({4, 4}));
    std::string m = error_of([&] { b.load_state_dict(s2); });
    CHECK_HAS(m, "[load_state_dict]");
    CHECK_HAS(m, "missing steps blocks.0.fc.bias");
    CHECK_HAS(m, "unexpected blocks.3.fc.weight");
    CHECK(b.head->weight.to_vector<float>() == before);
    // non-strict loads what matches and ignores the rest
    b.load_state_dict(s2, false);
    CHECK(b.head->weight.to_vector<float>() == a.head->weight.to_vector<float>());
  }
  SUBCASE("shape mismatch") {
    // head.weight is last, so a loader that copies as it checks would already have overwritten
    // every other tensor when it fails.
    for (auto& [n, t] : sd)
      if (n == "head.weight") t = zeros({4, 3});
    std::string m = error_of([&] { b.load_state_dict(sd); });
    CHECK_HAS(m, "'head.weight' has shape (4, 3) in the state dict but (3, 4) in the module");
    CHECK(b.emb->weight.to_vector<float>() != a.emb->weight.to_vector<float>());
    CHECK(b.head->weight.to_vector<float>() == before);
  }
}

TEST_CASE("Module: train/eval propagates to every submodule") {
  Generator g(3);
  Net net(&g);
  CHECK(net.is_training());
  net.eval();
  CHECK_FALSE(net.is_training());
  for (auto& [n, m] : net.named_modules()) CHECK_FALSE(m->is_training());
  const Tensor x = idx();
  CHECK(net.forward(x).to_vector<float>() == net.forward(x).to_vector<float>());  // dropout off
  net.train();
  for (auto& [n, m] : net.named_modules()) CHECK(m->is_training());
  net.blocks->train(false);
  CHECK(net.is_training());
  CHECK_FALSE(net.blocks->named_children()[1].second->is_training());
}

TEST_CASE("Linear forward: x W^T + b") {
  Linear lin(2, 3);
  lin.load_state_dict({{"weight", from_vector<float>({1, 2, 3, 4, 5, 6}, {3, 2})},
                       {"bias", tensor({0.5f, -1.0f, 0.0f})}});
  Tensor y = lin.forward(from_vector<float>({1, -1, 2, 0.5f}, {2, 2}));
  CHECK(y.shape() == Shape{2, 3});
  // [1,-1]: (1-2+0.5, 3-4-1, 5-6) ; [2,0.5]: (2+1+0.5, 6+2-1, 10+3)
  CHECK(y.to_vector<float>() == std::vector<float>{-0.5f, -2.0f, -1.0f, 3.5f, 7.0f, 13.0f});
  // leading batch dims
  CHECK(lin.forward(ones({2, 1, 2})).shape() == Shape{2, 1, 3});
  // init bound 1/sqrt(in) as PyTorch
  Generator g(5);
  Linear big(16, 32, true, &g);
  for (float w : big.weight.to_vector<float>()) CHECK(std::abs(w) <= 0.25f);
}

TEST_CASE("Embedding forward picks rows") {
  Embedding e(3, 2);
  e.load_state_dict({{"weight", from_vector<float>({0, 1, 10, 11, 20, 21}, {3, 2})}});
  Tensor y = e.forward(from_vector<int64_t>({2, 0, 2, 1}, {2, 2}));
  CHECK(y.shape() == Shape{2, 2, 2});
  CHECK(y.to_vector<float>() == std::vector<float>{20, 21, 0, 1, 20, 21, 10, 11});
}

TEST_CASE("LayerNorm forward: (x - mean) / sqrt(var + eps) * w + b, biased variance") {
  LayerNorm ln(Shape{4}, 1e-5);
  ln.load_state_dict(
      {{"weight", tensor({1.f, 2.f, 1.f, 1.f})}, {"bias", tensor({0.f, 0.f, 1.f, 0.f})}});
  Tensor y = ln.forward(from_vector<float>({1, 2, 3, 4, -1, -1, -1, -1}, {2, 4}));
  // row 0: mean 2.5, var 1.25; row 1: constant, so (x - mean) = 0 and y = bias
  const double s = 1.0 / std::sqrt(1.25 + 1e-5);
  const std::vector<double> want = {-1.5 * s, -0.5 * s * 2, 0.5 * s + 1, 1.5 * s, 0, 0, 1, 0};
  std::vector<float> got = y.to_vector<float>();
  for (size_t i = 0; i < want.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-6));
}

TEST_CASE("Dropout: identity in eval and at p=0, inverted scaling in training") {
  Generator g(11);
  Dropout d(0.25, &g);
  Tensor x = full({4000}, 3.0);
  d.eval();
  CHECK(d.forward(x).to_vector<float>() == x.to_vector<float>());
  d.train();
  std::vector<float> y = d.forward(x).to_vector<float>();
  int zeros_n = 0;
  for (float v : y) {
    CHECK((v == 0.0f || v == doctest::Approx(4.0)));  // 3 / (1 - 0.25)
    zeros_n += v == 0.0f;
  }
  // Fixed seed, so this is deterministic; 1000 expected, the band is +-6 sigma.
  CHECK(zeros_n > 840);
  CHECK(zeros_n < 1160);
  Dropout d0(0.0);
  CHECK(d0.forward(x).to_vector<float>() == x.to_vector<float>());
}
