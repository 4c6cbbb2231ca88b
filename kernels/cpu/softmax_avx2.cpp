// AVX2 float32 softmax / log_softmax / cross-entropy row kernels (see softmax_avx2.h). Tails go
// through masked loads (padded with the neutral value of the pass) so every element sees the
// same vector formula.
//
// Where the time goes (2 threads, 16M floats): these kernels are bound by the exp as much as by
// memory, so each element gets exactly one exp (row_math_avx2.h's, 10 vector operations), and
// the passes after the first read the row from cache. A row is cut into chunks of kChunk floats
// (one chunk for rows up to kChunk): each chunk's max is one read from memory, its exp-sum
// reads it from cache while the next chunk (or row) is prefetched, and chunk results combine as
// S = sum_c s_c exp(m_c - M). The forward and the cross-entropy backward write with plain
// stores, and softmax's exps wait in y itself for the 1 / S scaling. (Until 2026-11-29 outputs
// of 16 MiB and more were streamed, the exps waiting in a per-thread scratch row. On the 2-vCPU
// EPYC, interleaved on a loaded host, 16M floats, 2 threads, medians of 6-8 rounds, plain stores
// ran cross-entropy backward 9-15% faster (16384 x 1024 3.5 -> 3.1 ms, 512 x 32768 3.7 -> 3.1;
// 25% in an earlier A/B) and softmax / log_softmax forward even, or 7-15% faster on 262144-wide
// rows. The softmax backward, which has no exp to hide its stores behind, still streams: plain
// stores made it 5-35% slower in the same A/Bs; so do short rows, short_rows_avx2.h.) (Fusing the
// next chunk's max into the exp pass, so that its loads come from memory while the exps compute,
// measured 20-40% slower on one thread: the demand misses stall the exps. The software prefetch
// stays.)
//
// Softmax, log_softmax and cross-entropy need no max pass: exp_sum_about_guess sums (and for
// softmax stores) exp(x - g) about the max g of the row's first vector in one read from memory
// (software-prefetched kAhead ahead), taking the true max alongside only to check that no term
// could overflow; the chunked two-pass path above is its fallback (NaN / inf rows, late
// outliers). Softmax forward, same A/B: 3-15% faster than the two-pass path on every shape. The
// cross-entropy backward's single pass prefetches kAhead ahead as well. Interleaved on the loaded
// Xeon host (16M floats, 2 threads, CPU time, medians of 5 rounds): cross-entropy forward
// 16384 x 1024 / 2048 x 8192 / 512 x 32768 0.42 / 0.47 / 0.49 -> 0.34 / 0.40 / 0.43 ns an
// element; backward 0.82 / 0.67 / 0.61 -> 0.47 / 0.46 / 0.41. Softmax backward's first pass
// (y . dy) had the same prefetch, 5-20% faster on the Xeon, but on the 2-vCPU EPYC (Zen 5) it
// was the slower one: without it, 16384 x 1024 3.6 -> 2.8-2.9 ms, 4096 x 4096, 1024 x 16384 and
// 64 x 262144 4-20% faster (interleaved, medians of 4 and 6 rounds), so it reads from memory
// with the hardware prefetchers alone. Taking the software prefetch out of the other row
// kernels as well (same A/B) cost softmax forward on 4096- to 262144-wide rows 8-55% and layer
// norm forward / backward up to 60%, and changed nothing for cross-entropy.
//
// Rows up to kSoftmaxPipedMax run as a pipeline over a thread's rows (softmax_rows_f32): row r's
// write pass (exps times 1 / sum, or x - lse) goes out from inside row r + 1's exp loop, one
// vector of stores per exp vector. Done as a pass of its own, the write sent a burst of stores
// with the core otherwise idle and no read in flight: time ~ compute + memory. Interleaved on the
// loaded host (16M floats, 2 threads, CPU time, medians of 5 rounds): softmax 4096 x 4096 0.63
// -> 0.58 ns an element, 1024 x 16384 6-11% faster, 16384 x 1024 unchanged within the noise;
// log_softmax 10-17% faster on 1024-, 4096- and 16384-wide rows.
#include "kernels/cpu/softmax_avx2.h"

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/cpu/reduce_avx2.h"
#include "kernels/cpu/row_avx2.h"
#include "kernels/cpu/row_math_avx2.h"
#include "kernels/cpu/vec_math_avx2.h"

namespace smyrf::kernels::cpu::avx2 {
namespace {
using rows::kFlush;
using rows::load_tail;
using rows::neg_inf;
using rows::row_sum;
using rows::RowPrefetch;

// log_softmax = (x - shift) - log(sum exp(x - shift)): x - shift is exact for x near the shift
// (the row's max or guess), where x - (shift + log(sum)) rounded the sum shift + log(sum) to float
// first: 3e-5 off at |x| ~ 1000, where the outputs are a few units.
inline __m256 log_softmax_of(__m256 x, __m256 shift, __m256 log_sum) {
  return _mm256_sub_ps(_mm256_sub_ps(x, shift), log_sum);
}

// Rows are processed in chunks of this many floats (16 KiB): a chunk stays in L1 between its
// max pass and its exp pass (with softmax's 16 KiB of stored exps), and the next chunk is
// prefetched into L1 meanwhile. Interleaved runs on the loaded host (2 threads; noisy, +-5
// points) put 2K-4K chunks ~5 points of triad above 16K ones for 8192- and 32768-wide
// cross-entropy and 16384-wide softmax rows, and never below.
constexpr int64_t kChunk = 4096;

constexpr float kInf = std::numeric_limits<float>::infinity();

// y[i..i+8) = f(i, tail) over the row: plain stores, or streaming stores for the whole lines
// inside the row (rows::stream_lines; the head and the tail take plain stores). f(i, true) is
// the last, partial vector (lanes past n are not stored).
template <typename F>
inline void write_row(float* y, int64_t n, bool stream, F f) {
  const rows::StreamSpan span =
      stream ? rows::stream_lines(y, n, rows::kSoftmaxStreamRowMin) : rows::StreamSpan{};
  int64_t i = 0;
  if (span.end > span.begin) {
    for (; i + 8 <= span.begin; i += 8) _mm256_storeu_ps(y + i, f(i, false));
    if (i < span.begin) {  // a full vector computed, its first lanes stored
      _mm256_maskstore_ps(y + i, tail_mask(span.begin - i), f(i, false));
      i = span.begin;
    }
    for (; i < span.end; i += 8) _mm256_stream_ps(y + i, f(i, false));
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(i, false));
  if (i < n) _mm256_maskstore_ps(y + i, tail_mask(n - i), f(i, true));
}

// write_row over [0, n) in chunks of kChunk, the last chunk first, f(i, tail) as there with i
// in [0, n). For the second pass over a row larger than L2: the first pass (front to back) left
// the row's end in cache, not its start, so going forward evicted each line just before it was
// needed (LRU), while starting at the end finds most of it there.
template <typename F>
inline void write_row_from_end(float* y, int64_t n, bool stream, F f) {
  for (int64_t b = (n - 1) / kChunk * kChunk; b >= 0; b -= kChunk)
    write_row(y + b, n - b < kChunk ? n - b : kChunk, stream,
              [&](int64_t i, bool tail) { return f(b + i, tail); });
}

void fill_row(float* y, int64_t n, float v) {
  const __m256 vv = _mm256_set1_ps(v);
  write_row(y, n, false, [&](int64_t, bool) { return vv; });
}

// sum of exp(x - m) over a run whose max is the finite m (exp_sum_ps: -inf entries add ~1e-38).
// Four accumulators (the exp's last FMA accumulates, 4 cycles of latency), folded into double
// every kFlush elements.
double exp_sum(const float* x, int64_t n, float m, RowPrefetch& pf) {
  const __m256 mv = _mm256_set1_ps(m);
  auto term = [&](int64_t i) { return _mm256_sub_ps(_mm256_loadu_ps(x + i), mv); };
  double total = 0;
  for (int64_t b = 0; b < n; b += kFlush) {
    const int64_t e = b + kFlush < n ? b + kFlush : n;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = b;
    for (; i + 32 <= e; i += 32) {
      pf.step();
      pf.step();
      a0 = exp_sum_acc_ps(term(i), a0);
      a1 = exp_sum_acc_ps(term(i + 8), a1);
      a2 = exp_sum_acc_ps(term(i + 16), a2);
      a3 = exp_sum_acc_ps(term(i + 24), a3);
    }
    for (; i + 8 <= e; i += 8) a0 = exp_sum_acc_ps(term(i), a0);
    if (i < e) a1 = exp_sum_acc_ps(_mm256_sub_ps(load_tail(x + i, e - i, neg_inf()), mv), a1);
    total += hsum_pd(add_widened(_mm256_setzero_pd(),
                                 _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))));
  }
  return total;
}

// w = exp(x - m) over a run whose max is the finite m, a pending row's writer (PendingScale, or
// NoPending) moved one vector per exp vector; returns the sum (in double). The tail's masked
// lanes are -inf: exp_row_ps makes them exactly 0.
struct NoPending {
  void step() {}
};
template <typename Pending>
double exp_store_sum_piped(const float* x, float* w, int64_t n, float m, RowPrefetch& pf,
                           Pending& pend) {
  const __m256 mv = _mm256_set1_ps(m);
  return row_sum(n, [&](int64_t i, bool tail) {
    if (tail) {
      const __m256 e = exp_row_ps(_mm256_sub_ps(load_tail(x + i, n - i, neg_inf()), mv));
      _mm256_maskstore_ps(w + i, tail_mask(n - i), e);
      return e;
    }
    if (i % 16 == 0) pf.step();
    const __m256 e = exp_row_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
    _mm256_storeu_ps(w + i, e);
    pend.step();
    return e;
  });
}

double exp_store_sum(const float* x, float* w, int64_t n, float m, RowPrefetch& pf) {
  NoPending none;
  return exp_store_sum_piped(x, w, n, m, pf, none);
}

// The single-pass logsumexp (exp_sum_about_guess): how far above its guess the row's max may lie
// (every term stays below e^64, a float sum of them far from overflow), and how far ahead of its
// loads the single-pass loops prefetch, in floats (4 KiB; the hardware prefetchers stop at each
// 4 KiB page, and a compute-bound loop alone keeps too few misses in flight). 4 KiB measured
// 0-8% faster than 8, 12 or 16 KiB on cross-entropy forward (CPU-time A/B, 2 threads).
constexpr float kSpread = 64.f;
constexpr int64_t kAhead = 1024;

// The scaling pass of a softmax row, y = w * f, run one vector at a time from inside the next
// row's exp loop (softmax_rows_f32), so that the row's stores leave while the exps compute
// instead of in a burst of their own. The tail goes out at finish().
template <bool kSub>
struct PendingScale {
  const float* w = nullptr;
  float* y = nullptr;
  int64_t n = 0, j = 0;
  __m256 f = _mm256_setzero_ps(), f2 = _mm256_setzero_ps();
  // y = w * f (softmax: the exps times 1 / sum), or with kSub y = (w - f) - f2 (log_softmax:
  // log_softmax_of(x, shift, log(sum))). A template argument, not a flag: a run-time choice here
  // cost softmax 10-40% (CPU-time A/B).
  inline __m256 apply(__m256 v) const {
    if constexpr (kSub)
      return log_softmax_of(v, f, f2);
    else
      return _mm256_mul_ps(v, f);
  }
  void start(const float* w_, float* y_, int64_t n_, float f_, float f2_ = 0.f) {
    w = w_, y = y_, n = n_, j = 0, f = _mm256_set1_ps(f_), f2 = _mm256_set1_ps(f2_);
  }
  inline void step() {
    if (j + 8 > n) return;
    _mm256_storeu_ps(y + j, apply(_mm256_loadu_ps(w + j)));
    j += 8;
  }
  void finish() {
    if (!y) return;
    while (j + 8 <= n) step();
    if (j < n)
      _mm256_maskstore_ps(y + j, tail_mask(n - j),
                          apply(_mm256_maskload_ps(w + j, tail_mask(n - j))));
    y = nullptr;
  }
};

// One read of a row: S = sum exp(x - g) about a guess g, the max of the first vector, with the
// row's max M taken alongside (the exact shift does not matter: lse = g + log S, softmax =
// exp(x - g) / S). This saves the separate max pass and lets the loads stream from memory,
// prefetched kAhead ahead, while the exps compute. With kStore the exps also go to w (exp_row_ps,
// as the two-pass path stores them). When pend is not null, the pending row's scaling moves one
// vector per exp vector. False (the caller takes the two-pass path, which rewrites all of w)
// when g is not finite (the first vector all -inf, or NaN / inf in it), when M > g + kSpread (a
// late outlier: terms up to exp(M - g) could overflow), or when S is not finite (a NaN or +inf
// in the row makes it NaN). S >= 1: the entry equal to g adds exp(0).
template <bool kStore, typename Pending>
bool exp_sum_about_guess(const float* x, float* w, int64_t n, Pending* pend, float* g_out,
                         double* S_out) {
  const float g = hmax_ps(load_tail(x, n < 8 ? n : 8, neg_inf()));
  if (!std::isfinite(g)) return false;
  const __m256 gv = _mm256_set1_ps(g);
  auto term = [&](int64_t i) { return _mm256_sub_ps(_mm256_loadu_ps(x + i), gv); };
  // the pending writer as a local copy (written back at the end): through the pointer, every
  // float store here might alias its fields, which were then reloaded after each one (1-8%
  // faster softmax forward, CPU-time A/B)
  Pending lp;
  if (pend) lp = *pend;
  // acc + exp(t), the exp stored at w + i with kStore
  auto acc = [&](__m256 t, __m256 a, int64_t i) {
    if constexpr (kStore) {
      const __m256 e = exp_row_ps(t);
      _mm256_storeu_ps(w + i, e);
      if (pend) lp.step();
      return _mm256_add_ps(a, e);
    } else {
      if (pend) lp.step();
      return exp_sum_acc_ps(t, a);
    }
  };
  __m256 mx0 = gv, mx1 = gv;
  double total = 0;
  for (int64_t b = 0; b < n; b += kFlush) {
    const int64_t e = b + kFlush < n ? b + kFlush : n;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = b;
    for (; i + 32 <= e; i += 32) {
      _mm_prefetch(reinterpret_cast<const char*>(x + i + kAhead), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x + i + kAhead + 16), _MM_HINT_T0);
      const __m256 t0 = term(i), t1 = term(i + 8), t2 = term(i + 16), t3 = term(i + 24);
      mx0 = _mm256_max_ps(mx0, _mm256_max_ps(t0, t1));
      mx1 = _mm256_max_ps(mx1, _mm256_max_ps(t2, t3));
      a0 = acc(t0, a0, i);
      a1 = acc(t1, a1, i + 8);
      a2 = acc(t2, a2, i + 16);
      a3 = acc(t3, a3, i + 24);
    }
    for (; i + 8 <= e; i += 8) {
      const __m256 t = term(i);
      mx0 = _mm256_max_ps(mx0, t);
      a0 = acc(t, a0, i);
    }
    if (i < e) {  // masked lanes are -inf: exp 0 (exp_row_ps) or ~1e-38 (exp_sum_acc_ps)
      const __m256 t = _mm256_sub_ps(load_tail(x + i, e - i, neg_inf()), gv);
      mx1 = _mm256_max_ps(mx1, t);
      if constexpr (kStore) {
        const __m256 ex = exp_row_ps(t);
        _mm256_maskstore_ps(w + i, tail_mask(e - i), ex);
        a1 = _mm256_add_ps(a1, ex);
      } else {
        a1 = exp_sum_acc_ps(t, a1);
      }
    }
    total += hsum_pd(add_widened(_mm256_setzero_pd(),
                                 _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))));
  }
  if (pend) *pend = lp;
  // the max holds x - g; a NaN may be dropped from it, but not from the sum
  if (!(hmax_ps(_mm256_max_ps(mx0, mx1)) <= kSpread) || !std::isfinite(total)) return false;
  *g_out = g;
  *S_out = total;
  return true;
}

// Chunk c's bounds and the prefetch of what follows it: the next chunk, or after the last one
// the next row.
struct Chunks {
  const float* x;
  int64_t n, size, count;
  const float* next;
  Chunks(const float* x_, int64_t n_, int64_t size_, const float* next_)
      : x(x_), n(n_), size(size_), count((n_ + size_ - 1) / size_), next(next_) {}
  int64_t begin(int64_t c) const { return c * size; }
  int64_t len(int64_t c) const { return n - c * size < size ? n - c * size : size; }
  RowPrefetch prefetch(int64_t c) const {
    if (c + 1 < count) return RowPrefetch(x + begin(c + 1), len(c + 1));
    return RowPrefetch(next, n < size ? n : size);
  }
};

// Per-chunk maxima and sums; a stack array covers rows up to 16 chunks.
struct ChunkStats {
  float m_small[16];
  double s_small[16];
  std::vector<float> m_big;
  std::vector<double> s_big;
  float* m;
  double* s;
  explicit ChunkStats(int64_t count) {
    if (count <= 16) {
      m = m_small, s = s_small;
    } else {
      m_big.resize(static_cast<size_t>(count)), s_big.resize(static_cast<size_t>(count));
      m = m_big.data(), s = s_big.data();
    }
  }
};

// M = max of the chunk maxima and S = sum_c s_c exp(m_c - M). M is -inf when every entry is.
void combine(const ChunkStats& st, int64_t count, float* M, double* S) {
  if (count == 1) {  // most rows: no exp (a scalar exp and log per row show on 1024-wide rows)
    *M = st.m[0], *S = st.s[0];
    return;
  }
  float mx = -kInf;
  for (int64_t c = 0; c < count; ++c) mx = st.m[c] > mx ? st.m[c] : mx;
  double s = 0;
  if (!(std::isinf(mx) && mx < 0))
    for (int64_t c = 0; c < count; ++c)
      if (st.s[c] > 0) s += st.s[c] * std::exp(static_cast<double>(st.m[c]) - mx);
  *M = mx;
  *S = s;
}

// softmax_rows_f32 for one of softmax (kLog false) and log_softmax
template <bool kLog>
void softmax_rows_piped(const float* x, float* y, int64_t rows, int64_t n) {
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  const int64_t ahead = prefetch_rows_ahead(n);
  PendingScale<kLog> pend;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    // softmax's exps wait in y itself; log_softmax's pending row reads x
    float* w = kLog ? nullptr : yr;
    float g;
    double Sg;
    if (exp_sum_about_guess<!kLog>(xr, w, n, &pend, &g, &Sg)) {
      pend.finish();
      if (kLog)
        pend.start(xr, yr, n, g, static_cast<float>(std::log(Sg)));
      else
        pend.start(w, yr, n, static_cast<float>(1.0 / Sg));
      continue;
    }
    // the two-pass path (edge rows)
    const float m = maxmin_f32(xr, n, true);
    if (std::isnan(m) || m == kInf) {
      fill_row(yr, n, kNaN);
      continue;
    }
    if (m == -kInf) {  // every entry -inf: softmax 0, log_softmax x (-inf)
      fill_row(yr, n, kLog ? -kInf : 0.f);
      continue;
    }
    RowPrefetch pf(r + ahead < rows ? xr + ahead * n : nullptr, n);
    if constexpr (kLog) {
      pend.finish();
      const double S = exp_sum(xr, n, m, pf);
      pend.start(xr, yr, n, m, static_cast<float>(std::log(S)));
    } else {
      const double S = exp_store_sum_piped(xr, w, n, m, pf, pend);
      pend.finish();
      pend.start(w, yr, n, static_cast<float>(1.0 / S));
    }
  }
  pend.finish();
}

// softmax_rows_f32 with streaming stores (kStreamedRowMin <= n <= kStreamedRowMax): each row's
// sum about its guess (softmax: the exps into the scratch w, 16 KiB at most, in L1), then the
// row written by rows::LineWriter, whole lines only: y = w / sum, or log_softmax's y = (x - g) -
// log(sum), whose x - g is exact where g + log(sum) rounded to float was not (3e-5 at |x| ~
// 1000). Edge rows (no finite guess, a late outlier, a NaN or inf) take softmax_row_f32's plain
// stores. The pipeline kept the exps in y itself and wrote y with plain stores: a line read for
// ownership before each write, a third more traffic.
template <bool kLog>
void softmax_rows_streamed(const float* x, float* y, int64_t rows, int64_t n) {
  alignas(64) float w[kStreamedRowMax];
  rows::LineWriter lw;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float g;
    double Sg;
    NoPending* none = nullptr;
    if (!exp_sum_about_guess<!kLog>(xr, w, n, none, &g, &Sg)) {
      lw.finish();
      softmax_row_f32(xr, yr, n, kLog, nullptr);
      continue;
    }
    if constexpr (kLog) {
      const __m256 gv = _mm256_set1_ps(g), lv = _mm256_set1_ps(static_cast<float>(std::log(Sg)));
      lw.row(yr, n, [&](int64_t i, bool tail) {
        const __m256 v =
            tail ? _mm256_maskload_ps(xr + i, tail_mask(n - i)) : _mm256_loadu_ps(xr + i);
        return log_softmax_of(v, gv, lv);
      });
    } else {
      const __m256 f = _mm256_set1_ps(static_cast<float>(1.0 / Sg));
      lw.row(yr, n, [&](int64_t i, bool tail) {
        const __m256 v =
            tail ? _mm256_maskload_ps(w + i, tail_mask(n - i)) : _mm256_loadu_ps(w + i);
        return _mm256_mul_ps(v, f);
      });
    }
  }
  lw.finish();
}

}  // namespace

void softmax_rows_f32(const float* x, float* y, int64_t rows, int64_t n, bool log, bool stream) {
  if (stream && n >= kStreamedRowMin && n <= kStreamedRowMax)
    return log ? softmax_rows_streamed<true>(x, y, rows, n)
               : softmax_rows_streamed<false>(x, y, rows, n);
  if (log)
    softmax_rows_piped<true>(x, y, rows, n);
  else
    softmax_rows_piped<false>(x, y, rows, n);
}

void fill_row_f32(float* y, int64_t n, float v, rows::LineWriter* out) {
  if (!out) return fill_row(y, n, v);
  const __m256 vv = _mm256_set1_ps(v);
  out->row(y, n, [&](int64_t, bool) { return vv; });
}

void softmax_row_f32(const float* x, float* y, int64_t n, bool log, const float* next) {
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  // softmax keeps its exps in y itself (its lines are in cache for the scaling pass)
  float g;
  double Sg;
  PendingScale<false>* none = nullptr;
  if ((log ? exp_sum_about_guess<false>(x, nullptr, n, none, &g, &Sg)
           : exp_sum_about_guess<true>(x, y, n, none, &g, &Sg))) {
    // a long row's write pass reads no memory (its exps or x are in cache): it pulls the next
    // row's first n / 8 floats past what the exp loop prefetched, a line per 128 floats written
    // (64 x 262144, same A/B: 0-5% faster; n / 4 no better)
    RowPrefetch pf(next && n > 2 * kAhead ? next + kAhead : nullptr, n / 8);
    if (log) {
      const __m256 gv = _mm256_set1_ps(g), lv = _mm256_set1_ps(static_cast<float>(std::log(Sg)));
      return write_row_from_end(y, n, false, [&](int64_t i, bool tail) {
        if ((i & 127) == 0) pf.step();
        const __m256 v =
            tail ? _mm256_maskload_ps(x + i, tail_mask(n - i)) : _mm256_loadu_ps(x + i);
        return log_softmax_of(v, gv, lv);
      });
    }
    const __m256 f = _mm256_set1_ps(static_cast<float>(1.0 / Sg));
    return write_row_from_end(y, n, false, [&](int64_t i, bool tail) {
      if ((i & 127) == 0) pf.step();
      const __m256 v = tail ? _mm256_maskload_ps(y + i, tail_mask(n - i)) : _mm256_loadu_ps(y + i);
      return _mm256_mul_ps(v, f);
    });
  }
  // the two-pass path (edge rows): each chunk's max, then its exps from cache
  const Chunks ch(x, n, kChunk, next);
  ChunkStats st(ch.count);
  for (int64_t c = 0; c < ch.count; ++c) {
    const int64_t b = ch.begin(c), len = ch.len(c);
    const float m = maxmin_f32(x + b, len, true);  // NaN if any NaN
    // a NaN, or +inf (exp(inf - inf) is NaN in the reference): the whole row is NaN
    if (std::isnan(m) || m == kInf) return fill_row(y, n, kNaN);
    st.m[c] = m;
    if (m == -kInf) {  // an all -inf chunk has no weight (softmax: zeros)
      st.s[c] = 0;
      if (!log) fill_row(y + b, len, 0.f);
      continue;
    }
    RowPrefetch pf = ch.prefetch(c);
    st.s[c] = log ? exp_sum(x + b, len, m, pf) : exp_store_sum(x + b, y + b, len, m, pf);
  }
  float M;
  double S;
  combine(st, ch.count, &M, &S);
  if (M == -kInf) {  // every entry -inf: softmax 0, log_softmax x (-inf)
    if (log) return fill_row(y, n, -kInf);
    return fill_row(y, n, 0.f);
  }
  if (log) {
    const __m256 mv = _mm256_set1_ps(M), lv = _mm256_set1_ps(static_cast<float>(std::log(S)));
    return write_row_from_end(y, n, false, [&](int64_t i, bool tail) {
      const __m256 v = tail ? _mm256_maskload_ps(x + i, tail_mask(n - i)) : _mm256_loadu_ps(x + i);
      return log_softmax_of(v, mv, lv);
    });
  }
  for (int64_t c = ch.count - 1; c >= 0; --c) {  // from the end, as write_row_from_end
    const int64_t b = ch.begin(c), len = ch.len(c);
    const double wc = ch.count == 1 ? 1.0 : std::exp(static_cast<double>(st.m[c]) - M);
    const __m256 f = _mm256_set1_ps(static_cast<float>(wc / S));
    const float* wb = y + b;
    write_row(y + b, len, false, [&](int64_t i, bool tail) {
      const __m256 v =
          tail ? _mm256_maskload_ps(wb + i, tail_mask(len - i)) : _mm256_loadu_ps(wb + i);
      return _mm256_mul_ps(v, f);
    });
  }
}

double softmax_backward_part_sum_f32(const float* y, const float* dy, int64_t n, bool log) {
  const __m256 zero = _mm256_setzero_ps();
  if (log)
    return row_sum(n, [&](int64_t j, bool tail) {
      return tail ? load_tail(dy + j, n - j, zero) : _mm256_loadu_ps(dy + j);
    });
  // The first pass reads y and dy from memory with the hardware prefetchers alone: prefetching
  // kAhead ahead in software (which the Xeon liked) made the backward 10-25% slower on the EPYC
  // (see the top of this file).
  return row_sum(n, [&](int64_t j, bool tail) {
    if (tail) return _mm256_mul_ps(load_tail(dy + j, n - j, zero), load_tail(y + j, n - j, zero));
    return _mm256_mul_ps(_mm256_loadu_ps(dy + j), _mm256_loadu_ps(y + j));
  });
}

namespace {
// softmax_backward_part_write_f32, or through `out` (a LineWriter: the whole row, front to back)
void softmax_backward_write(const float* y, const float* dy, float* dx, int64_t n, bool log,
                            double s, bool stream, rows::LineWriter* out) {
  const __m256 sv = _mm256_set1_ps(static_cast<float>(s));
  auto write = [&](auto f) {
    if (out)
      out->row(dx, n, f);
    else
      write_row_from_end(dx, n, stream, f);
  };
  if (log)
    return write([&](int64_t i, bool tail) {
      const __m256i k = tail_mask(n - i);
      const __m256 yv = tail ? _mm256_maskload_ps(y + i, k) : _mm256_loadu_ps(y + i);
      const __m256 gv = tail ? _mm256_maskload_ps(dy + i, k) : _mm256_loadu_ps(dy + i);
      return _mm256_fnmadd_ps(exp_ps(yv), sv, gv);
    });
  write([&](int64_t i, bool tail) {
    const __m256i k = tail_mask(n - i);
    const __m256 yv = tail ? _mm256_maskload_ps(y + i, k) : _mm256_loadu_ps(y + i);
    const __m256 gv = tail ? _mm256_maskload_ps(dy + i, k) : _mm256_loadu_ps(dy + i);
    return _mm256_mul_ps(yv, _mm256_sub_ps(gv, sv));
  });
}
}  // namespace

void softmax_backward_part_write_f32(const float* y, const float* dy, float* dx, int64_t n,
                                     bool log, double s, bool stream) {
  softmax_backward_write(y, dy, dx, n, log, s, stream, nullptr);
}

void softmax_row_backward_f32(const float* y, const float* dy, float* dx, int64_t n, bool log,
                              bool stream, rows::LineWriter* out) {
  softmax_backward_write(y, dy, dx, n, log, softmax_backward_part_sum_f32(y, dy, n, log), stream,
                         out);
}

bool softmax_part_stats_f32(const float* x, int64_t n, float* m, double* s) {
  float g;
  double Sg;
  PendingScale<false>* none = nullptr;
  if (exp_sum_about_guess<false>(x, nullptr, n, none, &g, &Sg)) {
    *m = g;
    *s = Sg;
    return true;
  }
  // edge parts: the max first (NaN if any NaN), then the sum about it
  const float mx = maxmin_f32(x, n, true);
  if (std::isnan(mx) || mx == kInf) return false;
  *m = mx;
  *s = 0;
  if (mx == -kInf) return true;
  RowPrefetch pf(nullptr, 0);
  *s = exp_sum(x, n, mx, pf);
  return true;
}

void softmax_part_write_f32(const float* x, float* y, int64_t n, bool log, float M, double S) {
  if (log) {
    const __m256 mv = _mm256_set1_ps(M), lv = _mm256_set1_ps(static_cast<float>(std::log(S)));
    return write_row(y, n, false, [&](int64_t i, bool tail) {
      const __m256 v = tail ? _mm256_maskload_ps(x + i, tail_mask(n - i)) : _mm256_loadu_ps(x + i);
      return log_softmax_of(v, mv, lv);
    });
  }
  // x - M may reach kSpread above 0 when M is a part's guess, within exp_row_ps's range
  const __m256 mv = _mm256_set1_ps(M), f = _mm256_set1_ps(static_cast<float>(1.0 / S));
  write_row(y, n, false, [&](int64_t i, bool tail) {
    const __m256 v = tail ? load_tail(x + i, n - i, neg_inf()) : _mm256_loadu_ps(x + i);
    return _mm256_mul_ps(exp_row_ps(_mm256_sub_ps(v, mv)), f);
  });
}

void cross_entropy_row_f32(const float* x, int64_t C, double* lse, double* sum_x,
                           const float* next) {
  if (sum_x) {
    const __m256 zero = _mm256_setzero_ps();
    *sum_x = row_sum(C, [&](int64_t i, bool tail) {
      return tail ? load_tail(x + i, C - i, zero) : _mm256_loadu_ps(x + i);
    });
  }
  float g;
  double S;
  if (exp_sum_about_guess<false>(x, nullptr, C, static_cast<PendingScale<false>*>(nullptr), &g,
                                 &S)) {
    *lse = g + std::log(S);
    return;
  }
  // the two-pass path: each chunk's max, then its exp-sum from cache
  const Chunks ch(x, C, kChunk, next);
  ChunkStats st(ch.count);
  for (int64_t c = 0; c < ch.count; ++c) {
    const int64_t b = ch.begin(c), len = ch.len(c);
    const float m = maxmin_f32(x + b, len, true);  // NaN if any NaN
    // NaN, or +inf (the reference's exp(inf - inf)): lse is NaN
    if (std::isnan(m) || m == kInf) {
      *lse = std::numeric_limits<double>::quiet_NaN();
      return;
    }
    st.m[c] = m;
    if (m == -kInf) {
      st.s[c] = 0;
      continue;
    }
    RowPrefetch pf = ch.prefetch(c);
    st.s[c] = exp_sum(x + b, len, m, pf);
  }
  float M;
  combine(st, ch.count, &M, &S);
  // an all -inf row: the reference's exp(-inf - -inf) is NaN, and so is this
  *lse = M == -kInf ? std::numeric_limits<double>::quiet_NaN() : M + std::log(S);
}

void cross_entropy_row_backward_f32(const float* x, float* dx, int64_t C, double lse, double g,
                                    double off, int64_t t, float dt, rows::LineWriter* out) {
  const __m256 lv = _mm256_set1_ps(static_cast<float>(lse));
  const __m256 gv = _mm256_set1_ps(static_cast<float>(g));
  const __m256 gov = _mm256_set1_ps(static_cast<float>(g * off));
  const __m256 dtv = _mm256_set1_ps(dt);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  // one pass from memory: prefetched kAhead ahead (into the next row past the end), once a line
  // of x: keyed to the address, not to i, because a LineWriter steps from the row's first line
  // boundary (i = 5, 13, ...), where i % 16 == 0 never held and the row went unprefetched
  auto f = [&](int64_t i, bool tail) {
    if ((reinterpret_cast<uintptr_t>(x + i) & 32) == 0)
      _mm_prefetch(reinterpret_cast<const char*>(x + i + kAhead), _MM_HINT_T0);
    const __m256 v = tail ? _mm256_maskload_ps(x + i, tail_mask(C - i)) : _mm256_loadu_ps(x + i);
    // g e - g off: exp_row_ps (<= 2.2 ulp, the forward's exp) and one FMA take 11 FMA-port
    // operations a vector where exp_nonpos_ps, a sub and a mul took 13 (4-8% faster, same A/B)
    const __m256 d = _mm256_fmsub_ps(gv, exp_row_ps(_mm256_sub_ps(v, lv)), gov);
    if (t < i || t >= i + 8) return d;
    // the target's lane gets dt
    const __m256i hit = _mm256_cmpeq_epi32(lane, _mm256_set1_epi32(static_cast<int>(t - i)));
    return _mm256_blendv_ps(d, dtv, _mm256_castsi256_ps(hit));
  };
  if (out)
    out->row(dx, C, f);
  else
    write_row(dx, C, false, f);
}

}  // namespace smyrf::kernels::cpu::avx2
