// Fused row kernels: softmax, layer norm and cross-entropy. The reduced dim is moved last and
// made contiguous, so the kernels see (rows, n) buffers.
#include "core/ops.h"
#include "kernels/cpu/norm.h"

namespace smyrf::raw {
namespace kc = kernels::cpu;

namespace {
void require_float_cpu(const Tensor& t, const char* op) {
  SMYRF_CHECK_HINT(t.device().is_cpu(), op, "no " << t.device().str() << " kernel for " << op,
                   "copy the tensor to the CPU");
  SMYRF_CHECK_HINT(is_floating(t.dtype()), op, "needs a floating tensor, got " << dtype_name(t.dtype()),
                   "convert with .to(kFloat32)");
}
Tensor dim_last(const Tensor& x, int64_t dim) {
  return contiguous(dim == x.dim() - 1 || x.dim() == 0 ? x : transpose(x, dim, -1));
}
Tensor dim_back(const Tensor& y, int64_t dim) {
  return y.dim() == 0 || dim == y.dim() - 1 ? y : contiguous(transpose(y, dim, -1));
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  require_float_cpu(x, op);
  dim = normalize_dim(dim, x.dim(), op);
  Tensor xc = dim_last(x, dim);
  Tensor y = empty(xc.shape(), TensorOptions(x.dtype()));
  const int64_t n = x.dim() ? xc.shape().back() : 1;
  const int64_t rows = n ? xc.numel() / n : 0;
  SMYRF_DISPATCH_FLOAT(x.dtype(), op, [&] {
    kc::softmax_rows<scalar_t>(xc.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), rows, n, log);
  });
  return dim_back(y, dim);
}

Tensor softmax_backward(const Tensor& y, const Tensor& dy, int64_t dim, bool log) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  require_float_cpu(y, op);
  dim = normalize_dim(dim, y.dim(), op);
  Tensor yc = dim_last(y, dim), gc = dim_last(to_dtype(dy, y.dtype()), dim);
  Tensor dx = empty(yc.shape(), TensorOptions(y.dtype()));
  const int64_t n = y.dim() ? yc.shape().back() : 1;
  const int64_t rows = n ? yc.numel() / n : 0;
  SMYRF_DISPATCH_FLOAT(y.dtype(), op, [&] {
    kc::softmax_rows_backward<scalar_t>(yc.data_ptr<scalar_t>(), gc.data_ptr<scalar_t>(), dx.data_ptr<scalar_t>(),
                                        rows, n, log);
  });
  return dim_back(dx, dim);
}

LayerNormResult layer_norm(const Tensor& x0, int64_t n, const Tensor& weight, const Tensor& bias, double eps) {
  require_float_cpu(x0, "layer_norm");
  SMYRF_CHECK_HINT(n > 0 && x0.numel() % n == 0, "layer_norm",
                   "normalized size " << n << " does not divide input " << shape_str(x0.shape()),
                   "normalized_shape must match the trailing dims of the input");
  auto check_param = [&](const Tensor& p, const char* name) {
    if (!p.defined()) return;
    SMYRF_CHECK_HINT(p.numel() == n && p.dtype() == x0.dtype(), "layer_norm",
                     name << " of shape " << shape_str(p.shape()) << " (" << dtype_name(p.dtype())
                          << ") does not match normalized size " << n << " (" << dtype_name(x0.dtype()) << ")",
                     "weight and bias have the normalized shape and the input's dtype");
  };
  check_param(weight, "weight");
  check_param(bias, "bias");
  Tensor x = contiguous(x0);
  Tensor w = weight.defined() ? contiguous(weight) : Tensor(), b = bias.defined() ? contiguous(bias) : Tensor();
  const int64_t rows = x.numel() / n;
  LayerNormResult r{empty(x.shape(), TensorOptions(x.dtype())), empty({rows}, TensorOptions(x.dtype())),
                    empty({rows}, TensorOptions(x.dtype()))};
  SMYRF_DISPATCH_FLOAT(x.dtype(), "layer_norm", [&] {
    kc::layernorm_rows<scalar_t>(x.data_ptr<scalar_t>(), w.defined() ? w.data_ptr<scalar_t>() : nullptr,
                                 b.defined() ? b.data_ptr<scalar_t>() : nullptr, r.y.data_ptr<scalar_t>(),
                                 r.mean.data_ptr<scalar_t>(), r.rstd.data_ptr<scalar_t>(), rows, n, eps);
  });
  return r;
}

LayerNormGrads layer_norm_backward(const Tensor& dy0, const Tensor& x0, const Tensor& mean, const Tensor& rstd,
                                   const Tensor& weight, int64_t n) {
  Tensor dy = contiguous(to_dtype(dy0, x0.dtype())), x = contiguous(x0);
  Tensor w = weight.defined() ? contiguous(weight) : Tensor();
  const int64_t rows = x.numel() / n;
  LayerNormGrads g;
  g.dx = empty(x.shape(), TensorOptions(x.dtype()));
  g.dweight = empty({n}, TensorOptions(x.dtype()));
  g.dbias = empty({n}, TensorOptions(x.dtype()));
  SMYRF_DISPATCH_FLOAT(x.dtype(), "layer_norm_backward", [&] {
    kc::layernorm_rows_backward<scalar_t>(dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), mean.data_ptr<scalar_t>(),
                                          rstd.data_ptr<scalar_t>(), w.defined() ? w.data_ptr<scalar_t>() : nullptr,
                                          g.dx.data_ptr<scalar_t>(), g.dweight.data_ptr<scalar_t>(),
                                          g.dbias.data_ptr<scalar_t>(), rows, n);
  });
  return g;
}

CrossEntropyResult cross_entropy_rows(const Tensor& logits0, const Tensor& target0, int64_t ignore_index,
                                      double smoothing) {
  require_float_cpu(logits0, "cross_entropy");
  SMYRF_CHECK_HINT(logits0.dim() == 2, "cross_entropy",
                   "logits must be (N, C), got " << shape_str(logits0.shape()), "flatten leading dims first");
  SMYRF_CHECK_HINT(is_integral(target0.dtype()), "cross_entropy",
                   "target must be int32 or int64 class indices, got " << dtype_name(target0.dtype()),
                   "for probabilities, use a soft-target loss");
  SMYRF_CHECK_HINT(target0.dim() == 1 && target0.shape()[0] == logits0.shape()[0], "cross_entropy",
                   "target of shape " << shape_str(target0.shape()) << " does not match logits "
                                      << shape_str(logits0.shape()),
                   "target must be (N,) for logits (N, C)");
  SMYRF_CHECK(smoothing >= 0 && smoothing <= 1, "cross_entropy", "label_smoothing must be in [0, 1], got " << smoothing);
  Tensor logits = contiguous(logits0);
  Tensor target = contiguous(to_dtype(target0, DType::Int64));
  const int64_t rows = logits.shape()[0], C = logits.shape()[1];
  const int64_t* t = target.data_ptr<int64_t>();
  for (int64_t r = 0; r < rows; ++r)
    SMYRF_CHECK_HINT(t[r] == ignore_index || (t[r] >= 0 && t[r] < C), "cross_entropy",
                     "target " << t[r] << " at row " << r << " is out of range for " << C << " classes",
                     "targets must be in [0, C) or equal ignore_index (" << ignore_index << ")");
  CrossEntropyResult res{empty({rows}, TensorOptions(logits.dtype())), empty({rows}, TensorOptions(logits.dtype()))};
  SMYRF_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
    kc::cross_entropy_rows<scalar_t>(logits.data_ptr<scalar_t>(), t, res.loss.data_ptr<scalar_t>(),
                                     res.lse.data_ptr<scalar_t>(), rows, C, ignore_index, smoothing);
  });
  return res;
}

Tensor cross_entropy_rows_backward(const Tensor& logits0, const Tensor& target0, const Tensor& lse, const Tensor& g0,
                                   int64_t ignore_index, double smoothing) {
  Tensor logits = contiguous(logits0);
  Tensor target = contiguous(to_dtype(target0, DType::Int64));
  Tensor g = contiguous(to_dtype(g0, logits.dtype()));
  const int64_t rows = logits.shape()[0], C = logits.shape()[1];
  Tensor d = empty(logits.shape(), TensorOptions(logits.dtype()));
  SMYRF_DISPATCH_FLOAT(logits.dtype(), "cross_entropy_backward", [&] {
    kc::cross_entropy_rows_backward<scalar_t>(logits.data_ptr<scalar_t>(), target.data_ptr<int64_t>(),
                                              contiguous(lse).data_ptr<scalar_t>(), g.data_ptr<scalar_t>(),
                                              d.data_ptr<scalar_t>(), rows, C, ignore_index, smoothing);
  });
  return d;
}

}  // namespace smyrf::raw
