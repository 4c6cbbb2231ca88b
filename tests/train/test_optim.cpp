// Optimizers against torch.optim on a small quadratic, and state()/load_state() round trips.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include "core/safetensors.h"
#include "train/optim.h"

using namespace smyrf;
using namespace smyrf::train;

namespace {

// The problem, as in the Python reference below: loss = sum(a * (w - c)^2) + 0.5 * sum(b^2).
struct Quadratic {
  Tensor w = from_vector<float>({0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f}, {2, 3},
                                TensorOptions().set_requires_grad());
  Tensor b = from_vector<float>({0.1f, -0.2f, 0.3f}, {3}, TensorOptions().set_requires_grad());
  Tensor a = from_vector<float>({1.0f, 2.0f, 0.5f, 3.0f, 1.0f, 0.25f}, {2, 3});
  Tensor c = from_vector<float>({0.0f, 1.0f, -1.0f, 0.5f, 0.5f, 0.5f}, {2, 3});
  Tensor loss() const { return (a * (w - c).pow(2.0)).sum() + b.pow(2.0).sum() * 0.5; }
  std::vector<float> values() const {
    std::vector<float> v = w.to_vector<float>(), vb = b.to_vector<float>();
    v.insert(v.end(), vb.begin(), vb.end());
    return v;
  }
};

float step(Quadratic& q, Optimizer& opt) {
  opt.zero_grad();
  Tensor l = q.loss();
  l.backward();
  opt.step();
  return l.item<float>();
}

// Expected values: parameters (w then b) after 5 steps, printed by this script (torch 1.13, CPU):
//
//   import torch
//   def run(make, steps=5):
//       w = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], requires_grad=True)
//       b = torch.tensor([0.1, -0.2, 0.3], requires_grad=True)
//       a = torch.tensor([[1.0, 2.0, 0.5], [3.0, 1.0, 0.25]])
//       c = torch.tensor([[0.0, 1.0, -1.0], [0.5, 0.5, 0.5]])
//       opt = make(w, b)
//       for _ in range(steps):
//           opt.zero_grad()
//           loss = (a * (w - c) ** 2).sum() + (b ** 2).sum() * 0.5
//           loss.backward()
//           opt.step()
//       return [float(v) for v in w.detach().flatten()] + [float(v) for v in b.detach()]
//   cfgs = {
//    'sgd_plain': lambda w,b: torch.optim.SGD([w,b], lr=0.1, weight_decay=0.1),
//    'sgd_momentum': lambda w,b: torch.optim.SGD([w,b], lr=0.1, momentum=0.9),
//    'sgd_nesterov_wd': lambda w,b: torch.optim.SGD([w,b], lr=0.1, momentum=0.9, nesterov=True,
//                                                   weight_decay=0.01),
//    'adam_l2': lambda w,b: torch.optim.Adam([w,b], lr=0.1, weight_decay=0.1),
//    'adamw_groups': lambda w,b:
//    torch.optim.AdamW([{'params':[w]},{'params':[b],'weight_decay':0.0}],
//                                 lr=0.1, betas=(0.8,0.99), eps=1e-6, weight_decay=0.5),
//   }
//   for k, f in cfgs.items():
//       print(k, ', '.join('%.9gf' % v for v in run(f)))
//
// Our kernels update in double and round once, torch rounds every float32 operation, so values
// agree to a few float32 ulps, not bit-exactly; 1e-6 relative catches any formula error (a
// wrong bias correction, momentum or decay term moves them by >1e-3).
void check_matches(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(std::abs(got[i] - want[i]) <= 1e-6f * std::max(1.0f, std::abs(want[i])));
  }
}

std::vector<float> run5(const std::function<std::unique_ptr<Optimizer>(Quadratic&)>& make) {
  Quadratic q;
  auto opt = make(q);
  for (int i = 0; i < 5; ++i) step(q, *opt);
  CHECK(opt->steps() == 5);
  return q.values();
}

}  // namespace

TEST_CASE("SGD matches torch.optim.SGD") {
  SUBCASE("plain with weight decay") {
    check_matches(run5([](Quadratic& q) {
                    return std::make_unique<SGD>(std::vector<Tensor>{q.w, q.b},
                                                 SGD::Options{0.1, 0, 0.1, false});
                  }),
                  {0.15385282f, 0.834368587f, 0.715362847f, 0.500899673f, 0.406590402f,
                   -0.439554721f, 0.0558405891f, -0.111681178f, 0.167521805f});
  }
  SUBCASE("momentum") {
    check_matches(run5([](Quadratic& q) {
                    return std::make_unique<SGD>(std::vector<Tensor>{q.w, q.b},
                                                 SGD::Options{0.1, 0.9, 0, false});
                  }),
                  {-0.290210009f, 2.45799994f, -1.08747983f, 0.269940019f, 0.645105004f,
                   -0.0214449167f, -0.00291599403f, 0.00583198806f, -0.00874799117f});
  }
  SUBCASE("nesterov with weight decay") {
    check_matches(run5([](Quadratic& q) {
                    return std::make_unique<SGD>(std::vector<Tensor>{q.w, q.b},
                                                 SGD::Options{0.1, 0.9, 0.01, true});
                  }),
                  {-0.208180025f, 1.32369983f, -1.3213737f, 0.560969174f, 0.600566685f,
                   0.111694187f, -0.0110790581f, 0.0221581161f, -0.0332371742f});
  }
}

TEST_CASE("Adam (L2) and AdamW (decoupled, per-group decay) match torch.optim") {
  SUBCASE("Adam, weight_decay as L2") {
    check_matches(run5([](Quadratic& q) {
                    return std::make_unique<AdamW>(
                        std::vector<Tensor>{q.w, q.b},
                        AdamW::Options().set_lr(0.1).set_weight_decay(0.1).set_decoupled(false));
                  }),
                  {0.0278144702f, -0.503003538f, 1.50184679f, 1.0078615f, 0.601982892f,
                   -0.25627619f, -0.0108520873f, 0.117095016f, -0.116177768f});
  }
  SUBCASE("AdamW with a no-decay group") {
    check_matches(
        run5([](Quadratic& q) {
          ParamGroup gw, gb;
          gw.params = {q.w};
          gb.params = {q.b};
          gb.weight_decay = 0.0;
          return std::make_unique<AdamW>(
              std::vector<ParamGroup>{gw, gb},
              AdamW::Options().set_lr(0.1).set_betas(0.8, 0.99).set_eps(1e-6).set_weight_decay(
                  0.5));
        }),
        {-0.0131224468f, -0.329264313f, 1.10194731f, 0.73596704f, 0.549550295f, -0.141239628f,
         0.00788946077f, 0.0926860943f, -0.0967033356f});
  }
}

TEST_CASE("optimizer state()/load_state() round trip continues bit-identically") {
  using Make = std::function<std::unique_ptr<Optimizer>(Quadratic&)>;
  const Make sgd = [](Quadratic& q) {
    return std::make_unique<SGD>(std::vector<Tensor>{q.w, q.b},
                                 SGD::Options{0.05, 0.9, 0.01, true});
  };
  const Make adam = [](Quadratic& q) {
    return std::make_unique<AdamW>(std::vector<Tensor>{q.w, q.b}, AdamW::Options().set_lr(0.05));
  };
  for (const Make& make : {sgd, adam}) {
    Quadratic ref;
    auto opt_ref = make(ref);
    for (int i = 0; i < 3; ++i) step(ref, *opt_ref);

    // A second run: 3 steps, state through safetensors bytes, a fresh optimizer over a fresh copy.
    Quadratic first;
    auto opt_first = make(first);
    for (int i = 0; i < 3; ++i) step(first, *opt_first);
    const std::string bytes = safetensors_serialize(opt_first->state());
    Quadratic resumed;
    resumed.w = first.w.detach().clone().requires_grad_();
    resumed.b = first.b.detach().clone().requires_grad_();
    auto opt_resumed = make(resumed);
    opt_resumed->load_state(safetensors_parse(bytes).tensors);
    CHECK(opt_resumed->steps() == 3);

    for (int i = 0; i < 4; ++i) CHECK(step(resumed, *opt_resumed) == step(ref, *opt_ref));
    CHECK(resumed.values() == ref.values());  // bit-identical
  }
}

TEST_CASE("optimizer load_state rejects mismatched state and keeps its own") {
  Quadratic q;
  AdamW opt({q.w, q.b}, AdamW::Options().set_lr(0.1));
  step(q, opt);
  NamedTensors good = opt.state();
  const std::vector<float> m0 = good[1].second.to_vector<float>();
  NamedTensors bad;
  for (auto& [n, t] : good) bad.emplace_back(n, n == "0.1.exp_avg_sq" ? zeros({4}) : t.clone());
  bad[1].second.fill_(9.0);  // 0.0.exp_avg: would be copied first by a copy-as-you-check loader
  try {
    opt.load_state(bad);
    FAIL("expected an error");
  } catch (const Error& e) {
    CAPTURE(e.what());
    CHECK(std::string(e.what()).find("'0.1.exp_avg_sq' has shape (4,), expected (3,)") !=
          std::string::npos);
  }
  CHECK(opt.state()[1].second.to_vector<float>() == m0);
  CHECK(opt.steps() == 1);
  NamedTensors missing(good.begin(), good.end() - 1);
  CHECK_THROWS_WITH_AS(opt.load_state(missing), doctest::Contains("missing '0.1.exp_avg_sq'"),
                       Error);
}
