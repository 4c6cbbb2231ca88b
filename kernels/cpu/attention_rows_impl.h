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
    const __m128 q = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 p = _mm_add_ps(q, _mm_movehl_ps(q, q));
    s[jj] = _mm_cvtss_f32(_mm_add_ss(p, _mm_shuffle_ps(p, p, 1)));
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
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
  const float m = _mm_cvtss_f32(h);
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
  acc0 = _mm256_add_ps(acc0, acc1);
  __m128 t = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));
  t = _mm_add_ps(t, _mm_movehl_ps(t, t));
  *l = _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
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
  accumulate_rows(dq + i * d, d, s, k, d, kj, nk);
  for (int64_t b = 0; b < nk; ++b) {
    const int64_t j = kj[b];
    if (s[b] != T(0)) axpy(dk + j * d, s[b], qa, d);
    if (dp[b] != T(0)) axpy(dvv + j * dv, dp[b], da, dv);
  }
}

}  // namespace smyrf::kernels::cpu::SMYRF_ISA_NS
