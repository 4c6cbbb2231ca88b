// Spectral normalisation as a wrapper around any module with a "weight" parameter, with the state
// and semantics of torch.nn.utils.spectral_norm(module) (dim 0, eps 1e-12):
//
//   parameters  weight_orig (the original weight tensor) and the module's other parameters,
//   buffers     weight_u (out), weight_v (in * k...), and the module's other buffers,
//
// so registering SpectralNorm(conv) under the name "conv" gives the state_dict names PyTorch
// writes: conv.bias, conv.weight_orig, conv.weight_u, conv.weight_v.
//
// Every forward computes W = weight_orig viewed as (out, -1) and installs weight = W / sigma,
// sigma = u^T W v, in the wrapped module before calling it. In training mode it first runs
// n_power_iterations of v = normalize(W^T u), u = normalize(W v) without recording and stores u, v
// in place; in eval mode u and v are left as they are. sigma is differentiable through W (u and v
// are constants), exactly as PyTorch.
#pragma once
#include <functional>
#include <memory>

#include "layers/module.h"

namespace smyrf::layers {

class SpectralNorm : public Module {
 public:
  // M must have a public `Tensor weight` member that its forward reads (Linear, Conv2d, Embedding).
  template <typename M>
  explicit SpectralNorm(std::shared_ptr<M> module, int64_t n_power_iterations = 1,
                        double eps = 1e-12, Generator* gen = nullptr)
      : SpectralNorm(
            std::static_pointer_cast<Module>(module),
            [module](const Tensor& w) { module->weight = w; }, n_power_iterations, eps, gen) {}
  // The general form: set_weight installs the normalised weight where the module's forward reads
  // it.
  SpectralNorm(std::shared_ptr<Module> module, std::function<void(const Tensor&)> set_weight,
               int64_t n_power_iterations, double eps, Generator* gen);

  // Installs the normalised weight (see above) and calls the wrapped module's forward.
  Tensor forward(const Tensor& x) override;
  // Only installs and returns the normalised weight, for modules called through another
  // signature: call it, then the module.
  Tensor compute_weight();
  void train(bool on = true) override;
  std::string name() const override { return "SpectralNorm"; }

  const std::shared_ptr<Module>& module() const { return module_; }
  double last_sigma() const { return last_sigma_; }  // sigma of the latest forward (logging)

  Tensor weight_orig, weight_u, weight_v;

 private:
  std::shared_ptr<Module> module_;
  std::function<void(const Tensor&)> set_weight_;
  int64_t n_power_iterations_;
  double eps_;
  double last_sigma_ = 0;
};

}  // namespace smyrf::layers
