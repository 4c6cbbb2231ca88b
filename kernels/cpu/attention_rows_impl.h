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
// Four rows per pass (independent accumulator chains), one horizontal reduction for all four.
inline void dots_rows(const float* x, int64_t n, const float* base, int64_t ld, const int32_t* idx,
                      int64_t nb, float* s) {
  const int64_t n8 = n & ~int64_t(7);
  const __m256i tail = tail_mask(n - n8);
  int64_t jj = 0;
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
  T m = neg_inf<T>();
  for (int64_t b = 0; b < nk; ++b) {
    s[b] *= scale;
    if constexpr (!std::is_same_v<Pair, NoPair>) s[b] += pair(0, b);
    m = s[b] > m ? s[b] : m;
  }
  if (m == neg_inf<T>()) return;
  for (int64_t b = 0; b < nk; ++b) s[b] -= m;
  exp_inplace(s, nk);
  T l = 0;
  for (int64_t b = 0; b < nk; ++b) l += s[b];
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
