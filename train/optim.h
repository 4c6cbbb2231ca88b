// Optimizers: SGD (momentum, Nesterov, weight decay) and Adam / AdamW (decoupled weight decay).
//
// Parameter groups let weight decay differ per group (e.g. none on biases and norms).
// Parameters must be contiguous CPU float tensors; a parameter without a gradient is skipped.
// state() / load_state() expose the per-parameter buffers for checkpoints.
#pragma once
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "layers/module.h"

namespace smyrf::train {

struct ParamGroup {
  std::vector<Tensor> params;
  double weight_decay = -1;  // < 0: use the optimizer's default
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad();
  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  int64_t steps() const { return step_; }
  // Buffers by name ("<group>.<index>.<buffer>") plus "step", for checkpoints.
  virtual layers::NamedTensors state() const = 0;
  virtual void load_state(const layers::NamedTensors& state) = 0;

 protected:
  explicit Optimizer(std::vector<ParamGroup> groups, double lr);
  static void check_param(const Tensor& p, const char* op);
  std::vector<ParamGroup> groups_;
  double lr_;
  int64_t step_ = 0;
};

class SGD : public Optimizer {
 public:
  struct Options {
    double lr = 1e-2, momentum = 0, weight_decay = 0;
    bool nesterov = false;
  };
  SGD(std::vector<Tensor> params, Options o);
  SGD(std::vector<ParamGroup> groups, Options o);
  void step() override;
  layers::NamedTensors state() const override;
  void load_state(const layers::NamedTensors& state) override;

 private:
  Options opt_;
  std::vector<std::vector<Tensor>> momentum_;
};

// Adam with decoupled weight decay (AdamW) or L2-coupled (Adam: decoupled = false).
class AdamW : public Optimizer {
 public:
  struct Options {
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2;
    bool decoupled = true;
    Options& set_lr(double v) { lr = v; return *this; }
    Options& set_betas(double b1, double b2) { beta1 = b1, beta2 = b2; return *this; }
    Options& set_eps(double v) { eps = v; return *this; }
    Options& set_weight_decay(double v) { weight_decay = v; return *this; }
    Options& set_decoupled(bool v) { decoupled = v; return *this; }
  };
  AdamW(std::vector<Tensor> params, Options o);
  AdamW(std::vector<ParamGroup> groups, Options o);
  void step() override;
  layers::NamedTensors state() const override;
  void load_state(const layers::NamedTensors& state) override;

 private:
  Options opt_;
  std::vector<std::vector<Tensor>> m_, v_;
};

}  // namespace smyrf::train
