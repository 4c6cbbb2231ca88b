// Convolution, pooling and upsampling layers (NCHW). Parameter names, shapes and initialisation
// follow PyTorch: Conv2d weight (out, in/groups, kh, kw) and bias (out), both U(-b, b) with
// b = 1/sqrt(in/groups * kh * kw) (kaiming_uniform with a = sqrt(5), as torch.nn.Conv2d).
#pragma once
#include "autograd/ops_conv.h"
#include "layers/module.h"

namespace smyrf::layers {

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
         int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1, bool bias = true,
         Generator* gen = nullptr, DType dtype = kFloat32);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Conv2d"; }
  Tensor weight, bias;  // forward reads these members (SpectralNorm replaces weight per call)
  int64_t in_channels, out_channels, kernel_size, stride, padding, dilation, groups;
};

// Average pooling; stride 0 means stride = kernel (PyTorch's default).
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int64_t kernel, int64_t stride = 0, int64_t padding = 0,
                     bool count_include_pad = true)
      : kernel_(kernel),
        stride_(stride),
        padding_(padding),
        count_include_pad_(count_include_pad) {}
  Tensor forward(const Tensor& x) override {
    return avg_pool2d(x, kernel_, stride_, padding_, count_include_pad_);
  }
  std::string name() const override { return "AvgPool2d"; }

 private:
  int64_t kernel_, stride_, padding_;
  bool count_include_pad_;
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int64_t kernel, int64_t stride = 0, int64_t padding = 0)
      : kernel_(kernel), stride_(stride), padding_(padding) {}
  Tensor forward(const Tensor& x) override { return max_pool2d(x, kernel_, stride_, padding_); }
  std::string name() const override { return "MaxPool2d"; }

 private:
  int64_t kernel_, stride_, padding_;
};

// Nearest-neighbour upsampling by an integer factor (torch.nn.Upsample(scale_factor, "nearest")).
class Upsample : public Module {
 public:
  explicit Upsample(int64_t scale_factor) : scale_(scale_factor) {}
  Tensor forward(const Tensor& x) override { return upsample_nearest2d(x, scale_); }
  std::string name() const override { return "Upsample"; }

 private:
  int64_t scale_;
};

}  // namespace smyrf::layers
