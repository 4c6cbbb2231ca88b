// The CUDA side of the raw op layer: core/ops_*.cpp validate and allocate exactly as for the
// CPU, then call these functions for CUDA tensors. Each one makes the tensors' device current,
// dispatches on the dtype to kernels/cuda and turns a kernel failure (std::runtime_error with
// file:line and the CUDA/cuBLAS message) into an smyrf::Error naming the op. All #ifdefs for CUDA
// live in ops_cuda.cpp; in a build without CUDA every function throws (no CUDA tensor can exist
// there, so they are never reached).
//
// Tensors passed here are already on one CUDA device, of the dtypes the kernel supports, and
// contiguous where the kernel wants contiguous buffers (the callers ensure it, as for the CPU).
//
// Status: ran on NVIDIA H200s (2026-11-28 to 11-30; tests/cuda compares every op with the CPU),
// except what was written on 2026-11-30 without a GPU and has only compiled: masked_scale,
// logsumexp_rows, var_rows, softmax_cols(_backward), one_hot's device branch in core/, and
// (session 20) indices_in_range with the device index / target checks that call it.
#pragma once
#include <cstdint>
#include <optional>

#include "core/iter.h"
#include "core/tensor.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/reduce.h"

namespace smyrf::cuda_ops {

// ---------------------------------------------------------------- elementwise (strided plans)
void unary(kernels::cpu::UnaryOp op, double a, double b, const IterPlan& p, const Tensor& x,
           const Tensor& out);
void binary(kernels::cpu::BinaryOp op, const IterPlan& p, const Tensor& a, const Tensor& b,
            const Tensor& out);
void compare(kernels::cpu::CompareOp op, const IterPlan& p, const Tensor& a, const Tensor& b,
             const Tensor& out);
void where(const IterPlan& p, const Tensor& cond, const Tensor& a, const Tensor& b,
           const Tensor& out);
void convert(const IterPlan& p, const Tensor& src, const Tensor& dst);  // any dtype pair
void fill(const IterPlan& p, const Tensor& dst, double value);
// The least innermost-dim length that sends a strided elementwise index space through the rows
// kernel (kernels/cuda/elementwise.h, set_pointwise_rows_min_inner; 0: off, the default). Error
// for n < 0. Returns the previous value; in a build without CUDA the setting is kept and has no
// effect. Written 2026-11-30 without a GPU: compiled, not yet run on one.
int64_t set_pointwise_rows_min_inner(int64_t n);
// y = x * (keep ? scale : 0); x, keep (bool), y contiguous, one shape
void masked_scale(const Tensor& x, const Tensor& keep, double scale, const Tensor& y);
// Contiguous byte copy between tensors on any devices (at least one CUDA); host reads
// synchronise the current stream.
void copy_bytes(const Tensor& dst, const Tensor& src);

// ---------------------------------------------------------------- reductions
void reduce(kernels::cpu::ReduceOp op, int kept_ndim, const int64_t* kept_sizes,
            const int64_t* kept_strides, const IterPlan& red, const Tensor& x, const Tensor& out);
void argreduce(bool is_max, int kept_ndim, const int64_t* kept_sizes, const int64_t* kept_strides,
               int64_t n, int64_t red_stride, const Tensor& x, const Tensor& out);

// ---------------------------------------------------------------- rows (contiguous)
void softmax_rows(const Tensor& x, const Tensor& y, int64_t rows, int64_t n, bool log);
void softmax_rows_backward(const Tensor& y, const Tensor& dy, const Tensor& dx, int64_t rows,
                           int64_t n, bool log);
// w, b may be undefined
void layernorm_rows(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y,
                    const Tensor& mean, const Tensor& rstd, int64_t rows, int64_t n, double eps);
void layernorm_rows_backward(const Tensor& dy, const Tensor& x, const Tensor& mean,
                             const Tensor& rstd, const Tensor& w, const Tensor& dx,
                             const Tensor& dw, const Tensor& db, int64_t rows, int64_t n);
void cross_entropy_rows(const Tensor& logits, const Tensor& target, const Tensor& loss,
                        const Tensor& lse, int64_t rows, int64_t C, int64_t ignore_index,
                        double eps);
void cross_entropy_rows_backward(const Tensor& logits, const Tensor& target, const Tensor& lse,
                                 const Tensor& g, const Tensor& d, int64_t rows, int64_t C,
                                 int64_t ignore_index, double eps);
void logsumexp_rows(const Tensor& x, const Tensor& y, int64_t rows, int64_t n);
void var_rows(const Tensor& x, const Tensor& y, int64_t rows, int64_t n, int64_t correction);
// (outer, n, inner) contiguous, over the middle dim
void softmax_cols(const Tensor& x, const Tensor& y, int64_t outer, int64_t n, int64_t inner,
                  bool log);
void softmax_cols_backward(const Tensor& y, const Tensor& dy, const Tensor& dx, int64_t outer,
                           int64_t n, int64_t inner, bool log);

// ---------------------------------------------------------------- indexing (contiguous, int64 idx)
// Whether every index of the contiguous int64 tensor lies in [0, bound) (or equals `exempt`, when
// given), checked on the device (a 4-byte read back instead of a copy of the indices).
bool indices_in_range(const Tensor& idx, int64_t bound,
                      std::optional<int64_t> exempt = std::nullopt);
void index_select(const Tensor& x, const Tensor& idx, const Tensor& out, int64_t outer, int64_t n,
                  int64_t k, int64_t inner);
void gather(const Tensor& x, const Tensor& idx, const Tensor& out, int64_t outer, int64_t n,
            int64_t k, int64_t inner);
void index_add(const Tensor& y, const Tensor& idx, const Tensor& src, int64_t outer, int64_t n,
               int64_t k, int64_t inner);
void scatter_add(const Tensor& y, const Tensor& idx, const Tensor& src, int64_t outer, int64_t n,
                 int64_t k, int64_t inner);
void sort_rows(const Tensor& x, const Tensor& values, const Tensor& indices, int64_t rows,
               int64_t n, bool descending);

// ---------------------------------------------------------------- matmul
// Element offsets are added to the tensors' data pointers (float32 or float64).
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                  const Tensor& a, int64_t off_a, int64_t lda, int64_t stride_a, const Tensor& b,
                  int64_t off_b, int64_t ldb, int64_t stride_b, const Tensor& c, int64_t off_c,
                  int64_t ldc, int64_t stride_c);

// ---------------------------------------------------------------- random (contiguous)
// Philox draws into t (float32/float64: uniform [a, b) or normal(a, b); int64: [low, high);
// bool: Bernoulli(p = a)), the same numbers as the CPU for (seed, offset).
void random_uniform(const Tensor& t, uint64_t seed, uint64_t offset, double lo, double hi);
void random_normal(const Tensor& t, uint64_t seed, uint64_t offset, double mean, double std);
void random_int64(const Tensor& t, uint64_t seed, uint64_t offset, int64_t low, int64_t high);
void random_bernoulli(const Tensor& t, uint64_t seed, uint64_t offset, double p);

// ---------------------------------------------------------------- optimizers (contiguous)
void adam_update(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, double lr,
                 double beta1, double beta2, double eps, double weight_decay, bool decoupled,
                 int64_t step);
void sgd_update(const Tensor& p, const Tensor& g, const Tensor& buf, double lr, double momentum,
                double weight_decay, bool nesterov, bool first_step);

}  // namespace smyrf::cuda_ops
