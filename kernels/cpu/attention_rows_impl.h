// Internal to kernels/cpu/smyrf*.cpp: attention of ONE query row to its own explicit key list,
// compiled once per instruction set (include after attention_impl.h, with SMYRF_ISA_NS defined).
//
// Causal SMYRF gives every query its own window of past keys, so no two queries share a key
// tile. block_forward/block_backward with a single row spent most of their time building the
// transposed key (and value) tiles that the row then used once (perf on gpt-4096-smyrf: 36% of
// the training step in gather_transposed). Here the key rows are read in place: scores are dot
// products of the query with the listed rows, and outputs and gradients are accumulated from or
// into those rows directly. Same semantics as block_forward/block_backward with nq == 1 (pair
// terms, dropout on the probability, -inf rows give zeros).
#pragma once
#ifndef SMYRF_ISA_NS
#error "define SMYRF_ISA_NS before including kernels/cpu/attention_rows_impl.h"
#endif
#include "kernels/cpu/attention_impl.h"

namespace smyrf::kernels::cpu::SMYRF_ISA_NS {

// s[jj] = x . base[idx[jj] * ld + 0..n) for jj < nb.
template <typename T>
inline void dots_rows(const T* x, int64_t n, const T* base, int64_t ld, const int32_t* idx,
                      int64_t nb, T* s) {
  for (int64_t jj = 0; jj < nb; ++jj) {
    const T* r = base + static_cast<int64_t>(idx[jj]) * ld;
    T acc = 0;
    for (int64_t c = 0; c < n; ++c) acc += x[c] * r[c];
    s[jj] = acc;
  }
}

// The two-query versions (rows2_forward / rows2_backward): s0 = x0 . rows, s1 = x1 . rows, and
// rows += w0 x0 + w1 x1 with zero-weight terms skipped.
template <typename T>
inline void dots_rows2(const T* x0, const T* x1, int64_t n, const T* base, int64_t ld,
                       const int32_t* idx, int64_t nb, T* s0, T* s1) {
  dots_rows(x0, n, base, ld, idx, nb, s0);
  dots_rows(x1, n, base, ld, idx, nb, s1);
}
template <typename T>
inline void axpy2_rows(T* y, int64_t ld, int64_t n, const T* w0, const T* x0, const T* w1,
                       const T* x1, const int32_t* idx, int64_t nb) {
  for (int64_t jj = 0; jj < nb; ++jj) {
    T* r = y + static_cast<int64_t>(idx[jj]) * ld;
    if (w0[jj] != T(0)) axpy(r, w0[jj], x0, n);
    if (w1[jj] != T(0)) axpy(r, w1[jj], x1, n);
  }
}

#if defined(__AVX2__) && defined(__FMA__)
// The 8 sums of a0..a7 in one vector (lane t: the sum of a_t's lanes).
inline __m256 hsum_8x8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5, __m256 a6,
                       __m256 a7) {
  // hadd pairs neighbouring lanes: h0123 holds a0..a3's half sums, low halves then high halves
  const __m256 h0123 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  const __m256 h4567 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
  return _mm256_add_ps(_mm256_permute2f128_ps(h0123, h4567, 0x20),
                       _mm256_permute2f128_ps(h0123, h4567, 0x31));
}

// The 8-, 4-, 2- and 1-row paths reduce each row's 8 lanes in the same order,
// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)): a row's dot does not depend on where it
// falls in the list, which rows2_forward relies on (causal outputs bit-identical whatever the
// partner query).
inline float hsum_like_8x8(__m256 a) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, a), a);
  return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
}

// Eight rows per pass (8 independent accumulator chains: with 4, the FMA latency bounded the
// loop), one horizontal reduction for all eight; then four, then one at a time.
inline void dots_rows(const float* x, int64_t n, const float* base, int64_t ld, const int32_t* idx,
                      int64_t nb, float* s) {
  const int64_t n8 = n & ~int64_t(7);
  const __m256i tail = tail_mask(n - n8);
  int64_t jj = 0;
  for (; jj + 8 <= nb; jj += 8) {
    const float* r[8];
    for (int t = 0; t < 8; ++t) r[t] = base + static_cast<int64_t>(idx[jj + t]) * ld;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (int64_t c = 0; c < n8; c += 8) {
      const __m256 xv = _mm256_loadu_ps(x + c);
      a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r[0] + c), a0);
      a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r[1] + c), a1);
      a2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r[2] + c), a2);
      a3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r[3] + c), a3);
      a4 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r[4] + c), a4);
      a5 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r[5] + c), a5);
      a6 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r[6] + c), a6);
      a7 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r[7] + c), a7);
    }
    if (n8 < n) {
      const __m256 xv = _mm256_maskload_ps(x + n8, tail);
      a0 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(r[0] + n8, tail), a0);
      a1 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(r[1] + n8, tail), a1);
      a2 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(r[2] + n8, tail), a2);
      a3 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(r[3] + n8, tail), a3);
      a4 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(r[4] + n8, tail), a4);
      a5 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(r[5] + n8, tail), a5);
      a6 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(r[6] + n8, tail), a6);
      a7 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(r[7] + n8, tail), a7);
    }
    _mm256_storeu_ps(s + jj, hsum_8x8(a0, a1, a2, a3, a4, a5, a6, a7));
  }
  for (; jj + 4 <= nb; jj += 4) {
    const float* r0 = base + static_cast<int64_t>(idx[jj]) * ld;
    const float* r1 = base + static_cast<int64_t>(idx[jj + 1]) * ld;
    const float* r2 = base + static_cast<int64_t>(idx[jj + 2]) * ld;
    const float* r3 = base + static_cast<int64_t>(idx[jj + 3]) * ld;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t c = 0; c < n8; c += 8) {
      const __m256 xv = _mm256_loadu_ps(x + c);
      a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r0 + c), a0);
      a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r1 + c), a1);
      a2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r2 + c), a2);
      a3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r3 + c), a3);
    }
    if (n8 < n) {
      const __m256 xv = _mm256_maskload_ps(x + n8, tail);
      a0 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(r0 + n8, tail), a0);
      a1 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(r1 + n8, tail), a1);
      a2 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(r2 + n8, tail), a2);
      a3 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(r3 + n8, tail), a3);
    }
    // [a0 a1 a2 a3] -> four sums: hadd pairs lanes, then fold the two 128-bit halves.
    const __m256 h01 = _mm256_hadd_ps(a0, a1), h23 = _mm256_hadd_ps(a2, a3);
    const __m256 h = _mm256_hadd_ps(h01, h23);
    _mm_storeu_ps(s + jj, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  }
  for (; jj < nb; ++jj) {
    const float* r = base + static_cast<int64_t>(idx[jj]) * ld;
    __m256 a = _mm256_setzero_ps();
    for (int64_t c = 0; c < n8; c += 8)
      a = _mm256_fmadd_ps(_mm256_loadu_ps(x + c), _mm256_loadu_ps(r + c), a);
    if (n8 < n)
      a = _mm256_fmadd_ps(_mm256_maskload_ps(x + n8, tail), _mm256_maskload_ps(r + n8, tail), a);
    s[jj] = hsum_like_8x8(a);
  }
}

// s0[jj] = x0 . row, s1[jj] = x1 . row for the rows idx[jj]: each loaded row serves both dots,
// four rows a pass; every dot bit-identical to dots_rows'.
inline void dots_rows2(const float* x0, const float* x1, int64_t n, const float* base, int64_t ld,
                       const int32_t* idx, int64_t nb, float* s0, float* s1) {
  const int64_t n8 = n & ~int64_t(7);
  const __m256i tail = tail_mask(n - n8);
  int64_t jj = 0;
  for (; jj + 4 <= nb; jj += 4) {
    const float* r[4];
    for (int t = 0; t < 4; ++t) r[t] = base + static_cast<int64_t>(idx[jj + t]) * ld;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    auto step = [&](__m256 u, __m256 w, __m256 k0, __m256 k1, __m256 k2, __m256 k3) {
      a0 = _mm256_fmadd_ps(u, k0, a0);
      a1 = _mm256_fmadd_ps(u, k1, a1);
      a2 = _mm256_fmadd_ps(u, k2, a2);
      a3 = _mm256_fmadd_ps(u, k3, a3);
      b0 = _mm256_fmadd_ps(w, k0, b0);
      b1 = _mm256_fmadd_ps(w, k1, b1);
      b2 = _mm256_fmadd_ps(w, k2, b2);
      b3 = _mm256_fmadd_ps(w, k3, b3);
    };
    for (int64_t c = 0; c < n8; c += 8)
      step(_mm256_loadu_ps(x0 + c), _mm256_loadu_ps(x1 + c), _mm256_loadu_ps(r[0] + c),
           _mm256_loadu_ps(r[1] + c), _mm256_loadu_ps(r[2] + c), _mm256_loadu_ps(r[3] + c));
    if (n8 < n)
      step(_mm256_maskload_ps(x0 + n8, tail), _mm256_maskload_ps(x1 + n8, tail),
           _mm256_maskload_ps(r[0] + n8, tail), _mm256_maskload_ps(r[1] + n8, tail),
           _mm256_maskload_ps(r[2] + n8, tail), _mm256_maskload_ps(r[3] + n8, tail));
    alignas(32) float h[8];
    _mm256_store_ps(h, hsum_8x8(a0, a1, a2, a3, b0, b1, b2, b3));
    for (int t = 0; t < 4; ++t) s0[jj + t] = h[t], s1[jj + t] = h[4 + t];
  }
  for (; jj < nb; ++jj) {
    const float* r = base + static_cast<int64_t>(idx[jj]) * ld;
    __m256 a = _mm256_setzero_ps(), b = a;
    for (int64_t c = 0; c < n8; c += 8) {
      const __m256 k = _mm256_loadu_ps(r + c);
      a = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + c), k, a);
      b = _mm256_fmadd_ps(_mm256_loadu_ps(x1 + c), k, b);
    }
    if (n8 < n) {
      const __m256 k = _mm256_maskload_ps(r + n8, tail);
      a = _mm256_fmadd_ps(_mm256_maskload_ps(x0 + n8, tail), k, a);
      b = _mm256_fmadd_ps(_mm256_maskload_ps(x1 + n8, tail), k, b);
    }
    s0[jj] = hsum_like_8x8(a);
    s1[jj] = hsum_like_8x8(b);
  }
}

// Rows idx[jj] of y (stride ld, n columns) += w0[jj] x0 + w1[jj] x1, a zero weight's term
// skipped (as two axpy passes would, in the same order), one read-modify-write of each row.
inline void axpy2_rows(float* y, int64_t ld, int64_t n, const float* w0, const float* x0,
                       const float* w1, const float* x1, const int32_t* idx, int64_t nb) {
  const int64_t n8 = n & ~int64_t(7);
  const __m256i tail = tail_mask(n - n8);
  for (int64_t jj = 0; jj < nb; ++jj) {
    float* r = y + static_cast<int64_t>(idx[jj]) * ld;
    if (w0[jj] == 0.f || w1[jj] == 0.f) {
      if (w0[jj] != 0.f) axpy(r, w0[jj], x0, n);
      if (w1[jj] != 0.f) axpy(r, w1[jj], x1, n);
      continue;
    }
    const __m256 u = _mm256_set1_ps(w0[jj]), w = _mm256_set1_ps(w1[jj]);
    for (int64_t c = 0; c < n8; c += 8)
      _mm256_storeu_ps(r + c, _mm256_fmadd_ps(w, _mm256_loadu_ps(x1 + c),
                                              _mm256_fmadd_ps(u, _mm256_loadu_ps(x0 + c),
                                                              _mm256_loadu_ps(r + c))));
    if (n8 < n)
      _mm256_maskstore_ps(r + n8, tail,
                          _mm256_fmadd_ps(w, _mm256_maskload_ps(x1 + n8, tail),
                                          _mm256_fmadd_ps(u, _mm256_maskload_ps(x0 + n8, tail),
                                                          _mm256_maskload_ps(r + n8, tail))));
  }
}
#endif

// The softmax numerators of one row: with score(b) = scale * s[b] + pair(0, b) and m their max
// (NaN scores are passed over), s[b] <- exp(score(b) - m) and *l = their sum. Returns m; when it
// is -inf (no finite score) s is left as scores.
template <typename T, typename Pair>
inline T softmax_numerators(T* s, int64_t nk, T scale, Pair& pair, T* l) {
  T m = neg_inf<T>();
  for (int64_t b = 0; b < nk; ++b) {
    s[b] *= scale;
    if constexpr (!std::is_same_v<Pair, NoPair>) s[b] += pair(0, b);
    m = s[b] > m ? s[b] : m;
  }
  if (m == neg_inf<T>()) return m;
  for (int64_t b = 0; b < nk; ++b) s[b] -= m;
  exp_inplace(s, nk);
  T sum = 0;
  for (int64_t b = 0; b < nk; ++b) sum += s[b];
  *l = sum;
  return m;
}

#if defined(__AVX2__) && defined(__FMA__)
// Without a pair term, in vectors: the scalar loops' max and sum were chains of one dependent
// operation per key (~1100 of the ~4900 cycles of a causal SMYRF query round, d = 64, 160 keys).
// The same exp256 as exp_inplace; the sum is taken in 8 lanes (rounding differs from the scalar
// twin's serial sum).
inline float softmax_numerators(float* s, int64_t nk, float scale, NoPair&, float* l) {
  const __m256 vs = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(neg_inf<float>());
  const int64_t n8 = nk & ~int64_t(7);
  const __m256i tail = tail_mask(nk - n8);
  __m256 mx = ninf;
  for (int64_t b = 0; b < n8; b += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(s + b), vs);
    _mm256_storeu_ps(s + b, v);
    mx = _mm256_max_ps(v, mx);  // a NaN v leaves mx (max_ps returns its second operand)
  }
  if (n8 < nk) {
    const __m256 v = _mm256_mul_ps(_mm256_maskload_ps(s + n8, tail), vs);
    _mm256_maskstore_ps(s + n8, tail, v);
    mx = _mm256_max_ps(_mm256_blendv_ps(ninf, v, _mm256_castsi256_ps(tail)), mx);
  }
  const float m = ::smyrf::kernels::cpu::avx2::hmax_ps(mx);
  if (m == neg_inf<float>()) return m;
  const __m256 vm = _mm256_set1_ps(m);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
  int64_t b = 0;
  for (; b + 16 <= n8; b += 16) {
    const __m256 e0 = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + b), vm));
    const __m256 e1 = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + b + 8), vm));
    _mm256_storeu_ps(s + b, e0);
    _mm256_storeu_ps(s + b + 8, e1);
    acc0 = _mm256_add_ps(acc0, e0);
    acc1 = _mm256_add_ps(acc1, e1);
  }
  for (; b < n8; b += 8) {
    const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + b), vm));
    _mm256_storeu_ps(s + b, e);
    acc0 = _mm256_add_ps(acc0, e);
  }
  if (n8 < nk) {
    const __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_maskload_ps(s + n8, tail), vm)),
                                   _mm256_castsi256_ps(tail));
    _mm256_maskstore_ps(s + n8, tail, e);
    acc0 = _mm256_add_ps(acc0, e);
  }
  *l = ::smyrf::kernels::cpu::avx2::hsum_ps(_mm256_add_ps(acc0, acc1));
  return m;
}
#endif

// Attention of the query row qa to the nk rows kj[] of k (stride d) and v (stride dv):
// score(b) = scale * qa . k[kj[b]] + pair(0, b), probabilities times drop(0, b). Writes the
// normalised output o (dv) and *lse; no finite score gives o = 0 and lse = -inf. s: nk scratch.
template <typename T, typename Pair, typename Drop>
void row_forward(const T* qa, const T* k, const T* v, int64_t d, int64_t dv, const int32_t* kj,
                 int64_t nk, T scale, Pair pair, Drop drop, T* o, T* lse, T* s) {
  std::fill(o, o + dv, T(0));
  *lse = neg_inf<T>();
  if (nk == 0) return;
  dots_rows(qa, d, k, d, kj, nk, s);
  T l = 0;
  const T m = softmax_numerators(s, nk, scale, pair, &l);
  if (m == neg_inf<T>()) return;
  if constexpr (!std::is_same_v<Drop, NoDrop>) {
    for (int64_t b = 0; b < nk; ++b) s[b] *= drop(0, b);
  }
  accumulate_rows(o, dv, s, v, dv, kj, nk);
  const T inv = T(1) / l;
  for (int64_t c = 0; c < dv; ++c) o[c] *= inv;
  *lse = m + std::log(l);
}

// Backward weights of one query from its scores s = q . k_b and dp = dout . v_b (nk of each),
// in place: s <- scale dS_b = scale P_b (z_b dp_b - D_i), dp <- P_b z_b, with P_b = exp(scale
// s_b + pair(0, b) - lse_i) and z_b = drop(0, b).
template <typename T, typename Pair, typename Drop>
inline void backward_weights(T* s, T* dp, int64_t nk, T scale, Pair& pair, Drop& drop, T lse_i,
                             T dsum_i) {
  for (int64_t b = 0; b < nk; ++b) {
    s[b] *= scale;
    if constexpr (!std::is_same_v<Pair, NoPair>) s[b] += pair(0, b);
    s[b] -= lse_i;
  }
  exp_inplace(s, nk);  // P
  for (int64_t b = 0; b < nk; ++b) {
    T pz = s[b];
    if constexpr (!std::is_same_v<Drop, NoDrop>) {
      const T z = drop(0, b);
      dp[b] *= z;  // dL/dP = z dout . v
      pz *= z;
    }
    s[b] = scale * s[b] * (dp[b] - dsum_i);  // scale * dS
    dp[b] = pz;                              // dv uses P z
  }
}

// dk[kj[b]] += ds[b] qa, dv[kj[b]] += pz[b] da, zero weights skipped.
template <typename T>
inline void scatter_key_grads(const T* ds, const T* pz, const T* qa, const T* da, int64_t d,
                              int64_t dv, const int32_t* kj, int64_t nk, T* dk, T* dvv) {
  for (int64_t b = 0; b < nk; ++b) {
    const int64_t j = kj[b];
    if (ds[b] != T(0)) axpy(dk + j * d, ds[b], qa, d);
    if (pz[b] != T(0)) axpy(dvv + j * dv, pz[b], da, dv);
  }
}

// Gradient contributions of the pairs (i, kj[b]) given the global lse_i and D_i = dout_i . out_i:
// dq[i] += sum_b scale dS_b k_b, dk[kj[b]] += scale dS_b q_i, dv[kj[b]] += P_b z_b dout_i, with
// P_b = exp(score(b) - lse_i) recomputed. Rows kj[] may repeat (each occurrence counts once, as
// a multiset). s, dp: nk scratch each. The caller skips rows with lse_i = -inf.
template <typename T, typename Pair, typename Drop>
void row_backward(const T* q, const T* k, const T* v, int64_t d, int64_t dv, int64_t i,
                  const int32_t* kj, int64_t nk, T scale, Pair pair, Drop drop, T lse_i, T dsum_i,
                  const T* dout, T* dq, T* dk, T* dvv, T* s, T* dp) {
  if (nk == 0) return;
  const T* qa = q + i * d;
  const T* da = dout + i * dv;
  dots_rows(qa, d, k, d, kj, nk, s);
  dots_rows(da, dv, v, dv, kj, nk, dp);
  backward_weights(s, dp, nk, scale, pair, drop, lse_i, dsum_i);
  accumulate_rows(dq + i * d, d, s, k, d, kj, nk);
  scatter_key_grads(s, dp, qa, da, d, dv, kj, nk, dk, dvv);
}

// Two queries at once (rows2_forward / rows2_backward): their key lists kj0 (n0 keys) and kj1
// (n1) share the runs kj0[off0 + t] == kj1[off1 + t], t < n, which are read once for both.
struct SharedRun {
  int64_t off0, off1, n;
};

// Visits the two lists in order: single(w, b, e) for a stretch [b, e) of list w alone, shared(run)
// for a shared run. Runs are disjoint and increasing in both lists; each list's stretches come in
// increasing order, so per-list sums keep the one-query order.
template <typename Single, typename Shared>
inline void walk_two_lists(int64_t n0, int64_t n1, const SharedRun* runs, int nruns, Single single,
                           Shared shared) {
  int64_t p0 = 0, p1 = 0;
  for (int t = 0; t < nruns; ++t) {
    const SharedRun& r = runs[t];
    if (r.off0 > p0) single(0, p0, r.off0);
    if (r.off1 > p1) single(1, p1, r.off1);
    if (r.n > 0) shared(r);
    p0 = r.off0 + r.n, p1 = r.off1 + r.n;
  }
  if (p0 < n0) single(0, p0, n0);
  if (p1 < n1) single(1, p1, n1);
}

// row_forward (no pair term, no dropout) for two queries qa[0], qa[1] with key lists kj[w] (nk[w]
// keys) sharing `runs`. Each query's o[w] / lse[w] is bit-identical to row_forward's for it alone:
// its dots (the same per-row reduction on every dots path), its softmax (on its own scores, in
// its own order) and each output column's chain of multiply-adds (the same keys in the same
// order) see the same numbers, so a causal query's output does not depend on its partner.
// s[w]: nk[w] scratch.
template <typename T>
void rows2_forward(const T* const qa[2], const T* k, const T* v, int64_t d, int64_t dv,
                   const int32_t* const kj[2], const int64_t nk[2], const SharedRun* runs,
                   int nruns, T scale, T* const o[2], T lse[2], T* const s[2]) {
  walk_two_lists(
      nk[0], nk[1], runs, nruns,
      [&](int w, int64_t b, int64_t e) { dots_rows(qa[w], d, k, d, kj[w] + b, e - b, s[w] + b); },
      [&](const SharedRun& r) {
        dots_rows2(qa[0], qa[1], d, k, d, kj[0] + r.off0, r.n, s[0] + r.off0, s[1] + r.off1);
      });
  NoPair none;
  T l[2] = {0, 0}, m[2];
  bool live[2];
  for (int w = 0; w < 2; ++w) {
    std::fill(o[w], o[w] + dv, T(0));
    m[w] = nk[w] > 0 ? softmax_numerators(s[w], nk[w], scale, none, &l[w]) : neg_inf<T>();
    live[w] = m[w] != neg_inf<T>();
  }
  walk_two_lists(
      nk[0], nk[1], runs, nruns,
      [&](int w, int64_t b, int64_t e) {
        if (live[w]) accumulate_rows(o[w], dv, s[w] + b, v, dv, kj[w] + b, e - b);
      },
      [&](const SharedRun& r) {
        if (live[0] && live[1])
          accumulate_rows2(o[0], o[1], dv, s[0] + r.off0, s[1] + r.off1, v, dv, kj[0] + r.off0,
                           r.n);
        else if (live[0] || live[1])
          live[0] ? accumulate_rows(o[0], dv, s[0] + r.off0, v, dv, kj[0] + r.off0, r.n)
                  : accumulate_rows(o[1], dv, s[1] + r.off1, v, dv, kj[1] + r.off1, r.n);
      });
  for (int w = 0; w < 2; ++w) {
    lse[w] = neg_inf<T>();
    if (!live[w]) continue;
    const T inv = T(1) / l[w];
    for (int64_t c = 0; c < dv; ++c) o[w][c] *= inv;
    lse[w] = m[w] + std::log(l[w]);
  }
}

// row_backward (no pair term, no dropout) for the two queries i[0] != i[1] with key lists kj[w]
// sharing `runs`: shared key rows are read, and their dk / dv rows read and written, once for
// both. s[w], dp[w]: nk[w] scratch each.
template <typename T>
void rows2_backward(const T* q, const T* k, const T* v, int64_t d, int64_t dv, const int64_t i[2],
                    const int32_t* const kj[2], const int64_t nk[2], const SharedRun* runs,
                    int nruns, T scale, const T lse[2], const T dsum[2], const T* dout, T* dq,
                    T* dk, T* dvv, T* const s[2], T* const dp[2]) {
  const T* qa[2] = {q + i[0] * d, q + i[1] * d};
  const T* da[2] = {dout + i[0] * dv, dout + i[1] * dv};
  walk_two_lists(
      nk[0], nk[1], runs, nruns,
      [&](int w, int64_t b, int64_t e) {
        dots_rows(qa[w], d, k, d, kj[w] + b, e - b, s[w] + b);
        dots_rows(da[w], dv, v, dv, kj[w] + b, e - b, dp[w] + b);
      },
      [&](const SharedRun& r) {
        dots_rows2(qa[0], qa[1], d, k, d, kj[0] + r.off0, r.n, s[0] + r.off0, s[1] + r.off1);
        dots_rows2(da[0], da[1], dv, v, dv, kj[0] + r.off0, r.n, dp[0] + r.off0, dp[1] + r.off1);
      });
  NoPair none;
  NoDrop keep;
  for (int w = 0; w < 2; ++w)
    backward_weights(s[w], dp[w], nk[w], scale, none, keep, lse[w], dsum[w]);
  walk_two_lists(
      nk[0], nk[1], runs, nruns,
      [&](int w, int64_t b, int64_t e) {
        accumulate_rows(dq + i[w] * d, d, s[w] + b, k, d, kj[w] + b, e - b);
        scatter_key_grads(s[w] + b, dp[w] + b, qa[w], da[w], d, dv, kj[w] + b, e - b, dk, dvv);
      },
      [&](const SharedRun& r) {
        const int32_t* keys = kj[0] + r.off0;
        accumulate_rows2(dq + i[0] * d, dq + i[1] * d, d, s[0] + r.off0, s[1] + r.off1, k, d, keys,
                         r.n);
        axpy2_rows(dk, d, d, s[0] + r.off0, qa[0], s[1] + r.off1, qa[1], keys, r.n);
        axpy2_rows(dvv, dv, dv, dp[0] + r.off0, da[0], dp[1] + r.off1, da[1], keys, r.n);
      });
}

}  // namespace smyrf::kernels::cpu::SMYRF_ISA_NS
