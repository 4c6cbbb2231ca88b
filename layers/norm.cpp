#include "layers/norm.h"

#include "autograd/grad_mode.h"
#include "autograd/ops_conv.h"
#include "layers/linear.h"
#include "layers/spectral_norm.h"

namespace smyrf::layers {

BatchNorm2d::BatchNorm2d(int64_t c, double eps_, double momentum_, bool affine, bool track,
                         DType dtype)
    : num_features(c), eps(eps_), momentum(momentum_) {
  SMYRF_CHECK(c > 0, "BatchNorm2d", "num_features must be positive, got " << c);
  if (affine) {
    weight = register_parameter("weight", ones({c}, TensorOptions(dtype)));
    bias = register_parameter("bias", zeros({c}, TensorOptions(dtype)));
  }
  if (track) {
    running_mean = register_buffer("running_mean", zeros({c}, TensorOptions(dtype)));
    running_var = register_buffer("running_var", ones({c}, TensorOptions(dtype)));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, TensorOptions(kInt64)));
  }
}

Tensor BatchNorm2d::forward(const Tensor& x) { return forward_affine(x, weight, bias); }

Tensor BatchNorm2d::forward_affine(const Tensor& x, const Tensor& w, const Tensor& b) {
  SMYRF_CHECK_HINT(x.dim() == 4 && x.size(1) == num_features, name(),
                   "expected (N, " << num_features << ", H, W), got " << shape_str(x.shape()),
                   "BatchNorm2d(C) normalises 4-D inputs with C channels");
  const bool tracking = running_mean.defined();
  const bool use_batch_stats = is_training() || !tracking;
  double factor = momentum;
  if (is_training() && tracking) {
    NoGradGuard no_grad;
    const int64_t n = num_batches_tracked.item<int64_t>() + 1;
    num_batches_tracked.fill_(static_cast<double>(n));
    if (momentum < 0) factor = 1.0 / static_cast<double>(n);
  }
  // Running statistics are updated only in training mode; passing them otherwise reads them.
  const bool pass_stats = tracking && (is_training() || !use_batch_stats);
  return batch_norm(x, pass_stats ? running_mean : Tensor(), pass_stats ? running_var : Tensor(), w,
                    b, use_batch_stats, factor, eps);
}

ConditionalBatchNorm2d::ConditionalBatchNorm2d(int64_t c, int64_t cond_dim, bool sn, double eps,
                                               double momentum, Generator* gen, DType dtype) {
  auto make_linear = [&]() -> std::shared_ptr<Module> {
    auto lin = std::make_shared<Linear>(cond_dim, c, /*bias=*/false, gen, dtype);
    if (!sn) return lin;
    return std::make_shared<SpectralNorm>(lin, 1, 1e-12, gen);
  };
  gain = register_module("gain", make_linear());
  bias = register_module("bias", make_linear());
  bn = register_module(
      "bn", std::make_shared<BatchNorm2d>(c, eps, momentum, /*affine=*/false, true, dtype));
}

Tensor ConditionalBatchNorm2d::forward(const Tensor& x, const Tensor& y) {
  SMYRF_CHECK_HINT(
      y.dim() == 2 && x.dim() >= 1 && y.size(0) == x.size(0), name(),
      "conditioning " << shape_str(y.shape()) << " does not match input " << shape_str(x.shape()),
      "y is (N, cond_dim) with the input's batch size");
  return bn->forward_affine(x, 1.0 + gain->forward(y), bias->forward(y));
}

}  // namespace smyrf::layers
