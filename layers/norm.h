// Batch normalisation layers. BatchNorm2d matches torch.nn.BatchNorm2d: parameters weight (C, ones)
// and bias (C, zeros) when affine; buffers running_mean (zeros), running_var (ones) and
// num_batches_tracked (int64 scalar) when tracking running statistics. Training mode normalises
// with batch statistics and updates the running ones (unbiased variance); eval mode uses them.
//
// ConditionalBatchNorm2d is BigGAN's class-conditional BN: a BatchNorm2d without affine whose
// per-sample gain and bias are predicted from a conditioning vector y (shared class embedding,
// optionally with a chunk of z) by two bias-free linear layers, gain = 1 + gain(y),
// bias = bias(y); the whole normalisation is one fused batch_norm node.
#pragma once
#include <memory>

#include "layers/module.h"

namespace smyrf::layers {

class BatchNorm2d : public Module {
 public:
  // momentum < 0 means a cumulative average (PyTorch's momentum=None).
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1,
                       bool affine = true, bool track_running_stats = true, DType dtype = kFloat32);
  Tensor forward(const Tensor& x) override;
  // Normalises x with this module's statistics and the given affine (C) or (N, C) instead of
  // its own weight and bias (undefined: none).
  Tensor forward_affine(const Tensor& x, const Tensor& weight, const Tensor& bias);
  std::string name() const override { return "BatchNorm2d"; }

  Tensor weight, bias;                                    // undefined without affine
  Tensor running_mean, running_var, num_batches_tracked;  // undefined without tracking
  int64_t num_features;
  double eps, momentum;
};

class ConditionalBatchNorm2d : public Module {
 public:
  // spectral_norm: wrap the two linear layers in SpectralNorm (BigGAN's G does).
  ConditionalBatchNorm2d(int64_t num_features, int64_t cond_dim, bool spectral_norm = true,
                         double eps = 1e-5, double momentum = 0.1, Generator* gen = nullptr,
                         DType dtype = kFloat32);
  // x (N, C, H, W), y (N, cond_dim).
  Tensor forward(const Tensor& x, const Tensor& y);
  std::string name() const override { return "ConditionalBatchNorm2d"; }

  std::shared_ptr<Module> gain, bias;  // cond_dim -> C, no bias: children "gain" and "bias"
  std::shared_ptr<BatchNorm2d> bn;     // child "bn", without affine
};

}  // namespace smyrf::layers
