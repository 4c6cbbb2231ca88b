// AVX2 float32 layer-norm row kernels (one row each; see kernels/cpu/norm.h for the semantics
// they must match). `next` (and next_dy / next_x) is the row the calling thread processes next,
// or null: it is prefetched while this row computes (it is only read as a hint; any address,
// even past the end of a buffer, is safe).
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu::avx2 {
void layernorm_row_f32(const float* x, const float* w, const float* b, float* y, int64_t n,
                       double eps, double* mean, double* rstd, const float* next);
// One row of the layer-norm backward: writes dx and adds dy * xhat to tw[i] and dy to tb[i]
// (float per-thread partials of dw / db, which the caller folds into double every few rows;
// either may be null).
void layernorm_row_backward_f32(const float* dy, const float* x, double mean, double rstd,
                                const float* w, float* dx, float* tw, float* tb, int64_t n,
                                const float* next_dy, const float* next_x);
}  // namespace smyrf::kernels::cpu::avx2
