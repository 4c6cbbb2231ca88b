// AdamW and SGD on CUDA parameters against the same optimizer on CPU copies: three steps of
// updates with weight decay, momentum and Nesterov. Runs only with a GPU (exit 77 = skipped
// otherwise). All pass on an NVIDIA H200 (first GPU run, 2026-11-28).
#include <doctest/doctest.h>

#include "cuda_test_util.h"
#include "train/optim.h"

using namespace smyrf;
using namespace smyrf::cuda_test;

namespace {
// Runs three steps of the optimizer made by make on a CPU and a CUDA copy of the same parameter,
// with the same gradients, and compares the parameters after each step.
template <typename Make>
void compare_steps(Make make, const std::string& what) {
  Tensor pc = rnd({37, 19}, 1).requires_grad_();
  Tensor pg = cu(pc.detach()).requires_grad_();
  auto oc = make(std::vector<Tensor>{pc});
  auto og = make(std::vector<Tensor>{pg});
  for (int s = 0; s < 3; ++s) {
    const Tensor g = rnd({37, 19}, 10 + s);
    pc.set_grad(g);
    pg.set_grad(cu(g));
    oc->step();
    og->step();
    check_close(pg.detach(), pc.detach(), 1e-5, 1e-6, what + " step " + std::to_string(s + 1));
  }
}
}  // namespace

TEST_CASE("cuda: AdamW and SGD steps match the CPU optimizers") {
  compare_steps(
      [](std::vector<Tensor> p) {
        return std::make_unique<train::AdamW>(
            p, train::AdamW::Options{}.set_lr(1e-2).set_weight_decay(0.1));
      },
      "AdamW");
  compare_steps(
      [](std::vector<Tensor> p) {
        return std::make_unique<train::AdamW>(
            p, train::AdamW::Options{}.set_lr(1e-2).set_weight_decay(0.1).set_decoupled(false));
      },
      "Adam (L2)");
  compare_steps(
      [](std::vector<Tensor> p) {
        train::SGD::Options o;
        o.lr = 0.1, o.momentum = 0.9, o.weight_decay = 1e-3, o.nesterov = true;
        return std::make_unique<train::SGD>(p, o);
      },
      "SGD");
}
