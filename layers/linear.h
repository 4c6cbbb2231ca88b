// Basic layers: Linear, Embedding, LayerNorm, Dropout, Activation.
// Parameter names and shapes follow PyTorch (Linear weight (out, in), bias (out)).
#pragma once
#include "layers/module.h"

namespace smyrf::layers {

// y = x W^T + b over the last dim. Init as PyTorch: U(-1/sqrt(in), 1/sqrt(in)).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator* gen = nullptr,
         DType dtype = kFloat32);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Linear"; }
  Tensor weight, bias;
  int64_t in_features, out_features;
};

// Rows of a (num, dim) table; init N(0, 1) as PyTorch.
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t dim, Generator* gen = nullptr, DType dtype = kFloat32);
  Tensor forward(const Tensor& indices) override;
  std::string name() const override { return "Embedding"; }
  Tensor weight;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool affine = true, DType dtype = kFloat32);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "LayerNorm"; }
  Tensor weight, bias;
  Shape normalized_shape;
  double eps;
};

// Inverted dropout, active only in training mode.
class Dropout : public Module {
 public:
  explicit Dropout(double p, Generator* gen = nullptr) : p_(p), gen_(gen) {}
  Tensor forward(const Tensor& x) override { return dropout(x, p_, is_training(), gen_); }
  std::string name() const override { return "Dropout"; }

 private:
  double p_;
  Generator* gen_;
};

class Activation : public Module {
 public:
  enum class Kind { Relu, Gelu, Silu, Tanh, Sigmoid, LeakyRelu };
  explicit Activation(Kind kind, double slope = 0.2) : kind_(kind), slope_(slope) {}
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Activation"; }

 private:
  Kind kind_;
  double slope_;
};

}  // namespace smyrf::layers
