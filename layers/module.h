// Module: the base of every layer and model. Holds parameters, buffers and submodules in
// registration order, so named_parameters() and state_dict() list dotted names the way PyTorch
// does ("blocks.0.attn.qkv.weight"), and a state dict written by one can be read by the other.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"
#include "core/named_tensors.h"

namespace smyrf::layers {

// The same type as smyrf::NamedTensors, so a state_dict() goes straight to save_safetensors.
using NamedTensors = ::smyrf::NamedTensors;

// Hooks: observe named capture points of a module during forward and backward without changing
// its computation. A layer declares its capture points (Attention and SelfAttention2d: "q", "k",
// "v" going into the attention op, "out" coming out of it, each (B, H, N, d); and the gradient
// point "grad_out", the upstream gradient of "out"). A forward hook is called with every forward
// capture point as it is computed; a backward hook with every gradient point during backward
// (through an autograd tensor hook, so only when the captured tensor requires grad). Hooks see
// the tensors themselves: clone() what you keep if a later in-place write could change it.
using CaptureHook = std::function<void(const std::string& point, const Tensor& value)>;

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
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const {
    return children_;
  }
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules()
      const;  // excludes self
  int64_t num_parameters() const;

  // Dotted names in PyTorch's order: each module's own parameters, then its own buffers, then
  // its children's entries (recursively). Tied tensors appear under every name, as in PyTorch.
  NamedTensors state_dict() const;
  // Copies values into this module's tensors (shapes must match). strict: every key of the
  // module must be present and no unknown key may appear. Throws with the offending names.
  void load_state_dict(const NamedTensors& state, bool strict = true);

  // Moves every parameter and buffer (recursively) to `device` in place (core's
  // raw::move_to_device_): the layers keep their handles. Call it before building an optimizer,
  // whose state is created where the parameters are.
  void to(Device device);
  // The device of the first parameter (the CPU for a module without parameters).
  Device device() const;

  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();

  // Returns an id for remove_hook. Hooks run in registration order.
  int64_t register_forward_hook(CaptureHook hook);
  int64_t register_backward_hook(CaptureHook hook);
  void remove_hook(int64_t id);  // unknown ids are ignored
  bool has_hooks() const { return !forward_hooks_.empty() || !backward_hooks_.empty(); }

 protected:
  // Called by layers at their capture points: runs the forward hooks with (point, t).
  void capture_forward(const std::string& point, const Tensor& t) const;
  // Arranges for the backward hooks to receive the gradient of t as gradient point `point`
  // (nothing when there are none or t does not require grad). The autograd engine reaches a
  // tensor hook only while the tensor is alive, so the module keeps the latest t of each point
  // (and with it that pass's graph) until the next capture of the point or until its backward
  // hooks are all removed.
  void capture_backward(const std::string& point, const Tensor& t) const;

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
  std::vector<std::pair<int64_t, CaptureHook>> forward_hooks_, backward_hooks_;
  mutable std::vector<std::pair<std::string, Tensor>> kept_;  // see capture_backward
  int64_t next_hook_id_ = 1;
};

// The submodule of root named by its dotted path ("transformer.h.0.attn"); throws smyrf::Error
// listing the available names when there is none.
std::shared_ptr<Module> find_module(const Module& root, const std::string& dotted_name);

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
