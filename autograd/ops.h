// The differentiable op API users call. Every function records an autograd node when grad mode
// is on and an input requires grad (see autograd/function.h), and its gradient is verified by
// the float64 finite-difference suite in tests/gradcheck.
//
// Broadcasting follows NumPy; scalar arguments take the tensor's dtype. Errors are
// smyrf::Error with the op name, the shapes/dtypes involved and a hint.
#pragma once
#include <optional>
#include <utility>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace smyrf {

// ---------------------------------------------------------------- arithmetic
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor pow(const Tensor& a, const Tensor& b);  // a > 0 where b is not an integer
Tensor pow(const Tensor& a, double exponent);
Tensor maximum(const Tensor& a, const Tensor& b);  // gradient split evenly on ties
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor log1p(const Tensor& a);
Tensor expm1(const Tensor& a);  // exp(a) - 1, accurate near 0
Tensor sin(const Tensor& a);
Tensor cos(const Tensor& a);
// log(1 + exp(a)), as max(a, 0) + log1p(exp(-|a|)): no overflow for large a, gradient sigmoid(a)
Tensor softplus(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor rsqrt(const Tensor& a);
Tensor abs(const Tensor& a);   // gradient sign(a), 0 at 0
Tensor sign(const Tensor& a);  // gradient 0
Tensor tanh(const Tensor& a);
Tensor sigmoid(const Tensor& a);
Tensor relu(const Tensor& a);
Tensor leaky_relu(const Tensor& a, double slope = 0.01);
Tensor gelu(const Tensor& a);  // exact (erf) form
Tensor silu(const Tensor& a);
Tensor clamp(const Tensor& a, double lo, double hi);  // gradient 1 inside [lo, hi]
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// comparisons (not differentiable; bool results)
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(double s, const Tensor& a);
Tensor operator<(const Tensor& a, double s);
Tensor operator>(const Tensor& a, double s);
Tensor operator<=(const Tensor& a, double s);
Tensor operator>=(const Tensor& a, double s);

// ---------------------------------------------------------------- reductions ({} = all dims)
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor amax(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// max/min along one dim: (values, int64 indices of the first extreme)
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
           bool keepdim = false);
Tensor std(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
           bool keepdim = false);
// p-norm over dims (p = 2 by default; p = inf is the max of |x|)
Tensor norm(const Tensor& x, double p = 2.0, const std::vector<int64_t>& dims = {},
            bool keepdim = false);
Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);

// ---------------------------------------------------------------- linear algebra
Tensor matmul(const Tensor& a, const Tensor& b);  // NumPy semantics incl. batch broadcasting
Tensor bmm(const Tensor& a, const Tensor& b);     // (B, M, K) @ (B, K, N), no broadcasting
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());  // x W^T + b

// ---------------------------------------------------------------- shape and joining
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
Tensor cat(const std::vector<Tensor>& ts, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& ts, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);  // views
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);

// ---------------------------------------------------------------- indexing and sorting
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor one_hot(const Tensor& index, int64_t num_classes);  // int64, not differentiable
// Stable sort along dim: (values, int64 indices); values are differentiable.
std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim = -1, bool descending = false);
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true);

// ---------------------------------------------------------------- neural-network functions
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// Over the trailing dims whose sizes are normalized_shape.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);
enum class Reduction { None, Mean, Sum };
// logits (N, C) or (N, C, d1, ...) with target (N) or (N, d1, ...) of class indices. Mean
// averages over the targets that are not ignore_index.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index = -100,
                     double label_smoothing = 0.0, Reduction reduction = Reduction::Mean);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// -(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))) = softplus(x) - t x, stable for any logit x;
// target t (same shape, floating) may be soft labels in [0, 1]. The non-saturating GAN losses
// are binary_cross_entropy_with_logits(d, ones) / (d, zeros).
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        Reduction reduction = Reduction::Mean);
// Inverted dropout: zeroes with probability p and scales the rest by 1/(1-p) when training.
Tensor dropout(const Tensor& x, double p, bool training = true, Generator* gen = nullptr);
Tensor embedding(const Tensor& weight, const Tensor& indices);  // (V, D)[idx] -> (..., D)

}  // namespace smyrf
