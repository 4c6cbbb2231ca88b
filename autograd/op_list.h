// Every autograd node name, in one list. record() refuses names that are not here, and the
// gradient-check suite (tests/gradcheck) fails for any name here that has no check, so an op
// added later cannot skip its gradient check.
#pragma once

// several names a line, as written (clang-format would stagger them)
// clang-format off
#define SMYRF_DIFFERENTIABLE_OPS(X)                                                            \
  X(add) X(sub) X(mul) X(div) X(neg) X(pow) X(pow_scalar) X(exp) X(log) X(log1p) X(sqrt)       \
  X(expm1) X(sin) X(cos) X(softplus)                                                           \
  X(rsqrt) X(abs) X(sign) X(tanh) X(sigmoid) X(relu) X(leaky_relu) X(gelu) X(silu) X(clamp)    \
  X(where) X(maximum) X(minimum) X(mul_scalar) X(add_scalar) X(sum) X(mean) X(amax) X(amin)    \
  X(matmul) X(softmax) X(log_softmax) X(logsumexp) X(norm) X(cat) X(gather) X(index_select)    \
  X(scatter_add) X(index_add) X(masked_fill) X(sort_values) X(cross_entropy) X(mse_loss)       \
  X(dropout)                                                                                   \
  X(layer_norm) X(view) X(permute) X(slice) X(select) X(expand) X(to_dtype) X(clone)           \
  X(contiguous) X(linear) X(attention) X(smyrf_attention)                                     \
  X(conv2d) X(avg_pool2d) X(max_pool2d) X(upsample_nearest2d) X(batch_norm)
// clang-format on

namespace smyrf {
// True when `name` is in SMYRF_DIFFERENTIABLE_OPS.
bool is_registered_differentiable_op(const char* name);
}  // namespace smyrf
