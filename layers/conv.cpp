#include "layers/conv.h"

#include <cmath>

namespace smyrf::layers {

Conv2d::Conv2d(int64_t in, int64_t out, int64_t k, int64_t stride_, int64_t padding_,
               int64_t dilation_, int64_t groups_, bool with_bias, Generator* gen, DType dtype)
    : in_channels(in),
      out_channels(out),
      kernel_size(k),
      stride(stride_),
      padding(padding_),
      dilation(dilation_),
      groups(groups_) {
  SMYRF_CHECK(in > 0 && out > 0 && k > 0, "Conv2d",
              "channels and kernel size must be positive, got in=" << in << " out=" << out
                                                                   << " kernel=" << k);
  SMYRF_CHECK_HINT(groups_ >= 1 && in % groups_ == 0 && out % groups_ == 0, "Conv2d",
                   "in_channels=" << in << " and out_channels=" << out
                                  << " must both be divisible by groups=" << groups_,
                   "choose groups dividing both");
  const double bound = 1.0 / std::sqrt(static_cast<double>(in / groups_ * k * k));
  weight = register_parameter(
      "weight", uniform({out, in / groups_, k, k}, -bound, bound, TensorOptions(dtype), gen));
  if (with_bias)
    bias = register_parameter("bias", uniform({out}, -bound, bound, TensorOptions(dtype), gen));
}

Tensor Conv2d::forward(const Tensor& x) {
  return conv2d(x, weight, bias, stride, padding, dilation, groups);
}

}  // namespace smyrf::layers
