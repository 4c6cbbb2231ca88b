#include "train/optim.h"

#include "core/ops.h"
#include "core/ops_cuda.h"
#include "kernels/cpu/optim.h"

namespace smyrf::train {
namespace kc = kernels::cpu;

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr)
    : groups_(std::move(groups)), lr_(lr) {
  for (auto& g : groups_)
    for (auto& p : g.params) check_param(p, "optimizer");
}

void Optimizer::check_param(const Tensor& p, const char* op) {
  SMYRF_CHECK_HINT(p.defined() && p.is_leaf() && p.requires_grad(), op,
                   "parameters must be leaf tensors that require grad", "pass module.parameters()");
  SMYRF_CHECK_HINT(
      p.is_contiguous() && (p.device().is_cpu() || p.device().is_cuda()) && is_floating(p.dtype()),
      op,
      "parameter of shape " << shape_str(p.shape())
                            << " must be a contiguous float tensor on the CPU or a CUDA device",
      "create parameters with the factories (they are contiguous)");
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params) p.zero_grad();
}

namespace {
std::vector<ParamGroup> one_group(std::vector<Tensor> params) {
  ParamGroup g;
  g.params = std::move(params);
  return {g};
}
std::vector<std::vector<Tensor>> zero_state(const std::vector<ParamGroup>& groups) {
  std::vector<std::vector<Tensor>> s;
  for (auto& g : groups) {
    s.emplace_back();
    for (auto& p : g.params) s.back().push_back(zeros_like(p));
  }
  return s;
}
void put(layers::NamedTensors& out, const std::vector<std::vector<Tensor>>& s,
         const std::string& what) {
  for (size_t gi = 0; gi < s.size(); ++gi)
    for (size_t i = 0; i < s[gi].size(); ++i)
      out.emplace_back(std::to_string(gi) + "." + std::to_string(i) + "." + what, s[gi][i]);
}
// Appends (dst, src) pairs after checking names and shapes; nothing is copied here, so the
// caller can validate every buffer before changing any (a failed load keeps the old state).
void get(const layers::NamedTensors& in, std::vector<std::vector<Tensor>>& s,
         const std::string& what, std::vector<std::pair<Tensor, Tensor>>& copies) {
  for (size_t gi = 0; gi < s.size(); ++gi)
    for (size_t i = 0; i < s[gi].size(); ++i) {
      std::string key = std::to_string(gi) + "." + std::to_string(i) + "." + what;
      bool found = false;
      for (auto& [n, t] : in)
        if (n == key) {
          SMYRF_CHECK(t.shape() == s[gi][i].shape(), "optimizer.load_state",
                      "'" << key << "' has shape " << shape_str(t.shape()) << ", expected "
                          << shape_str(s[gi][i].shape()));
          copies.emplace_back(s[gi][i], t);
          found = true;
        }
      SMYRF_CHECK_HINT(found, "optimizer.load_state", "missing '" << key << "'",
                       "the state was saved by an optimizer over other parameters");
    }
}
void apply(const std::vector<std::pair<Tensor, Tensor>>& copies) {
  for (auto& [dst, src] : copies) raw::copy_into(dst, src);
}
int64_t get_step(const layers::NamedTensors& in) {
  for (auto& [n, t] : in)
    if (n == "step") return t.item<int64_t>();
  throw Error("optimizer.load_state", "missing 'step'");
}
}  // namespace

SGD::SGD(std::vector<Tensor> params, Options o) : SGD(one_group(std::move(params)), o) {}
SGD::SGD(std::vector<ParamGroup> groups, Options o) : Optimizer(std::move(groups), o.lr), opt_(o) {
  if (opt_.momentum != 0) momentum_ = zero_state(groups_);
}

void SGD::step() {
  NoGradGuard ng;
  ++step_;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const double wd = groups_[gi].weight_decay >= 0 ? groups_[gi].weight_decay : opt_.weight_decay;
    for (size_t i = 0; i < groups_[gi].params.size(); ++i) {
      Tensor p = groups_[gi].params[i];
      Tensor g = p.grad();
      if (!g.defined()) continue;
      g = raw::contiguous(g);
      if (p.device().is_cuda()) {  // the same update in kernels/cuda
        cuda_ops::sgd_update(p, g, opt_.momentum != 0 ? momentum_[gi][i] : Tensor(), lr_,
                             opt_.momentum, wd, opt_.nesterov, step_ == 1);
        p.storage()->bump_version();
        continue;
      }
      SMYRF_DISPATCH_FLOAT(p.dtype(), "SGD.step", [&] {
        kc::sgd_update<scalar_t>(
            p.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(),
            opt_.momentum != 0 ? momentum_[gi][i].data_ptr<scalar_t>() : nullptr, p.numel(), lr_,
            opt_.momentum, wd, opt_.nesterov, step_ == 1);
      });
      p.storage()->bump_version();
    }
  }
}

layers::NamedTensors SGD::state() const {
  layers::NamedTensors out;
  out.emplace_back("step", scalar_tensor(static_cast<double>(step_), TensorOptions(kInt64)));
  put(out, momentum_, "momentum");
  return out;
}
void SGD::load_state(const layers::NamedTensors& s) {
  const int64_t step = get_step(s);
  std::vector<std::pair<Tensor, Tensor>> copies;
  get(s, momentum_, "momentum", copies);
  apply(copies);
  step_ = step;
}

AdamW::AdamW(std::vector<Tensor> params, Options o) : AdamW(one_group(std::move(params)), o) {}
AdamW::AdamW(std::vector<ParamGroup> groups, Options o)
    : Optimizer(std::move(groups), o.lr), opt_(o) {
  m_ = zero_state(groups_);
  v_ = zero_state(groups_);
}

void AdamW::step() {
  NoGradGuard ng;
  ++step_;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const double wd = groups_[gi].weight_decay >= 0 ? groups_[gi].weight_decay : opt_.weight_decay;
    for (size_t i = 0; i < groups_[gi].params.size(); ++i) {
      Tensor p = groups_[gi].params[i];
      Tensor g = p.grad();
      if (!g.defined()) continue;
      g = raw::contiguous(g);
      if (p.device().is_cuda()) {  // the same update in kernels/cuda
        cuda_ops::adam_update(p, g, m_[gi][i], v_[gi][i], lr_, opt_.beta1, opt_.beta2, opt_.eps, wd,
                              opt_.decoupled, step_);
        p.storage()->bump_version();
        continue;
      }
      SMYRF_DISPATCH_FLOAT(p.dtype(), "AdamW.step", [&] {
        kc::adam_update<scalar_t>(p.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(),
                                  m_[gi][i].data_ptr<scalar_t>(), v_[gi][i].data_ptr<scalar_t>(),
                                  p.numel(), lr_, opt_.beta1, opt_.beta2, opt_.eps, wd,
                                  opt_.decoupled, step_);
      });
      p.storage()->bump_version();
    }
  }
}

layers::NamedTensors AdamW::state() const {
  layers::NamedTensors out;
  out.emplace_back("step", scalar_tensor(static_cast<double>(step_), TensorOptions(kInt64)));
  put(out, m_, "exp_avg");
  put(out, v_, "exp_avg_sq");
  return out;
}
void AdamW::load_state(const layers::NamedTensors& s) {
  const int64_t step = get_step(s);
  std::vector<std::pair<Tensor, Tensor>> copies;
  get(s, m_, "exp_avg", copies);
  get(s, v_, "exp_avg_sq", copies);
  apply(copies);
  step_ = step;
}

}  // namespace smyrf::train
