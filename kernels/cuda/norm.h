// CUDA row kernels on contiguous (rows, n) device buffers: softmax / log_softmax, layer norm and
// cross-entropy, forward and backward, with the semantics of kernels/cpu/norm.h (all -inf rows,
// NaN propagation, ignore_index, label smoothing). A row is handled by one warp when n <= 1024
// and by a block of 256 threads otherwise; row sums accumulate in double. dw/db of the layer
// norm backward are summed over rows in a fixed order (per-chunk partials, then a second pass),
// without atomics, so they are deterministic. float and double. Queued on the current stream.
//
// Status: ran on an NVIDIA H200 on 2026-11-28 (tests/cuda, all passing; scripts/gpu-check),
// except logsumexp_rows, var_rows and softmax_cols(_backward), written 2026-11-30 without a GPU:
// compiled only.
#pragma once
#include <cstdint>

namespace smyrf::kernels::cuda {

template <typename T>
void softmax_rows(const T* x, T* y, int64_t rows, int64_t n, bool log);
template <typename T>
void softmax_rows_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t n, bool log);

template <typename T>
void layernorm_rows(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows,
                    int64_t n, double eps);
template <typename T>
void layernorm_rows_backward(const T* dy, const T* x, const T* mean, const T* rstd, const T* w,
                             T* dx, T* dw, T* db, int64_t rows, int64_t n);

// target: int64 device buffer, already validated by the caller.
template <typename T>
void cross_entropy_rows(const T* logits, const int64_t* target, T* loss, T* lse, int64_t rows,
                        int64_t C, int64_t ignore_index, double eps);
template <typename T>
void cross_entropy_rows_backward(const T* logits, const int64_t* target, const T* lse, const T* g,
                                 T* dlogits, int64_t rows, int64_t C, int64_t ignore_index,
                                 double eps);

// y[r] = log sum_i exp(x[r, i]) (kernels/cpu/softmax.h logsumexp_rows' semantics) and the
// variance of each row about its mean (kernels/cpu/norm.h var_rows'), a row a group as above.
template <typename T>
void logsumexp_rows(const T* x, T* y, int64_t rows, int64_t n);
template <typename T>
void var_rows(const T* x, T* y, int64_t rows, int64_t n, int64_t correction);

// softmax / log_softmax down the columns of a contiguous (outer, n, inner) buffer (over the
// middle dim), a thread a column, with softmax_rows' semantics per column: no transposed copies.
template <typename T>
void softmax_cols(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log);
template <typename T>
void softmax_cols_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t n, int64_t inner,
                           bool log);

}  // namespace smyrf::kernels::cuda
