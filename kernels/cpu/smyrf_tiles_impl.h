// Internal to smyrf_avx2.cpp: GEMM-shaped float32 kernels for one SMYRF cluster (at most 128
// queries and 128 keys), used by the non-causal drivers in smyrf_impl.h when the pair term and the
// dropout are absent (multiset semantics, or the first round under set semantics).
//
// A cluster is small enough to be done in one key tile, so there is no online softmax: its q, k,
// v (and dout) rows are gathered once into packed contiguous buffers (the permutation costs that
// gather anyway) and every product runs through one register-blocked micro-kernel,
//   C (R x 16) = A (R x K, row stride lda) * B (K x 16, row stride ldb),   R <= 6,
// 12 accumulators, 2 loads and R broadcasts per k step (FMA-bound on AVX2).
//   forward:  S = Q K^T, P = exp(scale S - m) row-wise, O = P V / l, lse = m + log l
//   backward: S, P = exp(scale S - lse_global), dP = dO V^T, dS = scale P o (dP - D),
//             dQ += dS K, dK += dS^T Q, dV += P^T dO
// with P^T and dS^T read in place by a micro-kernel variant that broadcasts along A^T rows (the
// key tiles K^T and V^T come from 8x8 register transposes). Results agree with the generic tile
// code up to float rounding (the AVX2-vs-scalar tests cover both paths).
//
// Requirements (checked by smyrf_tiles_ok): nq, nk <= 128, d and dv multiples of 8, <= 128.
#pragma once
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "kernels/cpu/transpose_avx2.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cpu/attention_impl.h"
#include "kernels/cpu/row_math_avx2.h"

namespace smyrf::kernels::cpu::SMYRF_ISA_NS {

constexpr int64_t kTileRows = 128;  // queries or keys per cluster tile (row stride of S, P^T)
constexpr int64_t kTileFeat = 128;  // largest d, dv

// Head widths that are not multiples of 8 are packed zero-padded to the next multiple (round8):
// the padding adds nothing to the products, and only the first d / dv columns are written back.
// (BigGAN's attention has d = channels / 8 = 2-4 at the CPU configuration's widths: it took the
// two-row block kernels.)
inline bool smyrf_tiles_ok(int64_t cq, int64_t ck, int64_t d, int64_t dv) {
  return cq <= kTileRows && ck <= kTileRows && d <= kTileFeat && dv <= kTileFeat && d > 0 && dv > 0;
}
inline int64_t round8(int64_t w) { return (w + 7) & ~int64_t(7); }

// Thread-local packed buffers of one cluster (about 0.6 MiB at 128 x 128; a 64-cluster with
// d = 64 touches about 110 KiB of them).
struct TileScratch {
  std::vector<float> qp, kp, vp, dop;  // (128, d|dv) gathered rows
  std::vector<float> kt, vt;           // (d|dv, 128) transposed keys / values
  std::vector<float> s, dp;            // (128, 128): scores / P, dP / dS
  std::vector<float> c;                // (128, 128) product result before scatter
  std::vector<float> rm, rl;           // (128 + 8): per-query scaled max and sum (forward)
  TileScratch()
      : qp(kTileRows * kTileFeat),
        kp(kTileRows * kTileFeat),
        vp(kTileRows * kTileFeat),
        dop(kTileRows * kTileFeat),
        kt(kTileFeat * kTileRows),
        vt(kTileFeat * kTileRows),
        s(kTileRows * kTileRows),
        dp(kTileRows * kTileRows),
        c(kTileRows * kTileFeat),
        rm(kTileRows + 8),
        rl(kTileRows + 8) {}
};

// The rows a later cluster tile will gather or scatter into, prefetched towards L2 while the
// current tile computes: a few lines before each micro-tile of its products (pace() spreads them
// evenly; bursts of a strip's worth, ~60 lines, stalled on the miss buffers). The sorted order
// defeats the hardware prefetcher. (One line per 4 k steps inside the micro-kernel loop measured
// 10% slower.) Segments are (base, row length w in floats, row
// indices, count); w = 1 serves lse and D. finish() issues what the products did not.
struct RowPrefetch {
  struct Seg {
    const float* base;
    int64_t w;
    const int32_t* idx;
    int64_t n;
  };
  static constexpr int kMaxSegs = 10;
  Seg seg[kMaxSegs];
  int nseg = 0, cur = 0;
  int64_t row = 0, col = 0, per_step = 0;
  void clear() { nseg = cur = 0, row = col = per_step = 0; }
  void add(const float* base, int64_t w, const int32_t* idx, int64_t n) {
    if (n > 0 && nseg < kMaxSegs) seg[nseg++] = Seg{base, w, idx, n};
  }
  void line() {
    if (cur >= nseg) return;
    const Seg& g = seg[cur];
    _mm_prefetch(
        reinterpret_cast<const char*>(g.base + static_cast<int64_t>(g.idx[row]) * g.w + col),
        _MM_HINT_T1);
    col += 16;
    if (col >= g.w) {
      col = 0;
      if (++row == g.n) row = 0, ++cur;
    }
  }
  // Spreads the lines over `steps` calls of step().
  void pace(int64_t steps) {
    int64_t lines = 0;
    for (int i = 0; i < nseg; ++i) lines += seg[i].n * ((seg[i].w + 15) / 16);
    per_step = steps > 0 ? (lines + steps - 1) / steps : lines;
  }
  void step() {
    for (int64_t t = 0; t < per_step && cur < nseg; ++t) line();
  }
  void finish() {
    while (cur < nseg) line();
  }
};

// Number of RowPrefetch::step() calls tile_gemm makes for an M x N product (one per micro-tile).
inline int64_t gemm_steps(int64_t m, int64_t n) { return (m + 5) / 6 * ((n + 15) / 16); }

// C[r][0..W) = sum_k A[r * lda + k] * B[k * ldb + 0..W) for r < R, W = 8 * NV (NV 1 or 2);
// Named accumulators (not an array): GCC keeps an __m256 array in memory and stores it after
// every multiply-add.
#define SMYRF_TILE_ROW(r, kk)                                                         \
  if constexpr (R > r) {                                                              \
    const __m256 a = _mm256_broadcast_ss(TA ? A + (kk)*lda + r : A + r * lda + (kk)); \
    c##r##0 = _mm256_fmadd_ps(a, b0, c##r##0);                                        \
    if constexpr (NV == 2) c##r##1 = _mm256_fmadd_ps(a, b1, c##r##1);                 \
  }
#define SMYRF_TILE_K(kk)                                                \
  {                                                                     \
    const __m256 b0 = _mm256_loadu_ps(B + (kk)*ldb);                    \
    const __m256 b1 = NV == 2 ? _mm256_loadu_ps(B + (kk)*ldb + 8) : b0; \
    SMYRF_TILE_ROW(0, kk)                                               \
    SMYRF_TILE_ROW(1, kk)                                               \
    SMYRF_TILE_ROW(2, kk)                                               \
    SMYRF_TILE_ROW(3, kk)                                               \
    SMYRF_TILE_ROW(4, kk)                                               \
    SMYRF_TILE_ROW(5, kk)                                               \
  }
#define SMYRF_TILE_STORE(r)                                            \
  if constexpr (R > r) {                                               \
    _mm256_storeu_ps(C + r * ldc, c##r##0);                            \
    if constexpr (NV == 2) _mm256_storeu_ps(C + r * ldc + 8, c##r##1); \
  }
template <int R, int NV, bool TA>
inline void tile_mk(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t K, float* C,
                    int64_t ldc) {
  static_assert(R >= 1 && R <= 6 && (NV == 1 || NV == 2), "6 x 16 register tile at most");
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t k = 0; k < K; ++k) SMYRF_TILE_K(k)
  SMYRF_TILE_STORE(0)
  SMYRF_TILE_STORE(1)
  SMYRF_TILE_STORE(2)
  SMYRF_TILE_STORE(3)
  SMYRF_TILE_STORE(4)
  SMYRF_TILE_STORE(5)
}
#undef SMYRF_TILE_K
#undef SMYRF_TILE_ROW
#undef SMYRF_TILE_STORE

template <int R, bool TA>
inline void tile_rows(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t K,
                      int64_t N, float* C, int64_t ldc, RowPrefetch* pf) {
  int64_t j = 0;
  for (; j + 16 <= N; j += 16) {
    if (pf) pf->step();
    tile_mk<R, 2, TA>(A, lda, B + j, ldb, K, C + j, ldc);
  }
  if (j < N) {
    if (pf) pf->step();
    tile_mk<R, 1, TA>(A, lda, B + j, ldb, K, C + j, ldc);
  }
}

// C (M x N) = A (M x K) B (K x N); N a multiple of 8, M any; with TA, A is given as its
// transpose (K x M, stride lda): the micro-kernel's broadcasts then walk a row of it, so P^T and
// dS^T need no transposed copies. pf (nullable) takes one step per micro-tile.
template <bool TA = false>
inline void tile_gemm(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t M,
                      int64_t N, int64_t K, float* C, int64_t ldc, RowPrefetch* pf = nullptr) {
  auto rows = [&](int64_t i) { return TA ? A + i : A + i * lda; };  // the strip's A origin
  int64_t i = 0;
  for (; i + 6 <= M; i += 6) tile_rows<6, TA>(rows(i), lda, B, ldb, K, N, C + i * ldc, ldc, pf);
  const float* a = rows(i);
  float* c = C + i * ldc;
  switch (M - i) {
    case 5:
      tile_rows<5, TA>(a, lda, B, ldb, K, N, c, ldc, pf);
      break;
    case 4:
      tile_rows<4, TA>(a, lda, B, ldb, K, N, c, ldc, pf);
      break;
    case 3:
      tile_rows<3, TA>(a, lda, B, ldb, K, N, c, ldc, pf);
      break;
    case 2:
      tile_rows<2, TA>(a, lda, B, ldb, K, N, c, ldc, pf);
      break;
    case 1:
      tile_rows<1, TA>(a, lda, B, ldb, K, N, c, ldc, pf);
      break;
    default:
      break;
  }
}

inline void transpose8(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  ::smyrf::kernels::cpu::avx2::transpose8x8_ps(r);
  for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + i * ldd, r[i]);
}

// dst (cols x rows8, stride ldd) = src (rows8 x cols)^T for rows8 = n rounded up to 8 and cols a
// multiple of 8; src rows n..rows8-1 must be readable (their results are never used).
inline void transpose_tile(const float* src, int64_t lds, int64_t n, int64_t cols, float* dst,
                           int64_t ldd) {
  for (int64_t i = 0; i < n; i += 8)
    for (int64_t c = 0; c < cols; c += 8)
      transpose8(src + i * lds + c, lds, dst + c * ldd + i, ldd);
}

// Brings rows idx[0..n) of y (length w floats) towards L2: the rows a cluster will
// read-modify-write (merge into out, scatter into dq/dk/dv) arrive while its products run.
inline void prefetch_rows(const float* y, int64_t w, const int32_t* idx, int64_t n) {
  for (int64_t a = 0; a < n; ++a)
    for (int64_t c = 0; c < w; c += 16)
      _mm_prefetch(reinterpret_cast<const char*>(y + static_cast<int64_t>(idx[a]) * w + c),
                   _MM_HINT_T1);
}

// Packs rows idx[0..n) of x (row length w, stride w) into out (stride round8(w), the columns
// past w zero), rows n..n8 zero.
inline void pack_rows(const float* x, int64_t w, const int32_t* idx, int64_t n, float* out) {
  const int64_t w8 = round8(w);
  constexpr int64_t kAhead = 6;  // rows in flight: the sorted order defeats the prefetcher
  for (int64_t a = 0; a < std::min(n, kAhead); ++a)
    for (int64_t c = 0; c < w; c += 16)
      _mm_prefetch(reinterpret_cast<const char*>(x + static_cast<int64_t>(idx[a]) * w + c),
                   _MM_HINT_T0);
  for (int64_t a = 0; a < n; ++a) {
    if (a + kAhead < n)
      for (int64_t c = 0; c < w; c += 16)
        _mm_prefetch(
            reinterpret_cast<const char*>(x + static_cast<int64_t>(idx[a + kAhead]) * w + c),
            _MM_HINT_T0);
    const float* src = x + static_cast<int64_t>(idx[a]) * w;
    int64_t c = 0;
    for (; c + 8 <= w; c += 8) _mm256_storeu_ps(out + a * w8 + c, _mm256_loadu_ps(src + c));
    if (c < w)  // masked lanes load 0: the padding
      _mm256_storeu_ps(out + a * w8 + c, _mm256_maskload_ps(src + c, tail_mask(w - c)));
  }
  const int64_t n8 = (n + 7) & ~int64_t(7);
  for (int64_t a = n; a < n8; ++a)
    for (int64_t c = 0; c < w8; c += 8) _mm256_storeu_ps(out + a * w8 + c, _mm256_setzero_ps());
}

// Packs rows idx[0..n) of x and their transpose (round8(w) x kTileRows; columns n..n8 zero).
inline void pack_rows_t(const float* x, int64_t w, const int32_t* idx, int64_t n, float* rows,
                        float* t) {
  pack_rows(x, w, idx, n, rows);
  const int64_t n8 = (n + 7) & ~int64_t(7), w8 = round8(w);
  transpose_tile(rows, w8, n8, w8, t, kTileRows);  // columns >= n8 are never read (N = n8)
}

// dst[0..w) = v's first w lanes (w <= 8 left at the end of a row: a masked store past it).
inline void store_head(float* dst, int64_t left, __m256 v) {
  if (left >= 8)
    _mm256_storeu_ps(dst, v);
  else
    _mm256_maskstore_ps(dst, tail_mask(left), v);
}
inline __m256 load_head(const float* src, int64_t left) {
  return left >= 8 ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, tail_mask(left));
}

inline float hmax8(__m256 x) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
inline float hsum8(__m256 x) {
  __m128 m = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  m = _mm_add_ps(m, _mm_movehl_ps(m, m));
  m = _mm_add_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

// Causal masking of a tile (TileCausal, attention_impl.h): the rest of a row's scores become
// -inf (P = 0 there, forward and backward).
inline void mask_causal(float* s, const int32_t* qi, int64_t nq, int64_t nk8, TileCausal c) {
  if (!c.on) return;
  const float ninf = neg_inf<float>();
  for (int64_t a = 0; a < nq; ++a) {
    const int64_t keep =
        c.kj ? std::upper_bound(c.kj, c.kj + c.nk, qi[a]) - c.kj : qi[a] + c.delta + 1;
    if (keep >= nk8) continue;
    float* sr = s + a * kTileRows;
    for (int64_t j = keep < 0 ? 0 : keep; j < nk8; ++j) sr[j] = ninf;
  }
}

// One cluster, forward, merged into the running result of the earlier rounds: for the queries qi
// against the keys kj, with this round's o = P V / l and lse_r = m + log l,
//   out[qi] <- ca out[qi] + cb o,  lse[qi] <- M + log(wa + wb),
//   M = max(lse, lse_r), wa = exp(lse - M), wb = exp(lse_r - M), ca = wa / (wa + wb), cb = wb / ..
// (lse = -inf, out = 0 before a query's first round). out and lse are the (N, dv) and (N) arrays of
// this bh. The merge runs 8 queries per vector (exp/log of vec_math_avx2.h) and folds 1/l into cb.
// With first (the query's first round), out and lse are only written: out[qi] = o, lse[qi] =
// lse_r, whatever they held (the caller need not clear them, and their rows are not read).
// nq, nk >= 1; pf (nullable) is paced over the two products.
inline void tile_forward_merge(const float* q, const float* k, const float* v, int64_t d,
                               int64_t dv, const int32_t* qi, int64_t nq, const int32_t* kj,
                               int64_t nk, float scale, float* out, float* lse, TileScratch& ts,
                               RowPrefetch* pf = nullptr, bool first = false,
                               TileCausal causal = {}) {
  float* qp = ts.qp.data();
  float* s = ts.s.data();
  float* o = ts.c.data();
  float* rm = ts.rm.data();  // scale * row max of S
  float* rl = ts.rl.data();  // row sums of P
  const int64_t d8 = round8(d), dv8 = round8(dv);
  if (pf) pf->pace(gemm_steps(nq, (nk + 7) & ~int64_t(7)) + gemm_steps(nq, dv8));
  pack_rows(q, d, qi, nq, qp);
  pack_rows_t(k, d, kj, nk, ts.kp.data(), ts.kt.data());
  pack_rows(v, dv, kj, nk, ts.vp.data());
  const int64_t nk8 = (nk + 7) & ~int64_t(7);
  tile_gemm(qp, d8, ts.kt.data(), kTileRows, nq, nk8, d8, s, kTileRows, pf);
  mask_causal(s, qi, nq, nk8, causal);
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256 tail = _mm256_castsi256_ps(tail_mask(nk - (nk8 - 8)));  // last 8-key group
  const __m256 ninf = _mm256_set1_ps(neg_inf<float>());
  for (int64_t a = 0; a < nq; ++a) {
    float* sr = s + a * kTileRows;
    // scale > 0, so the max of the raw scores gives the max of the scaled ones; the padded
    // columns (zero scores) are masked out of the max and of P.
    __m256 mx = ninf;
    for (int64_t j = 0; j + 8 < nk8; j += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(sr + j));
    mx = _mm256_max_ps(mx, _mm256_blendv_ps(ninf, _mm256_loadu_ps(sr + nk8 - 8), tail));
    const float m = hmax8(mx) * scale;
    const __m256 vm = _mm256_set1_ps(m);
    __m256 sum = _mm256_setzero_ps();
    for (int64_t j = 0; j < nk8; j += 8) {
      __m256 e = avx2::exp_row_ps(_mm256_fmsub_ps(_mm256_loadu_ps(sr + j), vs, vm));
      if (j + 8 == nk8) e = _mm256_and_ps(e, tail);
      _mm256_storeu_ps(sr + j, e);
      sum = _mm256_add_ps(sum, e);
    }
    rm[a] = m;
    rl[a] = hsum8(sum);
  }
  tile_gemm(s, kTileRows, ts.vp.data(), dv8, nq, dv8, nk, o, dv8, pf);
  if (first) {  // the merge with lse = -inf: out = o / l, lse = m + log l
    for (int64_t a0 = 0; a0 < nq; a0 += 8) {
      const int64_t cnt = std::min<int64_t>(8, nq - a0);
      alignas(32) float cb[8], nl[8];
      const __m256 valid = _mm256_castsi256_ps(tail_mask(cnt));
      const __m256 vl = _mm256_blendv_ps(_mm256_set1_ps(1.0f), _mm256_loadu_ps(rl + a0), valid);
      _mm256_store_ps(
          nl, _mm256_add_ps(_mm256_and_ps(_mm256_loadu_ps(rm + a0), valid), avx2::log_ps(vl)));
      _mm256_store_ps(cb, _mm256_div_ps(_mm256_set1_ps(1.0f), vl));
      for (int64_t t = 0; t < cnt; ++t) {
        const int64_t i = qi[a0 + t];
        lse[i] = nl[t];
        float* dst = out + i * dv;
        const float* src = o + (a0 + t) * dv8;
        const __m256 vb = _mm256_set1_ps(cb[t]);
        for (int64_t c = 0; c < dv; c += 8)
          store_head(dst + c, dv - c, _mm256_mul_ps(vb, _mm256_loadu_ps(src + c)));
      }
    }
    return;
  }
  for (int64_t a0 = 0; a0 < nq; a0 += 8) {
    const int64_t cnt = std::min<int64_t>(8, nq - a0);
    alignas(32) float old[8], ca[8], cb[8], nl[8];
    for (int64_t t = 0; t < 8; ++t) old[t] = t < cnt ? lse[qi[a0 + t]] : 0.0f;
    const __m256 valid = _mm256_castsi256_ps(tail_mask(cnt));
    const __m256 one = _mm256_set1_ps(1.0f);
    // lanes past cnt: m = 0, l = 1 (finite, discarded)
    const __m256 vl = _mm256_blendv_ps(one, _mm256_loadu_ps(rl + a0), valid);
    const __m256 vr =
        _mm256_add_ps(_mm256_and_ps(_mm256_loadu_ps(rm + a0), valid), avx2::log_ps(vl));
    const __m256 vo = _mm256_load_ps(old);
    const __m256 mm = _mm256_max_ps(vo, vr);                       // vr is finite: mm too
    const __m256 wa = avx2::exp_nonpos_ps(_mm256_sub_ps(vo, mm));  // -inf -> 0
    const __m256 wb = avx2::exp_nonpos_ps(_mm256_sub_ps(vr, mm));
    const __m256 sw = _mm256_add_ps(wa, wb);
    _mm256_store_ps(ca, _mm256_div_ps(wa, sw));
    _mm256_store_ps(cb, _mm256_div_ps(wb, _mm256_mul_ps(sw, vl)));
    _mm256_store_ps(nl, _mm256_add_ps(mm, avx2::log_ps(sw)));
    for (int64_t t = 0; t < cnt; ++t) {
      const int64_t i = qi[a0 + t];
      lse[i] = nl[t];
      float* dst = out + i * dv;
      const float* src = o + (a0 + t) * dv8;
      const __m256 va = _mm256_set1_ps(ca[t]), vb = _mm256_set1_ps(cb[t]);
      for (int64_t c = 0; c < dv; c += 8)
        store_head(dst + c, dv - c,
                   _mm256_fmadd_ps(vb, _mm256_loadu_ps(src + c),
                                   _mm256_mul_ps(va, load_head(dst + c, dv - c))));
    }
  }
}

// rows idx[a] of y (stride w) += c rows a (stride round8(w)), a < n; with store, = instead of
// +=.
inline void scatter_add(float* y, int64_t w, const int32_t* idx, int64_t n, const float* c,
                        bool store = false) {
  const int64_t w8 = round8(w);
  if (store) {
    for (int64_t a = 0; a < n; ++a) {
      float* dst = y + static_cast<int64_t>(idx[a]) * w;
      for (int64_t e = 0; e < w; e += 8)
        store_head(dst + e, w - e, _mm256_loadu_ps(c + a * w8 + e));
    }
    return;
  }
  for (int64_t a = 0; a < n; ++a) {
    float* dst = y + static_cast<int64_t>(idx[a]) * w;
    for (int64_t e = 0; e < w; e += 8)
      store_head(dst + e, w - e,
                 _mm256_add_ps(load_head(dst + e, w - e), _mm256_loadu_ps(c + a * w8 + e)));
  }
}

// One cluster, backward with the global lse and D = dout . out per query (indexed by query row):
// adds the cluster's contributions into dq rows qi and dk, dv rows kj. nq, nk >= 1. With first
// (the rows' first round), the contributions are stored instead (the rows need no clearing).
inline void tile_backward(const float* q, const float* k, const float* v, int64_t d, int64_t dv,
                          const int32_t* qi, int64_t nq, const int32_t* kj, int64_t nk, float scale,
                          const float* lse, const float* dsum, const float* dout, float* dq,
                          float* dk, float* dvv, TileScratch& ts, RowPrefetch* pf = nullptr,
                          bool first = false, TileCausal causal = {}) {
  float* qp = ts.qp.data();
  float* dop = ts.dop.data();
  float* s = ts.s.data();
  float* dp = ts.dp.data();
  float* c = ts.c.data();
  const int64_t d8 = round8(d), dv8 = round8(dv);
  if (pf)
    pf->pace(2 * gemm_steps(nq, (nk + 7) & ~int64_t(7)) + gemm_steps(nq, d8) + gemm_steps(nk, dv8) +
             gemm_steps(nk, d8));
  pack_rows(q, d, qi, nq, qp);
  pack_rows(dout, dv, qi, nq, dop);
  pack_rows_t(k, d, kj, nk, ts.kp.data(), ts.kt.data());
  pack_rows_t(v, dv, kj, nk, ts.vp.data(), ts.vt.data());
  const int64_t nk8 = (nk + 7) & ~int64_t(7);
  tile_gemm(qp, d8, ts.kt.data(), kTileRows, nq, nk8, d8, s, kTileRows, pf);
  mask_causal(s, qi, nq, nk8, causal);
  tile_gemm(dop, dv8, ts.vt.data(), kTileRows, nq, nk8, dv8, dp, kTileRows, pf);
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256i tail = tail_mask(nk - (nk8 - 8));
  for (int64_t a = 0; a < nq; ++a) {
    float* sr = s + a * kTileRows;
    float* dr = dp + a * kTileRows;
    const float li = lse[qi[a]];
    if (li == neg_inf<float>()) {  // no key in any round: no gradient
      for (int64_t j = 0; j < nk8; j += 8) {
        _mm256_storeu_ps(sr + j, _mm256_setzero_ps());
        _mm256_storeu_ps(dr + j, _mm256_setzero_ps());
      }
      continue;
    }
    const __m256 vl = _mm256_set1_ps(li), vd = _mm256_set1_ps(dsum[qi[a]]);
    for (int64_t j = 0; j < nk8; j += 8) {
      // scale s - lse <= 0 up to rounding: the global lse covers every co-clustered key
      __m256 p = avx2::exp_row_ps(_mm256_fmsub_ps(_mm256_loadu_ps(sr + j), vs, vl));
      if (j + 8 == nk8) p = _mm256_and_ps(p, _mm256_castsi256_ps(tail));
      _mm256_storeu_ps(sr + j, p);
      const __m256 ds =
          _mm256_mul_ps(_mm256_mul_ps(p, vs), _mm256_sub_ps(_mm256_loadu_ps(dr + j), vd));
      _mm256_storeu_ps(dr + j, ds);
    }
  }
  // dQ = dS K
  tile_gemm(dp, kTileRows, ts.kp.data(), d8, nq, d8, nk, c, d8, pf);
  scatter_add(dq, d, qi, nq, c, first);
  // dV = P^T dO, dK = dS^T Q (A read transposed from s and dp; K = nq rows of them)
  tile_gemm<true>(s, kTileRows, dop, dv8, nk, dv8, nq, c, dv8, pf);
  scatter_add(dvv, dv, kj, nk, c, first);
  tile_gemm<true>(dp, kTileRows, qp, d8, nk, d8, nq, c, d8, pf);
  scatter_add(dk, d, kj, nk, c, first);
}

}  // namespace smyrf::kernels::cpu::SMYRF_ISA_NS
#endif
