// AVX2 float32 row kernels for softmax and cross-entropy (one row each; see kernels/cpu/softmax.h
// for the semantics they must match).
//   next     a row the calling thread processes later (prefetch_rows_ahead), or null: its first
//            n floats are prefetched while this row computes (only read as a hint; any address,
//            even past the end of a buffer, is safe).
//   stream   write the output row with streaming (non-temporal) stores, for outputs too large
//            to stay in cache (kernels/cpu/streaming_store.h decides); the caller issues
//            streaming_store_fence() once per thread after its last row. The backward kernel
//            and softmax_rows_f32 take it; softmax_row_f32 writes with plain stores.
//   out      the calling thread's rows::LineWriter (kernels/cpu/line_writer.h: one thread's
//            consecutive rows of 16 floats and more, streamed as whole lines, the lines two rows
//            share assembled), or null; where given it writes the row instead of `stream`.
#pragma once
#include <cstdint>

#include "kernels/cpu/line_writer.h"

namespace smyrf::kernels::cpu::avx2 {
// softmax's exps wait in y, in cache, for the 1 / sum scaling.
void softmax_row_f32(const float* x, float* y, int64_t n, bool log, const float* next);
void softmax_row_backward_f32(const float* y, const float* dy, float* dx, int64_t n, bool log,
                              bool stream, rows::LineWriter* out = nullptr);
// softmax or log_softmax of `rows` consecutive rows of length n <= kSoftmaxPipedMax (softmax) or
// kLogSoftmaxPipedMax (log_softmax) (one thread's share of the rows), as a pipeline: each row's
// write pass (y = exp / sum, or x - lse) runs inside the next row's exp pass, so the stores leave
// while the exps compute instead of in a burst of their own with the core and the read stream
// idle.
//   The caps, measured against each row with its own scaling pass (softmax_row_f32),
// interleaved, 2 threads, 16M floats, 8 rounds (2026-11-29): log_softmax, which keeps no exps,
// ran 131072-, 262144- and 1M-wide rows 18-33% faster piped (medians and minima); softmax
// 131072-wide rows 9-24% faster (its two rows of exps, 1 MiB, fit the core's 2 MiB L2 next to
// the x stream), but 262144- and 1M-wide rows 5-7% slower by the minima (the exps spill from
// L2); 16384-wide rows 6-11% faster (earlier measurement). Wider rows keep their own pass.
constexpr int64_t kSoftmaxPipedMax = 131072;
constexpr int64_t kLogSoftmaxPipedMax = 1 << 20;
//   With `stream`, rows of kStreamedRowMin to kStreamedRowMax floats are written with streaming
// stores instead (whole lines only, rows::LineWriter; the caller fences). 2 threads, 16M floats,
// 6 alternated rounds, piped / streamed time, softmax (log_softmax): 65 0.92 (1.01), 100 0.81
// (0.93), 150 0.81 (0.93), 255 0.72 (0.84), 256 0.79 (0.72), 1001 0.75 (0.62), 4096 0.88 (0.83);
// 8192 0.98 (0.96) with a 32 KiB scratch, which no longer fits L1 beside the row.
constexpr int64_t kStreamedRowMin = 16;
constexpr int64_t kStreamedRowMax = 4096;
void softmax_rows_f32(const float* x, float* y, int64_t rows, int64_t n, bool log, bool stream);
// How many rows of n floats ahead the `next` row passed to the row kernels should be: about
// 2048 floats (8 KiB), so that short rows are prefetched two or more rows early. One row ahead,
// a 1024-float row's last prefetches were still in flight when its max pass began, and the
// pass stalled on them (cross-entropy 16384 x 1024, one thread: 0.43 -> 0.38 ns an element).
// Only the two-pass paths (edge rows) and long rows' write passes use `next` now: the
// single-pass loops prefetch their own stream 4 KiB ahead.
inline int64_t prefetch_rows_ahead(int64_t n) { return n >= 2048 ? 1 : (2048 + n - 1) / n; }
// logsumexp of a row of logits; the plain sum of the row in *sum_x when sum_x is not null (label
// smoothing needs it).
void cross_entropy_row_f32(const float* x, int64_t C, double* lse, double* sum_x,
                           const float* next);
// dx[c] = g * (exp(x[c] - lse) - off) for every c, except dx[t] = dt (the caller computes the
// target's entry in double; t outside [0, C) for none).
void cross_entropy_row_backward_f32(const float* x, float* dx, int64_t C, double lse, double g,
                                    double off, int64_t t, float dt,
                                    rows::LineWriter* out = nullptr);
// Parts of one row for rows split between threads (softmax.cpp, split_row_parts), with the
// row kernels' semantics once the parts are combined:
//   softmax_part_stats_f32  s = sum exp(x - m) over the part about some m (a guess up to 64
//     below the part's max, or the max itself); m = -inf and s = 0 when every entry is -inf;
//     false when the part holds a NaN or +inf (the whole row is NaN).
//   softmax_part_write_f32  y = exp(x - M) / S, or x - (M + log S) for log_softmax, given the
//     whole row's M (the largest part m) and S (the parts' s rescaled to M). Recomputes the exps
//     instead of keeping them: a part is only split off when the row is too long to keep in
//     cache.
//   softmax_backward_part_sum_f32 / _write_f32  the backward's row sum (sum y dy, or sum dy for
//     log_softmax) over a part, and the write given the whole row's sum; softmax_row_backward_f32
//     is the two over one whole row.
bool softmax_part_stats_f32(const float* x, int64_t n, float* m, double* s);
void softmax_part_write_f32(const float* x, float* y, int64_t n, bool log, float M, double S);
double softmax_backward_part_sum_f32(const float* y, const float* dy, int64_t n, bool log);
void softmax_backward_part_write_f32(const float* y, const float* dy, float* dx, int64_t n,
                                     bool log, double s, bool stream);
// y[i] = v for the n entries of a row (an ignored cross-entropy row's zeros).
void fill_row_f32(float* y, int64_t n, float v, rows::LineWriter* out = nullptr);
}  // namespace smyrf::kernels::cpu::avx2
