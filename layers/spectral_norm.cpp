#include "layers/spectral_norm.h"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "core/random.h"

namespace smyrf::layers {
namespace {
// x / max(||x||, eps), as torch.nn.functional.normalize (no recording: callers hold no_grad).
Tensor normalized(const Tensor& x, double eps) {
  const double n = norm(x).item<double>();
  return x * (1.0 / std::max(n, eps));
}
}  // namespace

SpectralNorm::SpectralNorm(std::shared_ptr<Module> module,
                           std::function<void(const Tensor&)> set_weight,
                           int64_t n_power_iterations, double eps, Generator* gen)
    : module_(std::move(module)),
      set_weight_(std::move(set_weight)),
      n_power_iterations_(n_power_iterations),
      eps_(eps) {
  SMYRF_CHECK(module_ != nullptr, "SpectralNorm", "module is null");
  SMYRF_CHECK(n_power_iterations >= 0, "SpectralNorm",
              "n_power_iterations must be >= 0, got " << n_power_iterations);
  // Adopt the module's state under this module's names, the weight becoming weight_orig, so the
  // wrapper stands where the module stood in a parent's state_dict.
  for (auto& [n, t] : module_->named_parameters(false))
    if (n == "weight")
      weight_orig = t;
    else
      register_parameter(n, t);
  SMYRF_CHECK_HINT(weight_orig.defined(), "SpectralNorm",
                   module_->name() << " has no parameter named 'weight'",
                   "wrap Linear, Conv2d or Embedding");
  SMYRF_CHECK_HINT(weight_orig.dim() >= 2, "SpectralNorm",
                   "weight of " << module_->name() << " is " << shape_str(weight_orig.shape()),
                   "spectral norm needs a weight with at least 2 dims");
  register_parameter("weight_orig", weight_orig);
  for (auto& [n, t] : module_->named_buffers(false)) register_buffer(n, t);
  for (auto& [n, m] : module_->named_children()) register_module(n, m);
  const int64_t h = weight_orig.size(0), w = weight_orig.numel() / h;
  NoGradGuard no_grad;
  const TensorOptions opts(weight_orig.dtype());
  weight_u = register_buffer("weight_u", normalized(randn({h}, opts, gen), eps_));
  weight_v = register_buffer("weight_v", normalized(randn({w}, opts, gen), eps_));
  // Until the first forward the module sees W / sigma too, as after torch's spectral_norm().
  Tensor w2 = weight_orig.detach().reshape({h, w});
  set_weight_(weight_orig.detach() / sum(weight_u * matmul(w2, weight_v)));
}

void SpectralNorm::train(bool on) {
  Module::train(on);
  module_->train(on);
}

Tensor SpectralNorm::compute_weight() {
  const int64_t h = weight_orig.size(0);
  Tensor w2 = weight_orig.reshape({h, -1});
  Tensor u = weight_u, v = weight_v;
  if (is_training() && n_power_iterations_ > 0) {
    NoGradGuard no_grad;
    Tensor wd = w2.detach();
    for (int64_t i = 0; i < n_power_iterations_; ++i) {
      v = normalized(matmul(wd.t(), u), eps_);
      u = normalized(matmul(wd, v), eps_);
    }
    // In place, so whoever holds the buffers (state_dict, EMA copies) sees the new vectors; the
    // graph below uses u and v themselves, fresh tensors no later update can change.
    weight_u.copy_(u);
    weight_v.copy_(v);
  } else {
    u = weight_u.clone();
    v = weight_v.clone();
  }
  Tensor sigma = sum(u * matmul(w2, v));
  last_sigma_ = sigma.item<double>();
  Tensor w = weight_orig / sigma;
  set_weight_(w);
  return w;
}

Tensor SpectralNorm::forward(const Tensor& x) {
  compute_weight();
  return module_->forward(x);
}

}  // namespace smyrf::layers
