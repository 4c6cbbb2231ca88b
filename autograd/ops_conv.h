// Differentiable convolution, pooling, upsampling and batch normalisation on NCHW tensors
// (float32 or float64, CPU). Each function is a single autograd node with a hand-written
// backward (names in autograd/op_list.h), verified by tests/gradcheck/gradcheck_conv.cpp.
//
// Errors are smyrf::Error naming the op, the shapes and a hint, e.g.
//   [conv2d] input has 6 channels but weight (8, 4, 3, 3) with groups=1 expects 4
#pragma once
#include <array>
#include <cstdint>
#include <utility>

#include "core/tensor.h"

namespace smyrf {

using IntPair = std::array<int64_t, 2>;  // (height, width)

// x (N, C, H, W), weight (K, C/groups, R, S), bias (K) or undefined -> (N, K, P, Q) with
// P = (H + 2 pad - dilation (R - 1) - 1) / stride + 1, as torch.nn.functional.conv2d.
// Throws when channels do not divide by groups, the weight's input channels do not match, or
// the (dilated) kernel is larger than the padded input.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              IntPair stride = {1, 1}, IntPair padding = {0, 0}, IntPair dilation = {1, 1},
              int64_t groups = 1);
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
              int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);

// Average pooling (ceil_mode=False). stride {0, 0} means stride = kernel. Padding must be at
// most half the kernel. count_include_pad: padded zeros count in the divisor (PyTorch default).
Tensor avg_pool2d(const Tensor& x, IntPair kernel, IntPair stride = {0, 0},
                  IntPair padding = {0, 0}, bool count_include_pad = true);
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride = 0, int64_t padding = 0,
                  bool count_include_pad = true);

// Max pooling (ceil_mode=False, padding counts as -inf). The _with_indices form also returns
// the int64 argmax of every output cell as a flat index into its (H, W) plane, like PyTorch.
// The gradient goes to the argmax only (the first maximum on ties).
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, IntPair kernel,
                                                  IntPair stride = {0, 0},
                                                  IntPair padding = {0, 0});
Tensor max_pool2d(const Tensor& x, IntPair kernel, IntPair stride = {0, 0},
                  IntPair padding = {0, 0});
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride = 0, int64_t padding = 0);

// Nearest-neighbour upsampling by integer factors: (N, C, H, W) -> (N, C, H*sh, W*sw).
Tensor upsample_nearest2d(const Tensor& x, int64_t scale_h, int64_t scale_w);
inline Tensor upsample_nearest2d(const Tensor& x, int64_t scale) {
  return upsample_nearest2d(x, scale, scale);
}

// Batch normalisation of x (N, C, ...) over every dim but C, as torch.nn.functional.batch_norm.
// training: normalises with the batch mean and biased variance and, when running_mean and
// running_var (C) are defined, updates them in place without recording (running = (1 - momentum)
// running + momentum batch, the variance unbiased, N*L/(N*L - 1)). Otherwise normalises with the
// running statistics (which must then be defined). weight and bias are (C), or (N, C) for a
// per-sample affine (conditional batch norm, fused into the same node), or undefined.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum = 0.1,
                  double eps = 1e-5);

}  // namespace smyrf
