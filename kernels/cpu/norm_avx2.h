// AVX2 float32 row kernels for softmax, layer norm and cross-entropy (one row each; see
// kernels/cpu/norm.h for the semantics they must match).
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu::avx2 {
void softmax_row_f32(const float* x, float* y, int64_t n, bool log);
void softmax_row_backward_f32(const float* y, const float* dy, float* dx, int64_t n, bool log);
void layernorm_row_f32(const float* x, const float* w, const float* b, float* y, int64_t n,
                       double eps, double* mean, double* rstd);
// One row of the layer-norm backward: writes dx and adds dy * xhat to tw[i] and dy to tb[i]
// (double per-thread partials of dw / db; either may be null).
void layernorm_row_backward_f32(const float* dy, const float* x, double mean, double rstd,
                                const float* w, float* dx, double* tw, double* tb, int64_t n);
// logsumexp of a row of logits and the plain sum of the row (for label smoothing).
void cross_entropy_row_f32(const float* x, int64_t C, double* lse, double* sum_x);
// dx[c] = g * (exp(x[c] - lse) - off) for every c (the target fix-up is left to the caller).
void cross_entropy_row_backward_f32(const float* x, float* dx, int64_t C, double lse, double g,
                                    double off);
}  // namespace smyrf::kernels::cpu::avx2
