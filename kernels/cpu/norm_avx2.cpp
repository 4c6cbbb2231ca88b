// AVX2 float32 layer-norm row kernels (see norm_avx2.h). Tails go through masked loads and
// stores (lanes past the end read as 0 and are masked out of every sum), so every element sees
// the same vector formula.
//
// Both directions read each row from memory once: the first pass streams it in (forward: the
// sum and the sum of squares; backward: both row sums and the dw / db partials), the later passes
// run from L1/L2 while the next row is prefetched, and the output goes out with streaming stores
// when it is large (a plain store reads the line first: 12 bytes of traffic per element instead of
// 8 forward, 16 instead of 12 backward).
#include "kernels/cpu/norm_avx2.h"

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "kernels/cpu/row_avx2.h"
#include "kernels/cpu/vec_math_avx2.h"

namespace smyrf::kernels::cpu::avx2 {
using rows::kFlush;
using rows::RowPrefetch;

namespace {

// 8 floats at p + i; with `tail`, only the lanes of mask k are read (the others are 0).
inline __m256 ld(const float* p, int64_t i, __m256i k, bool tail) {
  return tail ? _mm256_maskload_ps(p + i, k) : _mm256_loadu_ps(p + i);
}

// y[i .. i+8) = f(i, mask, tail) over the row; every32() is called once per 32 elements (the
// caller's prefetch step). With `stream` the whole 64-byte lines inside the row are written with
// non-temporal stores (rows::stream_lines; the head before them and the tail take plain stores).
template <typename F, typename G>
inline void write_row(float* y, int64_t n, bool stream, F f, G every32) {
  const __m256i full = _mm256_set1_epi32(-1);
  const rows::StreamSpan span =
      stream ? rows::stream_lines(y, n, rows::kNormStreamRowMin) : rows::StreamSpan{};
  int64_t i = 0;
  if (span.end > span.begin) {
    for (; i + 8 <= span.begin; i += 8) _mm256_storeu_ps(y + i, f(i, full, false));
    if (i < span.begin) {
      const __m256i k = tail_mask(span.begin - i);
      _mm256_maskstore_ps(y + i, k, f(i, k, true));
      i = span.begin;
    }
    for (; i < span.end; i += 8) {
      if (((i - span.begin) & 31) == 0) every32();
      _mm256_stream_ps(y + i, f(i, full, false));
    }
  }
  for (; i + 8 <= n; i += 8) {
    if ((i & 31) == 0) every32();
    _mm256_storeu_ps(y + i, f(i, full, false));
  }
  if (i < n) {
    const __m256i k = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, k, f(i, k, true));
  }
}

// write_row, or with `out` its LineWriter (every32 then called every fourth vector).
template <typename F, typename G>
inline void write_row(float* y, int64_t n, bool stream, rows::LineWriter* out, F f, G every32) {
  if (!out) return write_row(y, n, stream, f, every32);
  const __m256i full = _mm256_set1_epi32(-1);
  int calls = 0;
  out->row(y, n, [&](int64_t i, bool tail) {
    if ((++calls & 3) == 0) every32();
    return tail ? f(i, tail_mask(n - i), true) : f(i, full, false);
  });
}

inline double widen_sum(__m256 v) { return hsum_pd(add_widened(_mm256_setzero_pd(), v)); }

// Pass 2 of the backward over `len` entries of a row of full length n, from cache:
//   dx = rstd (g - sg/n - xhat sgx/n) = (rstd w) dy - C (x - hi) + (C lo - rstd sg/n),
//   C = rstd^2 sgx/n, with the mean as float hi + lo as in pass 1.
template <typename G>
void write_dx(const float* gr, const float* xr, double mean, double rstd, const float* w, float* dx,
              int64_t len, int64_t n, double sg, double sgx, bool stream, rows::LineWriter* out,
              G every32) {
  const float hi = static_cast<float>(mean);
  const double lo = mean - hi;
  const double C = rstd * rstd * (sgx / n);
  const __m256 cv = _mm256_set1_ps(static_cast<float>(C));
  const __m256 kv = _mm256_set1_ps(static_cast<float>(C * lo - rstd * (sg / n)));
  const __m256 m = _mm256_set1_ps(hi), r = _mm256_set1_ps(static_cast<float>(rstd));
  write_row(
      dx, len, stream, out,
      [&](int64_t i, __m256i k, bool tail) {
        const __m256 t = _mm256_fnmadd_ps(cv, _mm256_sub_ps(ld(xr, i, k, tail), m), kv);
        const __m256 rw = w ? _mm256_mul_ps(r, ld(w, i, k, tail)) : r;
        return _mm256_fmadd_ps(rw, ld(gr, i, k, tail), t);
      },
      every32);
}

// The backward of K consecutive rows (norm_avx2.h: layernorm_rows_backward_f32); with write
// false, pass 1 only over one row's part (n its length): sg and sgx go to sums_out.
template <int K>
void backward_rows(const float* dy, const float* x, const double* mean, const double* rstd,
                   const float* w, float* dx, float* tw, float* tb, int64_t n, const float* next_dy,
                   const float* next_x, rows::LineWriter* out, bool write = true,
                   double* sums_out = nullptr) {
  // the next K rows of each input, n / 16 lines per row: spread over pass 1 (one step per
  // 32 / K elements of the row block) and pass 2 (one step per 32 elements of each row)
  RowPrefetch pf_dy(next_dy, K * n), pf_x(next_x, K * n);
  // mean as float hi + lo (as in the forward): x - hi is exact for x near the mean
  __m256 mv[K], rv[K], nlo[K];
  double lo[K];
  for (int j = 0; j < K; ++j) {
    const float hi = static_cast<float>(mean[j]);
    lo[j] = mean[j] - hi;
    mv[j] = _mm256_set1_ps(hi);
    rv[j] = _mm256_set1_ps(static_cast<float>(rstd[j]));
    nlo[j] = _mm256_set1_ps(static_cast<float>(-lo[j] * rstd[j]));
  }
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  // pass 1: sum(g) and sum(g xhat) per row (g = dy w), dw / db partials once for all K rows:
  // xhat = (x - hi) rstd - lo rstd; the w products go into the sums, the partials take dy xhat
  double sg[K] = {}, sgx[K] = {};
  auto step = [&](int64_t i, __m256i k, bool tail, __m256* ag, __m256* agx) {
    if ((i & (32 / K - 1)) == 0) pf_dy.step(), pf_x.step();
    const __m256 wv = w ? ld(w, i, k, tail) : one;
    __m256 sum_g = zero, sum_gx = zero;
    for (int j = 0; j < K; ++j) {
      const __m256 gv = ld(dy + j * n, i, k, tail);
      const __m256 xh =
          _mm256_fmadd_ps(_mm256_sub_ps(ld(x + j * n, i, k, tail), mv[j]), rv[j], nlo[j]);
      __m256 gx = _mm256_mul_ps(gv, xh);
      // masked lanes: dy = 0 there, and gx too unless xhat is not finite (rstd inf / NaN)
      if (tail) gx = _mm256_and_ps(gx, _mm256_castsi256_ps(k));
      ag[j] = _mm256_fmadd_ps(gv, wv, ag[j]);
      agx[j] = _mm256_fmadd_ps(gx, wv, agx[j]);
      sum_g = j ? _mm256_add_ps(sum_g, gv) : gv;
      sum_gx = j ? _mm256_add_ps(sum_gx, gx) : gx;
    }
    if (!tail) {
      if (tw) _mm256_storeu_ps(tw + i, _mm256_add_ps(_mm256_loadu_ps(tw + i), sum_gx));
      if (tb) _mm256_storeu_ps(tb + i, _mm256_add_ps(_mm256_loadu_ps(tb + i), sum_g));
    } else {  // the masked store leaves the lanes past the row alone
      if (tw) _mm256_maskstore_ps(tw + i, k, _mm256_add_ps(_mm256_maskload_ps(tw + i, k), sum_gx));
      if (tb) _mm256_maskstore_ps(tb + i, k, _mm256_add_ps(_mm256_maskload_ps(tb + i, k), sum_g));
    }
  };
  const __m256i full = _mm256_set1_epi32(-1);
  for (int64_t b = 0; b < n; b += kFlush) {
    const int64_t e = b + kFlush < n ? b + kFlush : n;
    // one row: two accumulator sets (the fma chain would otherwise bound the loop)
    __m256 ag0[K], agx0[K], ag1[K], agx1[K];
    for (int j = 0; j < K; ++j) ag0[j] = agx0[j] = ag1[j] = agx1[j] = zero;
    int64_t i = b;
    if constexpr (K == 1) {
      for (; i + 16 <= e; i += 16) {
        step(i, full, false, ag0, agx0);
        step(i + 8, full, false, ag1, agx1);
      }
    }
    for (; i + 8 <= e; i += 8) step(i, full, false, ag0, agx0);
    if (i < e) step(i, tail_mask(e - i), true, ag1, agx1);
    for (int j = 0; j < K; ++j) {
      sg[j] += widen_sum(_mm256_add_ps(ag0[j], ag1[j]));
      sgx[j] += widen_sum(_mm256_add_ps(agx0[j], agx1[j]));
    }
  }
  if (!write) {  // a part of a split row (norm.cpp): the caller combines the parts' sums
    for (int j = 0; j < K; ++j) sums_out[2 * j] = sg[j], sums_out[2 * j + 1] = sgx[j];
    return;
  }
  for (int j = 0; j < K; ++j)
    write_dx(dy + j * n, x + j * n, mean[j], rstd[j], w, dx + j * n, n, n, sg[j], sgx[j], false,
             out, [&] { pf_dy.step(), pf_x.step(); });
}

// The fused first pass of the forward: sum of d = x - shift and of d^2 over the row (float
// lanes, folded into double every kFlush); pf steps once per 32 elements.
inline void shifted_moments(const float* x, int64_t n, float shift, RowPrefetch& pf, double* s1,
                            double* s2) {
  const __m256 sv = _mm256_set1_ps(shift), zero = _mm256_setzero_ps();
  const __m256i full = _mm256_set1_epi32(-1);
  double t1 = 0, t2 = 0;
  for (int64_t b = 0; b < n; b += kFlush) {
    const int64_t e = b + kFlush < n ? b + kFlush : n;
    __m256 a0 = zero, a1 = zero, q0 = zero, q1 = zero;
    auto step = [&](int64_t i, __m256i k, bool tail, __m256& a, __m256& q) {
      __m256 d = _mm256_sub_ps(ld(x, i, k, tail), sv);
      if (tail) d = _mm256_and_ps(d, _mm256_castsi256_ps(k));
      a = _mm256_add_ps(a, d);
      q = _mm256_fmadd_ps(d, d, q);
    };
    int64_t i = b;
    for (; i + 16 <= e; i += 16) {
      if ((i & 31) == 0) pf.step();
      step(i, full, false, a0, q0);
      step(i + 8, full, false, a1, q1);
    }
    for (; i + 8 <= e; i += 8) step(i, full, false, a0, q0);
    if (i < e) step(i, tail_mask(e - i), true, a1, q1);
    t1 += widen_sum(_mm256_add_ps(a0, a1));
    t2 += widen_sum(_mm256_add_ps(q0, q1));
  }
  *s1 = t1;
  *s2 = t2;
}

}  // namespace

namespace {
// Mean and (population) variance of a row; pf steps through the first pass.
void moments(const float* x, int64_t n, RowPrefetch& pf, double* mean, double* var) {
  // One read of the row for both moments, taken about a shift near the mean (the mean of the
  // first 8 values): var = E[d^2] - E[d]^2 then loses only a factor E[d^2] / var = 1 +
  // (mean - shift)^2 / var of float accuracy, about 1.1 on typical rows. Rows where that factor
  // exceeds 8 (sorted data, outliers among the first values) take the moments again from cache
  // about the mean just found, which makes the factor ~1 (the mean gets the correction too).
  // Summing x - shift also keeps a large common offset from costing accuracy in the mean.
  const int64_t n0 = n < 8 ? n : 8;
  float shift = 0.f;
  for (int64_t i = 0; i < n0; ++i) shift += x[i];
  shift /= static_cast<float>(n0);
  double s1, s2;
  shifted_moments(x, n, shift, pf, &s1, &s2);
  double m1 = s1 / n, e2 = s2 / n;
  double mu = shift + m1, v = e2 - m1 * m1;
  if (!(e2 <= 8.0 * v)) {  // also NaN / inf rows: their result is NaN either way
    shift = static_cast<float>(mu);
    RowPrefetch none(nullptr, 0);
    shifted_moments(x, n, shift, none, &s1, &s2);
    m1 = s1 / n, e2 = s2 / n;
    mu = shift + m1, v = e2 - m1 * m1;
  }
  if (v < 0) v = 0;  // rounding on a (nearly) constant row
  *mean = mu;
  *var = v;
}
}  // namespace

void row_moments_f32(const float* x, int64_t n, double* mean, double* var) {
  RowPrefetch none(nullptr, 0);
  moments(x, n, none, mean, var);
}

namespace {
// y = xhat w + b over n entries given the row's mean and rstd.
template <typename G>
void write_y(const float* x, const float* w, const float* b, float* y, int64_t n, double mu,
             double rs, bool stream, G every32) {
  // mean as float hi + lo: x - hi is exact for x near the mean, so rows with a large mean do
  // not lose the ~ulp(mean) that a float mean alone would cost every xhat
  const float mu_hi = static_cast<float>(mu);
  const double mu_lo = mu - mu_hi;
  // xhat = (x - hi) rstd - lo rstd: one sub and one fma per vector
  const __m256 mv = _mm256_set1_ps(mu_hi);
  const __m256 rv = _mm256_set1_ps(static_cast<float>(rs));
  const __m256 nlo = _mm256_set1_ps(static_cast<float>(-mu_lo * rs));
  write_row(
      y, n, stream,
      [&](int64_t i, __m256i k, bool tail) {
        const __m256 xh = _mm256_fmadd_ps(_mm256_sub_ps(ld(x, i, k, tail), mv), rv, nlo);
        if (w)
          return _mm256_fmadd_ps(xh, ld(w, i, k, tail),
                                 b ? ld(b, i, k, tail) : _mm256_setzero_ps());
        return b ? _mm256_add_ps(xh, ld(b, i, k, tail)) : xh;
      },
      every32);
}
}  // namespace

void layernorm_row_f32(const float* x, const float* w, const float* b, float* y, int64_t n,
                       double eps, double* mean, double* rstd, const float* next, bool stream) {
  RowPrefetch pf(next, n);  // half the next row in the first pass, the rest in the write pass
  double mu, v;
  moments(x, n, pf, &mu, &v);
  const double rs = 1.0 / std::sqrt(v + eps);
  write_y(x, w, b, y, n, mu, rs, stream, [&] { pf.step(); });
  *mean = mu;
  *rstd = rs;
}

void layernorm_part_write_f32(const float* x, const float* w, const float* b, float* y, int64_t len,
                              double mean, double rstd, bool stream) {
  write_y(x, w, b, y, len, mean, rstd, stream, [] {});
}

void layernorm_backward_part_sums_f32(const float* dy, const float* x, double mean, double rstd,
                                      const float* w, float* tw, float* tb, int64_t len, double* sg,
                                      double* sgx) {
  double sums[2];
  backward_rows<1>(dy, x, &mean, &rstd, w, nullptr, tw, tb, len, nullptr, nullptr, nullptr, false,
                   sums);
  *sg = sums[0];
  *sgx = sums[1];
}

void layernorm_backward_part_write_f32(const float* dy, const float* x, double mean, double rstd,
                                       const float* w, float* dx, int64_t len, int64_t n, double sg,
                                       double sgx, bool stream) {
  write_dx(dy, x, mean, rstd, w, dx, len, n, sg, sgx, stream, nullptr, [] {});
}

void layernorm_rows_backward_f32(const float* dy, const float* x, const double* mean,
                                 const double* rstd, int k, const float* w, float* dx, float* tw,
                                 float* tb, int64_t n, const float* next_dy, const float* next_x,
                                 rows::LineWriter* out) {
  if (k == 2)
    backward_rows<2>(dy, x, mean, rstd, w, dx, tw, tb, n, next_dy, next_x, out);
  else
    backward_rows<1>(dy, x, mean, rstd, w, dx, tw, tb, n, next_dy, next_x, out);
}

}  // namespace smyrf::kernels::cpu::avx2
