// Fused row kernels: softmax, layer norm and cross-entropy. The reduced dim is moved last and
// made contiguous, so the kernels see (rows, n) buffers.
#include <omp.h>

#include "core/ops.h"
#include "core/ops_cuda.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cpu/softmax_cols.h"

namespace smyrf::raw {
namespace kc = kernels::cpu;

namespace {
void require_float(const Tensor& t, const char* op) {
  SMYRF_CHECK_HINT(is_floating(t.dtype()), op,
                   "needs a floating tensor, got " << dtype_name(t.dtype()),
                   "convert with .to(kFloat32)");
}
Tensor dim_last(const Tensor& x, int64_t dim) {
  return contiguous(dim == x.dim() - 1 || x.dim() == 0 ? x : transpose(x, dim, -1));
}
Tensor dim_back(const Tensor& y, int64_t dim) {
  return y.dim() == 0 || dim == y.dim() - 1 ? y : contiguous(transpose(y, dim, -1));
}
// A softmax over a dim with at least 8 contiguous elements after it runs down the columns of
// (outer, n, inner) in place (kernels/cpu/softmax_cols.h, kernels/cuda/norm.h) instead of
// transposing the dim last and back. Its (outer, n, inner), or inner 0 when the row path is the one
// to take.
struct ColsDims {
  int64_t outer = 0, n = 0, inner = 0;
};
// On CUDA (a thread a column, kernels/cuda/norm.h) only with columns enough to fill the GPU and
// at least a warp's worth side by side (coalesced loads): fewer, longer columns keep the
// transposes and the row kernels' warp or block a row.
constexpr int64_t kCudaColsMin = 16384, kCudaInnerMin = 32;
ColsDims cols_dims(const Tensor& x, int64_t dim) {
  if (x.dim() == 0 || dim == x.dim() - 1) return {};
  ColsDims c{1, x.shape()[static_cast<size_t>(dim)], 1};
  for (int64_t d = 0; d < dim; ++d) c.outer *= x.shape()[static_cast<size_t>(d)];
  for (int64_t d = dim + 1; d < x.dim(); ++d) c.inner *= x.shape()[static_cast<size_t>(d)];
  if (x.device().is_cuda())
    return c.inner >= kCudaInnerMin && c.outer * c.inner >= kCudaColsMin ? c : ColsDims{};
  return c.inner >= 8 ? c : ColsDims{};
}
TensorOptions on(DType dt, const Tensor& like) {
  return TensorOptions(dt).set_device(like.device());
}
void require_same_device(const Tensor& a, const Tensor& b, const char* op) {
  SMYRF_CHECK_HINT(
      !b.defined() || a.device() == b.device(), op,
      "operands on different devices: " << a.device().str() << " and " << b.device().str(),
      "move both to one device with .to(device)");
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  require_float(x, op);
  dim = normalize_dim(dim, x.dim(), op);
  if (const ColsDims c = cols_dims(x, dim); c.inner) {
    const Tensor xc = contiguous(x);
    Tensor y = empty(xc.shape(), on(x.dtype(), x));
    if (x.device().is_cuda()) {
      cuda_ops::softmax_cols(xc, y, c.outer, c.n, c.inner, log);
      return y;
    }
    SMYRF_DISPATCH_FLOAT(x.dtype(), op, [&] {
      kc::softmax_cols<scalar_t>(xc.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), c.outer, c.n,
                                 c.inner, log);
    });
    return y;
  }
  Tensor xc = dim_last(x, dim);
  Tensor y = empty(xc.shape(), on(x.dtype(), x));
  const int64_t n = x.dim() ? xc.shape().back() : 1;
  const int64_t rows = n ? xc.numel() / n : 0;
  if (x.device().is_cuda()) {
    cuda_ops::softmax_rows(xc, y, rows, n, log);
    return dim_back(y, dim);
  }
  SMYRF_DISPATCH_FLOAT(x.dtype(), op, [&] {
    kc::softmax_rows<scalar_t>(xc.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), rows, n, log);
  });
  return dim_back(y, dim);
}

Tensor softmax_backward(const Tensor& y, const Tensor& dy, int64_t dim, bool log) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  require_float(y, op);
  require_same_device(y, dy, op);
  SMYRF_CHECK_HINT(dy.shape() == y.shape(), op,
                   "gradient of shape " << shape_str(dy.shape()) << " for an output of shape "
                                        << shape_str(y.shape()),
                   "dy must have the shape of the softmax output y");
  dim = normalize_dim(dim, y.dim(), op);
  if (const ColsDims c = cols_dims(y, dim); c.inner) {
    const Tensor yc = contiguous(y), gc = contiguous(to_dtype(dy, y.dtype()));
    Tensor dx = empty(yc.shape(), on(y.dtype(), y));
    if (y.device().is_cuda()) {
      cuda_ops::softmax_cols_backward(yc, gc, dx, c.outer, c.n, c.inner, log);
      return dx;
    }
    SMYRF_DISPATCH_FLOAT(y.dtype(), op, [&] {
      kc::softmax_cols_backward<scalar_t>(yc.data_ptr<scalar_t>(), gc.data_ptr<scalar_t>(),
                                          dx.data_ptr<scalar_t>(), c.outer, c.n, c.inner, log);
    });
    return dx;
  }
  Tensor yc = dim_last(y, dim), gc = dim_last(to_dtype(dy, y.dtype()), dim);
  Tensor dx = empty(yc.shape(), on(y.dtype(), y));
  const int64_t n = y.dim() ? yc.shape().back() : 1;
  const int64_t rows = n ? yc.numel() / n : 0;
  if (y.device().is_cuda()) {
    cuda_ops::softmax_rows_backward(yc, gc, dx, rows, n, log);
    return dim_back(dx, dim);
  }
  SMYRF_DISPATCH_FLOAT(y.dtype(), op, [&] {
    kc::softmax_rows_backward<scalar_t>(yc.data_ptr<scalar_t>(), gc.data_ptr<scalar_t>(),
                                        dx.data_ptr<scalar_t>(), rows, n, log);
  });
  return dim_back(dx, dim);
}

LayerNormResult layer_norm(const Tensor& x0, int64_t n, const Tensor& weight, const Tensor& bias,
                           double eps) {
  require_float(x0, "layer_norm");
  SMYRF_CHECK_HINT(n > 0 && x0.numel() % n == 0, "layer_norm",
                   "normalized size " << n << " does not divide input " << shape_str(x0.shape()),
                   "normalized_shape must match the trailing dims of the input");
  auto check_param = [&](const Tensor& p, const char* name) {
    if (!p.defined()) return;
    SMYRF_CHECK_HINT(p.numel() == n && p.dtype() == x0.dtype(), "layer_norm",
                     name << " of shape " << shape_str(p.shape()) << " (" << dtype_name(p.dtype())
                          << ") does not match normalized size " << n << " ("
                          << dtype_name(x0.dtype()) << ")",
                     "weight and bias have the normalized shape and the input's dtype");
  };
  check_param(weight, "weight");
  check_param(bias, "bias");
  require_same_device(x0, weight, "layer_norm");
  require_same_device(x0, bias, "layer_norm");
  Tensor x = contiguous(x0);
  Tensor w = weight.defined() ? contiguous(weight) : Tensor(),
         b = bias.defined() ? contiguous(bias) : Tensor();
  const int64_t rows = x.numel() / n;
  LayerNormResult r{empty(x.shape(), on(x.dtype(), x)), empty({rows}, on(x.dtype(), x)),
                    empty({rows}, on(x.dtype(), x))};
  if (x.device().is_cuda()) {
    cuda_ops::layernorm_rows(x, w, b, r.y, r.mean, r.rstd, rows, n, eps);
    return r;
  }
  SMYRF_DISPATCH_FLOAT(x.dtype(), "layer_norm", [&] {
    kc::layernorm_rows<scalar_t>(
        x.data_ptr<scalar_t>(), w.defined() ? w.data_ptr<scalar_t>() : nullptr,
        b.defined() ? b.data_ptr<scalar_t>() : nullptr, r.y.data_ptr<scalar_t>(),
        r.mean.data_ptr<scalar_t>(), r.rstd.data_ptr<scalar_t>(), rows, n, eps);
  });
  return r;
}

LayerNormGrads layer_norm_backward(const Tensor& dy0, const Tensor& x0, const Tensor& mean,
                                   const Tensor& rstd, const Tensor& weight, int64_t n) {
  Tensor dy = contiguous(to_dtype(dy0, x0.dtype())), x = contiguous(x0);
  Tensor w = weight.defined() ? contiguous(weight) : Tensor();
  const int64_t rows = x.numel() / n;
  LayerNormGrads g;
  g.dx = empty(x.shape(), on(x.dtype(), x));
  g.dweight = empty({n}, on(x.dtype(), x));
  g.dbias = empty({n}, on(x.dtype(), x));
  if (x.device().is_cuda()) {
    cuda_ops::layernorm_rows_backward(dy, x, contiguous(mean), contiguous(rstd), w, g.dx, g.dweight,
                                      g.dbias, rows, n);
    return g;
  }
  SMYRF_DISPATCH_FLOAT(x.dtype(), "layer_norm_backward", [&] {
    kc::layernorm_rows_backward<scalar_t>(dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                                          mean.data_ptr<scalar_t>(), rstd.data_ptr<scalar_t>(),
                                          w.defined() ? w.data_ptr<scalar_t>() : nullptr,
                                          g.dx.data_ptr<scalar_t>(), g.dweight.data_ptr<scalar_t>(),
                                          g.dbias.data_ptr<scalar_t>(), rows, n);
  });
  return g;
}

namespace {
// Throws naming the first target outside [0, C) that is not ignore_index (targets on the host).
void check_targets(const int64_t* t, int64_t rows, int64_t C, int64_t ignore_index) {
  // one branch-free pass on both threads, then the first bad target for the message (the
  // per-row checked loop ran on one thread: 8M rows of 2 logits, ~5 of 22 ms)
  const uint64_t classes = static_cast<uint64_t>(C);
  bool ok = true;
#pragma omp parallel for reduction(&& : ok) if (rows >= (int64_t{1} << 18) && !omp_in_parallel())
  for (int64_t r = 0; r < rows; ++r)
    ok = ok && (static_cast<uint64_t>(t[r]) < classes || t[r] == ignore_index);
  for (int64_t r = 0; !ok && r < rows; ++r)
    SMYRF_CHECK_HINT(
        t[r] == ignore_index || (t[r] >= 0 && t[r] < C), "cross_entropy",
        "target " << t[r] << " at row " << r << " is out of range for " << C << " classes",
        "targets must be in [0, C) or equal ignore_index (" << ignore_index << ")");
}
}  // namespace

CrossEntropyResult cross_entropy_rows(const Tensor& logits0, const Tensor& target0,
                                      int64_t ignore_index, double smoothing) {
  require_float(logits0, "cross_entropy");
  SMYRF_CHECK_HINT(logits0.dim() == 2, "cross_entropy",
                   "logits must be (N, C), got " << shape_str(logits0.shape()),
                   "flatten leading dims first");
  SMYRF_CHECK_HINT(
      is_integral(target0.dtype()), "cross_entropy",
      "target must be int32 or int64 class indices, got " << dtype_name(target0.dtype()),
      "for probabilities, use a soft-target loss");
  SMYRF_CHECK_HINT(target0.dim() == 1 && target0.shape()[0] == logits0.shape()[0], "cross_entropy",
                   "target of shape " << shape_str(target0.shape()) << " does not match logits "
                                      << shape_str(logits0.shape()),
                   "target must be (N,) for logits (N, C)");
  SMYRF_CHECK(smoothing >= 0 && smoothing <= 1, "cross_entropy",
              "label_smoothing must be in [0, 1], got " << smoothing);
  require_same_device(logits0, target0, "cross_entropy");
  Tensor logits = contiguous(logits0);
  Tensor target = contiguous(to_dtype(target0, DType::Int64));
  const int64_t rows = logits.shape()[0], C = logits.shape()[1];
  // a bad target is the same clear Error on both devices instead of an out-of-bounds read on the
  // GPU: CUDA targets are checked on the device (a flag read back), and only a bad one brings
  // them to the host, to name it
  if (target.device().is_cpu())
    check_targets(target.data_ptr<int64_t>(), rows, C, ignore_index);
  else if (!cuda_ops::indices_in_range(target, C, ignore_index))
    check_targets(to_device(target, Device::cpu()).data_ptr<int64_t>(), rows, C, ignore_index);
  CrossEntropyResult res{empty({rows}, on(logits.dtype(), logits)),
                         empty({rows}, on(logits.dtype(), logits))};
  if (logits.device().is_cuda()) {
    cuda_ops::cross_entropy_rows(logits, target, res.loss, res.lse, rows, C, ignore_index,
                                 smoothing);
    return res;
  }
  SMYRF_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
    kc::cross_entropy_rows<scalar_t>(logits.data_ptr<scalar_t>(), target.data_ptr<int64_t>(),
                                     res.loss.data_ptr<scalar_t>(), res.lse.data_ptr<scalar_t>(),
                                     rows, C, ignore_index, smoothing);
  });
  return res;
}

Tensor cross_entropy_rows_backward(const Tensor& logits0, const Tensor& target0, const Tensor& lse,
                                   const Tensor& g0, int64_t ignore_index, double smoothing) {
  Tensor logits = contiguous(logits0);
  Tensor target = contiguous(to_dtype(target0, DType::Int64));
  Tensor g = contiguous(to_dtype(g0, logits.dtype()));
  const int64_t rows = logits.shape()[0], C = logits.shape()[1];
  Tensor d = empty(logits.shape(), on(logits.dtype(), logits));
  if (logits.device().is_cuda()) {
    cuda_ops::cross_entropy_rows_backward(logits, target, contiguous(lse), g, d, rows, C,
                                          ignore_index, smoothing);
    return d;
  }
  SMYRF_DISPATCH_FLOAT(logits.dtype(), "cross_entropy_backward", [&] {
    kc::cross_entropy_rows_backward<scalar_t>(
        logits.data_ptr<scalar_t>(), target.data_ptr<int64_t>(),
        contiguous(lse).data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), d.data_ptr<scalar_t>(), rows,
        C, ignore_index, smoothing);
  });
  return d;
}

}  // namespace smyrf::raw
