// Short-row layer norm, forward and backward, eight rows a block (see short_rows_avx2.h for the
// layout and why; kernels/cpu/norm.h for the semantics).
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/short_rows_avx2.h"
#include "kernels/cpu/short_rows_impl_avx2.h"
#include "kernels/cpu/vec_math_avx2.h"

namespace smyrf::kernels::cpu::avx2 {
using namespace short_rows;

void lay_out_per_lane(const ShortRowLanes& L, const float* p, float* out) {
  for (int64_t f = 0; f < 8 * L.n; ++f) out[f] = p[L.col[f]];
}

namespace {
// The moments of a block's rows from its stored columns T (columns_store): the mean as float
// hi + lo, taken about a shift, the row's first value (a large common offset then costs the sum
// nothing; x - hi is exact for x near the mean, and lo carries what hi's rounding lost: the
// row kernel does the same in double), and m2 = sum (x - mean)^2 in a second pass (no E[x^2] -
// E[x]^2 cancellation).
inline void block_moments(const float* t, int64_t n, __m256* hi, __m256* lo, __m256* m2) {
  const __m256 inv_n = _mm256_set1_ps(1.f / static_cast<float>(n));
  const __m256 shift = _mm256_load_ps(t);
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  int64_t k = 1;
  for (; k + 2 <= n; k += 2) {
    s0 = _mm256_add_ps(s0, _mm256_sub_ps(_mm256_load_ps(t + 8 * k), shift));
    s1 = _mm256_add_ps(s1, _mm256_sub_ps(_mm256_load_ps(t + 8 * k + 8), shift));
  }
  if (k < n) s0 = _mm256_add_ps(s0, _mm256_sub_ps(_mm256_load_ps(t + 8 * k), shift));
  const __m256 q = _mm256_mul_ps(_mm256_add_ps(s0, s1), inv_n);
  *hi = _mm256_add_ps(shift, q);
  *lo = _mm256_add_ps(_mm256_sub_ps(shift, *hi), q);
  __m256 v0 = _mm256_setzero_ps(), v1 = v0;
  for (k = 0; k + 2 <= n; k += 2) {
    const __m256 d0 = _mm256_sub_ps(_mm256_sub_ps(_mm256_load_ps(t + 8 * k), *hi), *lo);
    const __m256 d1 = _mm256_sub_ps(_mm256_sub_ps(_mm256_load_ps(t + 8 * k + 8), *hi), *lo);
    v0 = _mm256_fmadd_ps(d0, d0, v0);
    v1 = _mm256_fmadd_ps(d1, d1, v1);
  }
  if (k < n) {
    const __m256 d = _mm256_sub_ps(_mm256_sub_ps(_mm256_load_ps(t + 8 * k), *hi), *lo);
    v0 = _mm256_fmadd_ps(d, d, v0);
  }
  *m2 = _mm256_add_ps(v0, v1);
}
}  // namespace

void layernorm_blocks_f32(const float* x, const float* wl, const float* bl, float* y, float* mean,
                          float* rstd, int64_t blocks, const ShortRowLanes& L, float eps,
                          bool stream) {
  const int64_t n = L.n, B = 8 * n;
  ShortGroupScratch T(n);
  __m256 hi[kShortGroup], nlo[kShortGroup], rs[kShortGroup];
  const __m256 inv_n = _mm256_set1_ps(1.f / static_cast<float>(n));
  for (int64_t b = 0; b < blocks; ++b) {
    prefetch_block_ahead(x + b * B, n);
    columns_store(x + b * B, n, T[b]);
  }
  for (int64_t b = 0; b < blocks; ++b) {
    __m256 lo, m2;
    block_moments(T[b], n, &hi[b], &lo, &m2);
    const __m256 var = _mm256_fmadd_ps(m2, inv_n, _mm256_set1_ps(eps));
    rs[b] = _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_sqrt_ps(var));
    nlo[b] = _mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), lo), rs[b]);
    _mm256_storeu_ps(mean + 8 * b, _mm256_add_ps(hi[b], lo));
    _mm256_storeu_ps(rstd + 8 * b, rs[b]);
  }
  for (int64_t b = 0; b < blocks; ++b) {
    const float* xb = x + b * B;
    // y = ((x - hi) rstd - lo rstd) w + b
    write_block(y + b * B, n, stream, [&](int64_t v) {
      const int32_t* rows = L.row + 8 * v;
      const __m256 xh =
          _mm256_fmadd_ps(_mm256_sub_ps(_mm256_loadu_ps(xb + 8 * v), per_row(hi[b], rows)),
                          per_row(rs[b], rows), per_row(nlo[b], rows));
      if (wl)
        return _mm256_fmadd_ps(xh, _mm256_load_ps(wl + 8 * v),
                               bl ? _mm256_load_ps(bl + 8 * v) : _mm256_setzero_ps());
      return bl ? _mm256_add_ps(xh, _mm256_load_ps(bl + 8 * v)) : xh;
    });
  }
}

void var_blocks_f32(const float* x, float* y, int64_t blocks, int64_t n, double scale) {
  const int64_t B = 8 * n;
  ShortGroupScratch T(n);
  for (int64_t b = 0; b < blocks; ++b) {
    prefetch_block_ahead(x + b * B, n);
    columns_store(x + b * B, n, T[b]);
  }
  for (int64_t b = 0; b < blocks; ++b) {
    __m256 hi, lo, m2;
    block_moments(T[b], n, &hi, &lo, &m2);
    _mm256_storeu_ps(y + 8 * b, _mm256_mul_ps(m2, _mm256_set1_ps(static_cast<float>(scale))));
  }
}

void layernorm_blocks_backward_f32(const float* dy, const float* x, const float* mean,
                                   const float* rstd, const float* wl, float* dx, float* tw,
                                   float* tb, int64_t blocks, const ShortRowLanes& L, bool stream) {
  const int64_t n = L.n, B = 8 * n;
  const __m256 inv_n = _mm256_set1_ps(1.f / static_cast<float>(n));
  // per block: g = dy w and g xhat in the block's layout, for their row sums
  alignas(32) float G[kShortRowMax * 8], GX[kShortRowMax * 8];
  __m256 a[kShortGroup], c[kShortGroup];  // rstd sum(g) / n and rstd sum(g xhat) / n a row
  for (int64_t b = 0; b < blocks; ++b) {
    const float *xb = x + b * B, *gb = dy + b * B;
    prefetch_block_ahead(xb, n);
    prefetch_block_ahead(gb, n);
    const __m256 mv = _mm256_loadu_ps(mean + 8 * b), rv = _mm256_loadu_ps(rstd + 8 * b);
    for (int64_t v = 0; v < n; ++v) {
      const int32_t* rows = L.row + 8 * v;
      const __m256 d = _mm256_loadu_ps(gb + 8 * v);
      const __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xb + 8 * v), per_row(mv, rows)),
                                      per_row(rv, rows));
      const __m256 g = wl ? _mm256_mul_ps(d, _mm256_load_ps(wl + 8 * v)) : d;
      _mm256_store_ps(G + 8 * v, g);
      _mm256_store_ps(GX + 8 * v, _mm256_mul_ps(g, xh));
      if (tw) _mm256_store_ps(tw + 8 * v, _mm256_fmadd_ps(d, xh, _mm256_load_ps(tw + 8 * v)));
      if (tb) _mm256_store_ps(tb + 8 * v, _mm256_add_ps(d, _mm256_load_ps(tb + 8 * v)));
    }
    a[b] = _mm256_mul_ps(rv, _mm256_mul_ps(columns_sum(G, n), inv_n));
    c[b] = _mm256_mul_ps(rv, _mm256_mul_ps(columns_sum(GX, n), inv_n));
    // dx = rstd (g - sum(g) / n - xhat sum(g xhat) / n)
    //    = rstd g - (a + (x - mean) (rstd c)),  xhat = (x - mean) rstd
    const __m256 rc = _mm256_mul_ps(rv, c[b]);
    write_block(dx + b * B, n, stream, [&](int64_t v) {
      const int32_t* rows = L.row + 8 * v;
      const __m256 t =
          _mm256_fmadd_ps(_mm256_sub_ps(_mm256_loadu_ps(xb + 8 * v), per_row(mv, rows)),
                          per_row(rc, rows), per_row(a[b], rows));
      return _mm256_fmsub_ps(per_row(rv, rows), _mm256_load_ps(G + 8 * v), t);
    });
  }
}

}  // namespace smyrf::kernels::cpu::avx2
