// Internal helpers of the short-row kernels (short_rows_avx2.cpp, short_rows_norm_avx2.cpp):
// the 8 x 8 transposes that turn a block of 8 rows into column vectors (row i in lane i), row
// reductions over them, and the per-lane placement of row scalars in the block's contiguous
// vectors. See short_rows_avx2.h for the layout.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <limits>

#include "kernels/cpu/short_rows_avx2.h"
#include "kernels/cpu/transpose_avx2.h"
#include "kernels/cpu/vec_math_avx2.h"

namespace smyrf::kernels::cpu::avx2::short_rows {

constexpr float kInf = std::numeric_limits<float>::infinity();
// the scratch columns T of a block: n rounded up to whole chunks of 8
static_assert(kShortRowMax % 8 == 0, "kShortRowMax must be a whole number of chunks");

// The columns of a block of 8 rows of n = 1, 2 or 4 floats (n whole vectors at b) into r[0..n),
// row i in lane i, and `pad` into the rest of r (constant indices: r stays in registers), by
// in-register shuffles: the masked loads and 8 x 8 transpose of the general
// case cost more than the rest of such a block (cross-entropy over 8M rows of 2, 2 threads, one
// run: 14.2 -> 12.6 ms, rows of 4 7.8 -> 7.4).
inline void load_small_columns(const float* b, int64_t n, __m256 pad, __m256 (&r)[8]) {
  for (int k = 1; k < 8; ++k) r[k] = pad;
  if (n == 1) {
    r[0] = _mm256_loadu_ps(b);
  } else if (n == 2) {  // even / odd floats: columns 0 / 1
    deinterleave_ps(_mm256_loadu_ps(b), _mm256_loadu_ps(b + 8), &r[0], &r[1]);
  } else {
    // vector q holds rows 2q, 2q + 1; the unpacks and shuffles leave rows 0 2 4 6 | 1 3 5 7
    const __m256 v0 = _mm256_loadu_ps(b), v1 = _mm256_loadu_ps(b + 8);
    const __m256 v2 = _mm256_loadu_ps(b + 16), v3 = _mm256_loadu_ps(b + 24);
    const __m256 a = _mm256_unpacklo_ps(v0, v1), c = _mm256_unpacklo_ps(v2, v3);
    const __m256 bh = _mm256_unpackhi_ps(v0, v1), d = _mm256_unpackhi_ps(v2, v3);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    r[0] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(a, c, _MM_SHUFFLE(1, 0, 1, 0)), order);
    r[1] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(a, c, _MM_SHUFFLE(3, 2, 3, 2)), order);
    r[2] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(bh, d, _MM_SHUFFLE(1, 0, 1, 0)), order);
    r[3] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(bh, d, _MM_SHUFFLE(3, 2, 3, 2)), order);
  }
}

// Columns j .. j + 7 of the block (row i at b + i n) into r: r[k] holds column j + k, row i in
// lane i. In the last chunk the columns at n and past hold `pad` (its loads are masked, so that
// row 7 never reads past the block): -inf for maxima, 0 for sums.
inline void load_columns(const float* b, int64_t n, int64_t j, __m256 pad, __m256 (&r)[8]) {
  if (j + 8 <= n) {
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(b + i * n + j);
  } else if (n == 1 || n == 2 || n == 4) {  // (then j = 0)
    load_small_columns(b, n, pad, r);
    return;
  } else {
    const __m256i m = tail_mask(n - j);
    for (int i = 0; i < 8; ++i)
      r[i] = _mm256_blendv_ps(pad, _mm256_maskload_ps(b + i * n + j, m), _mm256_castsi256_ps(m));
  }
  transpose8x8_ps(r);
}

// op over the 8 columns of a chunk, as a tree (one op of it depends on the caller's
// accumulator).
template <typename Op>
inline __m256 reduce_columns(const __m256 (&r)[8], Op op) {
  return op(op(op(r[0], r[1]), op(r[2], r[3])), op(op(r[4], r[5]), op(r[6], r[7])));
}

// Per-row maxima of the block, its columns kept in T (T + 8 k: column k, for k < n rounded up
// to 8; the padding columns are -inf) for the exp pass. Every chunk is handled whole, with
// constant indices: a loop over the last chunk's n % 8 columns kept r in memory, and GCC turned
// its stores into a `rep movsq` copy that cost more than the rest of the block.
inline __m256 columns_max(const float* b, int64_t n, float* T) {
  const __m256 pad = _mm256_set1_ps(-kInf);
  __m256 m = pad;
  for (int64_t j = 0; j < n; j += 8) {
    __m256 r[8];
    load_columns(b, n, j, pad, r);
    for (int k = 0; k < 8; ++k) _mm256_store_ps(T + 8 * (j + k), r[k]);
    m = _mm256_max_ps(m, reduce_columns(r, [](__m256 u, __m256 v) { return _mm256_max_ps(u, v); }));
  }
  return m;
}

// The block's columns into T (T + 8 k: column k, for k < n rounded up to 8; the padding
// columns are 0).
inline void columns_store(const float* b, int64_t n, float* T) {
  for (int64_t j = 0; j < n; j += 8) {
    __m256 r[8];
    load_columns(b, n, j, _mm256_setzero_ps(), r);
    for (int k = 0; k < 8; ++k) _mm256_store_ps(T + 8 * (j + k), r[k]);
  }
}

// Per-row sums of the block.
inline __m256 columns_sum(const float* b, int64_t n) {
  __m256 s = _mm256_setzero_ps();
  for (int64_t j = 0; j < n; j += 8) {
    __m256 r[8];
    load_columns(b, n, j, _mm256_setzero_ps(), r);
    s = _mm256_add_ps(s, reduce_columns(r, [](__m256 u, __m256 v) { return _mm256_add_ps(u, v); }));
  }
  return s;
}

// Per-row sums of the n columns in T.
inline __m256 stored_columns_sum(const float* T, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  int64_t k = 0;
  for (; k + 2 <= n; k += 2) {
    s0 = _mm256_add_ps(s0, _mm256_load_ps(T + 8 * k));
    s1 = _mm256_add_ps(s1, _mm256_load_ps(T + 8 * k + 8));
  }
  if (k < n) s0 = _mm256_add_ps(s0, _mm256_load_ps(T + 8 * k));
  return _mm256_add_ps(s0, s1);
}

// Software prefetch of the block that lies `ahead` bytes (about 4 KiB, rounded to whole blocks)
// past block b (p: the block's start; any address is safe, prefetches do not fault): the
// hardware prefetchers stop at each 4 KiB page, and without it the 2-thread kernels kept too
// few misses in flight (softmax backward 524288 x 32: ~10 ms against 7.5 for the row kernels,
// which prefetch 4 KiB ahead).
inline void prefetch_block_ahead(const float* p, int64_t n) {
  const int64_t bytes = 32 * n, ahead = (4096 + bytes - 1) / bytes * bytes;
  const char* q = reinterpret_cast<const char*>(p) + ahead;
  for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch(q + o, _MM_HINT_T0);
}

// Whether every lane is finite (not +-inf, not NaN).
inline bool all_finite(__m256 m) {
  const __m256 z = _mm256_sub_ps(m, m);  // 0 for finite lanes, NaN otherwise
  return _mm256_movemask_ps(_mm256_cmp_ps(z, z, _CMP_ORD_Q)) == 0xFF;
}

// The row scalars of the 8 rows in v, each moved to the lanes of its row in the block's
// contiguous vector v (idx = ShortRowLanes::row + 8 v).
inline __m256 per_row(__m256 v, const int32_t* idx) {
  return _mm256_permutevar8x32_ps(v, _mm256_load_si256(reinterpret_cast<const __m256i*>(idx)));
}

// The 8 class targets of a block's rows (int64 at tb) as int32 lanes in row order, and in
// *keep all-ones for the rows whose target is not ignore_index. The targets were validated by
// the caller (each in [0, n) or ignore_index), so a kept one fits in int32.
inline __m256i block_targets(const int64_t* tb, int64_t ignore_index, __m256* keep) {
  const __m256i t0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tb));
  const __m256i t1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tb + 4));
  const __m256i ig = _mm256_set1_epi64x(ignore_index);
  const __m256i ignored =
      low_halves_epi64(_mm256_cmpeq_epi64(t0, ig), _mm256_cmpeq_epi64(t1, ig));  // all-ones lanes
  *keep = _mm256_castsi256_ps(_mm256_xor_si256(ignored, _mm256_set1_epi32(-1)));
  return low_halves_epi64(t0, t1);
}

// x_t of each of a block's 8 rows of n floats at xb (t: block_targets'; 0 where keep is clear:
// ignored rows are not read), by one masked gather.
inline __m256 block_target_logits(const float* xb, int64_t n, __m256i t, __m256 keep) {
  const __m256i at =
      _mm256_add_epi32(_mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                          _mm256_set1_epi32(static_cast<int32_t>(n))),
                       t);
  return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), xb, at, keep, 4);
}

// y + 8 v = f(v) for the block's n vectors.
template <typename F>
inline void write_block(float* y, int64_t n, bool stream, F f) {
  if (stream && reinterpret_cast<uintptr_t>(y) % 32 == 0) {
    for (int64_t v = 0; v < n; ++v) _mm256_stream_ps(y + 8 * v, f(v));
  } else {
    for (int64_t v = 0; v < n; ++v) _mm256_storeu_ps(y + 8 * v, f(v));
  }
}

}  // namespace smyrf::kernels::cpu::avx2::short_rows
