// Internal to kernels/cpu/attention*.cpp and smyrf*.cpp: the tile kernels shared by dense and
// SMYRF attention, compiled once per instruction set.
//
// A translation unit defines SMYRF_ISA_NS (scalar or avx2) before including this file; everything
// lands in smyrf::kernels::cpu::SMYRF_ISA_NS, so the copies built with and without -mavx2 never
// merge at link time. The code is written so the compiler vectorises the inner loops (contiguous
// loops over keys of a transposed tile, or over the feature dimension); the only hand-written
// intrinsics are the float exp used by the AVX2 build.
//
// block_forward / block_backward work on an explicit list of query rows (qi) and key rows (kj)
// of one (batch, head): dense attention passes tiles of consecutive rows, SMYRF passes the sorted
// members of a cluster. They are the single code path of every attention here, so the SMYRF ==
// dense-with-log-M oracle also checks the dense kernel and the other way round.
#pragma once
#ifndef SMYRF_ISA_NS
#error "define SMYRF_ISA_NS before including kernels/cpu/attention_impl.h"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cpu/attention.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "kernels/cpu/vec_math_avx2.h"
#endif

namespace smyrf::kernels::cpu::SMYRF_ISA_NS {

constexpr int64_t kKeyTile = 64;     // keys per transposed tile
constexpr int64_t kQueryBlock = 64;  // queries per block_forward call in the drivers
constexpr int64_t kBwdRows = 32;     // query rows per register-blocked dk/dv update in backward

// Marker types: no additive pair term, no dropout. Compile-time so the common path has no calls.
// Causal masking of a packed tile (smyrf_tiles_impl.h's mask_causal) whose keys are consecutive
// from j0 (dense causal attention): query i may see key j when j <= i + off, so row a keeps its
// first qi[a] + delta + 1 columns (delta = off - j0). With kj (the tile's nk key indices,
// ascending; causal SMYRF's block of real keys) row a keeps the columns of the keys j <= qi[a]
// instead. Callers pass only rows that see at least the tile's first key.
struct TileCausal {
  bool on = false;
  int64_t delta = 0;
  const int32_t* kj = nullptr;
  int64_t nk = 0;
};

struct NoPair {
  template <typename T>
  T operator()(int64_t, int64_t) const {
    return T(0);
  }
};
struct NoDrop {
  template <typename T>
  T operator()(int64_t, int64_t) const {
    return T(1);
  }
};

// Dropout multiplier of pair (qi[a], kj[b]) from the counter-based hash (attention.h).
template <typename T>
struct HashDrop {
  uint64_t seed;
  int64_t bh;
  uint32_t threshold;
  T keep_scale;
  const int32_t* qi;
  const int32_t* kj;
  T operator()(int64_t a, int64_t b) const {
    return attention_dropout_keep(seed, bh, qi[a], kj[b], threshold) ? keep_scale : T(0);
  }
};

template <typename T>
struct Workspace {
  std::vector<T> kt, vt, s, dp, m, l, dk_acc, dv_acc, o, lse, pt, dst;
  std::vector<int32_t> rows, alist;
  void reserve(int64_t d, int64_t dv, int64_t nq) {
    pt.resize(kKeyTile * kBwdRows);
    dst.resize(kKeyTile * kBwdRows);
    rows.resize(kBwdRows);
    alist.resize(kBwdRows);
    kt.resize(kKeyTile * d);
    vt.resize(kKeyTile * dv);
    s.resize(2 * kKeyTile);
    dp.resize(2 * kKeyTile);
    dk_acc.resize(kKeyTile * d);
    dv_acc.resize(kKeyTile * dv);
    m.resize(nq);
    l.resize(nq);
    o.resize(nq * dv);
    lse.resize(nq);
  }
};

template <typename T>
constexpr T neg_inf() {
  return -std::numeric_limits<T>::infinity();
}

// x[j] <- exp(x[j]); -inf gives 0.
inline void exp_inplace(double* x, int64_t n) {
  for (int64_t j = 0; j < n; ++j) x[j] = std::exp(x[j]);
}

#if defined(__AVX2__) && defined(__FMA__)
// Cephes-style exp: range reduction by ln 2 split in two parts, degree-6 polynomial, exponent
// built in the integer unit. About 1 ulp on [-87, 88]; inputs below -87.3 (and -inf) give 0.
inline __m256 exp256(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.33654f);
  const __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.0f));
  const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  return _mm256_andnot_ps(underflow, y);
}
inline void exp_inplace(float* x, int64_t n) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(x + j, exp256(_mm256_loadu_ps(x + j)));
  if (j < n) {
    alignas(32) float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t t = 0; t < n - j; ++t) tmp[t] = x[j + t];
    _mm256_store_ps(tmp, exp256(_mm256_load_ps(tmp)));
    for (int64_t t = 0; t < n - j; ++t) x[j + t] = tmp[t];
  }
}
#else
inline void exp_inplace(float* x, int64_t n) {
  for (int64_t j = 0; j < n; ++j) x[j] = std::exp(x[j]);
}
#endif

// kt[c * kKeyTile + jj] = k[kj[jj] * ldk + c]: keys of the tile as columns, so the score loop
// runs over contiguous keys. Columns nb..kKeyTile-1 are zero, so the micro-kernels below always
// run full tiles (no tail code in the hot loop).
template <typename T>
inline void gather_transposed(const T* k, int64_t ldk, int64_t d, const int32_t* kj, int64_t nb,
                              T* kt) {
  for (int64_t jj = 0; jj < nb; ++jj) {
    const T* row = k + static_cast<int64_t>(kj[jj]) * ldk;
    for (int64_t c = 0; c < d; ++c) kt[c * kKeyTile + jj] = row[c];
  }
  if (nb < kKeyTile)
    for (int64_t c = 0; c < d; ++c)
      std::fill(kt + c * kKeyTile + nb, kt + (c + 1) * kKeyTile, T(0));
}

// s[jj] = sum_c x[c] * t[c * kKeyTile + jj] for all kKeyTile columns of a transposed tile.
template <typename T>
inline void row_times_tile(const T* x, const T* t, int64_t d, T* s) {
  for (int64_t jj = 0; jj < kKeyTile; ++jj) s[jj] = T(0);
  for (int64_t c = 0; c < d; ++c) {
    const T xc = x[c];
    const T* tr = t + c * kKeyTile;
    for (int64_t jj = 0; jj < kKeyTile; ++jj) s[jj] += xc * tr[jj];
  }
}

// y[0..n) += a * x[0..n)
template <typename T>
inline void axpy(T* y, T a, const T* x, int64_t n) {
  for (int64_t c = 0; c < n; ++c) y[c] += a * x[c];
}

// o[0..n) += sum_jj w[jj] * base[idx[jj] * ld + 0..n), skipping zero weights.
template <typename T>
inline void accumulate_rows(T* o, int64_t n, const T* w, const T* base, int64_t ld,
                            const int32_t* idx, int64_t nb) {
  for (int64_t jj = 0; jj < nb; ++jj)
    if (w[jj] != T(0)) axpy(o, w[jj], base + static_cast<int64_t>(idx[jj]) * ld, n);
}

// Two rows at once: s0 = x0 . tile, s1 = x1 . tile (the AVX2 build shares each tile load).
template <typename T>
inline void rows2_times_tile(const T* x0, const T* x1, const T* t, int64_t d, T* s0, T* s1) {
  row_times_tile(x0, t, d, s0);
  row_times_tile(x1, t, d, s1);
}

// o0 += sum_jj w0[jj] base[idx[jj]], o1 += sum_jj w1[jj] base[idx[jj]]; o0 and o1 must differ.
template <typename T>
inline void accumulate_rows2(T* o0, T* o1, int64_t n, const T* w0, const T* w1, const T* base,
                             int64_t ld, const int32_t* idx, int64_t nb) {
  accumulate_rows(o0, n, w0, base, ld, idx, nb);
  accumulate_rows(o1, n, w1, base, ld, idx, nb);
}

#if defined(__AVX2__) && defined(__FMA__)
static_assert(kKeyTile == 64, "the AVX2 micro-kernels assume 64-key tiles");

inline void row_times_tile(const float* x, const float* t, int64_t d, float* s) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (int64_t c = 0; c < d; ++c) {
    const __m256 b = _mm256_broadcast_ss(x + c);
    const float* r = t + c * kKeyTile;
    a0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r), a0);
    a1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 8), a1);
    a2 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 16), a2);
    a3 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 24), a3);
    a4 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 32), a4);
    a5 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 40), a5);
    a6 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 48), a6);
    a7 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 56), a7);
  }
  _mm256_storeu_ps(s, a0);
  _mm256_storeu_ps(s + 8, a1);
  _mm256_storeu_ps(s + 16, a2);
  _mm256_storeu_ps(s + 24, a3);
  _mm256_storeu_ps(s + 32, a4);
  _mm256_storeu_ps(s + 40, a5);
  _mm256_storeu_ps(s + 48, a6);
  _mm256_storeu_ps(s + 56, a7);
}

using ::smyrf::kernels::cpu::avx2::tail_mask;  // first r of 8 lanes (vec_math_avx2.h)

inline void axpy(float* y, float a, const float* x, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    _mm256_storeu_ps(y + c, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + c), _mm256_loadu_ps(y + c)));
  if (c < n) {
    const __m256i m = tail_mask(n - c);
    _mm256_maskstore_ps(
        y + c, m, _mm256_fmadd_ps(va, _mm256_maskload_ps(x + c, m), _mm256_maskload_ps(y + c, m)));
  }
}

// The last rem (1..31) columns of accumulate_rows in K = ceil(rem / 8) registers, the last one
// masked, across all rows (keys with weight 0 skipped, as in the scalar twin). The masked axpy per
// key it replaces went through memory, each key's store feeding the next key's load: with the
// 4-wide value rows of BigGAN's attention that tail was 9% of a CPU training step.
template <int K>
inline void accumulate_rows_tail(float* o, int64_t rem, const float* w, const float* base,
                                 int64_t ld, const int32_t* idx, int64_t nb) {
  const __m256i m = tail_mask(rem - 8 * (K - 1));
  __m256 a[K];
  for (int k = 0; k < K - 1; ++k) a[k] = _mm256_loadu_ps(o + 8 * k);
  a[K - 1] = _mm256_maskload_ps(o + 8 * (K - 1), m);
  for (int64_t jj = 0; jj < nb; ++jj) {
    if (w[jj] == 0.f) continue;
    const __m256 b = _mm256_broadcast_ss(w + jj);
    const float* r = base + static_cast<int64_t>(idx[jj]) * ld;
    for (int k = 0; k < K - 1; ++k) a[k] = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 8 * k), a[k]);
    a[K - 1] = _mm256_fmadd_ps(b, _mm256_maskload_ps(r + 8 * (K - 1), m), a[K - 1]);
  }
  for (int k = 0; k < K - 1; ++k) _mm256_storeu_ps(o + 8 * k, a[k]);
  _mm256_maskstore_ps(o + 8 * (K - 1), m, a[K - 1]);
}

// Keeps 64 (then 32) output columns in registers across all rows of the tile. Each accumulator
// is a chain of multiply-adds, one link per key: with 4 of them (32 columns) the FMA latency
// bounded the loop at half the FMA ports' rate, so 64-column strips run 8 chains (with the 8-row
// dots_rows, causal SMYRF forward at d = 64 ran 62 -> 58 ms in a library-linked driver, A/B).
inline void accumulate_rows(float* o, int64_t n, const float* w, const float* base, int64_t ld,
                            const int32_t* idx, int64_t nb) {
  int64_t c0 = 0;
  for (; c0 + 64 <= n; c0 += 64) {
    __m256 a0 = _mm256_loadu_ps(o + c0), a1 = _mm256_loadu_ps(o + c0 + 8);
    __m256 a2 = _mm256_loadu_ps(o + c0 + 16), a3 = _mm256_loadu_ps(o + c0 + 24);
    __m256 a4 = _mm256_loadu_ps(o + c0 + 32), a5 = _mm256_loadu_ps(o + c0 + 40);
    __m256 a6 = _mm256_loadu_ps(o + c0 + 48), a7 = _mm256_loadu_ps(o + c0 + 56);
    for (int64_t jj = 0; jj < nb; ++jj) {
      const __m256 b = _mm256_broadcast_ss(w + jj);
      const float* r = base + static_cast<int64_t>(idx[jj]) * ld + c0;
      a0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r), a0);
      a1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 8), a1);
      a2 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 16), a2);
      a3 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 24), a3);
      a4 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 32), a4);
      a5 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 40), a5);
      a6 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 48), a6);
      a7 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 56), a7);
    }
    _mm256_storeu_ps(o + c0, a0);
    _mm256_storeu_ps(o + c0 + 8, a1);
    _mm256_storeu_ps(o + c0 + 16, a2);
    _mm256_storeu_ps(o + c0 + 24, a3);
    _mm256_storeu_ps(o + c0 + 32, a4);
    _mm256_storeu_ps(o + c0 + 40, a5);
    _mm256_storeu_ps(o + c0 + 48, a6);
    _mm256_storeu_ps(o + c0 + 56, a7);
  }
  for (; c0 + 32 <= n; c0 += 32) {
    __m256 a0 = _mm256_loadu_ps(o + c0), a1 = _mm256_loadu_ps(o + c0 + 8);
    __m256 a2 = _mm256_loadu_ps(o + c0 + 16), a3 = _mm256_loadu_ps(o + c0 + 24);
    for (int64_t jj = 0; jj < nb; ++jj) {
      const __m256 b = _mm256_broadcast_ss(w + jj);
      const float* r = base + static_cast<int64_t>(idx[jj]) * ld + c0;
      a0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r), a0);
      a1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 8), a1);
      a2 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 16), a2);
      a3 = _mm256_fmadd_ps(b, _mm256_loadu_ps(r + 24), a3);
    }
    _mm256_storeu_ps(o + c0, a0);
    _mm256_storeu_ps(o + c0 + 8, a1);
    _mm256_storeu_ps(o + c0 + 16, a2);
    _mm256_storeu_ps(o + c0 + 24, a3);
  }
  const int64_t rem = n - c0;
  if (rem > 24)
    accumulate_rows_tail<4>(o + c0, rem, w, base + c0, ld, idx, nb);
  else if (rem > 16)
    accumulate_rows_tail<3>(o + c0, rem, w, base + c0, ld, idx, nb);
  else if (rem > 8)
    accumulate_rows_tail<2>(o + c0, rem, w, base + c0, ld, idx, nb);
  else if (rem > 0)
    accumulate_rows_tail<1>(o + c0, rem, w, base + c0, ld, idx, nb);
}

// 2 rows x 32 keys of accumulators per pass: 6 loads feed 8 multiply-adds (one row: 9 for 8).
inline void rows2_times_tile(const float* x0, const float* x1, const float* t, int64_t d, float* s0,
                             float* s1) {
  for (int64_t h = 0; h < kKeyTile; h += 32) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int64_t c = 0; c < d; ++c) {
      const float* r = t + c * kKeyTile + h;
      const __m256 t0 = _mm256_loadu_ps(r), t1 = _mm256_loadu_ps(r + 8);
      const __m256 t2 = _mm256_loadu_ps(r + 16), t3 = _mm256_loadu_ps(r + 24);
      const __m256 x = _mm256_broadcast_ss(x0 + c), y = _mm256_broadcast_ss(x1 + c);
      a0 = _mm256_fmadd_ps(x, t0, a0);
      a1 = _mm256_fmadd_ps(x, t1, a1);
      a2 = _mm256_fmadd_ps(x, t2, a2);
      a3 = _mm256_fmadd_ps(x, t3, a3);
      b0 = _mm256_fmadd_ps(y, t0, b0);
      b1 = _mm256_fmadd_ps(y, t1, b1);
      b2 = _mm256_fmadd_ps(y, t2, b2);
      b3 = _mm256_fmadd_ps(y, t3, b3);
    }
    _mm256_storeu_ps(s0 + h, a0);
    _mm256_storeu_ps(s0 + h + 8, a1);
    _mm256_storeu_ps(s0 + h + 16, a2);
    _mm256_storeu_ps(s0 + h + 24, a3);
    _mm256_storeu_ps(s1 + h, b0);
    _mm256_storeu_ps(s1 + h + 8, b1);
    _mm256_storeu_ps(s1 + h + 16, b2);
    _mm256_storeu_ps(s1 + h + 24, b3);
  }
}

// Two output rows share each loaded base row: 6 loads per 8 multiply-adds.
inline void accumulate_rows2(float* o0, float* o1, int64_t n, const float* w0, const float* w1,
                             const float* base, int64_t ld, const int32_t* idx, int64_t nb) {
  int64_t c0 = 0;
  for (; c0 + 32 <= n; c0 += 32) {
    __m256 a0 = _mm256_loadu_ps(o0 + c0), a1 = _mm256_loadu_ps(o0 + c0 + 8);
    __m256 a2 = _mm256_loadu_ps(o0 + c0 + 16), a3 = _mm256_loadu_ps(o0 + c0 + 24);
    __m256 b0 = _mm256_loadu_ps(o1 + c0), b1 = _mm256_loadu_ps(o1 + c0 + 8);
    __m256 b2 = _mm256_loadu_ps(o1 + c0 + 16), b3 = _mm256_loadu_ps(o1 + c0 + 24);
    for (int64_t jj = 0; jj < nb; ++jj) {
      const float* r = base + static_cast<int64_t>(idx[jj]) * ld + c0;
      const __m256 r0 = _mm256_loadu_ps(r), r1 = _mm256_loadu_ps(r + 8);
      const __m256 r2 = _mm256_loadu_ps(r + 16), r3 = _mm256_loadu_ps(r + 24);
      const __m256 x = _mm256_broadcast_ss(w0 + jj), y = _mm256_broadcast_ss(w1 + jj);
      a0 = _mm256_fmadd_ps(x, r0, a0);
      a1 = _mm256_fmadd_ps(x, r1, a1);
      a2 = _mm256_fmadd_ps(x, r2, a2);
      a3 = _mm256_fmadd_ps(x, r3, a3);
      b0 = _mm256_fmadd_ps(y, r0, b0);
      b1 = _mm256_fmadd_ps(y, r1, b1);
      b2 = _mm256_fmadd_ps(y, r2, b2);
      b3 = _mm256_fmadd_ps(y, r3, b3);
    }
    _mm256_storeu_ps(o0 + c0, a0);
    _mm256_storeu_ps(o0 + c0 + 8, a1);
    _mm256_storeu_ps(o0 + c0 + 16, a2);
    _mm256_storeu_ps(o0 + c0 + 24, a3);
    _mm256_storeu_ps(o1 + c0, b0);
    _mm256_storeu_ps(o1 + c0 + 8, b1);
    _mm256_storeu_ps(o1 + c0 + 16, b2);
    _mm256_storeu_ps(o1 + c0 + 24, b3);
  }
  if (c0 < n) {
    accumulate_rows(o0 + c0, n - c0, w0, base + c0, ld, idx, nb);
    accumulate_rows(o1 + c0, n - c0, w1, base + c0, ld, idx, nb);
  }
}
#endif

// s[jj] = scale * (q_row . kt[:, jj]) + pair(a, kb + jj) for jj < nb.
template <typename T, typename Pair>
inline void scores_row(const T* qa, const T* kt, int64_t d, int64_t nb, T scale, Pair& pair,
                       int64_t a, int64_t kb, T* s) {
  row_times_tile(qa, kt, d, s);
  for (int64_t jj = 0; jj < nb; ++jj) s[jj] *= scale;
  if constexpr (!std::is_same_v<Pair, NoPair>) {
    for (int64_t jj = 0; jj < nb; ++jj) s[jj] += pair(a, kb + jj);
  }
}

// Attention of the nq query rows qi[] of q to the nk key rows kj[] of k and v, online softmax
// over key tiles. score(a, b) = scale * q[qi[a]] . k[kj[b]] + pair(a, b), where pair returns an
// additive term (0, a bias, or -inf to remove the pair); drop(a, b) is the dropout multiplier on
// the probability (not on the normaliser). Writes o (nq, dv), normalised, and lse (nq); a row
// with no finite score gets o = 0 and lse = -inf.
template <typename T, typename Pair, typename Drop>
void block_forward(const T* q, int64_t ldq, const T* k, int64_t ldk, const T* v, int64_t ldv,
                   int64_t d, int64_t dv, const int32_t* qi, int64_t nq, const int32_t* kj,
                   int64_t nk, T scale, Pair pair, Drop drop, T* o, T* lse, Workspace<T>& ws) {
  T* m = ws.m.data();
  T* l = ws.l.data();
  T* s = ws.s.data();
  T* kt = ws.kt.data();
  for (int64_t a = 0; a < nq; ++a) {
    m[a] = neg_inf<T>();
    l[a] = T(0);
    for (int64_t c = 0; c < dv; ++c) o[a * dv + c] = T(0);
  }
  for (int64_t kb = 0; kb < nk; kb += kKeyTile) {
    const int64_t nb = std::min(kKeyTile, nk - kb);
    gather_transposed(k, ldk, d, kj + kb, nb, kt);
    // Online-softmax update of row a from its raw products sr with the tile; leaves the weights
    // P z in sr and rescales o_a. False when the tile holds no finite score for the row.
    auto softmax_step = [&](int64_t a, T* sr) {
      for (int64_t jj = 0; jj < nb; ++jj) sr[jj] *= scale;
      if constexpr (!std::is_same_v<Pair, NoPair>) {
        for (int64_t jj = 0; jj < nb; ++jj) sr[jj] += pair(a, kb + jj);
      }
      T row_max = neg_inf<T>();
      for (int64_t jj = 0; jj < nb; ++jj) row_max = sr[jj] > row_max ? sr[jj] : row_max;
      if (row_max == neg_inf<T>()) return false;
      const T m_new = row_max > m[a] ? row_max : m[a];
      const T corr = m[a] == neg_inf<T>() ? T(0) : std::exp(m[a] - m_new);
      for (int64_t jj = 0; jj < nb; ++jj) sr[jj] -= m_new;
      exp_inplace(sr, nb);
      T sum = 0;
      for (int64_t jj = 0; jj < nb; ++jj) sum += sr[jj];
      l[a] = l[a] * corr + sum;
      m[a] = m_new;
      if constexpr (!std::is_same_v<Drop, NoDrop>) {
        for (int64_t jj = 0; jj < nb; ++jj) sr[jj] *= drop(a, kb + jj);
      }
      T* oa = o + a * dv;
      if (corr != T(1)) {
        for (int64_t c = 0; c < dv; ++c) oa[c] *= corr;
      }
      return true;
    };
    // Query rows in pairs: the two-row micro-kernels share every load of the key and value rows.
    int64_t a = 0;
    for (; a + 2 <= nq; a += 2) {
      rows2_times_tile(q + static_cast<int64_t>(qi[a]) * ldq,
                       q + static_cast<int64_t>(qi[a + 1]) * ldq, kt, d, s, s + kKeyTile);
      const bool u0 = softmax_step(a, s), u1 = softmax_step(a + 1, s + kKeyTile);
      if (u0 && u1) {
        accumulate_rows2(o + a * dv, o + (a + 1) * dv, dv, s, s + kKeyTile, v, ldv, kj + kb, nb);
      } else if (u0) {
        accumulate_rows(o + a * dv, dv, s, v, ldv, kj + kb, nb);
      } else if (u1) {
        accumulate_rows(o + (a + 1) * dv, dv, s + kKeyTile, v, ldv, kj + kb, nb);
      }
    }
    if (a < nq) {
      row_times_tile(q + static_cast<int64_t>(qi[a]) * ldq, kt, d, s);
      if (softmax_step(a, s)) accumulate_rows(o + a * dv, dv, s, v, ldv, kj + kb, nb);
    }
  }
  for (int64_t a = 0; a < nq; ++a) {
    T* oa = o + a * dv;
    if (l[a] > T(0)) {
      const T inv = T(1) / l[a];
      for (int64_t c = 0; c < dv; ++c) oa[c] *= inv;
      lse[a] = m[a] + std::log(l[a]);
    } else {
      for (int64_t c = 0; c < dv; ++c) oa[c] = T(0);
      lse[a] = neg_inf<T>();
    }
  }
}

// Gradient contributions of the pairs (qi[a], kj[b]) given the global lse and D = dout . out of
// each query (indexed by the query row, like dout): adds into dq rows qi[a] (row stride d) and dk,
// dv rows kj[b] (row strides d and dv). P_ij = exp(score - lse_i) is recomputed, never stored.
// Queries with lse = -inf contribute nothing.
//
// Flash-style tiling: for each key tile (kKeyTile keys, transposed into kt/vt) the queries are
// taken kBwdRows at a time. Per query row the score row, P, dP = dout . v and dS are computed
// against the whole tile and dq gets dS k (register-blocked over the tile's key rows); P z and dS
// are also stored transposed (key-major), so that afterwards dv += (P z)^T dout and
// dk += dS^T q run as register-blocked sums over the block's query rows. That keeps every
// accumulator of the three products in registers instead of a load/store per multiply-add.
template <typename T, typename Pair, typename Drop>
void block_backward(const T* q, const T* k, const T* v, int64_t d, int64_t dv, const int32_t* qi,
                    int64_t nq, const int32_t* kj, int64_t nk, T scale, Pair pair, Drop drop,
                    const T* lse, const T* dsum, const T* dout, T* dq, T* dk, T* dvv,
                    Workspace<T>& ws) {
  T* s = ws.s.data();    // 2 rows of kKeyTile: scores, then P, then scale * dS
  T* dp = ws.dp.data();  // 2 rows of kKeyTile: dout . v
  T* kt = ws.kt.data();
  T* vt = ws.vt.data();
  T* dk_acc = ws.dk_acc.data();
  T* dv_acc = ws.dv_acc.data();
  T* pt = ws.pt.data();    // (kKeyTile, kBwdRows): P z of the block, key-major
  T* dst = ws.dst.data();  // (kKeyTile, kBwdRows): scale * dS of the block, key-major
  int32_t* rows = ws.rows.data();
  int32_t* alist = ws.alist.data();
  for (int64_t kb = 0; kb < nk; kb += kKeyTile) {
    const int64_t nb = std::min(kKeyTile, nk - kb);
    gather_transposed(k, d, d, kj + kb, nb, kt);
    gather_transposed(v, dv, dv, kj + kb, nb, vt);
    std::fill(dk_acc, dk_acc + nb * d, T(0));
    std::fill(dv_acc, dv_acc + nb * dv, T(0));
    // Turns the raw products of block row r (query position a) into P z (pt column r) and
    // scale * dS (in sr and dst column r).
    auto finish_row = [&](int64_t r, int64_t a, T* sr, T* dpr) {
      const int64_t i = qi[a];
      const T lse_i = lse[i];
      for (int64_t jj = 0; jj < nb; ++jj) sr[jj] *= scale;
      if constexpr (!std::is_same_v<Pair, NoPair>) {
        for (int64_t jj = 0; jj < nb; ++jj) sr[jj] += pair(a, kb + jj);
      }
      for (int64_t jj = 0; jj < nb; ++jj) sr[jj] -= lse_i;
      exp_inplace(sr, nb);  // P
      if constexpr (!std::is_same_v<Drop, NoDrop>) {
        for (int64_t jj = 0; jj < nb; ++jj) {
          const T z = drop(a, kb + jj);
          dpr[jj] *= z;                        // dL/dP_ij = z_ij dout_i . v_j
          pt[jj * kBwdRows + r] = sr[jj] * z;  // dv uses P z
        }
      } else {
        for (int64_t jj = 0; jj < nb; ++jj) pt[jj * kBwdRows + r] = sr[jj];
      }
      const T di = dsum[i];
      for (int64_t jj = 0; jj < nb; ++jj) {
        sr[jj] = scale * sr[jj] * (dpr[jj] - di);
        dst[jj * kBwdRows + r] = sr[jj];
      }
    };
    bool any = false;
    for (int64_t a0 = 0; a0 < nq; a0 += kBwdRows) {
      const int64_t a1 = std::min(nq, a0 + kBwdRows);
      int64_t r = 0;
      for (int64_t a = a0; a < a1; ++a) {
        if (lse[qi[a]] == neg_inf<T>()) continue;
        alist[r] = static_cast<int32_t>(a);
        rows[r++] = qi[a];
      }
      if (r == 0) continue;
      any = true;
      int64_t t = 0;
      for (; t + 2 <= r; t += 2) {
        const int64_t i0 = rows[t], i1 = rows[t + 1];
        rows2_times_tile(q + i0 * d, q + i1 * d, kt, d, s, s + kKeyTile);
        rows2_times_tile(dout + i0 * dv, dout + i1 * dv, vt, dv, dp, dp + kKeyTile);
        finish_row(t, alist[t], s, dp);
        finish_row(t + 1, alist[t + 1], s + kKeyTile, dp + kKeyTile);
        if (i0 != i1) {
          accumulate_rows2(dq + i0 * d, dq + i1 * d, d, s, s + kKeyTile, k, d, kj + kb, nb);
        } else {
          accumulate_rows(dq + i0 * d, d, s, k, d, kj + kb, nb);
          accumulate_rows(dq + i1 * d, d, s + kKeyTile, k, d, kj + kb, nb);
        }
      }
      if (t < r) {
        const int64_t i0 = rows[t];
        row_times_tile(q + i0 * d, kt, d, s);
        row_times_tile(dout + i0 * dv, vt, dv, dp);
        finish_row(t, alist[t], s, dp);
        accumulate_rows(dq + i0 * d, d, s, k, d, kj + kb, nb);
      }
      int64_t jj = 0;
      for (; jj + 2 <= nb; jj += 2) {
        accumulate_rows2(dv_acc + jj * dv, dv_acc + (jj + 1) * dv, dv, pt + jj * kBwdRows,
                         pt + (jj + 1) * kBwdRows, dout, dv, rows, r);
        accumulate_rows2(dk_acc + jj * d, dk_acc + (jj + 1) * d, d, dst + jj * kBwdRows,
                         dst + (jj + 1) * kBwdRows, q, d, rows, r);
      }
      if (jj < nb) {
        accumulate_rows(dv_acc + jj * dv, dv, pt + jj * kBwdRows, dout, dv, rows, r);
        accumulate_rows(dk_acc + jj * d, d, dst + jj * kBwdRows, q, d, rows, r);
      }
    }
    if (!any) continue;
    for (int64_t jj = 0; jj < nb; ++jj) {
      const int64_t j = kj[kb + jj];
      axpy(dk + j * d, T(1), dk_acc + jj * d, d);
      axpy(dvv + j * dv, T(1), dv_acc + jj * dv, dv);
    }
  }
}

// D_i = dout_i . out_i over n rows.
template <typename T>
void row_dots(const T* dout, const T* out, int64_t n, int64_t dv, T* dsum) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    T acc = 0;
    for (int64_t c = 0; c < dv; ++c) acc += dout[i * dv + c] * out[i * dv + c];
    dsum[i] = acc;
  }
}

}  // namespace smyrf::kernels::cpu::SMYRF_ISA_NS
