#include "layers/module.h"

#include <set>
#include <unordered_set>

#include "autograd/grad_mode.h"
#include "core/ops.h"

namespace smyrf::layers {

Tensor Module::forward(const Tensor&) {
  throw Error(name(), "this module has no single-tensor forward",
              "call the module's own forward overload");
}

void Module::check_new_name(const std::string& name) const {
  SMYRF_CHECK(!name.empty() && name.find('.') == std::string::npos, this->name(),
              "invalid member name '" << name << "' (empty or containing '.')");
  auto taken = [&](const auto& list) {
    for (auto& [n, _] : list)
      if (n == name) return true;
    return false;
  };
  SMYRF_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), this->name(),
              "member name '" << name << "' registered twice");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  check_new_name(name);
  if (!t.requires_grad()) t.requires_grad_(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name);
  buffers_.emplace_back(name, t);
  return t;
}

void Module::set_buffer(const std::string& name, const Tensor& t) {
  for (auto& [n, b] : buffers_)
    if (n == name) {
      b = t;
      return;
    }
  throw Error(this->name(), "no buffer named '" + name + "'");
}

void Module::collect(const std::string& prefix, bool params, bool recurse,
                     NamedTensors& out) const {
  for (auto& [n, t] : params ? params_ : buffers_) out.emplace_back(prefix + n, t);
  if (!recurse) return;
  for (auto& [n, m] : children_) m->collect(prefix + n + ".", params, true, out);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  collect("", true, recurse, out);
  // A tensor registered twice (tied weights) is listed once, under its first name, as PyTorch
  // does; otherwise an optimizer would apply two updates per step to it.
  NamedTensors unique;
  std::unordered_set<const TensorImpl*> seen;
  for (auto& nt : out)
    if (seen.insert(nt.second.impl()).second) unique.push_back(nt);
  return unique;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  collect("", false, recurse, out);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() const {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  for (auto& [n, m] : children_) {
    out.emplace_back(n, m);
    for (auto& [cn, cm] : m->named_modules()) out.emplace_back(n + "." + cn, cm);
  }
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  return n;
}

void Module::collect_state(const std::string& prefix, NamedTensors& out) const {
  collect(prefix, true, false, out);
  collect(prefix, false, false, out);
  for (auto& [n, m] : children_) m->collect_state(prefix + n + ".", out);
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect_state("", out);
  return out;
}

void Module::load_state_dict(const NamedTensors& state, bool strict) {
  NamedTensors mine = state_dict();
  std::set<std::string> given;
  for (auto& [n, t] : state) given.insert(n);
  std::vector<std::string> missing, unexpected;
  std::set<std::string> known;
  for (auto& [n, t] : mine) {
    known.insert(n);
    if (!given.count(n)) missing.push_back(n);
  }
  for (auto& [n, t] : state)
    if (!known.count(n)) unexpected.push_back(n);
  if (strict && (!missing.empty() || !unexpected.empty())) {
    std::string msg = "state dict does not match the module:";
    if (!missing.empty()) {
      msg += " missing";
      for (auto& n : missing) msg += " " + n;
    }
    if (!unexpected.empty()) {
      msg += (missing.empty() ? " unexpected" : "; unexpected");
      for (auto& n : unexpected) msg += " " + n;
    }
    throw Error("load_state_dict", msg, "pass strict=false to load a subset");
  }
  // Check every shape before copying anything: a failed load must not leave the module half
  // overwritten with the checkpoint's values.
  std::vector<std::pair<Tensor, Tensor>> copies;
  for (auto& [n, src] : state) {
    for (auto& [mn, dst] : mine) {
      if (mn != n) continue;
      SMYRF_CHECK_HINT(dst.shape() == src.shape(), "load_state_dict",
                       "'" << n << "' has shape " << shape_str(src.shape())
                           << " in the state dict but " << shape_str(dst.shape())
                           << " in the module",
                       "the checkpoint was written by a model of another configuration");
      copies.emplace_back(dst, src);
    }
  }
  NoGradGuard ng;
  for (auto& [dst, src] : copies) raw::copy_into(dst, src);
}

void Module::to(Device device) {
  for (auto& [n, p] : named_parameters()) raw::move_to_device_(p, device);
  for (auto& [n, b] : named_buffers()) raw::move_to_device_(b, device);
}

Device Module::device() const {
  const std::vector<Tensor> ps = parameters();
  return ps.empty() ? Device::cpu() : ps.front().device();
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

void Module::zero_grad() {
  for (const Tensor& p : parameters()) p.zero_grad();
}

std::shared_ptr<Module> Sequential::add(std::shared_ptr<Module> m) {
  layers_.push_back(m);
  return register_module(std::to_string(layers_.size() - 1), m);
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& m : layers_) h = m->forward(h);
  return h;
}

int64_t Module::register_forward_hook(CaptureHook hook) {
  SMYRF_CHECK(hook != nullptr, name(), "register_forward_hook: empty hook");
  forward_hooks_.emplace_back(next_hook_id_, std::move(hook));
  return next_hook_id_++;
}

int64_t Module::register_backward_hook(CaptureHook hook) {
  SMYRF_CHECK(hook != nullptr, name(), "register_backward_hook: empty hook");
  backward_hooks_.emplace_back(next_hook_id_, std::move(hook));
  return next_hook_id_++;
}

void Module::remove_hook(int64_t id) {
  for (auto* list : {&forward_hooks_, &backward_hooks_})
    for (auto it = list->begin(); it != list->end(); ++it)
      if (it->first == id) {
        list->erase(it);
        if (backward_hooks_.empty()) kept_.clear();
        return;
      }
}

void Module::capture_forward(const std::string& point, const Tensor& t) const {
  for (auto& [id, h] : forward_hooks_) h(point, t);
}

void Module::capture_backward(const std::string& point, const Tensor& t) const {
  if (backward_hooks_.empty() || !t.defined() || !t.requires_grad()) return;
  // a copy of the hooks present at forward time: the graph may outlive this module's list
  std::vector<CaptureHook> hooks;
  for (auto& [id, h] : backward_hooks_) hooks.push_back(h);
  t.register_hook([hooks, point](const Tensor& g) {
    for (auto& h : hooks) h(point, g);
  });
  for (auto& [p, kept] : kept_)
    if (p == point) {
      kept = t;
      return;
    }
  kept_.emplace_back(point, t);
}

std::shared_ptr<Module> find_module(const Module& root, const std::string& dotted_name) {
  std::string names;
  for (auto& [n, m] : root.named_modules()) {
    if (n == dotted_name) return m;
    if (names.size() < 2000) names += (names.empty() ? "" : ", ") + n;
  }
  throw Error(root.name(), "no submodule named '" + dotted_name + "'", "available: " + names);
}

}  // namespace smyrf::layers
