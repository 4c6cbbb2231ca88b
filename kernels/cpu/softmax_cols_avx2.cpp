// AVX2 float32 pieces of softmax_cols (kernels/cpu/softmax_cols.h). The statistics run down the
// rows of a block of w neighbouring columns (rows `inner` apart), four rows a sweep over the
// block's per-column state (maxima, float partial sums), so the state is loaded and stored once
// per four rows; the writes run along whole rows.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/cpu/reduce_avx2.h"
#include "kernels/cpu/row_math_avx2.h"
#include "kernels/cpu/softmax_cols.h"
#include "kernels/cpu/vec_math_avx2.h"

namespace smyrf::kernels::cpu::avx2 {
namespace {

constexpr int64_t kFoldRows = 256;  // float partial sums go into double this often
constexpr int64_t kWriteAhead = 1024;

// 8 lanes of the block at column j (the last, partial vector masked)
struct Lanes {
  int64_t w;
  inline __m256 load(const float* p, int64_t j) const {
    return j + 8 <= w ? _mm256_loadu_ps(p + j) : _mm256_maskload_ps(p + j, tail_mask(w - j));
  }
  inline void store(float* p, int64_t j, __m256 v) const {
    if (j + 8 <= w)
      _mm256_storeu_ps(p + j, v);
    else
      _mm256_maskstore_ps(p + j, tail_mask(w - j), v);
  }
  // an output vector: streamed with `stream` (the partial last vector through a masked store)
  inline void store_out(float* p, int64_t j, __m256 v, bool stream) const {
    if (stream && j + 8 <= w)
      _mm256_stream_ps(p + j, v);
    else
      store(p, j, v);
  }
};

// Outputs are written once and not read again: streaming stores, when every row of the run
// starts on a 32-byte boundary.
inline bool streams(const float* out, int64_t inner) {
  return reinterpret_cast<uintptr_t>(out) % 32 == 0 && inner % 8 == 0;
}

// acc[j] += sum over rows [r0, r1) of term(row pointer, j), four rows a sweep. With pf, the
// next sweep's four rows of the block (pf, rows pf_stride apart) are prefetched a line at a
// time as this one runs: the hardware prefetchers follow four interleaved 8 KiB runs poorly
// (softmax statistics of 4096^2 over dim 0 and 64 x 512^2 over dim 1, 10% and 20% faster).
template <typename Term>
void add_rows(const Lanes& L, float* acc, int64_t r0, int64_t r1, Term term,
              const float* pf = nullptr, int64_t pf_stride = 0) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4)
    for (int64_t j = 0; j < L.w; j += 8) {
      if (pf && j % 16 == 0)
        for (int i = 4; i < 8; ++i)
          _mm_prefetch(reinterpret_cast<const char*>(pf + (r + i) * pf_stride + j), _MM_HINT_T0);
      const __m256 s = _mm256_add_ps(_mm256_add_ps(term(r, j), term(r + 1, j)),
                                     _mm256_add_ps(term(r + 2, j), term(r + 3, j)));
      L.store(acc, j, _mm256_add_ps(L.load(acc, j), s));
    }
  for (; r < r1; ++r)
    for (int64_t j = 0; j < L.w; j += 8) L.store(acc, j, _mm256_add_ps(L.load(acc, j), term(r, j)));
}

// sd[j] = sum over all n rows of term(r, j): float partials folded into double every kFoldRows
template <typename Term>
void column_sums(const Lanes& L, int64_t n, float* sf, double* sd, Term term,
                 const float* pf = nullptr, int64_t pf_stride = 0) {
  for (int64_t j = 0; j < L.w; ++j) sd[j] = 0;
  for (int64_t r0 = 0; r0 < n; r0 += kFoldRows) {
    for (int64_t j = 0; j < L.w; ++j) sf[j] = 0.f;
    add_rows(L, sf, r0, r0 + kFoldRows < n ? r0 + kFoldRows : n, term, pf, pf_stride);
    for (int64_t j = 0; j < L.w; ++j) sd[j] += sf[j];
  }
}

// The per-column checks and factors below were scalar loops with early exits, a third of the
// time when columns are short (softmax over dim 0 of 2 x 8M floats).

// Whether every one of p[0..w) is finite.
bool all_finite(const float* p, int64_t w) {
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256 bad = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= w; j += 8)  // |v| >= inf, or unordered (NaN)
    bad = _mm256_or_ps(bad,
                       _mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(p + j), abs), inf, _CMP_NLT_UQ));
  if (j < w)  // masked-off lanes load 0
    bad = _mm256_or_ps(
        bad, _mm256_cmp_ps(_mm256_and_ps(_mm256_maskload_ps(p + j, tail_mask(w - j)), abs), inf,
                           _CMP_NLT_UQ));
  return _mm256_testz_ps(bad, bad);
}

// Whether every one of sd[0..w) is finite.
bool sums_finite(const double* sd, int64_t w) {
  const __m256d inf = _mm256_set1_pd(std::numeric_limits<double>::infinity());
  const __m256d abs = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7FFFFFFFFFFFFFFFll));
  __m256d fin = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
  int64_t j = 0;
  for (; j + 4 <= w; j += 4)
    fin = _mm256_and_pd(
        fin, _mm256_cmp_pd(_mm256_and_pd(_mm256_loadu_pd(sd + j), abs), inf, _CMP_LT_OQ));
  bool held = _mm256_movemask_pd(fin) == 0xF;
  for (; j < w; ++j) held = held && std::isfinite(sd[j]);
  return held;
}

// f = 1 / sd (softmax) or c + log sd (log_softmax), in double; sd >= 1 (the entry at the shift
// adds exp(0)), so log2_pos_pd applies.
void column_factors(const float* c, const double* sd, int64_t w, bool log, float* f) {
  const __m256d one = _mm256_set1_pd(1.0), ln2 = _mm256_set1_pd(0.6931471805599453);
  int64_t j = 0;
  for (; j + 4 <= w; j += 4) {
    const __m256d d = _mm256_loadu_pd(sd + j);
    const __m256d v =
        log ? _mm256_fmadd_pd(log2_pos_pd(d), ln2, _mm256_cvtps_pd(_mm_loadu_ps(c + j)))
            : _mm256_div_pd(one, d);
    _mm_storeu_ps(f + j, _mm256_cvtpd_ps(v));
  }
  for (; j < w; ++j) f[j] = static_cast<float>(log ? c[j] + std::log(sd[j]) : 1.0 / sd[j]);
}

}  // namespace

bool softmax_cols_stats_f32(const float* x, int64_t n, int64_t inner, int64_t w, bool log,
                            float* scratch, float* c, float* f, float* exps) {
  const Lanes L{w};
  double* sd = reinterpret_cast<double*>(scratch);  // 2 w floats
  float* sf = scratch + 2 * w;                      // w float partial sums
  auto row = [&](int64_t r, int64_t j) { return L.load(x + r * inner, j); };
  // One read: the sums of exp(x - c) about c = the column's first entry (softmax_avx2.cpp's
  // exp_sum_about_guess, by columns). It stands when every c is finite, no entry lies more than
  // 64 above its c (the terms stay far from overflow) and every sum is finite; else the max is
  // taken first and the sums read again. The entries above c + 64 are flagged in a register:
  // tracking each column's max in memory instead chained a load and a store through every row
  // of a sweep (2 threads, medians of 10 interleaved rounds: log_softmax of 64 x 512 x 512 over
  // dim 1 8.2 -> 7.6 ms, 4096 x 4096 over dim 0 even).
  bool guessed = all_finite(x, w);
  if (guessed) {
    for (int64_t j = 0; j < w; j += 8) L.store(c, j, row(0, j));
    const __m256 spread = _mm256_set1_ps(64.f);
    __m256 over = _mm256_setzero_ps();
    column_sums(
        L, n, sf, sd,
        [&](int64_t rr, int64_t j) {
          const __m256 v = row(rr, j), t = _mm256_sub_ps(v, L.load(c, j));
          over = _mm256_or_ps(over, _mm256_cmp_ps(t, spread, _CMP_GT_OQ));
          // a kept exp must be the write's exp_row_ps; a summed one may take the shorter
          // exp_sum_ps (no flush below -87, one reduction constant: the rows' sums use it too;
          // 4096 x 4096 over dim 0, 10 alternated rounds: softmax 6.28 -> 5.82 ms)
          const __m256 e = exps ? exp_row_ps(t) : exp_sum_ps(t);
          if (exps) L.store(exps + rr * inner, j, e);
          return e;
        },
        x, inner);
    guessed = _mm256_testz_ps(over, over) && sums_finite(sd, w);
  }
  if (!guessed) {
    // the column maxima (the column reductions' kernel, which keeps a NaN); a column whose max is
    // not finite (+inf, all -inf, a NaN) goes to the reference
    for (int64_t j = 0; j < w; ++j) c[j] = x[j];
    col_maxmin_f32(x + inner, inner, n - 1, w, c, true);
    if (!all_finite(c, w)) return false;
    column_sums(L, n, sf, sd, [&](int64_t rr, int64_t j) {
      const __m256 e = exp_row_ps(_mm256_sub_ps(row(rr, j), L.load(c, j)));
      if (exps) L.store(exps + rr * inner, j, e);
      return e;
    });
  }
  column_factors(c, sd, w, log, f);
  return true;
}

bool softmax_cols_short_f32(const float* x, float* y, int64_t n, int64_t inner, int64_t w,
                            bool log) {
  const Lanes L{w};
  __m256 e[kShortColsMax];
  for (int64_t j = 0; j < w; j += 8) {
    if (j % 16 == 0)  // the rows' lines a few groups ahead (n interleaved streams)
      for (int64_t r = 0; r < n; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(x + r * inner + j + 64), _MM_HINT_T0);
    __m256 m = e[0] = L.load(x, j);
    for (int64_t r = 1; r < n; ++r) m = _mm256_max_ps(m, e[r] = L.load(x + r * inner, j));
    __m256 s = _mm256_setzero_ps();
    for (int64_t r = 0; r < n; ++r) {
      e[r] = exp_row_ps(_mm256_sub_ps(e[r], m));
      s = _mm256_add_ps(s, e[r]);
    }
    // A column whose max is not finite sums to NaN: +inf gives exp(inf - inf), all -inf
    // exp(-inf + inf), and a NaN its own term (max_ps may drop it from m, not from the sum).
    if (_mm256_movemask_ps(_mm256_cmp_ps(s, s, _CMP_UNORD_Q))) return false;
    if (log) {
      const __m256 l = _mm256_add_ps(m, log_pos_ps(s));
      for (int64_t r = 0; r < n; ++r)
        L.store(y + r * inner, j, _mm256_sub_ps(L.load(x + r * inner, j), l));
    } else {
      const __m256 f = _mm256_div_ps(_mm256_set1_ps(1.f), s);
      for (int64_t r = 0; r < n; ++r) L.store(y + r * inner, j, _mm256_mul_ps(e[r], f));
    }
  }
  return true;
}

void softmax_cols_short_backward_f32(const float* y, const float* dy, float* dx, int64_t n,
                                     int64_t inner, int64_t w, bool log) {
  const Lanes L{w};
  for (int64_t j = 0; j < w; j += 8) {
    if (j % 16 == 0)
      for (int64_t r = 0; r < n; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(y + r * inner + j + 64), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(dy + r * inner + j + 64), _MM_HINT_T0);
      }
    __m256 s = _mm256_setzero_ps();
    for (int64_t r = 0; r < n; ++r) {
      const __m256 g = L.load(dy + r * inner, j);
      s = log ? _mm256_add_ps(s, g) : _mm256_fmadd_ps(g, L.load(y + r * inner, j), s);
    }
    for (int64_t r = 0; r < n; ++r) {
      const __m256 yv = L.load(y + r * inner, j), gv = L.load(dy + r * inner, j);
      L.store(dx + r * inner, j,
              log ? _mm256_fnmadd_ps(exp_ps(yv), s, gv) : _mm256_mul_ps(yv, _mm256_sub_ps(gv, s)));
    }
  }
}

void softmax_cols_write_f32(const float* x, float* y, int64_t rows, int64_t inner, int64_t w,
                            bool log, const float* c, const float* f) {
  const Lanes L{w};
  const bool stream = streams(y, inner);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * inner;
    float* yr = y + r * inner;
    for (int64_t j = 0; j < w; j += 8) {
      if (j % 16 == 0)
        _mm_prefetch(reinterpret_cast<const char*>(xr + j + kWriteAhead), _MM_HINT_T0);
      const __m256 v = L.load(xr, j);
      const __m256 out =
          log ? _mm256_sub_ps(v, L.load(f, j))
              : _mm256_mul_ps(exp_row_ps(_mm256_sub_ps(v, L.load(c, j))), L.load(f, j));
      L.store_out(yr, j, out, stream);
    }
  }
  if (stream) _mm_sfence();
}

void softmax_cols_scale_f32(float* y, int64_t rows, int64_t inner, int64_t w, const float* f) {
  const Lanes L{w};
  for (int64_t r = 0; r < rows; ++r) {
    float* yr = y + r * inner;
    for (int64_t j = 0; j < w; j += 8) L.store(yr, j, _mm256_mul_ps(L.load(yr, j), L.load(f, j)));
  }
}

void softmax_cols_sums_backward_f32(const float* y, const float* dy, int64_t n, int64_t inner,
                                    int64_t w, bool log, float* scratch, float* s) {
  const Lanes L{w};
  double* sd = reinterpret_cast<double*>(scratch);
  float* sf = scratch + 2 * w;
  if (log)
    column_sums(L, n, sf, sd, [&](int64_t r, int64_t j) { return L.load(dy + r * inner, j); });
  else
    column_sums(L, n, sf, sd, [&](int64_t r, int64_t j) {
      return _mm256_mul_ps(L.load(dy + r * inner, j), L.load(y + r * inner, j));
    });
  for (int64_t j = 0; j < w; ++j) s[j] = static_cast<float>(sd[j]);
}

void softmax_cols_write_backward_f32(const float* y, const float* dy, float* dx, int64_t rows,
                                     int64_t inner, int64_t w, bool log, const float* s) {
  const Lanes L{w};
  const bool stream = streams(dx, inner);
  for (int64_t r = 0; r < rows; ++r) {
    const float *yr = y + r * inner, *gr = dy + r * inner;
    float* dr = dx + r * inner;
    for (int64_t j = 0; j < w; j += 8) {
      const __m256 yv = L.load(yr, j), gv = L.load(gr, j), sv = L.load(s, j);
      L.store_out(
          dr, j,
          log ? _mm256_fnmadd_ps(exp_ps(yv), sv, gv) : _mm256_mul_ps(yv, _mm256_sub_ps(gv, sv)),
          stream);
    }
  }
  if (stream) _mm_sfence();
}

}  // namespace smyrf::kernels::cpu::avx2
