#include "layers/linear.h"

#include <cmath>

namespace smyrf::layers {

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator* gen, DType dtype)
    : in_features(in), out_features(out) {
  SMYRF_CHECK(in > 0 && out > 0, "Linear", "features must be positive, got in=" << in << " out=" << out);
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  weight = register_parameter("weight", uniform({out, in}, -bound, bound, TensorOptions(dtype), gen));
  if (with_bias) bias = register_parameter("bias", uniform({out}, -bound, bound, TensorOptions(dtype), gen));
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

Embedding::Embedding(int64_t num, int64_t dim, Generator* gen, DType dtype) {
  SMYRF_CHECK(num > 0 && dim > 0, "Embedding", "sizes must be positive, got " << num << " x " << dim);
  weight = register_parameter("weight", randn({num, dim}, TensorOptions(dtype), gen));
}

Tensor Embedding::forward(const Tensor& indices) { return embedding(weight, indices); }

LayerNorm::LayerNorm(Shape shape, double eps_, bool affine, DType dtype) : normalized_shape(shape), eps(eps_) {
  if (affine) {
    weight = register_parameter("weight", ones(shape, TensorOptions(dtype)));
    bias = register_parameter("bias", zeros(shape, TensorOptions(dtype)));
  }
}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, normalized_shape, weight, bias, eps); }

Tensor Activation::forward(const Tensor& x) {
  switch (kind_) {
    case Kind::Relu: return relu(x);
    case Kind::Gelu: return gelu(x);
    case Kind::Silu: return silu(x);
    case Kind::Tanh: return tanh(x);
    case Kind::Sigmoid: return sigmoid(x);
    case Kind::LeakyRelu: return leaky_relu(x, slope_);
  }
  return x;
}

}  // namespace smyrf::layers
