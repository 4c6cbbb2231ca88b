// Softmax / log_softmax along a dim that is not the last, in place of transposing it last and
// back: x is a contiguous (outer, n, inner) buffer and the softmax runs over n for each of the
// outer * inner columns (stride inner). Statistics are taken in blocks of up to 2048
// neighbouring columns, so every pass reads whole row runs and keeps its per-column state in
// cache: forward = the sums of exp(x - c) about each column's first entry c, with the max
// alongside (a max pass first when that guess fails), then the write (two reads, one write);
// backward = the column sums of y dy (or of dy), then the write. The old path (transpose to last,
// row softmax, transpose back) moved each element through two gathers and two extra buffers:
// softmax over dim 0 of 4096 x 4096 took 30-35 ms.
//
// Two phases: the statistics by column blocks (one task per block), then the outputs along whole
// rows (the threads split the rows), so the write streams contiguous memory whatever the block
// width; on 4096 x 4096 over dim 0 that pass had taken 60% of the time when it ran by blocks of
// 8 KiB row runs.
//
// Semantics are softmax_rows' per column (kernels/cpu/softmax.h): a column with a NaN is NaN, one
// whose max is +inf is NaN, one of all -inf gives 0 (softmax) / -inf (log_softmax); those blocks
// go through the double reference. The float AVX2 path sums in float, folded into double every
// 256 rows, with softmax_rows' exp (row_math_avx2.h).
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu {

template <typename T>
void softmax_cols(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log);
//   softmax:     dx = y * (dy - sum_n(dy * y));   log_softmax: dx = dy - exp(y) * sum_n(dy)
template <typename T>
void softmax_cols_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t n, int64_t inner,
                           bool log);

namespace avx2 {
constexpr int64_t kColsBlock = 2048;
// Statistics of a block of w <= kColsBlock columns (n rows, `inner` apart): each column's shift
// c and factor f (softmax: y = exp(x - c) f; log_softmax: y = x - f). False, with c and f
// undefined, when a column's max comes out not finite (+inf, all -inf, a NaN): the caller then
// takes the reference. scratch: 3 w floats, 8-byte aligned (w doubles, then w floats).
// exps: when not null, every exp(x - c) is also stored there (rows `inner` apart), for
// softmax_cols_scale_f32 to finish: a block written from cache right after its statistics then
// takes one exp an element instead of two.
bool softmax_cols_stats_f32(const float* x, int64_t n, int64_t inner, int64_t w, bool log,
                            float* scratch, float* c, float* f, float* exps = nullptr);
// y from the statistics over `rows` rows of w columns (rows `inner` apart).
void softmax_cols_write_f32(const float* x, float* y, int64_t rows, int64_t inner, int64_t w,
                            bool log, const float* c, const float* f);
// y *= f over `rows` rows of w columns: softmax from the stored exps.
void softmax_cols_scale_f32(float* y, int64_t rows, int64_t inner, int64_t w, const float* f);
// The backward's column sums s (of y dy, or of dy for log_softmax) of a block; scratch as above.
void softmax_cols_sums_backward_f32(const float* y, const float* dy, int64_t n, int64_t inner,
                                    int64_t w, bool log, float* scratch, float* s);
// Short columns whole in registers, 8 neighbouring columns at a time: one read of x and one
// write of y, no per-column state in memory. The general blocks take the statistics, their checks
// and factors per column as for long ones: softmax over dim 0 of 2 x 8M floats ran at a third of
// a contiguous softmax's speed. They read n interleaved row streams (the backward 2n), which the
// prefetchers follow up to about 8: 2 threads, medians of 4 interleaved rounds, ms, general ->
// short, (1, n, 16M / n): forward n 2 12.9 -> 5.7, n 4 8.2 -> 5.0, n 8 7.7 -> 5.8, n 16 6.4 -> 7.0,
// n 32 6.1 -> 10.1; backward n 2 9.3 -> 3.0, n 4 6.4 -> 4.0, n 8 6.2 -> 6.2, n 32 5.9 -> 24.
// softmax_cols_short_f32 returns false, with y partly written, when a column's max is not finite
// (the caller takes the reference for the block).
constexpr int64_t kShortColsMax = 8, kShortColsBackwardMax = 4;
bool softmax_cols_short_f32(const float* x, float* y, int64_t n, int64_t inner, int64_t w,
                            bool log);
void softmax_cols_short_backward_f32(const float* y, const float* dy, float* dx, int64_t n,
                                     int64_t inner, int64_t w, bool log);
void softmax_cols_write_backward_f32(const float* y, const float* dy, float* dx, int64_t rows,
                                     int64_t inner, int64_t w, bool log, const float* s);
}  // namespace avx2

}  // namespace smyrf::kernels::cpu
