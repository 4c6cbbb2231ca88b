// AVX2 float32 softmax, log_softmax, logsumexp, cross-entropy, layer-norm, variance and
// sum / max / min kernels for short rows (n <= kShortRowMax floats), eight rows at a time. See
// kernels/cpu/softmax.h, norm.h and reduce.h for the semantics they must match.
//
// Why: the row kernels (softmax_avx2.h) pay a fixed cost per row before its first element
// (horizontal reductions, a scalar log in double, prefetch and tail handling). On 16-wide rows
// that was ~70 ns a row on one core: cross-entropy forward ran at 8% of the triad, softmax at
// 25%. Here a *block* of 8 consecutive rows (8 n contiguous floats) is transposed in registers
// (8 x 8 transposes of 8 rows by 8 columns), so that a row reduction is a vertical vector op
// with row i in lane i, and the per-row scalars (max, sum, log, 1 / sum) of 8 rows come from one
// vector op each. The elementwise passes then run over the block's n contiguous vectors: lane l
// of vector v holds float 8 v + l of the block, of row (8 v + l) / n, and that row's scalars are
// moved into the lane by one vpermps (ShortRowLanes holds the indices).
//
// Blocks the fast path does not cover (the forward kernels: a row whose max is not finite, i.e.
// all -inf or containing +inf) are reported to the caller, which runs their rows through the row
// kernels; NaN propagates through the fast path like the reference (a NaN row is NaN).
//
// `stream`: write with non-temporal stores when the destination is 32-byte aligned (a block is
// 32 n bytes, so every block of an aligned buffer is); the caller fences (streaming_store.h).
#pragma once
#include <cstdint>

#include "kernels/cpu/reduce.h"

namespace smyrf::kernels::cpu::avx2 {

// Rows up to this many floats take the block kernels: kShortRowForwardMax in the forward kernels
// (kShortRowCrossEntropyMax in cross-entropy's and logsumexp's), kShortRowBackwardMax in the
// backward ones (kShortRowCrossEntropyBackwardMax in cross-entropy's); softmax.cpp, norm.cpp and
// reduce.cpp decide. Interleaved against the row kernels, 2 threads, 16M floats (2026-11-29,
// medians of 4 rounds, ms): the forward kernels were faster at every width up to 64 (n = 16:
// softmax 28.6 -> 9.5, log_softmax 25.5 -> 9.6, cross-entropy 21.4 -> 10.4, layer norm 26.1 -> 7.7;
// n = 64: 10.9 -> 11.2 (softmax, even), 11.3 -> 10.6, 10.6 -> 7.3, 11.5 -> 8.2); the backward ones
// up to 32 (n = 16: softmax 12.0 -> 6.2, cross-entropy 15.4 -> 10.1, layer norm 32.7 -> 15.6; n =
// 32: 8.2 -> 7.5, 10.7 -> 9.0, 19.7 -> 16.4) but not past it (n = 48: softmax 6.0 -> 7.7, layer
// norm 16.5 -> 17.3; n = 64: 6.3 -> 9.5, 14.1 -> 16.1): wider rows amortise the row kernels'
// per-row cost, and their single pass over the inputs keeps more of the memory stream busy.
//   Cross-entropy forward past 64 (2026-11-30, 6 alternated rounds, ms, rows -> blocks): 72
// 3.87 -> 2.88, 88 3.38 -> 2.45, 100 3.31 -> 2.80, 112 3.09 -> 2.44, 120 3.02 -> 2.97, 128 even;
// softmax forward at 128 was 1.34x slower in blocks, layer norm forward mixed (non-multiples of 8
// faster, 88-128 slower) and even with the row kernel once that stopped streaming short rows.
//   From 48 logits cross-entropy's forward (and logsumexp, which shares it) sums each block in
// one pass in registers (short_rows_avx2.cpp, one_pass_exp_sums), which needs no scratch; its
// cap went to 256 (2 threads, 6 alternated rounds, ms, before -> after, 16M floats: 48 2.20 ->
// 2.04, 100 2.29 -> 1.89, 128 2.82 -> 1.82, 200 2.38 -> 1.94 (the row kernel before), 256 2.09 ->
// 1.92; at 512 the row kernel was 1.21x faster; logsumexp, whose cap was 64: 72 3.69 -> 2.04,
// 100 3.14 -> 1.91, 128 2.55 -> 1.87, 200 2.34 -> 1.87, 256 2.02 -> 1.97).
// Cross-entropy backward past 32 (same method, rows -> blocks): 33 4.41 -> 3.26, 48 3.33 ->
// 2.88, 64 2.98 -> 2.90, 100 2.74 -> 2.82.
// kShortRowMax is the block kernels' capacity (it sizes their scratch); each op has its cap.
constexpr int64_t kShortRowMax = 128;
constexpr int64_t kShortRowForwardMax = 64;
constexpr int64_t kShortRowCrossEntropyMax = 256;
constexpr int64_t kShortRowBackwardMax = 32;
constexpr int64_t kShortRowCrossEntropyBackwardMax = 64;
constexpr int64_t kShortRowBackwardWriteMax = 128;
// (cross-entropy's forward blocks need no scratch past kShortRowMax: see cross_entropy_blocks_f32)
static_assert(kShortRowForwardMax <= kShortRowMax && kShortRowBackwardWriteMax <= kShortRowMax &&
                  kShortRowCrossEntropyBackwardMax <= kShortRowMax,
              "the caps must fit the block kernels' scratch");

// Lane l of a block's contiguous vector v is float 8 v + l of the block: row[8 v + l] =
// (8 v + l) / n, col[8 v + l] = (8 v + l) % n. Built once per call for the row length n
// (1 <= n <= kShortRowMax).
struct ShortRowLanes {
  explicit ShortRowLanes(int64_t n);
  int64_t n;
  alignas(32) int32_t row[kShortRowMax * 8];
  alignas(32) int32_t col[kShortRowMax * 8];
};

// Each kernel handles `blocks` (<= kShortGroup) consecutive blocks: 8 blocks n floats from x,
// rows 8 b .. 8 b + 7 in block b. The forward kernels work stage by stage over the group (all
// maxima, then all sums, then all outputs): within a block each step waits for the one before,
// and a single block's chain left the core idle (n = 10: 114 ns a block alone, 70 ns in a
// group of 8, one core).
constexpr int64_t kShortGroup = 8;

// The kernels' per-block scratch over a group: block b's 8 n floats at scratch[b]. Blocks are
// packed 8 n floats apart (rounded up to 16), as a [kShortGroup][8 n] array would be, plus 16
// floats where that stride is a multiple of 4 KiB (n = 128): with the capacity raised from 64 to
// 128, a fixed [8][1024] array put every block 4 KiB apart (the same L1 sets, 4K aliasing) and
// cross-entropy on 16- and 64-float rows ran 6-12% slower though n had not changed.
inline constexpr int64_t short_block_stride(int64_t floats) {
  const int64_t rounded = (floats + 15) / 16 * 16;
  return rounded % 1024 == 0 ? rounded + 16 : rounded;
}
struct ShortGroupScratch {
  explicit ShortGroupScratch(int64_t n) : stride(short_block_stride(8 * n)) {}
  float* operator[](int64_t b) { return buf + b * stride; }
  int64_t stride;
  alignas(32) float buf[kShortGroup * short_block_stride(kShortRowMax * 8)];
};

// softmax (log: log_softmax) of the rows at x into y. Returns the blocks declined (bit b: a row
// of block b has a non-finite max), of which nothing was written.
unsigned softmax_blocks_f32(const float* x, float* y, int64_t blocks, const ShortRowLanes& L,
                            bool log, bool stream);
// Their backward: dx from the forward output y and dy (softmax.h's formulas).
void softmax_blocks_backward_f32(const float* y, const float* dy, float* dx, int64_t blocks,
                                 const ShortRowLanes& L, bool log, bool stream);
// The same for rows of kShortRowBackwardMax < n <= kShortRowBackwardWriteMax floats, n % 8 != 0
// (softmax.cpp decides): each row's sum by the row kernel's first pass (softmax_avx2.h), then the
// block's 8 n outputs in one sweep of whole vectors, each lane's sum placed by L.row. 2 threads,
// 16M floats, 8-10 alternated rounds, row kernel -> this (ms): 33 5.01 -> 3.92, 50 6.50 -> 3.42,
// 97 4.35 -> 3.61, 100 4.15 -> 3.61; where n % 8 == 0 the row kernel's vectors are whole too and
// it was even or faster (64 1.01x, 128 1.02x, 256 1.11x), and past 128 as well (150 1.04x, 201
// 1.08x, 255 1.05x).
void softmax_blocks_backward_rows_f32(const float* y, const float* dy, float* dx, int64_t blocks,
                                      const ShortRowLanes& L, bool log, bool stream);
// lse and loss of the rows of C <= kShortRowCrossEntropyMax logits at x (target: one per row,
// valid or ignore_index; loss 0 for ignored rows), or with a null target lse alone (loss is not
// written). Returns the blocks declined, as softmax_blocks_f32; from kShortRowMax + 1 logits
// also the blocks whose one-pass sums fail (a row's first 8 logits all -inf, a NaN, a +inf),
// which have no staged path there to fall back on.
unsigned cross_entropy_blocks_f32(const float* x, const int64_t* target, int64_t blocks, int64_t C,
                                  int64_t ignore_index, double eps, float* loss, float* lse);
// dlogits of the rows from their lse and upstream gradients g (zeros for ignored rows).
void cross_entropy_blocks_backward_f32(const float* x, const int64_t* target, const float* lse,
                                       const float* g, float* dx, int64_t blocks,
                                       const ShortRowLanes& L, int64_t ignore_index, double eps,
                                       bool stream);

// y[8 b + i] = the sum, max or min (op: Sum, Max or Min; NaN propagates, as reduce.h's) of
// row 8 b + i of `blocks` blocks of rows of n <= kShortRowMax floats at x.
void reduce_blocks_f32(ReduceOp op, const float* x, float* y, int64_t blocks, int64_t n);
// y[8 b + i] = the index of the first max (is_max) or min of row 8 b + i (NaN counts as both,
// the first NaN wins: reduce.h's argreduce) for `blocks` blocks of rows of n <= kShortRowMax.
void argreduce_blocks_f32(bool is_max, const float* x, int64_t* y, int64_t blocks, int64_t n);

// out[8 v + l] = p[L.col[8 v + l]]: a per-column vector (layer norm's weight or bias) laid out
// like the block's contiguous vectors (8 n floats), the same for every block.
void lay_out_per_lane(const ShortRowLanes& L, const float* p, float* out);
// Layer norm of the rows (norm.h's layernorm_rows): y, and each row's mean and rstd (float
// mean and variance, about the row's first value and in two passes, from the block's columns).
// wl, bl: weight and bias laid out by lay_out_per_lane, or null.
void layernorm_blocks_f32(const float* x, const float* wl, const float* bl, float* y, float* mean,
                          float* rstd, int64_t blocks, const ShortRowLanes& L, float eps,
                          bool stream);
// y[8 b + i] = scale * sum_j (x_ij - mean_i)^2 for the rows of n <= kShortRowMax floats (norm.h's
// var_rows: scale = 1 / (n - correction)).
void var_blocks_f32(const float* x, float* y, int64_t blocks, int64_t n, double scale);
// The layer norm's backward (norm.h's layernorm_rows_backward): dx, and dy xhat and dy added into
// tw and tb (per-lane float partials of dw and db, 8 n floats laid out like a block; either may be
// null), which the caller folds into its per-column sums after each call.
void layernorm_blocks_backward_f32(const float* dy, const float* x, const float* mean,
                                   const float* rstd, const float* wl, float* dx, float* tw,
                                   float* tb, int64_t blocks, const ShortRowLanes& L, bool stream);
}  // namespace smyrf::kernels::cpu::avx2
