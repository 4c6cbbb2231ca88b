#include "core/tensor.h"

#include <cmath>
#include <cstring>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "core/ops.h"

namespace smyrf {

// ---------------------------------------------------------------- metadata
void Tensor::check_defined(const char* what) const {
  SMYRF_CHECK_HINT(impl_ != nullptr, what, "called on an undefined tensor",
                   "the tensor was default-constructed or its gradient was never computed");
}
const Shape& Tensor::shape() const { check_defined("shape"); return impl_->shape; }
const Shape& Tensor::strides() const { check_defined("strides"); return impl_->strides; }
int64_t Tensor::size(int64_t d) const { return shape()[normalize_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[normalize_dim(d, dim(), "stride")]; }
int64_t Tensor::offset() const { check_defined("offset"); return impl_->offset; }
DType Tensor::dtype() const { check_defined("dtype"); return impl_->dtype; }
Device Tensor::device() const { check_defined("device"); return impl_->storage->device(); }
const std::shared_ptr<Storage>& Tensor::storage() const { check_defined("storage"); return impl_->storage; }

bool Tensor::is_contiguous() const {
  const Shape& s = shape();
  const Shape& st = strides();
  int64_t expect = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (s[i] == 1) continue;
    if (st[i] != expect) return false;
    expect *= s[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  check_defined("data");
  return static_cast<char*>(impl_->storage->data()) + impl_->offset * dtype_size(impl_->dtype);
}

template <typename T>
T* Tensor::data_ptr() const {
  check_defined("data_ptr");
  SMYRF_CHECK_HINT(dtype() == DTypeOf<T>::value, "data_ptr",
                   "requested " << dtype_name(DTypeOf<T>::value) << " data from a "
                                << dtype_name(dtype()) << " tensor",
                   "convert with .to(dtype) first");
  SMYRF_CHECK_HINT(device().is_cpu(), "data_ptr", "tensor is on " << device().str(),
                   "copy it to the CPU with .to(Device::cpu()) or use raw_data()");
  return static_cast<T*>(raw_data());
}
template bool* Tensor::data_ptr<bool>() const;
template int32_t* Tensor::data_ptr<int32_t>() const;
template int64_t* Tensor::data_ptr<int64_t>() const;
template float* Tensor::data_ptr<float>() const;
template double* Tensor::data_ptr<double>() const;
template bfloat16* Tensor::data_ptr<bfloat16>() const;

template <typename T>
std::vector<T> Tensor::to_vector() const {
  check_defined("to_vector");
  Tensor c = raw::contiguous(raw::to_dtype(device().is_cpu() ? *this : raw::to_device(*this, Device::cpu()),
                                           DTypeOf<T>::value));
  const T* p = c.data_ptr<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<bool> Tensor::to_vector<bool>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<bfloat16> Tensor::to_vector<bfloat16>() const;

template <typename T>
T Tensor::item() const {
  SMYRF_CHECK_HINT(numel() == 1, "item", "tensor of shape " << shape_str(shape()) << " has "
                                                            << numel() << " elements, not 1",
                   "reduce it first (sum, mean) or index one element");
  return to_vector<T>()[0];
}
template bool Tensor::item<bool>() const;
template int32_t Tensor::item<int32_t>() const;
template int64_t Tensor::item<int64_t>() const;
template float Tensor::item<float>() const;
template double Tensor::item<double>() const;

// ---------------------------------------------------------------- printing
namespace {
void print_values(std::ostream& os, const std::vector<double>& v, const Shape& s, size_t dim,
                  int64_t& pos, int indent, bool is_float) {
  const int64_t n = s[dim];
  const bool last = dim + 1 == s.size();
  constexpr int64_t kEdge = 3;  // elements shown at each end of a long dim
  int64_t inner = 1;
  for (size_t d = dim + 1; d < s.size(); ++d) inner *= s[d];
  os << "[";
  for (int64_t i = 0; i < n; ++i) {
    if (n > 2 * kEdge && i == kEdge) {
      os << (last ? "..., " : "...,\n" + std::string(indent + 1, ' '));
      pos += (n - 2 * kEdge) * inner;
      i = n - kEdge - 1;
      continue;
    }
    if (last) {
      double x = v[pos++];
      if (is_float) {
        std::ostringstream e;
        e << std::setprecision(5) << x;
        os << e.str();
      } else {
        os << static_cast<int64_t>(x);
      }
    } else {
      print_values(os, v, s, dim + 1, pos, indent + 1, is_float);
    }
    if (i + 1 < n) os << (last ? ", " : ",\n" + std::string(indent + 1, ' '));
  }
  os << "]";
}
}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor(shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype());
  if (device().is_cuda()) os << ", device=" << device().str();
  if (requires_grad()) os << ", requires_grad";
  os << ",\n       ";
  std::vector<double> v = to_vector<double>();
  if (dim() == 0) {
    // integers print whole, as in n-d tensors (setprecision(5) showed 123456789 as 1.2346e+08)
    if (is_floating_point()) os << std::setprecision(5) << v[0];
    else os << static_cast<int64_t>(v[0]);
  } else {
    int64_t pos = 0;
    print_values(os, v, shape(), 0, pos, 7, is_floating_point());
  }
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

// fill_ and copy_ are defined in autograd/tensor_autograd.cpp: they must refuse tensors whose
// gradient they would silently invalidate, which needs grad mode.

// ---------------------------------------------------------------- factories
// Every factory that honours opts.requires_grad goes through this, so no path (full, from_vector)
// can hand out an integer tensor that claims to require gradients.
static void check_grad_dtype(const TensorOptions& opts) {
  SMYRF_CHECK_HINT(!opts.requires_grad || is_floating(opts.dtype), "requires_grad",
                   "only floating tensors can require gradients, not " << dtype_name(opts.dtype),
                   "create a float32/float64 tensor, or drop requires_grad");
}

Tensor empty(const Shape& shape, TensorOptions opts) {
  for (int64_t d : shape)
    SMYRF_CHECK(d >= 0, "empty", "negative dimension in shape " << shape_str(shape));
  check_grad_dtype(opts);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape) * dtype_size(opts.dtype), opts.device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = opts.dtype;
  impl->requires_grad = opts.requires_grad;
  return Tensor(impl);
}

Tensor full(const Shape& shape, double value, TensorOptions opts) {
  check_grad_dtype(opts);
  bool rg = opts.requires_grad;
  opts.requires_grad = false;
  Tensor t = empty(shape, opts);
  raw::fill(t, value);
  t.impl()->requires_grad = rg;
  return t;
}
Tensor zeros(const Shape& shape, TensorOptions opts) { return full(shape, 0.0, opts); }
Tensor ones(const Shape& shape, TensorOptions opts) { return full(shape, 1.0, opts); }
static TensorOptions like(const Tensor& t) {
  TensorOptions o(t.dtype());
  o.device = t.device();
  return o;
}
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), like(t)); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), like(t)); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), like(t)); }
Tensor full_like(const Tensor& t, double v) { return full(t.shape(), v, like(t)); }
Tensor scalar_tensor(double value, TensorOptions opts) { return full({}, value, opts); }

template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions opts) {
  SMYRF_CHECK_HINT(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector",
                   values.size() << " values do not fill shape " << shape_str(shape),
                   "the shape needs " << shape_numel(shape) << " values");
  check_grad_dtype(opts);
  Tensor t = empty(shape, TensorOptions(DTypeOf<T>::value));
  if (!values.empty()) {
    if constexpr (std::is_same_v<T, bool>) {
      for (size_t i = 0; i < values.size(); ++i) t.data_ptr<bool>()[i] = values[i];
    } else {
      std::memcpy(t.data_ptr<T>(), values.data(), values.size() * sizeof(T));
    }
  }
  Tensor r = raw::to_dtype(t, opts.dtype);
  if (opts.device.is_cuda()) r = raw::to_device(r, opts.device);
  if (r.is_same(t) && opts.requires_grad) r = raw::clone(t);
  r.impl()->requires_grad = opts.requires_grad;
  return r;
}
template Tensor from_vector<bool>(const std::vector<bool>&, const Shape&, TensorOptions);
template Tensor from_vector<int32_t>(const std::vector<int32_t>&, const Shape&, TensorOptions);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, TensorOptions);
template Tensor from_vector<float>(const std::vector<float>&, const Shape&, TensorOptions);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&, TensorOptions);

Tensor tensor(std::initializer_list<float> v) {
  return from_vector(std::vector<float>(v), {static_cast<int64_t>(v.size())});
}
Tensor tensor(std::initializer_list<double> v) {
  return from_vector(std::vector<double>(v), {static_cast<int64_t>(v.size())});
}
Tensor tensor(std::initializer_list<int64_t> v) {
  return from_vector(std::vector<int64_t>(v), {static_cast<int64_t>(v.size())});
}

Tensor arange(double start, double end, double step, TensorOptions opts) {
  SMYRF_CHECK(step != 0, "arange", "step must be non-zero");
  int64_t n = static_cast<int64_t>(std::ceil((end - start) / step));
  if (n < 0) n = 0;
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = start + i * step;
  return from_vector(v, {n}, opts);
}
Tensor arange(int64_t end, TensorOptions opts) { return arange(0.0, static_cast<double>(end), 1.0, opts); }

Tensor linspace(double start, double end, int64_t steps, TensorOptions opts) {
  SMYRF_CHECK(steps >= 0, "linspace", "steps must be >= 0, got " << steps);
  std::vector<double> v(steps);
  for (int64_t i = 0; i < steps; ++i)
    v[i] = steps == 1 ? start : start + (end - start) * static_cast<double>(i) / (steps - 1);
  return from_vector(v, {steps}, opts);
}

Tensor eye(int64_t n, int64_t m, TensorOptions opts) {
  if (m < 0) m = n;
  std::vector<double> v(n * m, 0.0);
  for (int64_t i = 0; i < std::min(n, m); ++i) v[i * m + i] = 1.0;
  return from_vector(v, {n, m}, opts);
}

}  // namespace smyrf
