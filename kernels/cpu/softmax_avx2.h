// AVX2 float32 row kernels for softmax and cross-entropy (one row each; see kernels/cpu/softmax.h
// for the semantics they must match). `next` is the row the calling thread processes next, or
// null: it is prefetched while this row computes (it is only read as a hint; any address, even
// past the end of a buffer, is safe).
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu::avx2 {
void softmax_row_f32(const float* x, float* y, int64_t n, bool log, const float* next);
void softmax_row_backward_f32(const float* y, const float* dy, float* dx, int64_t n, bool log);
// logsumexp of a row of logits and the plain sum of the row (for label smoothing).
void cross_entropy_row_f32(const float* x, int64_t C, double* lse, double* sum_x,
                           const float* next);
// dx[c] = g * (exp(x[c] - lse) - off) for every c (the target fix-up is left to the caller).
void cross_entropy_row_backward_f32(const float* x, float* dx, int64_t C, double lse, double g,
                                    double off);
}  // namespace smyrf::kernels::cpu::avx2
