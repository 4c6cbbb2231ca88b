// The autograd and math methods of Tensor (declared in core/tensor.h; see the note there).
#include <cmath>

#include "autograd/function.h"
#include "autograd/ops.h"
#include "core/ops.h"

namespace smyrf {

bool Tensor::requires_grad() const { return defined() && impl()->requires_grad; }

Tensor& Tensor::requires_grad_(bool requires) {
  check_defined("requires_grad_");
  SMYRF_CHECK_HINT(!requires || is_floating(dtype()), "requires_grad_",
                   "only floating tensors can require gradients, not " << dtype_name(dtype()),
                   "convert with .to(kFloat32) first");
  SMYRF_CHECK_HINT(requires || !impl()->grad_fn, "requires_grad_",
                   "cannot turn off requires_grad on a tensor computed by an op", "use detach() instead");
  impl()->requires_grad = requires;
  return *this;
}

Tensor Tensor::grad() const {
  check_defined("grad");
  return impl()->grad ? Tensor(impl()->grad) : Tensor();
}
void Tensor::set_grad(const Tensor& g) const {
  check_defined("set_grad");
  if (g.defined())
    SMYRF_CHECK(g.shape() == shape(), "set_grad",
                "gradient of shape " << shape_str(g.shape()) << " for a tensor of shape " << shape_str(shape()));
  impl()->grad = g.defined() ? g.impl_ptr() : nullptr;
}
void Tensor::zero_grad() const {
  check_defined("zero_grad");
  impl()->grad = nullptr;
}
bool Tensor::is_leaf() const { return defined() && !impl()->grad_fn; }
std::shared_ptr<Node> Tensor::grad_fn() const { return defined() ? impl()->grad_fn : nullptr; }

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  check_defined("backward");
  run_backward({*this}, {gradient}, retain_graph);
}

Tensor Tensor::detach() const {
  check_defined("detach");
  return alias(*this);
}

void Tensor::retain_grad() const {
  check_defined("retain_grad");
  SMYRF_CHECK(requires_grad(), "retain_grad", "the tensor does not require grad");
  impl()->retains_grad = true;
}

void Tensor::register_hook(TensorHook hook) const {
  check_defined("register_hook");
  SMYRF_CHECK_HINT(requires_grad(), "register_hook", "the tensor does not require grad",
                   "hooks see gradients, so the tensor must be part of the graph");
  impl()->grad_hooks.push_back(std::move(hook));
}

Tensor Tensor::sum(const std::vector<int64_t>& dims, bool keepdim) const { return smyrf::sum(*this, dims, keepdim); }
Tensor Tensor::mean(const std::vector<int64_t>& dims, bool keepdim) const { return smyrf::mean(*this, dims, keepdim); }
Tensor Tensor::exp() const { return smyrf::exp(*this); }
Tensor Tensor::log() const { return smyrf::log(*this); }
Tensor Tensor::pow(double e) const { return smyrf::pow(*this, e); }
Tensor Tensor::abs() const { return smyrf::abs(*this); }
Tensor Tensor::sqrt() const { return smyrf::sqrt(*this); }
Tensor Tensor::neg() const { return smyrf::neg(*this); }
Tensor Tensor::matmul(const Tensor& o) const { return smyrf::matmul(*this, o); }

namespace {
// In-place updates cannot be recorded in our graph: allow them only where no gradient can be
// affected (no grad needed, or under no_grad on leaves, as optimizers do).
void check_inplace(const Tensor& t, const Tensor& other, const char* op) {
  if (!GradMode::is_enabled()) {
    SMYRF_CHECK_HINT(t.is_leaf() || !t.requires_grad(), op,
                     "in-place update of a tensor computed by an op that requires grad",
                     "use the out-of-place op");
    return;
  }
  SMYRF_CHECK_HINT(!t.requires_grad() && !(other.defined() && other.requires_grad()), op,
                   "in-place op on a tensor that requires grad (shape " << shape_str(t.shape()) << ")",
                   "use the out-of-place op (a + b), or wrap the update in NoGradGuard as optimizers do");
}
}  // namespace

Tensor& Tensor::fill_(double value) {
  check_inplace(*this, Tensor(), "fill_");
  raw::fill(*this, value);
  return *this;
}
Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace(*this, src, "copy_");
  raw::copy_into(*this, src);
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_inplace(*this, other, "add_");
  raw::binary_(raw::BinaryKind::Add, *this, alpha == 1.0 ? other : raw::unary(raw::UnaryKind::MulScalar, other, alpha));
  return *this;
}
Tensor& Tensor::mul_(const Tensor& other) {
  check_inplace(*this, other, "mul_");
  raw::binary_(raw::BinaryKind::Mul, *this, other);
  return *this;
}
Tensor& Tensor::mul_(double s) {
  check_inplace(*this, Tensor(), "mul_");
  raw::binary_(raw::BinaryKind::Mul, *this, scalar_tensor(s, TensorOptions(is_floating(dtype()) || std::floor(s) == s ? dtype() : kFloat64)));
  return *this;
}
Tensor& Tensor::add_(double s) {
  check_inplace(*this, Tensor(), "add_");
  raw::binary_(raw::BinaryKind::Add, *this, scalar_tensor(s, TensorOptions(is_floating(dtype()) || std::floor(s) == s ? dtype() : kFloat64)));
  return *this;
}

}  // namespace smyrf
