// Elementwise ops: validation, dtype promotion, broadcasting, then the CPU or CUDA kernels.
#include <cmath>

#include "core/iter.h"
#include "core/ops.h"
#include "core/ops_cuda.h"

namespace smyrf::raw {
namespace kc = kernels::cpu;

namespace {
// A 0-d CPU tensor next to a CUDA operand is a scalar: it follows the other operand to its
// device (as in PyTorch), so `x > 0`-style helpers that build CPU scalars work on the GPU.
Tensor follow(const Tensor& t, const Tensor& other) {
  if (t.device() == other.device() || t.dim() != 0 || !t.device().is_cpu()) return t;
  return to_device(t, other.device());
}
TensorOptions on(DType dt, const Tensor& like) {
  return TensorOptions(dt).set_device(like.device());
}
void require_same_device(const Tensor& a, const Tensor& b, const char* op) {
  SMYRF_CHECK_HINT(
      a.device() == b.device(), op,
      "operands on different devices: " << a.device().str() << " and " << b.device().str(),
      "move both to one device with .to(device)");
}
bool int_closed(UnaryKind k) {
  switch (k) {
    case UnaryKind::Neg:
    case UnaryKind::Abs:
    case UnaryKind::Sign:
    case UnaryKind::Relu:
    case UnaryKind::Clamp:
    case UnaryKind::MulScalar:
    case UnaryKind::AddScalar:
    case UnaryKind::Square:
      return true;
    default:
      return false;
  }
}
}  // namespace

Tensor unary(UnaryKind kind, const Tensor& x0, double a, double b) {
  Tensor x = x0;
  if (x.dtype() == DType::Bool || (!is_floating(x.dtype()) && !int_closed(kind)))
    x = to_dtype(x, DType::Float32);
  Tensor out = empty(x.shape(), on(x.dtype(), x));
  IterPlan p = make_iter_plan(x.shape(), {x.strides(), out.strides()}, "unary");
  if (x.device().is_cuda()) {
    cuda_ops::unary(kind, a, b, p, x, out);
    return out;
  }
  SMYRF_DISPATCH_NUMERIC(x.dtype(), "unary", [&] {
    kc::unary<scalar_t>(kind, a, b, p.ndim, p.sizes, static_cast<const scalar_t*>(x.raw_data()),
                        p.s(0), static_cast<scalar_t*>(out.raw_data()), p.s(1));
  });
  return out;
}

namespace {
// The op's name in errors. A switch, not a table indexed by the enum: a table overran when
// ReluBackward was added (UBSan caught it); a missing case here is a -Wswitch warning.
const char* binary_name(BinaryKind kind) {
  switch (kind) {
    case BinaryKind::Add:
      return "add";
    case BinaryKind::Sub:
      return "sub";
    case BinaryKind::Mul:
      return "mul";
    case BinaryKind::Div:
      return "div";
    case BinaryKind::Pow:
      return "pow";
    case BinaryKind::Maximum:
      return "maximum";
    case BinaryKind::Minimum:
      return "minimum";
    case BinaryKind::ReluBackward:
      return "relu_backward";
    case BinaryKind::GeluBackward:
      return "gelu_backward";
  }
  return "binary";
}
}  // namespace

Tensor binary(BinaryKind kind, const Tensor& a1, const Tensor& b1) {
  const Tensor a0 = follow(a1, b1), b0 = follow(b1, a1);
  require_same_device(a0, b0, "binary");
  DType dt = promote_types(a0.dtype(), b0.dtype());
  if (kind == BinaryKind::Pow && !is_floating(dt)) dt = DType::Float32;
  Tensor a = to_dtype(a0, dt), b = to_dtype(b0, dt);
  const char* op = binary_name(kind);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = empty(shape, on(dt, a));
  IterPlan p = make_iter_plan(
      shape, {broadcast_strides(a, shape), broadcast_strides(b, shape), out.strides()}, op);
  if (out.device().is_cuda()) {
    cuda_ops::binary(kind, p, a, b, out);
    return out;
  }
  SMYRF_DISPATCH_ALL(dt, op, [&] {
    kc::binary<scalar_t>(kind, p.ndim, p.sizes, static_cast<const scalar_t*>(a.raw_data()), p.s(0),
                         static_cast<const scalar_t*>(b.raw_data()), p.s(1),
                         static_cast<scalar_t*>(out.raw_data()), p.s(2));
  });
  return out;
}

void binary_(BinaryKind kind, const Tensor& dst, const Tensor& src1) {
  const Tensor src0 = follow(src1, dst);
  require_same_device(dst, src0, "binary_");
  // as PyTorch: a float result cannot be stored in an integer destination (converting src first
  // truncated it, so int_tensor.mul_(0.5) silently zeroed the tensor)
  SMYRF_CHECK_HINT(is_floating(dst.dtype()) || !is_floating(src0.dtype()), "in-place op",
                   "a " << dtype_name(src0.dtype()) << " operand cannot update a "
                        << dtype_name(dst.dtype()) << " tensor in place",
                   "use the out-of-place op, or convert the destination with .to(kFloat32)");
  Tensor src = to_dtype(src0, dst.dtype());
  Shape bs = broadcast_shapes(src.shape(), dst.shape(), "in-place op");
  SMYRF_CHECK_HINT(bs == dst.shape(), "in-place op",
                   "result shape " << shape_str(bs) << " differs from the destination "
                                   << shape_str(dst.shape()),
                   "in-place ops cannot grow the destination; use the out-of-place op");
  IterPlan p = make_iter_plan(dst.shape(),
                              {dst.strides(), broadcast_strides(src, dst.shape()), dst.strides()},
                              "in-place op");
  if (dst.device().is_cuda()) {
    cuda_ops::binary(kind, p, dst, src, dst);
    dst.storage()->bump_version();
    return;
  }
  SMYRF_DISPATCH_ALL(dst.dtype(), "in-place op", [&] {
    kc::binary<scalar_t>(kind, p.ndim, p.sizes, static_cast<const scalar_t*>(dst.raw_data()),
                         p.s(0), static_cast<const scalar_t*>(src.raw_data()), p.s(1),
                         static_cast<scalar_t*>(dst.raw_data()), p.s(2));
  });
  dst.storage()->bump_version();
}

Tensor compare(CompareKind kind, const Tensor& a1, const Tensor& b1) {
  const Tensor a0 = follow(a1, b1), b0 = follow(b1, a1);
  require_same_device(a0, b0, "compare");
  DType dt = promote_types(a0.dtype(), b0.dtype());
  Tensor a = to_dtype(a0, dt), b = to_dtype(b0, dt);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), "compare");
  Tensor out = empty(shape, on(DType::Bool, a));
  IterPlan p = make_iter_plan(
      shape, {broadcast_strides(a, shape), broadcast_strides(b, shape), out.strides()}, "compare");
  if (out.device().is_cuda()) {
    cuda_ops::compare(kind, p, a, b, out);
    return out;
  }
  SMYRF_DISPATCH_ALL(dt, "compare", [&] {
    kc::compare<scalar_t>(kind, p.ndim, p.sizes, static_cast<const scalar_t*>(a.raw_data()), p.s(0),
                          static_cast<const scalar_t*>(b.raw_data()), p.s(1), out.data_ptr<bool>(),
                          p.s(2));
  });
  return out;
}

Tensor compare_scalar(CompareKind kind, const Tensor& a, double s) {
  // an integer tensor against a whole number it can hold compares in its own dtype; otherwise
  // in float64 (which once meant a float64 copy of every int32 tensor compared with 500)
  const bool same = is_integral(a.dtype()) && std::floor(s) == s &&
                    (a.dtype() == DType::Int64 ? std::fabs(s) < 9.2e18 : std::fabs(s) < 2.1e9);
  DType dt = is_floating(a.dtype()) || same ? a.dtype() : DType::Float64;
  return compare(kind, a, scalar_tensor(s, TensorOptions(dt).set_device(a.device())));
}

Tensor logical_not(const Tensor& a) {
  return compare(CompareKind::Eq, to_dtype(a, DType::Bool), scalar_tensor(0, on(DType::Bool, a)));
}
Tensor logical_and(const Tensor& a, const Tensor& b) {
  return binary(BinaryKind::Mul, to_dtype(a, DType::Bool), to_dtype(b, DType::Bool));
}
Tensor logical_or(const Tensor& a, const Tensor& b) {
  return binary(BinaryKind::Add, to_dtype(a, DType::Bool), to_dtype(b, DType::Bool));
}

Tensor where(const Tensor& cond1, const Tensor& a1, const Tensor& b1) {
  const Tensor cond0 = follow(cond1, a1.device() == cond1.device() ? b1 : a1);
  const Tensor a0 = follow(a1, cond0), b0 = follow(b1, cond0);
  require_same_device(a0, b0, "where");
  require_same_device(cond0, a0, "where");
  SMYRF_CHECK_HINT(cond0.dtype() == DType::Bool, "where",
                   "condition must be bool, got " << dtype_name(cond0.dtype()),
                   "build it with a comparison, e.g. x > 0");
  DType dt = promote_types(a0.dtype(), b0.dtype());
  Tensor a = to_dtype(a0, dt), b = to_dtype(b0, dt);
  Shape shape =
      broadcast_shapes(broadcast_shapes(cond0.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = empty(shape, on(dt, a));
  IterPlan p = make_iter_plan(shape,
                              {broadcast_strides(cond0, shape), broadcast_strides(a, shape),
                               broadcast_strides(b, shape), out.strides()},
                              "where");
  if (out.device().is_cuda()) {
    cuda_ops::where(p, cond0, a, b, out);
    return out;
  }
  SMYRF_DISPATCH_ALL(dt, "where", [&] {
    kc::where<scalar_t>(p.ndim, p.sizes, cond0.data_ptr<bool>(), p.s(0),
                        static_cast<const scalar_t*>(a.raw_data()), p.s(1),
                        static_cast<const scalar_t*>(b.raw_data()), p.s(2),
                        static_cast<scalar_t*>(out.raw_data()), p.s(3));
  });
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  SMYRF_CHECK_HINT(mask.dtype() == DType::Bool, "masked_fill",
                   "mask must be bool, got " << dtype_name(mask.dtype()),
                   "build it with a comparison");
  Shape bs = broadcast_shapes(x.shape(), mask.shape(), "masked_fill");
  SMYRF_CHECK_HINT(bs == x.shape(), "masked_fill",
                   "mask of shape " << shape_str(mask.shape()) << " does not broadcast to "
                                    << shape_str(x.shape()),
                   "the mask may only have broadcast dims");
  return where(mask, scalar_tensor(value, on(x.dtype(), x)), x);
}

Tensor masked_scale(const Tensor& x, const Tensor& keep, double scale) {
  SMYRF_CHECK_HINT(keep.dtype() == DType::Bool && keep.shape() == x.shape(), "masked_scale",
                   "keep must be bool of x's shape " << shape_str(x.shape()) << ", got "
                                                     << dtype_name(keep.dtype()) << " "
                                                     << shape_str(keep.shape()),
                   "draw it with bernoulli(x.shape(), 1 - p)");
  require_same_device(x, keep, "masked_scale");
  Tensor xc = contiguous(x), kc_ = contiguous(keep);
  Tensor y = empty(x.shape(), on(x.dtype(), x));
  if (x.device().is_cuda()) {  // one kernel (it was a convert, a scale and a multiply)
    cuda_ops::masked_scale(xc, kc_, scale, y);
    return y;
  }
  SMYRF_DISPATCH_FLOAT(x.dtype(), "masked_scale", [&] {
    kc::masked_scale<scalar_t>(xc.data_ptr<scalar_t>(), kc_.data_ptr<bool>(),
                               static_cast<scalar_t>(scale), y.data_ptr<scalar_t>(), x.numel());
  });
  return y;
}

}  // namespace smyrf::raw
