// AVX2 float32 layer-norm row kernels (see kernels/cpu/norm.h for the semantics they must
// match). `next` (and next_dy / next_x) is where the rows the calling thread processes next
// start, or null: they are prefetched while these rows compute (only read as a hint; any
// address, even past the end of a buffer, is safe).
//
// `stream`: write y (and the parts of split rows) with non-temporal stores for the whole lines
// inside the row (rows::stream_lines: from kNormStreamRowMin floats). `out` (the backward's dx):
// the calling thread's rows::LineWriter (row_avx2.h), which streams whole rows as whole lines, the
// lines two rows share included; its rows come in order, each where the one before ended, and
// are at least 16 floats long; null: plain stores. The caller decides
// (kernels/cpu/streaming_store.h) and issues the store fence before its parallel region ends.
//   The backward's dx through a LineWriter against stream_lines (plain stores below 192 floats):
// 2 threads, 16M floats, 6 alternated rounds, time ratio: 33 1.24, 50 1.13, 64 0.99, 72 0.89, 76
// 0.95, 100 0.86, 150 0.84, 200 1.00, 256 1.02, 1000 1.00, 1024 1.07 (noisy); norm.cpp takes it
// from 64 floats. The forward's y did not gain (76 1.09, 100 1.13, 150
// 0.90, 200 1.05, 256 1.05, 1000 1.00) and keeps stream_lines.
#pragma once
#include <cstdint>

#include "kernels/cpu/line_writer.h"

namespace smyrf::kernels::cpu::avx2 {

void layernorm_row_f32(const float* x, const float* w, const float* b, float* y, int64_t n,
                       double eps, double* mean, double* rstd, const float* next, bool stream);

// Mean and population variance of a row of n >= 1 floats (the forward's moments: about a shift,
// float lanes folded into double, retaken about the mean when the shift was poor).
void row_moments_f32(const float* x, int64_t n, double* mean, double* var);

// Layer-norm backward of `k` (1 or 2) consecutive rows of length n (row r at dy + r n, x + r n,
// dx + r n; mean[r], rstd[r]): writes dx and adds dy * xhat to tw[i] and dy to tb[i] (float
// per-thread partials of dw / db, which the caller folds into double every few rows; either may
// be null). Two rows at a time read and write tw / tb once for both. next_dy / next_x: the next
// k rows (contiguous).
void layernorm_rows_backward_f32(const float* dy, const float* x, const double* mean,
                                 const double* rstd, int k, const float* w, float* dx, float* tw,
                                 float* tb, int64_t n, const float* next_dy, const float* next_x,
                                 rows::LineWriter* out);

// Parts of one row for rows split between threads (norm.cpp, split_row_parts); w, b, tw, tb
// point at the part's columns. The forward's moments of a part are row_moments_f32's.
//   layernorm_part_write_f32           y = xhat w + b over len entries, given the whole row's
//                                      mean and rstd.
//   layernorm_backward_part_sums_f32   the backward's pass 1 over a part: *sg = sum(dy w),
//                                      *sgx = sum(dy w xhat), and dy xhat / dy added to tw / tb
//                                      (either may be null).
//   layernorm_backward_part_write_f32  dx over len entries of a row of full length n, given the
//                                      whole row's sums.
void layernorm_part_write_f32(const float* x, const float* w, const float* b, float* y, int64_t len,
                              double mean, double rstd, bool stream);
void layernorm_backward_part_sums_f32(const float* dy, const float* x, double mean, double rstd,
                                      const float* w, float* tw, float* tb, int64_t len, double* sg,
                                      double* sgx);
void layernorm_backward_part_write_f32(const float* dy, const float* x, double mean, double rstd,
                                       const float* w, float* dx, int64_t len, int64_t n, double sg,
                                       double sgx, bool stream);
}  // namespace smyrf::kernels::cpu::avx2
