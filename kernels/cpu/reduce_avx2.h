// AVX2 float32 reductions over contiguous runs (used by kernels/cpu/reduce.cpp).
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu::avx2 {
// Sum with 4 independent accumulators (8 lanes each), folded into double every 1024 elements so
// long runs keep double-like accuracy; returned in double.
double sum_f32(const float* x, int64_t n);
// Sum of x[i]^2, every square widened to double and added in double (four chains of 4 lanes):
// the scalar loop of clip_grad_norm_ had one dependent double add an element (10M gradients,
// 38 ms).
double sum_squares_f32(const float* x, int64_t n);
// Sum of (x[i] - c)^2 with every deviation widened to double before it is squared (four chains
// of 4 lanes): batch norm's variance around the mean (a scalar loop with one dependent double add
// an element was 1.8% of a CPU BigGAN step).
double sum_sq_dev_f32(const float* x, int64_t n, double c);
// Max (or min) of n >= 1 values; NaN if any value is NaN.
// Sum of float64 x[0..n), four chains of four lanes.
double sum_f64(const double* x, int64_t n);
// Product of x[0..n) in double (float products accumulate no rounding of their own until the
// double's 53 bits run out; the order differs from a loop, as reduce_one's four chains do).
double prod_f32(const float* x, int64_t n);
float maxmin_f32(const float* x, int64_t n, bool is_max);
// Index of the first max (or min) of n >= 1 values, or of the first NaN if there is one (the
// scalar argmax / argmin's answer): maxmin_f32, then a vector scan for the first lane equal to
// it (the row is in cache for rows up to L2's size). Ties between -0 and +0 go to the first.
int64_t argmaxmin_f32(const float* x, int64_t n, bool is_max);

// Column reductions of a (rows, cols) block whose rows are contiguous and row_stride apart:
// acc[j] += sum_r x[r * row_stride + j] (in double, as the scalar reference), and
// best[j] = max/min(best[j], x[r * row_stride + j]) with NaN sticking once seen.
void col_sum_f32(const float* x, int64_t row_stride, int64_t rows, int64_t cols, double* acc);
// Column argmax / argmin of a (rows, cols) block, continuing from best / idx (row indices, the
// block's rows numbered from first_row): first of ties, the first NaN wins and stays; -0 and +0
// are ties. Row indices must fit int32.
void col_argmaxmin_f32(const float* x, int64_t row_stride, int64_t rows, int64_t cols, float* best,
                       int32_t* idx, int64_t first_row, bool is_max);
// s1[j] += sum_r (x - c[j]) and s2[j] += sum_r (x - c[j])^2 over a (rows, cols) block, in double
// (the deviations from a per-column shift c, close to the column's mean, for var_cols).
void col_dev_moments_f32(const float* x, int64_t row_stride, int64_t rows, int64_t cols,
                         const float* c, double* s1, double* s2);
void col_maxmin_f32(const float* x, int64_t row_stride, int64_t rows, int64_t cols, float* best,
                    bool is_max);
}  // namespace smyrf::kernels::cpu::avx2
