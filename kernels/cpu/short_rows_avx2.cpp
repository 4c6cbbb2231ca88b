// Short-row softmax / log_softmax / cross-entropy kernels, eight rows a block (see
// short_rows_avx2.h for the layout and why).
#include "kernels/cpu/short_rows_avx2.h"

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/cpu/row_math_avx2.h"
#include "kernels/cpu/short_rows_impl_avx2.h"
#include "kernels/cpu/softmax_avx2.h"
#include "kernels/cpu/vec_math_avx2.h"

namespace smyrf::kernels::cpu::avx2 {

// Counted, not divided: two 64-bit divisions an entry took 30 us for rows of 256 (2048 entries),
// more than the kernels' work on a few hundred rows.
ShortRowLanes::ShortRowLanes(int64_t n_) : n(n_) {
  int32_t r = 0, c = 0;
  for (int64_t f = 0; f < 8 * n; ++f) {
    row[f] = r;
    col[f] = c;
    if (++c == n) c = 0, ++r;
  }
}

namespace {
using namespace short_rows;

// Per-row sum of exp(column - m) over the n columns in T, four accumulators (each exp ends in
// the accumulating FMA).
inline __m256 exp_sum_columns(const float* T, int64_t n, __m256 m) {
  __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                 _mm256_setzero_ps()};
  int64_t k = 0;
  for (; k + 4 <= n; k += 4)
    for (int u = 0; u < 4; ++u)
      a[u] = exp_sum_acc_ps(_mm256_sub_ps(_mm256_load_ps(T + 8 * (k + u)), m), a[u]);
  for (; k < n; ++k) a[0] = exp_sum_acc_ps(_mm256_sub_ps(_mm256_load_ps(T + 8 * k), m), a[0]);
  return _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]));
}

// The logs of a group's row sums s[b] (sums of exps about the row max: >= 1, or NaN) in place,
// the blocks' logs side by side (log_pos_ps<K>): one log's dependency chain at a time left the
// core waiting (cross-entropy over 1M rows of 16, one thread in L2: 7.2 -> 6.0 ms with the
// shorter log). Declined and missing blocks get log(1).
inline void group_logs(__m256 (&s)[kShortGroup], int64_t blocks, unsigned declined) {
  for (int64_t b = 0; b < kShortGroup; ++b)
    if (b >= blocks || (declined >> b & 1)) s[b] = _mm256_set1_ps(1.f);
  log_pos_ps<kShortGroup>(s);
}

// exp(z) - 1 for z <= 0 without the cancellation of exp(z) - 1 near 0: a degree-7 Taylor
// polynomial for |z| < 0.35 (truncation below 2e-8 relative), exp_row_ps(z) - 1 below (no
// cancellation there: exp(z) <= 0.71; the table exp, not exp_ps's denormal-exact one, whose ~25
// operations were a fifth of a backward block of rows of 2). -inf -> -1, NaN -> NaN.
inline __m256 expm1_nonpos_ps(__m256 z) {
  __m256 p = _mm256_set1_ps(1.f / 5040);
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.f / 720));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.f / 120));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.f / 24));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.f / 6));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(0.5f));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), z, z);  // z + z^2 (1/2 + ...)
  const __m256 large = _mm256_sub_ps(exp_row_ps(z), _mm256_set1_ps(1.f));
  const __m256 near0 = _mm256_cmp_ps(z, _mm256_set1_ps(-0.35f), _CMP_GT_OQ);
  return _mm256_blendv_ps(large, small, near0);
}

// The first stage of the forward kernels over a group: each block's row maxima into m[b] and its
// columns into T[b]; returns the blocks declined (bit b: a row of block b has a non-finite max).
inline unsigned group_maxima(const float* x, int64_t blocks, int64_t n, ShortGroupScratch& T,
                             __m256* m) {
  unsigned declined = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    prefetch_block_ahead(x + b * 8 * n, n);
    m[b] = columns_max(x + b * 8 * n, n, T[b]);
    if (!all_finite(m[b])) declined |= 1u << b;
  }
  return declined;
}

// How far a later chunk's max may rise above one_pass_exp_sums' guess before the sum is rescaled:
// the terms stay below e^8, and lse = g + log(s) loses at most about 8 ulps of 1 in log(s) to it
// (the exact two-pass sum's log is of a value below n).
constexpr float kGuessSlack = 8.f;
// one_pass_exp_sums from rows of this many floats: below it the staged path was faster (2
// threads, 6 alternated rounds, one pass / staged time: n = 16 1.04, 24 1.02, 32 1.00, 40 1.00,
// 48 0.92, 56 0.88, 64 0.85, 72 0.81, 100 0.83).
constexpr int64_t kOnePassMin = 48;

// One pass over a block of 8 rows of 8 <= n <= kShortRowCrossEntropyMax floats at b, in registers:
// the per-row sums of exp(x - g) into *s, about g = each row's max over its first 8 columns (into
// *g; raised, and the sum rescaled, when a later chunk's max exceeds it by more than kGuessSlack),
// and with kRowSums the rows' sums of x - g into *xs (about g, not of x: a float sum of 100 logits
// near 1000 lost 4e-5 of the smoothed loss). A chunk is 8 columns, loaded and transposed once;
// the last one, when n % 8 != 0, is loaded at n - 8 (inside the block) and skips the columns it
// shares with the one before. The staged path (columns_max, then exp_sum_columns over T)
// transposed each block into scratch and read it back after the max (cross-entropy 1M x 16, one
// core: 0.27 ns a logit, of which the exps alone take 0.12). False, with nothing to use, when a
// row's guess or raised max is not finite (its first 8 columns all -inf, a NaN, a +inf): the
// caller takes the staged path, which declines or masks such rows as before.
template <bool kRowSums>
inline bool one_pass_exp_sums(const float* b, int64_t n, __m256* g_out, __m256* s_out,
                              __m256* xs_out) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(b + i * n);
  transpose8x8_ps(r);
  __m256 g = reduce_columns(r, [](__m256 u, __m256 v) { return _mm256_max_ps(u, v); });
  if (!all_finite(g)) return false;
  __m256 a[4], xs = _mm256_setzero_ps();
  for (int k = 0; k < 8; ++k) {
    const __m256 t = _mm256_sub_ps(r[k], g);
    a[k & 3] = exp_sum_acc_ps(t, k < 4 ? _mm256_setzero_ps() : a[k & 3]);
    if constexpr (kRowSums) xs = _mm256_add_ps(xs, t);
  }
  for (int64_t j = 8; j < n; j += 8) {
    const int64_t at = j + 8 <= n ? j : n - 8, skip = j - at;  // skip > 0: the last chunk
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(b + i * n + at);
    transpose8x8_ps(r);
    const __m256 cm = reduce_columns(r, [](__m256 u, __m256 v) { return _mm256_max_ps(u, v); });
    const __m256 high =
        _mm256_cmp_ps(cm, _mm256_add_ps(g, _mm256_set1_ps(kGuessSlack)), _CMP_GT_OQ);
    if (_mm256_movemask_ps(high)) {  // rare: raise the guess and rescale the sum
      const __m256 raised = _mm256_max_ps(g, cm);
      if (!all_finite(raised)) return false;
      const __m256 f = exp_row_ps(_mm256_sub_ps(g, raised));
      a[0] = _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])), f);
      a[1] = a[2] = a[3] = _mm256_setzero_ps();
      // the j columns summed so far, moved to the raised shift
      if constexpr (kRowSums)
        xs = _mm256_fnmadd_ps(_mm256_set1_ps(static_cast<float>(j)), _mm256_sub_ps(raised, g), xs);
      g = raised;
    }
    for (int k = 0; k < 8; ++k) {
      if (k < skip) continue;  // constant indices keep r in registers
      const __m256 t = _mm256_sub_ps(r[k], g);
      a[k & 3] = exp_sum_acc_ps(t, a[k & 3]);
      if constexpr (kRowSums) xs = _mm256_add_ps(xs, t);
    }
  }
  *g_out = g;
  *s_out = _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]));
  if constexpr (kRowSums) *xs_out = xs;
  return true;
}

// op over each aligned segment of N lanes (N = 1, 2, 4, 8), the result in every lane of it
template <int N, typename Op>
inline __m256 segment_reduce(__m256 v, Op op) {
  if constexpr (N >= 2) v = op(v, _mm256_permute_ps(v, 0xB1));  // lanes swapped in pairs
  if constexpr (N >= 4) v = op(v, _mm256_permute_ps(v, 0x4E));  // pairs swapped in fours
  if constexpr (N >= 8) v = op(v, _mm256_permute2f128_ps(v, v, 1));
  return v;
}

// The layout of a block of 8 rows of N = 1, 2, 4, 8, 16 or 32 floats as N vectors: a row spans
// kPer vectors and kSeg lanes of each; the block has kUnits such row groups.
template <int N>
struct Pow2Rows {
  static constexpr int kSeg = N < 8 ? N : 8;      // lanes a row occupies in one vector
  static constexpr int kPer = N < 8 ? 1 : N / 8;  // vectors a row spans
  static constexpr int kUnits = N / kPer;         // such groups in a block (N vectors)
};

// Loads block xb into v[0..N) and each unit's row maxima into m; false when one is not finite
// (all -inf, or +inf in the row: the caller declines the block to the row kernels). A NaN row
// passes: max_ps may drop its NaN, but the NaN reaches the sum and every output.
template <int N>
inline bool pow2_block_maxima(const float* xb, __m256* v, __m256* m) {
  using R = Pow2Rows<N>;
  bool finite = true;
  for (int u = 0; u < R::kUnits; ++u) {
    __m256 mu = v[u * R::kPer] = _mm256_loadu_ps(xb + 8 * u * R::kPer);
    for (int q = 1; q < R::kPer; ++q)
      mu = _mm256_max_ps(mu, v[u * R::kPer + q] = _mm256_loadu_ps(xb + 8 * (u * R::kPer + q)));
    m[u] = segment_reduce<R::kSeg>(mu, [](__m256 a, __m256 b) { return _mm256_max_ps(a, b); });
    finite = finite && all_finite(m[u]);
  }
  return finite;
}

// Row sums of a unit's kPer vectors, in all the lanes of each row.
template <int N>
inline __m256 pow2_unit_sum(const __m256* e) {
  __m256 su = e[0];
  for (int q = 1; q < Pow2Rows<N>::kPer; ++q) su = _mm256_add_ps(su, e[q]);
  return segment_reduce<Pow2Rows<N>::kSeg>(su,
                                           [](__m256 a, __m256 b) { return _mm256_add_ps(a, b); });
}

// softmax_blocks_f32's softmax (not log_softmax) for rows of N = 1, 2, 4, 8, 16 or 32 floats: a
// vector holds 8 / N whole rows (N <= 8) or a row is N / 8 whole vectors, so row maxima and sums
// are vertical ops and log2 min(N, 8) in-register steps (permutes), with no transposes and no
// scratch. The blocked path moved each 8-row block through 8 x 8 transposes twice whatever n (16M
// floats in rows of 2: 17 ms, of 4: 9-10, against 3 in rows of 1024).
template <int N>
unsigned softmax_blocks_pow2_f32(const float* x, float* y, int64_t blocks, bool stream) {
  using R = Pow2Rows<N>;
  unsigned declined = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    __m256 v[N], m[R::kUnits];
    if (!pow2_block_maxima<N>(x + b * 8 * N, v, m)) {
      declined |= 1u << b;
      continue;
    }
    for (int u = 0; u < R::kUnits; ++u) {  // each unit written as soon as it is known
      __m256 e[R::kPer];
      for (int q = 0; q < R::kPer; ++q) e[q] = exp_row_ps(_mm256_sub_ps(v[u * R::kPer + q], m[u]));
      const __m256 f = _mm256_div_ps(_mm256_set1_ps(1.f), pow2_unit_sum<N>(e));
      write_block(y + b * 8 * N + 8 * u * R::kPer, R::kPer, stream,
                  [&](int64_t q) { return _mm256_mul_ps(e[q], f); });
    }
  }
  return declined;
}

// log of the row sums of a block (s[u]: unit u's sums, each row's in all its lanes, as
// softmax_blocks_pow2_log_f32 lays them out), gathered into one vector so that the 8 rows share
// one log, then put back in the units' layout.
template <int N>
inline void block_logs(const __m256* s, __m256* f) {
  static_assert(N == 1 || N == 2, "rows of 1 or 2");
  if constexpr (N == 1) {
    f[0] = log_pos_ps(s[0]);  // one row a lane already
  } else {
    // [r0 r1 r4 r5 | r2 r3 r6 r7] by 128-bit lane; rows sit on lanes 0, 2 of each half
    const __m256 l = log_pos_ps(_mm256_shuffle_ps(s[0], s[1], _MM_SHUFFLE(2, 0, 2, 0)));
    f[0] = _mm256_permute_ps(l, _MM_SHUFFLE(1, 1, 0, 0));
    f[1] = _mm256_permute_ps(l, _MM_SHUFFLE(3, 3, 2, 2));
  }
}

// log_softmax over rows of N = 1 or 2 floats, laid out as softmax_blocks_pow2_f32 lays them out:
// all the block's row sums first, then one log for its 8 rows (block_logs), then y = (x - max) -
// log(sum).
template <int N>
unsigned softmax_blocks_pow2_log_f32(const float* x, float* y, int64_t blocks, bool stream) {
  static_assert(Pow2Rows<N>::kPer == 1, "rows of 1 or 2: a unit is one vector");
  unsigned declined = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    __m256 z[N], m[N], s[N], f[N];
    if (!pow2_block_maxima<N>(x + b * 8 * N, z, m)) {
      declined |= 1u << b;
      continue;
    }
    for (int u = 0; u < N; ++u) {
      z[u] = _mm256_sub_ps(z[u], m[u]);
      const __m256 e = exp_row_ps(z[u]);
      s[u] = pow2_unit_sum<N>(&e);
    }
    block_logs<N>(s, f);
    write_block(y + b * 8 * N, N, stream, [&](int64_t u) { return _mm256_sub_ps(z[u], f[u]); });
  }
  return declined;
}

}  // namespace

unsigned softmax_blocks_f32(const float* x, float* y, int64_t blocks, const ShortRowLanes& L,
                            bool log, bool stream) {
  // rows of 1, 2, 4, 8, 16 and 32 without transposes; log_softmax only for rows of 1 and 2
  // (block_logs: 8 rows share one log), where it measured faster (16M floats, ms, 3 alternated
  // rounds: rows of 1 22.2 -> 13.4, of 2 12.7 -> 10.3; of 4 / 8 / 16 it was 8-20% slower: the
  // block's exps, sums and logs held at once spill registers)
  if (log) {
    switch (L.n) {
      case 1:
        return softmax_blocks_pow2_log_f32<1>(x, y, blocks, stream);
      case 2:
        return softmax_blocks_pow2_log_f32<2>(x, y, blocks, stream);
      default:
        break;
    }
  } else {
    switch (L.n) {
      case 1:
        return softmax_blocks_pow2_f32<1>(x, y, blocks, stream);
      case 2:
        return softmax_blocks_pow2_f32<2>(x, y, blocks, stream);
      case 4:
        return softmax_blocks_pow2_f32<4>(x, y, blocks, stream);
      case 8:
        return softmax_blocks_pow2_f32<8>(x, y, blocks, stream);
      case 16:
        return softmax_blocks_pow2_f32<16>(x, y, blocks, stream);
      case 32:
        return softmax_blocks_pow2_f32<32>(x, y, blocks, stream);
      default:
        break;
    }
  }
  const int64_t n = L.n, B = 8 * n;  // floats a block
  // per block: its columns (for the maxima and log_softmax's sums), then softmax's exps
  ShortGroupScratch T(n);
  __m256 m[kShortGroup], f[kShortGroup];
  // stage by stage over the group: each block's steps depend on each other, the blocks do not
  const unsigned declined = group_maxima(x, blocks, n, T, m);
  for (int64_t b = 0; b < blocks; ++b) {
    if (declined >> b & 1) continue;
    if (log) {
      // the sums, whose logs come next (NaN for a row with a NaN: its max skipped it, its
      // sum did not)
      f[b] = exp_sum_columns(T[b], n, m[b]);
    } else {
      // the exps once, in the block's layout (over its columns, which they replace in T), then
      // their row sums by transposes: cheaper than a second exp per element in the write pass
      const float* xb = x + b * B;
      for (int64_t v = 0; v < n; ++v)
        _mm256_store_ps(T[b] + 8 * v, exp_row_ps(_mm256_sub_ps(_mm256_loadu_ps(xb + 8 * v),
                                                               per_row(m[b], L.row + 8 * v))));
      f[b] = _mm256_div_ps(_mm256_set1_ps(1.f), columns_sum(T[b], n));
    }
  }
  if (log) group_logs(f, blocks, declined);
  for (int64_t b = 0; b < blocks; ++b) {
    if (declined >> b & 1) continue;
    if (log) {  // y = (x - m) - log(sum): x - m is exact, x - (m + log(sum)) was not
      const float* xb = x + b * B;
      write_block(y + b * B, n, stream, [&](int64_t v) {
        const int32_t* rows = L.row + 8 * v;
        return _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(xb + 8 * v), per_row(m[b], rows)),
                             per_row(f[b], rows));
      });
    } else {  // y = exp(x - m) / sum
      write_block(y + b * B, n, stream, [&](int64_t v) {
        return _mm256_mul_ps(_mm256_load_ps(T[b] + 8 * v), per_row(f[b], L.row + 8 * v));
      });
    }
  }
  return declined;
}

void softmax_blocks_backward_f32(const float* y, const float* dy, float* dx, int64_t blocks,
                                 const ShortRowLanes& L, bool log, bool stream) {
  const int64_t n = L.n, B = 8 * n;
  __m256 s[kShortGroup];
  if (log) {  // dx = dy - exp(y) sum(dy)
    for (int64_t b = 0; b < blocks; ++b) {
      prefetch_block_ahead(dy + b * B, n);
      prefetch_block_ahead(y + b * B, n);
      s[b] = columns_sum(dy + b * B, n);
    }
    for (int64_t b = 0; b < blocks; ++b) {
      const float *yb = y + b * B, *gb = dy + b * B;
      write_block(dx + b * B, n, stream, [&](int64_t v) {
        return _mm256_fnmadd_ps(exp_ps(_mm256_loadu_ps(yb + 8 * v)), per_row(s[b], L.row + 8 * v),
                                _mm256_loadu_ps(gb + 8 * v));
      });
    }
    return;
  }
  // dx = y (dy - sum(dy y)): the products go through P, in cache, for their row sums
  alignas(32) float P[kShortRowMax * 8];
  for (int64_t b = 0; b < blocks; ++b) {
    const float *yb = y + b * B, *gb = dy + b * B;
    prefetch_block_ahead(yb, n);
    prefetch_block_ahead(gb, n);
    for (int64_t v = 0; v < n; ++v)
      _mm256_store_ps(P + 8 * v,
                      _mm256_mul_ps(_mm256_loadu_ps(gb + 8 * v), _mm256_loadu_ps(yb + 8 * v)));
    s[b] = columns_sum(P, n);
  }
  for (int64_t b = 0; b < blocks; ++b) {
    const float *yb = y + b * B, *gb = dy + b * B;
    write_block(dx + b * B, n, stream, [&](int64_t v) {
      return _mm256_mul_ps(
          _mm256_loadu_ps(yb + 8 * v),
          _mm256_sub_ps(_mm256_loadu_ps(gb + 8 * v), per_row(s[b], L.row + 8 * v)));
    });
  }
}

// The row kernels wrote each row head / whole streamed lines / tail by its own alignment, which
// changes from row to row when n % 8 != 0: 1M x 97 in one core, 42 ns a row against 23 for rows
// of 96; here every vector of the block is whole (and 32-byte aligned when dx is).
void softmax_blocks_backward_rows_f32(const float* y, const float* dy, float* dx, int64_t blocks,
                                      const ShortRowLanes& L, bool log, bool stream) {
  const int64_t n = L.n, B = 8 * n;
  for (int64_t b = 0; b < blocks; ++b) {
    const float *yb = y + b * B, *gb = dy + b * B;
    alignas(32) float s8[8];
    for (int i = 0; i < 8; ++i)
      s8[i] = static_cast<float>(softmax_backward_part_sum_f32(yb + i * n, gb + i * n, n, log));
    const __m256 s = _mm256_load_ps(s8);
    if (log) {  // dx = dy - exp(y) sum(dy)
      write_block(dx + b * B, n, stream, [&](int64_t v) {
        return _mm256_fnmadd_ps(exp_ps(_mm256_loadu_ps(yb + 8 * v)), per_row(s, L.row + 8 * v),
                                _mm256_loadu_ps(gb + 8 * v));
      });
    } else {  // dx = y (dy - sum(dy y))
      write_block(dx + b * B, n, stream, [&](int64_t v) {
        return _mm256_mul_ps(_mm256_loadu_ps(yb + 8 * v),
                             _mm256_sub_ps(_mm256_loadu_ps(gb + 8 * v), per_row(s, L.row + 8 * v)));
      });
    }
  }
}

namespace {

// cross_entropy_blocks_f32 for rows of N = 1, 2 or 4 logits, a block at a time in registers: its
// columns by load_small_columns, the target logit picked by N - 1 blends (no gather), and the
// same arithmetic as the general path, operation for operation (exp_sum_columns's and
// stored_columns_sum's orders), so both give the same bits. The general path's staging through
// T and loops over n cost more than the arithmetic of such blocks (8M rows of 2, 2 threads, one
// run: 12.6 ms through it, 9.0 here, both measured before the grouped logs).
template <int N>
unsigned cross_entropy_blocks_small_f32(const float* x, const int64_t* target, int64_t blocks,
                                        int64_t ignore_index, double eps, float* loss, float* lse) {
  const __m256 zero = _mm256_setzero_ps();
  unsigned declined = 0;
  // per block: max, sum of exps (then its log), the target logit and the row sums (smoothing)
  __m256 m[kShortGroup], ls[kShortGroup], xt[kShortGroup], sum[kShortGroup], keep[kShortGroup];
  for (int64_t b = 0; b < blocks; ++b) {
    __m256 r[8];
    load_small_columns(x + b * 8 * N, N, _mm256_set1_ps(-kInf), r);
    m[b] = r[0];
    for (int k = 1; k < N; ++k) m[b] = _mm256_max_ps(m[b], r[k]);
    if (!all_finite(m[b])) {
      declined |= 1u << b;
      continue;
    }
    if constexpr (N == 4) {  // exp_sum_columns's sums: one accumulator per column of a chunk of 4
      __m256 a[4];
      for (int k = 0; k < 4; ++k) a[k] = exp_sum_acc_ps(_mm256_sub_ps(r[k], m[b]), zero);
      ls[b] = _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]));
    } else {
      __m256 a = zero;
      for (int k = 0; k < N; ++k) a = exp_sum_acc_ps(_mm256_sub_ps(r[k], m[b]), a);
      ls[b] = _mm256_add_ps(_mm256_add_ps(a, zero), zero);
    }
    if (!target) continue;
    const __m256i t = block_targets(target + 8 * b, ignore_index, &keep[b]);
    xt[b] = r[0];
    for (int k = 1; k < N; ++k)
      xt[b] = _mm256_blendv_ps(xt[b], r[k],
                               _mm256_castsi256_ps(_mm256_cmpeq_epi32(t, _mm256_set1_epi32(k))));
    // stored_columns_sum's order
    sum[b] = N == 4 ? _mm256_add_ps(_mm256_add_ps(r[0], r[2]), _mm256_add_ps(r[1], r[3]))
                    : _mm256_add_ps(r[0], N == 2 ? r[1] : zero);
  }
  group_logs(ls, blocks, declined);
  for (int64_t b = 0; b < blocks; ++b) {
    if (declined >> b & 1) continue;
    _mm256_storeu_ps(lse + 8 * b, _mm256_add_ps(m[b], ls[b]));
    if (!target) continue;
    __m256 v = _mm256_mul_ps(_mm256_set1_ps(static_cast<float>(1.0 - eps)),
                             _mm256_add_ps(_mm256_sub_ps(m[b], xt[b]), ls[b]));
    if (eps != 0) {
      const __m256 mean = _mm256_mul_ps(sum[b], _mm256_set1_ps(static_cast<float>(1.0 / N)));
      v = _mm256_fmadd_ps(_mm256_set1_ps(static_cast<float>(eps)),
                          _mm256_add_ps(_mm256_sub_ps(m[b], mean), ls[b]), v);
    }
    _mm256_storeu_ps(loss + 8 * b, _mm256_and_ps(v, keep[b]));
  }
  return declined;
}

}  // namespace

unsigned cross_entropy_blocks_f32(const float* x, const int64_t* target, int64_t blocks, int64_t C,
                                  int64_t ignore_index, double eps, float* loss, float* lse) {
  const int64_t B = 8 * C;
  switch (C) {
    case 1:
      return cross_entropy_blocks_small_f32<1>(x, target, blocks, ignore_index, eps, loss, lse);
    case 2:
      return cross_entropy_blocks_small_f32<2>(x, target, blocks, ignore_index, eps, loss, lse);
    case 4:
      return cross_entropy_blocks_small_f32<4>(x, target, blocks, ignore_index, eps, loss, lse);
    default:
      break;
  }
  // the staged path's scratch, for rows it can hold (past kShortRowMax the one-pass sums decline)
  ShortGroupScratch T(C <= kShortRowMax ? C : 1);
  // a shift (the row's max, or one_pass_exp_sums' guess) and log(sum exp(x - shift)) a row, and
  // with smoothing the shift minus the row's mean
  __m256 m[kShortGroup], ls[kShortGroup], dm[kShortGroup];
  const __m256 inv_c = _mm256_set1_ps(static_cast<float>(1.0 / C));
  const bool row_sums = target && eps != 0;
  // stage by stage over the group (short_rows_avx2.h, kShortGroup): the maxima of the staged
  // blocks (all of them below kOnePassMin), then their sums
  unsigned declined = 0, staged = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    const float* xb = x + b * B;
    prefetch_block_ahead(xb, C);
    if (C >= kOnePassMin) {
      __m256 xs;  // sum(x - shift)
      if (row_sums ? one_pass_exp_sums<true>(xb, C, &m[b], &ls[b], &xs)
                   : one_pass_exp_sums<false>(xb, C, &m[b], &ls[b], nullptr)) {
        if (row_sums) dm[b] = _mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(xs, inv_c));
        continue;
      }
    }
    if (C > kShortRowMax) {
      declined |= 1u << b;
      continue;
    }
    m[b] = columns_max(xb, C, T[b]);
    if (all_finite(m[b]))
      staged |= 1u << b;
    else
      declined |= 1u << b;
  }
  for (int64_t b = 0; b < blocks; ++b) {
    if (!(staged >> b & 1)) continue;
    ls[b] = exp_sum_columns(T[b], C, m[b]);
    if (row_sums) dm[b] = _mm256_sub_ps(m[b], _mm256_mul_ps(stored_columns_sum(T[b], C), inv_c));
  }
  group_logs(ls, blocks, declined);
  for (int64_t b = 0; b < blocks; ++b) {
    if (declined >> b & 1) continue;
    if (!target) {  // logsumexp alone
      _mm256_storeu_ps(lse + 8 * b, _mm256_add_ps(m[b], ls[b]));
      continue;
    }
    // the target logits (an ignored row's loss is masked to 0 below)
    __m256 keep;
    const __m256i tv = block_targets(target + 8 * b, ignore_index, &keep);
    const __m256 xt = block_target_logits(x + b * B, C, tv, keep);
    // lse - x_t as (m - x_t) + log(sum): m - x_t is exact for logits far from 0, where the
    // rounding of lse = m + log(sum) to float would show (1e-5 at |x| ~ 1000). Without
    // smoothing the mean term is left out, not multiplied by 0 (see softmax.h).
    __m256 v = _mm256_mul_ps(_mm256_set1_ps(static_cast<float>(1.0 - eps)),
                             _mm256_add_ps(_mm256_sub_ps(m[b], xt), ls[b]));
    if (eps != 0)
      v = _mm256_fmadd_ps(_mm256_set1_ps(static_cast<float>(eps)), _mm256_add_ps(dm[b], ls[b]), v);
    v = _mm256_and_ps(v, keep);
    _mm256_storeu_ps(lse + 8 * b, _mm256_add_ps(m[b], ls[b]));
    _mm256_storeu_ps(loss + 8 * b, v);
  }
  return declined;
}

void cross_entropy_blocks_backward_f32(const float* x, const int64_t* target, const float* lse,
                                       const float* g, float* dx, int64_t blocks,
                                       const ShortRowLanes& L, int64_t ignore_index, double eps,
                                       bool stream) {
  const int64_t C = L.n, B = 8 * C;
  const double off = eps / C;
  const __m256 offv = _mm256_set1_ps(static_cast<float>(off));
  const __m256 epsoffv = _mm256_set1_ps(static_cast<float>(eps - off));
  for (int64_t b = 0; b < blocks; ++b) {
    const float* xb = x + b * B;
    prefetch_block_ahead(xb, C);
    // per row: the target's column and logit, and whether the row is ignored
    __m256 keep;
    const __m256i t = block_targets(target + 8 * b, ignore_index, &keep);
    const __m256 xt = block_target_logits(xb, C, t, keep);
    const __m256 iv = _mm256_xor_ps(keep, _mm256_castsi256_ps(_mm256_set1_epi32(-1)));
    const bool any_ignored = _mm256_movemask_ps(keep) != 0xFF;
    // (an ignored row's hit lanes are zeroed with the rest of it below)
    const __m256 tv = _mm256_castsi256_ps(t);
    const __m256 lv = _mm256_loadu_ps(lse + 8 * b), gv = _mm256_loadu_ps(g + 8 * b);
    // the target's entry g (p - off - (1 - eps)) = g (expm1(x_t - lse) + eps - off), p - 1
    // through expm1: p - (1 - eps) cancels when p is near 1 (the row kernel takes p in double)
    const __m256 dtv =
        _mm256_mul_ps(gv, _mm256_add_ps(expm1_nonpos_ps(_mm256_sub_ps(xt, lv)), epsoffv));
    // g (exp(x - lse) - off), the target's lane dt
    auto d = [&](int64_t v) {
      const int32_t* rows = L.row + 8 * v;
      const __m256 e = exp_row_ps(_mm256_sub_ps(_mm256_loadu_ps(xb + 8 * v), per_row(lv, rows)));
      const __m256 gr = per_row(gv, rows);
      const __m256 dv = eps != 0 ? _mm256_mul_ps(gr, _mm256_sub_ps(e, offv)) : _mm256_mul_ps(gr, e);
      const __m256 hit = _mm256_castsi256_ps(
          _mm256_cmpeq_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(L.col + 8 * v)),
                             _mm256_castps_si256(per_row(tv, rows))));
      return _mm256_blendv_ps(dv, per_row(dtv, rows), hit);
    };
    if (any_ignored)  // an ignored row's entries are 0, whatever its logits
      write_block(dx + b * B, C, stream,
                  [&](int64_t v) { return _mm256_andnot_ps(per_row(iv, L.row + 8 * v), d(v)); });
    else
      write_block(dx + b * B, C, stream, d);
  }
}

void reduce_blocks_f32(ReduceOp op, const float* x, float* y, int64_t blocks, int64_t n) {
  const int64_t B = 8 * n;
  for (int64_t b = 0; b < blocks; ++b) {
    const float* xb = x + b * B;
    prefetch_block_ahead(xb, n);
    if (op == ReduceOp::Sum) {
      _mm256_storeu_ps(y + 8 * b, columns_sum(xb, n));
      continue;
    }
    // max / min over the columns (the padding columns are -inf / +inf), with a NaN mask on the
    // side: max_ps / min_ps drop a NaN in one operand, so each pair of columns is also tested
    // for NaN (one compare covers both) and NaN rows are set at the end
    const bool mx = op == ReduceOp::Max;
    const float inf = std::numeric_limits<float>::infinity();
    const __m256 pad = _mm256_set1_ps(mx ? -inf : inf);
    __m256 m = pad, nan = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; j += 8) {
      __m256 r[8];
      load_columns(xb, n, j, pad, r);
      __m256 u = _mm256_cmp_ps(r[0], r[1], _CMP_UNORD_Q);
      for (int k = 2; k < 8; k += 2)
        u = _mm256_or_ps(u, _mm256_cmp_ps(r[k], r[k + 1], _CMP_UNORD_Q));
      nan = _mm256_or_ps(nan, u);
      m = mx ? _mm256_max_ps(
                   m, reduce_columns(r, [](__m256 p, __m256 q) { return _mm256_max_ps(p, q); }))
             : _mm256_min_ps(
                   m, reduce_columns(r, [](__m256 p, __m256 q) { return _mm256_min_ps(p, q); }));
    }
    _mm256_storeu_ps(
        y + 8 * b,
        _mm256_blendv_ps(m, _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN()), nan));
  }
}

void argreduce_blocks_f32(bool is_max, const float* x, int64_t* y, int64_t blocks, int64_t n) {
  const int64_t B = 8 * n;
  alignas(32) float T[kShortRowMax * 8];
  for (int64_t b = 0; b < blocks; ++b) {
    prefetch_block_ahead(x + b * B, n);
    columns_store(x + b * B, n, T);
    // a column replaces the best when strictly better, or NaN over a non-NaN best (a NaN best
    // is never replaced: the first NaN wins, and so does the first of equal values)
    __m256 best = _mm256_load_ps(T);
    __m256i at = _mm256_setzero_si256();
    for (int64_t k = 1; k < n; ++k) {
      const __m256 c = _mm256_load_ps(T + 8 * k);
      const __m256 better =
          is_max ? _mm256_cmp_ps(c, best, _CMP_GT_OQ) : _mm256_cmp_ps(c, best, _CMP_LT_OQ);
      const __m256 nan_over = _mm256_andnot_ps(_mm256_cmp_ps(best, best, _CMP_UNORD_Q),
                                               _mm256_cmp_ps(c, c, _CMP_UNORD_Q));
      const __m256 take = _mm256_or_ps(better, nan_over);
      best = _mm256_blendv_ps(best, c, take);
      at = _mm256_castps_si256(
          _mm256_blendv_ps(_mm256_castsi256_ps(at),
                           _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(k))), take));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + 8 * b),
                        _mm256_cvtepi32_epi64(_mm256_castsi256_si128(at)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + 8 * b + 4),
                        _mm256_cvtepi32_epi64(_mm256_extracti128_si256(at, 1)));
  }
}

}  // namespace smyrf::kernels::cpu::avx2
