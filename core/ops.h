// The non-differentiable op layer (namespace smyrf::raw): validates arguments, allocates the
// result, and calls the kernel for the tensor's device. Autograd builds on these; users call
// the differentiable API in autograd/ops.h instead.
//
// All elementwise ops broadcast (NumPy rules) and accept non-contiguous inputs. Binary ops
// promote dtypes (bool < int32 < int64 < float32 < float64). Results are freshly allocated and
// contiguous unless the function is a view (as_strided, the view functions below).
#pragma once
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/reduce.h"

namespace smyrf::raw {

// ---------------------------------------------------------------- views (share storage)
Tensor as_strided(const Tensor& t, const Shape& shape, const Shape& strides, int64_t offset);
Tensor view(const Tensor& t, Shape shape);     // throws if not expressible as a view
Tensor reshape(const Tensor& t, Shape shape);  // view when possible, else a contiguous copy
Tensor permute(const Tensor& t, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& t, int64_t d0, int64_t d1);
Tensor slice(const Tensor& t, int64_t dim, int64_t start, int64_t end, int64_t step);
Tensor select(const Tensor& t, int64_t dim, int64_t index);
Tensor expand(const Tensor& t, const Shape& shape);
Tensor squeeze(const Tensor& t, int64_t dim);
Tensor unsqueeze(const Tensor& t, int64_t dim);
Shape infer_reshape(const Shape& from, Shape to, const char* op);  // resolves one -1

// ---------------------------------------------------------------- copies and conversion
Tensor contiguous(const Tensor& t);  // t itself when already contiguous
Tensor clone(const Tensor& t);
Tensor to_dtype(const Tensor& t, DType dtype);  // t itself when already of that dtype
Tensor to_device(const Tensor& t, Device device);
void copy_into(const Tensor& dst, const Tensor& src);  // broadcast + convert; bumps version
// Re-homes t's data on `device` in place: every handle of t (a module's parameter, shared by the
// layer that uses it) then sees a dense copy there, its gradient too; views taken from t before
// keep the old storage. A no-op where t already lives. For Module::to, between steps.
void move_to_device_(const Tensor& t, Device device);
void fill(const Tensor& dst, double value);  // bumps version

// ---------------------------------------------------------------- elementwise
using UnaryKind = kernels::cpu::UnaryOp;
// a, b: parameters (LeakyRelu slope; PowScalar exponent; Clamp lo, hi; scalar for *Scalar).
Tensor unary(UnaryKind kind, const Tensor& x, double a = 0, double b = 0);

using BinaryKind = kernels::cpu::BinaryOp;
Tensor binary(BinaryKind kind, const Tensor& a, const Tensor& b);
// In place: dst = dst (op) src, src broadcast to dst's shape (dst keeps its dtype).
void binary_(BinaryKind kind, const Tensor& dst, const Tensor& src);

using CompareKind = kernels::cpu::CompareOp;
Tensor compare(CompareKind kind, const Tensor& a, const Tensor& b);  // -> bool
Tensor compare_scalar(CompareKind kind, const Tensor& a, double s);
Tensor logical_not(const Tensor& a);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
// x * (keep ? scale : 0) for a float x and a bool keep of x's shape (dropout's mask applied;
// a dropped NaN stays NaN, as x * 0).
Tensor masked_scale(const Tensor& x, const Tensor& keep, double scale);

// ---------------------------------------------------------------- reductions
// Mean is computed as Sum / count.
enum class ReduceKind { Sum, Mean, Max, Min, Prod };
Tensor reduce(ReduceKind kind, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
Tensor argreduce(bool is_max, const Tensor& x, int64_t dim, bool keepdim);  // -> int64
// Variance with `correction` (1 = unbiased) over dims.
Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim);
Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
// The sum of x's squared elements over the whole tensor, accumulated in float64, as a 0-d
// float64 tensor on x's device (float32 / float64 x; the same value for any thread count).
Tensor sum_squares(const Tensor& x);
// Sums g (of a broadcast result) back to `shape` (the inverse of broadcasting).
Tensor sum_to(const Tensor& g, const Shape& shape);

// ---------------------------------------------------------------- linear algebra
// Batched matmul with NumPy broadcasting over leading dims; 1-D operands as in NumPy.
Tensor matmul(const Tensor& a, const Tensor& b);
// a: (..., M, K) or its transpose when trans_a; result (..., M, N). Used by backward passes.
Tensor matmul_t(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b);

// ---------------------------------------------------------------- normalisation and losses
Tensor softmax(const Tensor& x, int64_t dim, bool log);
// dx from y = softmax(x) (or log_softmax when log) and dy.
Tensor softmax_backward(const Tensor& y, const Tensor& dy, int64_t dim, bool log);
// Normalises over the trailing dims covered by `normalized` numel; returns (y, mean, rstd).
struct LayerNormResult {
  Tensor y, mean, rstd;
};
LayerNormResult layer_norm(const Tensor& x, int64_t normalized_numel, const Tensor& weight,
                           const Tensor& bias, double eps);
struct LayerNormGrads {
  Tensor dx, dweight, dbias;
};
LayerNormGrads layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean,
                                   const Tensor& rstd, const Tensor& weight,
                                   int64_t normalized_numel);
// logits (N, C), target (N) int64; returns per-row losses (N) and the per-row logsumexp (N).
struct CrossEntropyResult {
  Tensor loss, lse;
};
CrossEntropyResult cross_entropy_rows(const Tensor& logits, const Tensor& target,
                                      int64_t ignore_index, double label_smoothing);
// d logits for per-row upstream gradient g (N).
Tensor cross_entropy_rows_backward(const Tensor& logits, const Tensor& target, const Tensor& lse,
                                   const Tensor& g, int64_t ignore_index, double label_smoothing);

// ---------------------------------------------------------------- joining and indexing
Tensor cat(const std::vector<Tensor>& ts, int64_t dim);
Tensor stack(const std::vector<Tensor>& ts, int64_t dim);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// Out of place: returns a copy of x with src added at index along dim.
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
// In place: src added into dst at index along dim (a strided dst is computed contiguous and
// copied back); bumps dst's version. The gradients of gather / index_select / sort add into
// fresh zeros with these instead of copying the zeros first.
void scatter_add_(const Tensor& dst, int64_t dim, const Tensor& index, const Tensor& src);
void index_add_(const Tensor& dst, int64_t dim, const Tensor& index, const Tensor& src);
Tensor one_hot(const Tensor& index, int64_t num_classes);  // -> int64 (..., num_classes)
// Stable sort along dim; returns (values, int64 indices).
std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending);
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest);

}  // namespace smyrf::raw
