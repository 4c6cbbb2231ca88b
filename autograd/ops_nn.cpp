// Neural-network functions: softmax, layer norm, cross-entropy, MSE, dropout, embedding.
#include <limits>

#include "autograd/function.h"
#include "autograd/ops.h"
#include "core/ops.h"

namespace smyrf {
using raw::BinaryKind;
using raw::UnaryKind;

namespace {
Tensor softmax_impl(const char* name, const Tensor& x, int64_t dim, bool log) {
  Tensor y = raw::softmax(x, dim, log);
  if (needs_grad({x})) {
    Tensor ys = alias(y);
    record(name, {x}, {y},
           [ys, dim, log](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             return {raw::softmax_backward(ys, g[0], dim, log)};
           },
           {y});
  }
  return y;
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl("softmax", x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) {
  return softmax_impl("log_softmax", x, dim, true);
}

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  bool match = k <= x.dim();
  for (int64_t i = 0; match && i < k; ++i)
    match = x.shape()[x.dim() - k + i] == normalized_shape[i];
  SMYRF_CHECK_HINT(match, "layer_norm",
                   "normalized_shape " << shape_str(normalized_shape)
                                       << " does not match the trailing dims of "
                                       << shape_str(x.shape()),
                   "normalized_shape lists the input's last dims");
  const int64_t n = shape_numel(normalized_shape);
  raw::LayerNormResult r = raw::layer_norm(x, n, weight, bias, eps);
  if (needs_grad({x, weight, bias})) {
    Tensor xs = alias(x), ws = weight.defined() ? alias(weight) : Tensor();
    Tensor mean = r.mean, rstd = r.rstd;
    Shape wshape = weight.defined() ? weight.shape() : Shape{},
          bshape = bias.defined() ? bias.shape() : Shape{};
    record("layer_norm", {x, weight, bias}, {r.y},
           [xs, ws, mean, rstd, n, wshape,
            bshape](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             raw::LayerNormGrads d = raw::layer_norm_backward(g[0], xs, mean, rstd, ws, n);
             return {raw::reshape(d.dx, xs.shape()),
                     ws.defined() ? raw::reshape(d.dweight, wshape) : Tensor(),
                     bshape.empty() ? Tensor() : raw::reshape(d.dbias, bshape)};
           },
           {x, weight});
  }
  return r.y;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                     double smoothing, Reduction reduction) {
  SMYRF_CHECK_HINT(logits.dim() >= 1, "cross_entropy",
                   "logits must be (N, C) or (N, C, ...), got " << shape_str(logits.shape()),
                   "add a batch dim");
  // (N, C, d1, ...) -> (N * d1 * ..., C); (C) -> (1, C)
  Tensor l2 = logits;
  Tensor t1 = target;
  Shape out_shape = target.shape();
  if (logits.dim() == 1) {
    l2 = raw::unsqueeze(logits, 0);
    t1 = raw::reshape(target, {1});
  } else if (logits.dim() > 2) {
    std::vector<int64_t> perm{0};
    for (int64_t i = 2; i < logits.dim(); ++i) perm.push_back(i);
    perm.push_back(1);
    l2 = raw::reshape(raw::permute(logits, perm), {-1, logits.size(1)});
    Shape want{logits.size(0)};
    for (int64_t i = 2; i < logits.dim(); ++i) want.push_back(logits.size(i));
    SMYRF_CHECK_HINT(target.shape() == want, "cross_entropy",
                     "target of shape " << shape_str(target.shape()) << " does not match logits "
                                        << shape_str(logits.shape()),
                     "target must be " << shape_str(want));
    t1 = raw::reshape(target, {-1});
  }
  raw::CrossEntropyResult r = raw::cross_entropy_rows(l2, t1, ignore_index, smoothing);
  Tensor rows = r.loss;
  if (needs_grad({logits})) {
    Tensor ls = alias(l2), ts = alias(t1), lse = r.lse;
    Shape lshape = logits.shape();
    std::vector<int64_t> perm;
    if (logits.dim() > 2) {
      perm.push_back(0);
      perm.push_back(logits.dim() - 1);
      for (int64_t i = 1; i < logits.dim() - 1; ++i) perm.push_back(i);
    }
    Shape permuted;
    if (logits.dim() > 2) {
      permuted.push_back(logits.size(0));
      for (int64_t i = 2; i < logits.dim(); ++i) permuted.push_back(logits.size(i));
      permuted.push_back(logits.size(1));
    }
    record("cross_entropy", {logits}, {rows},
           [ls, ts, lse, ignore_index, smoothing, lshape, perm,
            permuted](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             Tensor d =
                 raw::cross_entropy_rows_backward(ls, ts, lse, g[0], ignore_index, smoothing);
             if (perm.empty()) return {raw::reshape(d, lshape)};
             return {raw::contiguous(raw::permute(raw::reshape(d, permuted), perm))};
           },
           {logits});
  }
  if (reduction == Reduction::None) return rows.reshape(logits.dim() == 1 ? Shape{} : out_shape);
  if (reduction == Reduction::Sum) return sum(rows);
  // mean over non-ignored targets (0/0 -> NaN, as in PyTorch, when every target is ignored)
  Tensor valid = raw::compare_scalar(raw::CompareKind::Ne, t1, static_cast<double>(ignore_index));
  double count = raw::reduce(raw::ReduceKind::Sum, valid, {}, false).item<double>();
  return sum(rows) * (1.0 / count);
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  SMYRF_CHECK_HINT(input.shape() == target.shape(), "mse_loss",
                   "input " << shape_str(input.shape()) << " and target "
                            << shape_str(target.shape()) << " differ",
                   "input and target need the same shape");
  Tensor d = input - target;
  const bool fused_dtype = d.dtype() == kFloat32 || d.dtype() == kFloat64 ||
                           (d.device().is_cuda() && d.is_floating_point());
  if (reduction == Reduction::None || !fused_dtype) {
    Tensor sq = d * d;
    if (reduction == Reduction::None) return sq;
    return reduction == Reduction::Sum ? sum(sq) : mean(sq);
  }
  // Sum / mean as one node: the squares summed in float64 without being stored
  // (raw::sum_squares), and d (2 g scale) as the gradient of d, one product (the composite d * d
  // then mean ran two products and their sum backward: 2048^2 fwd+bwd 5.5-7.9 ms, PyTorch 5.4).
  const int64_t count = d.numel();
  const double scale = reduction == Reduction::Sum ? 1.0
                       : count > 0                 ? 1.0 / static_cast<double>(count)
                                                   : std::numeric_limits<double>::quiet_NaN();
  Tensor loss =
      raw::unary(UnaryKind::MulScalar, raw::to_dtype(raw::sum_squares(d), d.dtype()), scale);
  if (needs_grad({d})) {
    Tensor ds = alias(d);
    record("mse_loss", {d}, {loss},
           [ds, scale](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             return {raw::binary(BinaryKind::Mul, ds,
                                 raw::unary(UnaryKind::MulScalar, g[0], 2.0 * scale))};
           },
           {d});
  }
  return loss;
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        Reduction reduction) {
  SMYRF_CHECK_HINT(logits.shape() == target.shape(), "binary_cross_entropy_with_logits",
                   "logits " << shape_str(logits.shape()) << " and target "
                             << shape_str(target.shape()) << " differ",
                   "logits and target need the same shape");
  SMYRF_CHECK_HINT(
      logits.is_floating_point() && target.is_floating_point(), "binary_cross_entropy_with_logits",
      "logits are " << dtype_name(logits.dtype()) << ", target " << dtype_name(target.dtype()),
      "floating logits and targets (probabilities in [0, 1])");
  Tensor loss = softplus(logits) - logits * target;
  if (reduction == Reduction::None) return loss;
  return reduction == Reduction::Sum ? sum(loss) : mean(loss);
}

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  SMYRF_CHECK(p >= 0 && p <= 1, "dropout", "probability must be in [0, 1], got " << p);
  if (!training || p == 0) return x;
  if (p == 1) return x * 0.0;
  Tensor keep = bernoulli(x.shape(), 1.0 - p, gen, x.device());  // the mask lives with x
  const double scale = 1.0 / (1.0 - p);
  Tensor y = raw::masked_scale(x, keep, scale);
  if (needs_grad({x})) {  // saves the bool mask (a quarter of a float scale's bytes)
    record("dropout", {x}, {y}, [keep, scale](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {raw::masked_scale(g[0], keep, scale)};
    });
  }
  return y;
}

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  SMYRF_CHECK_HINT(weight.dim() == 2, "embedding",
                   "weight must be (num_embeddings, dim), got " << shape_str(weight.shape()),
                   "create it with Embedding(num, dim)");
  Tensor flat = raw::reshape(indices, {-1});
  Tensor rows = index_select(weight, 0, flat);
  Shape s = indices.shape();
  s.push_back(weight.size(1));
  return rows.reshape(s);
}

}  // namespace smyrf
