// Row-wise fused layer norm kernels on contiguous (rows, n) buffers, forward and backward. Rows
// are processed in parallel; float and double. Float outputs (y, dx) of 16 MiB and more go out
// with streaming stores (kernels/cpu/streaming_store.h): they are not left in the cache.
#pragma once
#include <cstdint>

// softmax / log_softmax and cross-entropy moved to softmax.h; included here for the callers
// that still reach them through this header
#include "kernels/cpu/softmax.h"

namespace smyrf::kernels::cpu {

// y = (x - mean) * rstd * w + b per row; w, b may be null (identity / zero). mean and rstd
// (one per row) are written for the backward pass.
template <typename T>
void layernorm_rows(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows,
                    int64_t n, double eps);
// y[r] = sum_i (x[r, i] - mean_r)^2 / (n - correction) for each row of n >= 1 (a divisor <= 0
// gives inf, or NaN for a zero sum, as raw::var's composed form); NaN or inf in a row: NaN.
template <typename T>
void var_rows(const T* x, T* y, int64_t rows, int64_t n, int64_t correction);
// var_rows' semantics down the columns of a contiguous (outer, n, inner) buffer: y[o, j] over
// x[o, :, j] (y is (outer, inner)). Two sweeps over whole row runs of column blocks, no copy:
// the column sums (the mean), then the sums of the deviations and their squares from that mean
// rounded to float (m2 = s2 - s1^2 / n, exact up to rounding however the float mean rounded).
template <typename T>
void var_cols(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, int64_t correction);
// dx (rows, n); dw and db (n) are overwritten (not accumulated) when non-null.
template <typename T>
void layernorm_rows_backward(const T* dy, const T* x, const T* mean, const T* rstd, const T* w,
                             T* dx, T* dw, T* db, int64_t rows, int64_t n);

}  // namespace smyrf::kernels::cpu
