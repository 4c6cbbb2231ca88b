// Row-wise fused softmax / log_softmax and cross-entropy kernels on contiguous (rows, n) buffers,
// forward and backward. Rows are processed in parallel; float and double.
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu {

// y = softmax(x) or log_softmax(x) along each row of length n. Rows of all -inf give 0
// (softmax) / -inf (log_softmax) instead of NaN.
template <typename T>
void softmax_rows(const T* x, T* y, int64_t rows, int64_t n, bool log);
// dx from the forward output y and dy.
//   softmax:     dx = y * (dy - sum(dy * y))
//   log_softmax: dx = dy - exp(y) * sum(dy)
template <typename T>
void softmax_rows_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t n, bool log);

// y[r] = log(sum_i exp(x[r, i])) for each row of length n: a row whose max is +inf or -inf (all
// -inf) gives that max, a row with a NaN gives NaN (raw::logsumexp's semantics).
template <typename T>
void logsumexp_rows(const T* x, T* y, int64_t rows, int64_t n);

// Per-row cross-entropy of logits (rows, C) against int64 targets, with label smoothing eps:
//   loss = (1 - eps) * (lse - x_t) + eps * (lse - mean_c x_c);   lse = logsumexp(x)
// Rows whose target == ignore_index get loss 0. Targets must be valid (checked by the caller).
// With eps == 0 the mean term is absent (not 0 * it): -inf logits of other classes leave the
// loss finite.
template <typename T>
void cross_entropy_rows(const T* logits, const int64_t* target, T* loss, T* lse, int64_t rows,
                        int64_t C, int64_t ignore_index, double eps);
// dlogits = g_row * (softmax(x) - (1 - eps) onehot(t) - eps / C); zero for ignored rows.
template <typename T>
void cross_entropy_rows_backward(const T* logits, const int64_t* target, const T* lse, const T* g,
                                 T* dlogits, int64_t rows, int64_t C, int64_t ignore_index,
                                 double eps);

}  // namespace smyrf::kernels::cpu
