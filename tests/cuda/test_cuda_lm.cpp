// Training on the GPU end to end: Module::to re-homes a model's parameters in place, and a tiny
// GPT trained with --device cuda follows the CPU run of the same seed step for step (float32 on
// both sides, the same dropout masks). Passing on an NVIDIA H200 (2026-11-30).
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "cuda_test_util.h"
#include "layers/linear.h"
#include "train/lm_train.h"

using namespace smyrf;
using namespace smyrf::cuda_test;

TEST_CASE("cuda: Module::to moves parameters in place and the layer computes there") {
  Generator g(5);
  layers::Linear lin(7, 3, true, &g);
  const Tensor x = rnd({4, 7}, 130);
  const Tensor want = lin.forward(x);
  lin.to(Device::cuda(0));
  for (const Tensor& p : lin.parameters()) CHECK(p.device().is_cuda());
  check_close(lin.forward(cu(x)), want.detach(), 1e-6, 1e-6, "linear on cuda");
  lin.to(Device::cpu());
  check_close(cu(lin.forward(x).detach()), want.detach(), 1e-6, 1e-6, "linear back on the cpu");
}

TEST_CASE("cuda: a GPT trained on the GPU follows the CPU run of the same seed") {
  std::string text;
  const char* words[] = {"alpha ", "beta ", "gamma ", "delta ", "eps "};
  for (int i = 0; i < 600; ++i) text += std::string(words[i % 5]) + words[(i * 7 + 3) % 5];
  auto run = [&](const std::string& device) {
    train::LmTrainOptions o;
    o.text = text;
    o.model.layers = 1, o.model.d_model = 32, o.model.heads = 2, o.model.context = 32;
    o.batch = 8, o.steps = 4, o.warmup = 1, o.lr = 1e-2, o.eval_every = 4, o.eval_tokens = 256;
    o.out = (std::filesystem::temp_directory_path() / ("smyrf_cuda_lm_" + device)).string();
    std::filesystem::remove_all(o.out);
    o.progress = false, o.plot = false;
    o.device = device;
    return train::train_lm(o);
  };
  const train::LmTrainResult c = run("cpu"), g = run("cuda");
  REQUIRE(g.losses.size() == c.losses.size());
  for (size_t i = 0; i < c.losses.size(); ++i)
    CHECK(g.losses[i] == doctest::Approx(c.losses[i]).epsilon(2e-3));
  CHECK(g.last_eval.loss == doctest::Approx(c.last_eval.loss).epsilon(2e-3));
}
