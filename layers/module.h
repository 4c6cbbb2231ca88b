// Module: the base of every layer and model. Holds parameters, buffers and submodules in
// registration order, so named_parameters() and state_dict() list dotted names the way PyTorch
// does ("blocks.0.attn.qkv.weight"), and a state dict written by one can be read by the other.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"
#include "core/named_tensors.h"

namespace smyrf::layers {

// The same type as smyrf::NamedTensors, so a state_dict() goes straight to save_safetensors.
using NamedTensors = ::smyrf::NamedTensors;

class Module {
 public:
  virtual ~Module() = default;
  // Single-input forward; modules with other signatures define their own call operators and
  // leave this one throwing with the module's name.
  virtual Tensor forward(const Tensor& x);
  virtual std::string name() const { return "Module"; }

  // Own parameters, then children's (dotted names); a tensor registered twice is listed once.
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules() const;  // excludes self
  int64_t num_parameters() const;

  // Dotted names in PyTorch's order: each module's own parameters, then its own buffers, then
  // its children's entries (recursively). Tied tensors appear under every name, as in PyTorch.
  NamedTensors state_dict() const;
  // Copies values into this module's tensors (shapes must match). strict: every key of the
  // module must be present and no unknown key may appear. Throws with the offending names.
  void load_state_dict(const NamedTensors& state, bool strict = true);

  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();

 protected:
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    check_new_name(name);
    children_.emplace_back(name, m);
    return m;
  }
  // Rebinds a registered buffer to a new tensor (e.g. running statistics updated out of place).
  void set_buffer(const std::string& name, const Tensor& t);

 private:
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix, bool params, bool recurse, NamedTensors& out) const;
  void collect_state(const std::string& prefix, NamedTensors& out) const;
  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// Applies its children in order; names them "0", "1", ... like torch.nn.Sequential.
class Sequential : public Module {
 public:
  Sequential() = default;
  std::shared_ptr<Module> add(std::shared_ptr<Module> m);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Sequential"; }

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

}  // namespace smyrf::layers
