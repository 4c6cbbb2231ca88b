// Reductions over any set of dims, with keepdim.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "core/iter.h"
#include "core/ops.h"
#include "core/ops_cuda.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/softmax.h"

namespace smyrf::raw {
namespace kc = kernels::cpu;

namespace {
// Whether a reduction over `dims` can run a fused row kernel: one non-empty dim, of a CPU tensor
// or of a float32 / float64 CUDA tensor (the CUDA row kernels' types).
bool one_row_dim(const Tensor& x, const std::vector<int64_t>& dims) {
  if (dims.size() != 1 || x.dim() == 0 || x.shape()[dims[0]] == 0) return false;
  return !x.device().is_cuda() || x.dtype() == DType::Float32 || x.dtype() == DType::Float64;
}

// x with dim d moved last (the other dims keep their order, so the rows come out in the
// result's order), contiguous, as rows x n; y: the result, one value a row, shaped as the
// reduction's output.
struct RowsLast {
  Tensor x, y;
  int64_t rows, n;
  RowsLast(const Tensor& x0, int64_t d, bool keepdim) : n(x0.shape()[d]) {
    std::vector<int64_t> perm;
    for (int64_t i = 0; i < x0.dim(); ++i)
      if (i != d) perm.push_back(i);
    perm.push_back(d);
    x = contiguous(d == x0.dim() - 1 ? x0 : permute(x0, perm));
    rows = x.numel() / n;
    Shape out = x0.shape();
    if (keepdim)
      out[d] = 1;
    else
      out.erase(out.begin() + d);
    y = empty(out, TensorOptions(x0.dtype()).set_device(x0.device()));
  }
};

const char* reduce_name(ReduceKind k) {
  switch (k) {
    case ReduceKind::Sum:
      return "sum";
    case ReduceKind::Mean:
      return "mean";
    case ReduceKind::Max:
      return "max";
    case ReduceKind::Min:
      return "min";
    case ReduceKind::Prod:
      return "prod";
  }
  return "reduce";
}

Shape reduced_shape(const Shape& s, const std::vector<int64_t>& dims, bool keepdim) {
  Shape out;
  size_t j = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i) {
    bool red = j < dims.size() && dims[j] == i;
    if (red) ++j;
    if (!red)
      out.push_back(s[i]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}
}  // namespace

Tensor reduce(ReduceKind kind, const Tensor& x0, const std::vector<int64_t>& dims0, bool keepdim) {
  const char* op = reduce_name(kind);
  Tensor x = x0;
  if (x.dtype() == DType::Bool) x = to_dtype(x, DType::Int64);
  if (kind == ReduceKind::Mean && !is_floating(x.dtype())) x = to_dtype(x, DType::Float32);
  std::vector<int64_t> dims = normalize_dims(dims0, x.dim(), op);
  if (x.dim() == 0) dims.clear();
  Shape out_shape = reduced_shape(x.shape(), dims, keepdim);
  int64_t count = 1;
  for (int64_t d : dims) count *= x.shape()[d];
  if (kind == ReduceKind::Max || kind == ReduceKind::Min)
    SMYRF_CHECK_HINT(
        count > 0, op,
        "cannot take the " << op << " of an empty set (shape " << shape_str(x.shape()) << ")",
        "reduce over non-empty dims");
  Shape kept_sizes, kept_strides, red_sizes, red_strides;
  size_t j = 0;
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (j < dims.size() && dims[j] == i) {
      ++j;
      red_sizes.push_back(x.shape()[i]);
      red_strides.push_back(x.strides()[i]);
    } else {
      kept_sizes.push_back(x.shape()[i]);
      kept_strides.push_back(x.strides()[i]);
    }
  }
  // The reduced dims in memory order (largest stride first; the ops are commutative, so their
  // order is free), then merged where contiguous so the innermost run is as long as possible: a
  // full sum of a permuted 64 x 512 x 512 view walked it in logical order, one strided element at
  // a time (187 ms; PyTorch 8).
  {
    std::vector<size_t> order(red_sizes.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return std::llabs(red_strides[a]) > std::llabs(red_strides[b]);
    });
    Shape sizes, strides;
    for (size_t i : order) sizes.push_back(red_sizes[i]), strides.push_back(red_strides[i]);
    red_sizes = sizes;
    red_strides = strides;
  }
  IterPlan rp = make_iter_plan(red_sizes, {red_strides}, op);
  Tensor out = empty(out_shape, TensorOptions(x.dtype()).set_device(x.device()));
  kc::ReduceOp kop = kind == ReduceKind::Max    ? kc::ReduceOp::Max
                     : kind == ReduceKind::Min  ? kc::ReduceOp::Min
                     : kind == ReduceKind::Prod ? kc::ReduceOp::Prod
                                                : kc::ReduceOp::Sum;
  if (shape_numel(out_shape) > 0) {
    if (count == 0) {
      fill(out, kind == ReduceKind::Prod ? 1.0 : (kind == ReduceKind::Mean ? NAN : 0.0));
      return out;
    }
    if (x.device().is_cuda()) {
      cuda_ops::reduce(kop, static_cast<int>(kept_sizes.size()), kept_sizes.data(),
                       kept_strides.data(), rp, x, out);
    } else {
      SMYRF_DISPATCH_NUMERIC(x.dtype(), op, [&] {
        kc::reduce<scalar_t>(kop, static_cast<int>(kept_sizes.size()), kept_sizes.data(),
                             kept_strides.data(), rp.ndim, rp.sizes, rp.s(0),
                             static_cast<const scalar_t*>(x.raw_data()),
                             static_cast<scalar_t*>(out.raw_data()));
      });
    }
  }
  // the mean scales the sums in place: a second output would be a fresh allocation, whose page
  // faults cost more than the reduction for large outputs (16 x 1M over dim 0: 16 -> ~2 ms)
  if (kind == ReduceKind::Mean)
    binary_(BinaryKind::Mul, out,
            scalar_tensor(1.0 / static_cast<double>(count), TensorOptions(out.dtype())));
  return out;
}

Tensor argreduce(bool is_max, const Tensor& x, int64_t dim, bool keepdim) {
  const char* op = is_max ? "argmax" : "argmin";
  dim = normalize_dim(dim, x.dim(), op);
  if (x.dim() == 0) return zeros({}, TensorOptions(DType::Int64).set_device(x.device()));
  const int64_t n = x.shape()[dim];
  SMYRF_CHECK(n > 0, op,
              "cannot take the " << op << " over an empty dim of " << shape_str(x.shape()));
  Shape kept_sizes, kept_strides, out_shape;
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (i == dim) {
      if (keepdim) out_shape.push_back(1);
      continue;
    }
    kept_sizes.push_back(x.shape()[i]);
    kept_strides.push_back(x.strides()[i]);
    out_shape.push_back(x.shape()[i]);
  }
  Tensor xx = x.dtype() == DType::Bool ? to_dtype(x, DType::Int32) : x;
  Tensor out = empty(out_shape, TensorOptions(DType::Int64).set_device(x.device()));
  if (x.device().is_cuda()) {
    cuda_ops::argreduce(is_max, static_cast<int>(kept_sizes.size()), kept_sizes.data(),
                        kept_strides.data(), n, xx.strides()[dim], xx, out);
    return out;
  }
  SMYRF_DISPATCH_NUMERIC(xx.dtype(), op, [&] {
    kc::argreduce<scalar_t>(is_max, static_cast<int>(kept_sizes.size()), kept_sizes.data(),
                            kept_strides.data(), n, xx.strides()[dim],
                            static_cast<const scalar_t*>(xx.raw_data()), out.data_ptr<int64_t>());
  });
  return out;
}

Tensor sum_squares(const Tensor& x) {
  SMYRF_CHECK_HINT(x.dtype() == DType::Float32 || x.dtype() == DType::Float64 ||
                       (x.device().is_cuda() && x.is_floating_point()),
                   "sum_squares",
                   "input of shape " << shape_str(x.shape()) << " is " << dtype_name(x.dtype())
                                     << " on " << x.device().str(),
                   "float32 or float64 tensors (any floating dtype on CUDA)");
  if (x.device().is_cuda()) {  // composed on the device: widened, squared, summed
    const Tensor w = to_dtype(x, DType::Float64);
    return reduce(ReduceKind::Sum, binary(BinaryKind::Mul, w, w), {}, false);
  }
  const Tensor c = contiguous(x);
  const double s = c.dtype() == DType::Float32 ? kc::sum_squares(c.data_ptr<float>(), c.numel())
                                               : kc::sum_squares(c.data_ptr<double>(), c.numel());
  return full({}, s, TensorOptions(DType::Float64));
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims0, int64_t correction, bool keepdim) {
  SMYRF_CHECK(is_floating(x.dtype()), "var",
              "needs a floating tensor, got " << dtype_name(x.dtype()));
  std::vector<int64_t> dims = normalize_dims(dims0, x.dim(), "var");
  int64_t count = 1;
  for (int64_t d : dims) count *= x.dim() ? x.shape()[d] : 1;
  if (one_row_dim(x, dims) && x.device().is_cpu() && dims[0] < x.dim() - 1 && x.is_contiguous()) {
    // a dim that is not the last, over columns at least 64 wide: down the columns
    // (kernels/cpu/norm.h var_cols), two sweeps and no copy. Moving the dim last took a
    // transposed copy of x: 4096 x 4096 over dim 0 13-18 ms, 2 x 8M 48-50 ms
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < dims[0]; ++i) outer *= x.shape()[i];
    for (int64_t i = dims[0] + 1; i < x.dim(); ++i) inner *= x.shape()[i];
    if (inner >= 64) {
      Shape out = x.shape();
      if (keepdim)
        out[dims[0]] = 1;
      else
        out.erase(out.begin() + dims[0]);
      Tensor y = empty(out, TensorOptions(x.dtype()).set_device(x.device()));
      SMYRF_DISPATCH_FLOAT(x.dtype(), "var", [&] {
        kc::var_cols<scalar_t>(x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), outer,
                               x.shape()[dims[0]], inner, correction);
      });
      return y;
    }
  }
  if (one_row_dim(x, dims)) {
    // the fused row kernel (kernels/cpu/norm.h var_rows, or its CUDA twin): one read for both
    // moments instead of a mean, a difference, a square and a sum (1M rows of 16: 57-59 -> 3-4
    // ms; 4096 x 4096: 24-28 -> 1.3 ms)
    RowsLast rl(x, dims[0], keepdim);
    if (x.device().is_cuda()) {
      cuda_ops::var_rows(rl.x, rl.y, rl.rows, rl.n, correction);
      return rl.y;
    }
    SMYRF_DISPATCH_FLOAT(x.dtype(), "var", [&] {
      kc::var_rows<scalar_t>(rl.x.data_ptr<scalar_t>(), rl.y.data_ptr<scalar_t>(), rl.rows, rl.n,
                             correction);
    });
    return rl.y;
  }
  Tensor mu = reduce(ReduceKind::Mean, x, dims, true);
  Tensor d = binary(BinaryKind::Sub, x, mu);
  Tensor ss = reduce(ReduceKind::Sum, unary(UnaryKind::Square, d), dims, keepdim);
  return unary(UnaryKind::MulScalar, ss,
               1.0 / static_cast<double>(std::max<int64_t>(count - correction, 0)));
}

Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims0, bool keepdim) {
  SMYRF_CHECK(is_floating(x.dtype()), "logsumexp",
              "needs a floating tensor, got " << dtype_name(x.dtype()));
  std::vector<int64_t> dims = normalize_dims(dims0, x.dim(), "logsumexp");
  if (one_row_dim(x, dims)) {
    // the fused row kernel (kernels/cpu/softmax.h, or its CUDA twin). The composed path below
    // (kept for several dims) makes five passes and four temporaries: 1M rows of 16 took 53 ms,
    // now 9; 4096 x 4096 29-35 -> 3-4.
    RowsLast rl(x, dims[0], keepdim);
    if (x.device().is_cuda()) {
      cuda_ops::logsumexp_rows(rl.x, rl.y, rl.rows, rl.n);
      return rl.y;
    }
    SMYRF_DISPATCH_FLOAT(x.dtype(), "logsumexp", [&] {
      kc::logsumexp_rows<scalar_t>(rl.x.data_ptr<scalar_t>(), rl.y.data_ptr<scalar_t>(), rl.rows,
                                   rl.n);
    });
    return rl.y;
  }
  Tensor m = reduce(ReduceKind::Max, x, dims, true);
  // rows whose max is infinite (all -inf, or any +inf): shift by 0 so the result is -inf / +inf;
  // shifting by +inf made x - m = inf - inf = NaN
  Tensor finite_m = where(compare_scalar(CompareKind::Eq, unary(UnaryKind::Abs, m),
                                         std::numeric_limits<double>::infinity()),
                          zeros_like(m), m);
  Tensor s = reduce(ReduceKind::Sum, unary(UnaryKind::Exp, binary(BinaryKind::Sub, x, finite_m)),
                    dims, keepdim);
  Tensor mm = keepdim ? finite_m : reshape(finite_m, s.shape());
  return binary(BinaryKind::Add, unary(UnaryKind::Log, s), mm);
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - static_cast<int64_t>(shape.size());
  SMYRF_CHECK(lead >= 0, "sum_to",
              "cannot sum " << shape_str(g.shape()) << " to larger " << shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t i = 0; i < g.dim(); ++i)
    if (i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1)) dims.push_back(i);
  Tensor r = dims.empty() ? g : reduce(ReduceKind::Sum, g, dims, true);
  return reshape(r, shape);
}

}  // namespace smyrf::raw
