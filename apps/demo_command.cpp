// `smyrf demo`: trains a small MLP classifier on a synthetic two-spiral problem with autograd
// and Adam, printing the falling loss and accuracy. The quick start's built-in default job
// until SMYRF-BigGAN training takes its place.
#include <chrono>
#include <cmath>
#include <cstdio>

#include "apps/commands.h"
#include "autograd/ops.h"
#include "layers/linear.h"
#include "train/optim.h"

namespace smyrf::apps {
namespace {
struct Spirals {
  Tensor x, y;
};

// Two interleaved spirals with noise, classes 0 and 1.
Spirals make_spirals(int64_t n, Generator& gen) {
  Tensor t = uniform({n}, 0.25, 3.0 * M_PI, TensorOptions(kFloat32), &gen);
  Tensor cls = randint(0, 2, {n}, DType::Int64, &gen);
  Tensor noise = normal({n, 2}, 0.0, 0.15, TensorOptions(kFloat32), &gen);
  std::vector<float> tv = t.to_vector<float>(), nv = noise.to_vector<float>();
  std::vector<int64_t> cv = cls.to_vector<int64_t>();
  std::vector<float> xv(n * 2);
  for (int64_t i = 0; i < n; ++i) {
    float sgn = cv[i] ? -1.f : 1.f;
    xv[2 * i] = sgn * tv[i] * std::cos(tv[i]) / 5.f + nv[2 * i];
    xv[2 * i + 1] = sgn * tv[i] * std::sin(tv[i]) / 5.f + nv[2 * i + 1];
  }
  return {from_vector(xv, {n, 2}), cls};
}
}  // namespace

void add_demo_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("demo", "Train a small MLP with autograd and print the falling loss");
  static int steps = 300;
  static int64_t seed = 1;
  static int hidden = 64;
  cmd->add_option("--steps", steps, "training steps")->check(CLI::PositiveNumber);
  cmd->add_option("--seed", seed, "random seed");
  cmd->add_option("--hidden", hidden, "hidden width")->check(CLI::PositiveNumber);
  cmd->callback([] {
    Generator gen(static_cast<uint64_t>(seed));
    Spirals train = make_spirals(2048, gen), test = make_spirals(512, gen);
    layers::Sequential net;
    net.add(std::make_shared<layers::Linear>(2, hidden, true, &gen));
    net.add(std::make_shared<layers::Activation>(layers::Activation::Kind::Gelu));
    net.add(std::make_shared<layers::Linear>(hidden, hidden, true, &gen));
    net.add(std::make_shared<layers::Activation>(layers::Activation::Kind::Gelu));
    net.add(std::make_shared<layers::Linear>(hidden, 2, true, &gen));
    train::AdamW opt(net.parameters(), train::AdamW::Options{}.set_lr(1e-2).set_weight_decay(0));
    std::printf("smyrf demo: MLP 2-%d-%d-2 (%lld parameters) on two spirals, %d Adam steps\n", hidden, hidden,
                static_cast<long long>(net.num_parameters()), steps);
    auto t0 = std::chrono::steady_clock::now();
    const int64_t batch = 256;
    double first = 0, last = 0;
    for (int step = 1; step <= steps; ++step) {
      Tensor idx = randint(0, train.x.size(0), {batch}, DType::Int64, &gen);
      Tensor logits = net.forward(index_select(train.x, 0, idx));
      Tensor loss = cross_entropy(logits, index_select(train.y, 0, idx));
      opt.zero_grad();
      loss.backward();
      opt.step();
      last = loss.item();
      if (step == 1) first = last;
      if (step == 1 || step % 50 == 0 || step == steps) {
        NoGradGuard ng;
        net.eval();
        Tensor pred = argmax(net.forward(test.x), 1);
        double acc = mean(eq(pred, test.y).to(kFloat32)).item();
        net.train();
        std::printf("step %4d  loss %.4f  test accuracy %.1f%%\n", step, last, 100.0 * acc);
      }
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("loss %.4f -> %.4f in %.1f s\n", first, last, secs);
    if (!(last < first)) set_exit_code(1);
  });
}

}  // namespace smyrf::apps
