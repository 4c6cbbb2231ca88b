// Internal: the dense attention drivers (tiling, masks, threading) for one instruction set.
// Included by attention.cpp (scalar) and attention_avx2.cpp (avx2) after defining SMYRF_ISA_NS.
#pragma once
#include <algorithm>
#include <numeric>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_impl.h"
#include "kernels/cpu/smyrf_tiles_impl.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace smyrf::kernels::cpu::SMYRF_ISA_NS {

// Everything the dense pair term needs for one bh: bias row block, key mask, causal offset.
template <typename T>
struct DensePair {
  const T* bias;         // (Nq, Nk) of this bh, or null
  const uint8_t* kmask;  // (Nk) of this batch, or null
  int64_t nk;
  int64_t causal_off;  // key j allowed when j <= i + causal_off; huge when not causal
  const int32_t* qi;
  const int32_t* kj;
  T operator()(int64_t a, int64_t b) const {
    const int64_t i = qi[a], j = kj[b];
    if (kmask && !kmask[j]) return neg_inf<T>();
    if (j > i + causal_off) return neg_inf<T>();
    return bias ? bias[i * nk + j] : T(0);
  }
};

// Starts the query rows [i0, i1) of one bh: their outputs zeroed and LSE -inf (what a fully
// masked query keeps), the unmasked ones listed in qi. Returns how many were listed.
template <typename T>
int64_t start_query_rows(const AttentionParams& p, int64_t bh, int64_t i0, int64_t i1, T* out,
                         T* lse, int32_t* qi) {
  const int64_t nq = p.nq, dv = p.dv;
  const uint8_t* qmask = p.query_mask ? p.query_mask + (bh / p.heads) * nq : nullptr;
  int64_t n = 0;
  for (int64_t i = i0; i < i1; ++i) {
    if (!qmask || qmask[i]) qi[n++] = static_cast<int32_t>(i);
    std::fill(out + (bh * nq + i) * dv, out + (bh * nq + i + 1) * dv, T(0));
    lse[bh * nq + i] = neg_inf<T>();
  }
  return n;
}

// Calls f(pair, drop) with the cheapest functor types the parameters allow.
template <typename T, typename F>
void with_dense_functors(const AttentionParams& p, int64_t bh, const T* bias, const int32_t* qi,
                         const int32_t* kj, F&& f) {
  const int64_t b = bh / p.heads;
  const bool has_pair = bias || p.key_mask || p.causal;
  DensePair<T> pair{bias ? bias + bh * p.bias_bh_stride : nullptr,
                    p.key_mask ? p.key_mask + b * p.nk : nullptr,
                    p.nk,
                    p.causal ? p.nk - p.nq : std::numeric_limits<int64_t>::max() / 2,
                    qi,
                    kj};
  if (p.dropout_p > 0) {
    HashDrop<T> drop{p.dropout_seed,
                     bh,
                     attention_dropout_threshold(p.dropout_p),
                     static_cast<T>(1.0 / (1.0 - p.dropout_p)),
                     qi,
                     kj};
    if (has_pair)
      f(pair, drop);
    else
      f(NoPair{}, drop);
  } else {
    if (has_pair)
      f(pair, NoDrop{});
    else
      f(NoPair{}, NoDrop{});
  }
}

#if defined(__AVX2__) && defined(__FMA__)
// Float32 dense attention without bias, key mask or dropout runs through SMYRF's packed 128 x 128
// cluster tiles (smyrf_tiles_impl.h) with the identity as row lists: the forward merges each key
// block into (out, lse) exactly as SMYRF merges its rounds (an online softmax over key blocks),
// the backward is FlashAttention-2's with the global lse. Query masks are row lists. Causal
// attention skips the tiles past a query's horizon, passes a tile only the query rows that see
// its first key, and masks the diagonal tiles' scores (TileCausal): it had taken the two-row
// block kernels, whose backward was ~22% of a GPT-1024 training step.
inline bool dense_tiles_ok(const AttentionParams& p, const void* bias) {
  return !bias && !p.key_mask && p.dropout_p == 0 && p.nk > 0 &&
         smyrf_tiles_ok(kTileRows, kTileRows, p.d, p.dv);
}

// Causal: the key tile from j0 of a causal product, for the ascending query rows qi[0..n): the
// first row that sees key j0 (*first) and the mask of the rows from there. off = nk - nq.
inline TileCausal causal_tile(const AttentionParams& p, const int32_t* qi, int64_t n, int64_t j0,
                              int64_t keys, int64_t* first) {
  if (!p.causal) {
    *first = 0;
    return {};
  }
  const int64_t off = p.nk - p.nq;
  *first = std::lower_bound(qi, qi + n, j0 - off) - qi;  // qi[a] + off >= j0 from here
  // the first passed row sees the fewest keys: the tile needs the mask unless it sees them all
  const bool partial = *first < n && qi[*first] + off - j0 + 1 < keys;
  return TileCausal{partial, off - j0};
}

inline void dense_forward_tiles(const AttentionParams& p, const float* q, const float* k,
                                const float* v, float* out, float* lse) {
  const int64_t BH = p.batch_heads, nq = p.nq, nk = p.nk, d = p.d, dv = p.dv;
  const int64_t qtiles = (nq + kTileRows - 1) / kTileRows;
  std::vector<int32_t> iota(static_cast<size_t>(std::max(nq, nk)));
  std::iota(iota.begin(), iota.end(), 0);
  const float scale = static_cast<float>(p.scale);
#pragma omp parallel
  {
    TileScratch ts;
    std::vector<int32_t> qi(kTileRows);
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t bh = 0; bh < BH; ++bh) {
      for (int64_t t = 0; t < qtiles; ++t) {
        const int64_t i0 = t * kTileRows, i1 = std::min(nq, i0 + kTileRows);
        const int64_t n = start_query_rows(p, bh, i0, i1, out, lse, qi.data());
        if (n == 0) continue;
        for (int64_t j0 = 0; j0 < nk; j0 += kTileRows) {
          const int64_t keys = std::min(kTileRows, nk - j0);
          int64_t a = 0;
          const TileCausal causal = causal_tile(p, qi.data(), n, j0, keys, &a);
          if (a == n) break;  // no row sees this tile's keys, nor any later tile's
          tile_forward_merge(q + bh * nq * d, k + bh * nk * d, v + bh * nk * dv, d, dv,
                             qi.data() + a, n - a, iota.data() + j0, keys, scale,
                             out + bh * nq * dv, lse + bh * nq, ts, nullptr, false, causal);
        }
      }
    }
  }
}
#endif

template <typename T>
void dense_forward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* bias,
                   T* out, T* lse) {
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (std::is_same_v<T, float>) {
    if (dense_tiles_ok(p, bias)) return dense_forward_tiles(p, q, k, v, out, lse);
  }
#endif
  const int64_t BH = p.batch_heads, nq = p.nq, nk = p.nk, d = p.d, dv = p.dv;
  const int64_t tiles = (nq + kQueryBlock - 1) / kQueryBlock;
  std::vector<int32_t> iota_k(static_cast<size_t>(nk));
  std::iota(iota_k.begin(), iota_k.end(), 0);
  const T scale = static_cast<T>(p.scale);
#pragma omp parallel
  {
    Workspace<T> ws;
    ws.reserve(d, dv, kQueryBlock);
    std::vector<int32_t> qi(kQueryBlock);
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t bh = 0; bh < BH; ++bh) {
      for (int64_t t = 0; t < tiles; ++t) {
        const int64_t i0 = t * kQueryBlock, i1 = std::min(nq, i0 + kQueryBlock);
        const int64_t n = start_query_rows(p, bh, i0, i1, out, lse, qi.data());
        if (n == 0) continue;
        // Causal: no key beyond the last query's horizon matters for this tile.
        const int64_t nk_eff = p.causal ? std::min(nk, std::max<int64_t>(0, i1 + nk - nq)) : nk;
        if (nk_eff == 0) continue;
        with_dense_functors<T>(p, bh, bias, qi.data(), iota_k.data(), [&](auto pair, auto drop) {
          block_forward(q + bh * nq * d, d, k + bh * nk * d, d, v + bh * nk * dv, dv, d, dv,
                        qi.data(), n, iota_k.data(), nk_eff, scale, pair, drop, ws.o.data(),
                        ws.lse.data(), ws);
        });
        for (int64_t a = 0; a < n; ++a) {
          std::copy(ws.o.data() + a * dv, ws.o.data() + (a + 1) * dv, out + (bh * nq + qi[a]) * dv);
          lse[bh * nq + qi[a]] = ws.lse[a];
        }
      }
    }
  }
}

template <typename T>
void dense_backward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* bias,
                    const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv_out) {
  const int64_t BH = p.batch_heads, nq = p.nq, nk = p.nk, d = p.d, dv = p.dv;
  std::vector<T> dsum(static_cast<size_t>(BH * nq));
  row_dots(dout, out, BH * nq, dv, dsum.data());
  std::fill(dq, dq + BH * nq * d, T(0));
  std::fill(dk, dk + BH * nk * d, T(0));
  std::fill(dv_out, dv_out + BH * nk * dv, T(0));
  bool tiles = false;
#if defined(__AVX2__) && defined(__FMA__)
  tiles = std::is_same_v<T, float> && dense_tiles_ok(p, bias);
#endif
  // key tile width: the packed tiles take 128 keys (and 128-query blocks) at a time
  const int64_t key_tile = tiles ? int64_t(128) : kKeyTile;  // 128 = kTileRows
  const int64_t ktiles = (nk + key_tile - 1) / key_tile;
  std::vector<int32_t> iota_k(static_cast<size_t>(nk));
  std::iota(iota_k.begin(), iota_k.end(), 0);
  const T scale = static_cast<T>(p.scale);
  int nthreads = 1;
#ifdef _OPENMP
  nthreads = omp_get_max_threads();
#endif
  // Key tiles own disjoint dk/dv rows; dq rows are shared by all key tiles, so each thread sums
  // into a private dq buffer of one bh and the buffers are reduced afterwards (no atomics).
  std::vector<T> dq_private(static_cast<size_t>(nthreads) * nq * d);
#pragma omp parallel num_threads(nthreads)
  {
    // The team may be smaller than requested (nested regions, dynamic adjustment): only the
    // buffers of threads in this team are zeroed and reduced.
    int tid = 0, team = 1;
#ifdef _OPENMP
    tid = omp_get_thread_num();
    team = omp_get_num_threads();
#endif
    T* my_dq = dq_private.data() + static_cast<int64_t>(tid) * nq * d;
    Workspace<T> ws;
    ws.reserve(d, dv, 1);
#if defined(__AVX2__) && defined(__FMA__)
    std::conditional_t<std::is_same_v<T, float>, TileScratch, char> ts;
#endif
    std::vector<int32_t> qi(static_cast<size_t>(nq));
    for (int64_t bh = 0; bh < BH; ++bh) {
      std::fill(my_dq, my_dq + nq * d, T(0));
      const uint8_t* qmask = p.query_mask ? p.query_mask + (bh / p.heads) * nq : nullptr;
      const T* lse_bh = lse + bh * nq;
      // static round-robin, not dynamic: which key tiles feed which thread's private dq must not
      // depend on timing, or the sum below (and so dq) would differ from run to run
#pragma omp for schedule(static, 1)
      for (int64_t t = 0; t < ktiles; ++t) {
        const int64_t j0 = t * key_tile, j1 = std::min(nk, j0 + key_tile);
        // Causal: only queries with i + (nk - nq) >= j0 can see a key of this tile.
        const int64_t i_first = p.causal ? std::max<int64_t>(0, j0 - (nk - nq)) : 0;
        int64_t n = 0;
        for (int64_t i = i_first; i < nq; ++i)
          if ((!qmask || qmask[i]) && lse_bh[i] != neg_inf<T>()) qi[n++] = static_cast<int32_t>(i);
        if (n == 0) continue;
#if defined(__AVX2__) && defined(__FMA__)
        if constexpr (std::is_same_v<T, float>) {
          if (tiles) {
            for (int64_t a = 0; a < n; a += kTileRows) {
              const int64_t rows = std::min(kTileRows, n - a);
              int64_t first = 0;  // 0: every row here has i + off >= j0 (i_first above)
              const TileCausal causal = causal_tile(p, qi.data() + a, rows, j0, j1 - j0, &first);
              tile_backward(q + bh * nq * d, k + bh * nk * d, v + bh * nk * dv, d, dv,
                            qi.data() + a, rows, iota_k.data() + j0, j1 - j0, scale, lse_bh,
                            dsum.data() + bh * nq, dout + bh * nq * dv, my_dq, dk + bh * nk * d,
                            dv_out + bh * nk * dv, ts, nullptr, false, causal);
            }
            continue;
          }
        }
#endif
        with_dense_functors<T>(
            p, bh, bias, qi.data(), iota_k.data() + j0, [&](auto pair, auto drop) {
              block_backward(q + bh * nq * d, k + bh * nk * d, v + bh * nk * dv, d, dv, qi.data(),
                             n, iota_k.data() + j0, j1 - j0, scale, pair, drop, lse_bh,
                             dsum.data() + bh * nq, dout + bh * nq * dv, my_dq, dk + bh * nk * d,
                             dv_out + bh * nk * dv, ws);
            });
      }
      // implicit barrier of omp for: every private dq of this bh is complete
#pragma omp for schedule(static)
      for (int64_t i = 0; i < nq; ++i) {
        T* row = dq + (bh * nq + i) * d;
        for (int th = 0; th < team; ++th) {
          const T* src = dq_private.data() + (static_cast<int64_t>(th) * nq + i) * d;
          for (int64_t c = 0; c < d; ++c) row[c] += src[c];
        }
      }
    }
  }
}

}  // namespace smyrf::kernels::cpu::SMYRF_ISA_NS
