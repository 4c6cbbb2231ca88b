// Tensor: a cheap, value-semantic handle over shared state (shape, strides, offset, dtype,
// storage, and the autograd slots). Copying a Tensor shares data; clone() copies.
//
// Layering note (a deliberate, documented break of the onion): the method surface users expect
// (t.reshape(...), a + b, t.backward()) is declared here, but every method that takes part in
// autograd is *defined* in autograd/ (tensor_methods.cpp). core/ itself only ever calls the
// non-differentiable functions in namespace smyrf::raw (core/ops.h) and never the autograd.
// The autograd slots in TensorImpl are plain data to core.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/storage.h"

namespace smyrf {

class Node;  // autograd/node.h
class Tensor;

using TensorHook = std::function<void(const Tensor& grad)>;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;       // in elements
  int64_t offset = 0;  // in elements
  DType dtype = DType::Float32;

  // Autograd slots: meaning is given by autograd/.
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;
  uint32_t output_nr = 0;
  std::vector<TensorHook> grad_hooks;  // called with the gradient of this tensor during backward
  bool retains_grad = false;           // non-leaf keeps .grad() after backward
  std::weak_ptr<Node> grad_accumulator;  // a leaf's AccumulateGrad node, shared by all its uses
};

struct TensorOptions {
  DType dtype = DType::Float32;
  Device device = Device::cpu();
  bool requires_grad = false;
  TensorOptions() = default;
  TensorOptions(DType d) : dtype(d) {}  // NOLINT: implicit so zeros({2}, kFloat64) reads well
  TensorOptions& set_dtype(DType d) { dtype = d; return *this; }
  TensorOptions& set_device(Device d) { device = d; return *this; }
  TensorOptions& set_requires_grad(bool r = true) { requires_grad = r; return *this; }
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- metadata (core) ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const;
  int64_t stride(int64_t d) const;
  int64_t numel() const { return shape_numel(shape()); }
  int64_t offset() const;
  DType dtype() const;
  Device device() const;
  bool is_contiguous() const;
  bool is_floating_point() const { return is_floating(dtype()); }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  const std::shared_ptr<Storage>& storage() const;
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }
  uint64_t version() const { return storage()->version(); }

  // Typed pointer to element 0 of this view; throws if T does not match dtype() or the tensor
  // is not on the CPU (use raw_data() for device pointers).
  template <typename T> T* data_ptr() const;
  void* raw_data() const;  // untyped pointer to element 0 (any device)

  // The single value of a one-element tensor, converted to T.
  template <typename T> T item() const;
  double item() const { return item<double>(); }
  // Values as a flat vector in row-major order, converted to T.
  template <typename T> std::vector<T> to_vector() const;

  std::string str() const;  // shape, dtype and (abbreviated) values

  // ---- non-differentiable in-place writes; they bump the version counter. Defined in
  // autograd/ because, like add_, they refuse a tensor that requires grad while grad mode is on
  // (the write would not be recorded, so its gradient would be silently wrong) and, under
  // no_grad, a tensor computed by an op that requires grad. ----
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0); }
  Tensor& copy_(const Tensor& src);  // broadcasts src to this shape, converts dtype

  // ---- autograd (defined in autograd/) ----
  bool requires_grad() const;
  Tensor& requires_grad_(bool requires = true);
  Tensor grad() const;  // undefined Tensor when no gradient has been accumulated
  void set_grad(const Tensor& g) const;
  void zero_grad() const;  // drops the accumulated gradient
  bool is_leaf() const;
  std::shared_ptr<Node> grad_fn() const;
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;
  void retain_grad() const;
  void register_hook(TensorHook hook) const;

  // ---- differentiable views and shape ops (defined in autograd/) ----
  Tensor reshape(const Shape& shape) const;  // -1 infers one dim; copies only if it must
  Tensor view(const Shape& shape) const;     // like reshape but never copies (throws instead)
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(-2, -1); }
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor expand(const Shape& shape) const;  // -1 keeps a dim
  Tensor squeeze(int64_t dim) const;
  Tensor squeeze() const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;

  // ---- common differentiable math as methods (defined in autograd/) ----
  Tensor sum(const std::vector<int64_t>& dims = {}, bool keepdim = false) const;
  Tensor mean(const std::vector<int64_t>& dims = {}, bool keepdim = false) const;
  Tensor exp() const;
  Tensor log() const;
  Tensor pow(double exponent) const;
  Tensor abs() const;
  Tensor sqrt() const;
  Tensor neg() const;
  Tensor matmul(const Tensor& other) const;

  // In-place arithmetic (defined in autograd/): allowed on tensors that do not require grad,
  // or under no_grad (optimizer updates). Bumps the version counter.
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  Tensor& sub_(const Tensor& other) { return add_(other, -1.0); }
  Tensor& mul_(const Tensor& other);
  Tensor& mul_(double scalar);
  Tensor& add_(double scalar);
  Tensor& div_(double scalar) { return mul_(1.0 / scalar); }

 private:
  std::shared_ptr<TensorImpl> impl_;
  void check_defined(const char* what) const;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// ---- factories (core) ----
Tensor empty(const Shape& shape, TensorOptions opts = {});
Tensor zeros(const Shape& shape, TensorOptions opts = {});
Tensor ones(const Shape& shape, TensorOptions opts = {});
Tensor full(const Shape& shape, double value, TensorOptions opts = {});
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor empty_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor scalar_tensor(double value, TensorOptions opts = {});
Tensor arange(double start, double end, double step = 1.0, TensorOptions opts = {});
Tensor arange(int64_t end, TensorOptions opts = DType::Int64);
Tensor linspace(double start, double end, int64_t steps, TensorOptions opts = {});
Tensor eye(int64_t n, int64_t m = -1, TensorOptions opts = {});

// From host data (copied). The initializer-list forms infer the dtype from T.
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions opts = DTypeOf<T>::value);
Tensor tensor(std::initializer_list<float> values);
Tensor tensor(std::initializer_list<double> values);
Tensor tensor(std::initializer_list<int64_t> values);

}  // namespace smyrf
