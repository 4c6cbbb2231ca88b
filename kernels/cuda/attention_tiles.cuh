// Internal to attention.cu and smyrf.cu: the tile kernels shared by dense and SMYRF attention.
//
// A "problem" is a list of query rows against a list of key rows of one (batch*head) row bh:
//   dense:   all Nq queries against all Nk keys (causal limit, masks, bias),
//   cluster: the sorted positions of chunk c in round r, [c*Cq, min((c+1)*Cq, real)) for queries
//            and the same for keys with Ck; rows are read through q_order/k_order (no copies).
// Grid: x = tile of kRows owned rows within the problem, y = chunk (1 in dense mode), z = bh.
// Each thread owns one row (a query in forward and dq, a key in dk/dv); the other side is staged
// through shared memory kTile rows at a time. Thread-per-row kernels on CUDA cores: simple and
// deterministic; tensor-core tiles are future work.
// Status: ran on an NVIDIA H200 on 2026-11-28 (tests/cuda, all passing; scripts/gpu-check).
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "kernels/cpu/philox.h"
#include "kernels/cuda/check.h"

// Included by attention.cu only (the kernels are defined here, not just declared).
namespace smyrf::kernels::cuda::attn {

constexpr int kMaxHead = 128;
constexpr int kRows = 64;  // owned rows per block (one per thread)
constexpr int kTile = 32;  // rows of the other side staged in shared memory at once

struct Problem {
  int64_t nq = 0, nk = 0;
  int d = 0, dv = 0;
  int64_t heads = 1;
  float scale = 1;
  // dense mode
  bool causal = false;
  const uint8_t* key_mask = nullptr;    // (B, Nk)
  const uint8_t* query_mask = nullptr;  // (B, Nq)
  const float* bias = nullptr;          // (Nq, Nk) at bias + bh * bias_bh_stride
  int64_t bias_bh_stride = 0;
  // dropout (both modes)
  bool dropout = false;
  uint32_t drop_threshold = 0;
  float drop_scale = 1;
  uint64_t drop_seed = 0;
  // cluster mode (q_order != nullptr): round `round` of `rounds`
  const int32_t* q_order = nullptr;  // (BH, R, Nq)
  const int32_t* k_order = nullptr;
  const int32_t* q_cluster = nullptr;  // (BH, R, Nq), -1 for padding
  const int32_t* k_cluster = nullptr;
  const int32_t* q_real = nullptr;  // (BH)
  const int32_t* k_real = nullptr;
  int64_t rounds = 1, round = 0, cq = 0, ck = 0;
  bool set_semantics = false;
};

__device__ __forceinline__ bool cluster_mode(const Problem& P) { return P.q_order != nullptr; }

// Positions [lo, hi) of the problem's query (or key) list.
__device__ __forceinline__ void row_range(const Problem& P, bool queries, int64_t bh, int64_t chunk,
                                          int64_t* lo, int64_t* hi) {
  if (!cluster_mode(P)) {
    *lo = 0;
    *hi = queries ? P.nq : P.nk;
    return;
  }
  const int64_t c = queries ? P.cq : P.ck;
  const int64_t real = queries ? P.q_real[bh] : P.k_real[bh];
  *lo = chunk * c;
  *hi = min(*lo + c, real);
}

// Original token index of list position pos.
__device__ __forceinline__ int64_t row_index(const Problem& P, bool queries, int64_t bh,
                                             int64_t pos) {
  if (!cluster_mode(P)) return pos;
  const int64_t n = queries ? P.nq : P.nk;
  const int32_t* order = queries ? P.q_order : P.k_order;
  return order[(bh * P.rounds + P.round) * n + pos];
}

// Whether query i may attend key j at all (masks, causality, set semantics); in cluster mode the
// lists already exclude padded tokens.
__device__ __forceinline__ bool pair_allowed(const Problem& P, int64_t bh, int64_t i, int64_t j) {
  if (!cluster_mode(P)) {
    if (P.key_mask && !P.key_mask[(bh / P.heads) * P.nk + j]) return false;
    if (P.causal && j > i + (P.nk - P.nq)) return false;
    return true;
  }
  if (P.set_semantics) {  // a pair counts once: in the first round that clusters it
    for (int64_t rr = 0; rr < P.round; ++rr) {
      const int32_t cqi = P.q_cluster[(bh * P.rounds + rr) * P.nq + i];
      if (cqi >= 0 && cqi == P.k_cluster[(bh * P.rounds + rr) * P.nk + j]) return false;
    }
  }
  return true;
}

// Score of an allowed pair from the dot product (-inf when the bias removes it).
__device__ __forceinline__ float pair_score(const Problem& P, int64_t bh, int64_t i, int64_t j,
                                            float dot) {
  float s = P.scale * dot;
  if (P.bias) s += P.bias[bh * P.bias_bh_stride + i * P.nk + j];
  return s;
}

// Dropout factor z_ij: the counter-based mask of cpu::attention_dropout_keep, regenerated.
__device__ __forceinline__ float dropout_factor(const Problem& P, int64_t bh, int64_t i,
                                                int64_t j) {
  if (!P.dropout) return 1.0f;
  const Philox4x32 r =
      philox4x32(static_cast<uint32_t>(i), static_cast<uint32_t>(j), static_cast<uint32_t>(bh),
                 0xA77E0000u ^ static_cast<uint32_t>(static_cast<uint64_t>(bh) >> 32), P.drop_seed);
  return r.v[0] >= P.drop_threshold ? P.drop_scale : 0.0f;
}

__device__ __forceinline__ bool query_is_padding(const Problem& P, int64_t bh, int64_t i) {
  return !cluster_mode(P) && P.query_mask && !P.query_mask[(bh / P.heads) * P.nq + i];
}

// Stages rows [t0, t0 + n) of the problem's query (or key) list into shared memory: their
// original indices into idx, the rows of a (width wa) into sa and of b (width wb) into sb.
// Every thread of the block must call it (it synchronises).
__device__ __forceinline__ void stage_rows(const Problem& P, bool queries, int64_t bh, int64_t t0,
                                           int n, const float* __restrict__ a, int wa,
                                           const float* __restrict__ b, int wb, float* sa,
                                           float* sb, int64_t* idx) {
  const int64_t len = queries ? P.nq : P.nk;
  __syncthreads();  // the previous tile may still be read
  if (threadIdx.x < n) idx[threadIdx.x] = row_index(P, queries, bh, t0 + threadIdx.x);
  __syncthreads();
  for (int e = threadIdx.x; e < n * wa; e += blockDim.x)
    sa[e] = a[(bh * len + idx[e / wa]) * wa + e % wa];
  for (int e = threadIdx.x; e < n * wb; e += blockDim.x)
    sb[e] = b[(bh * len + idx[e / wb]) * wb + e % wb];
  __syncthreads();
}

// The list positions of this block: owned rows (one per thread) and the other side's range.
struct BlockRows {
  int64_t bh, own_lo, own_hi, other_lo, other_hi, pos;
  bool owns;
};
__device__ __forceinline__ BlockRows block_rows(const Problem& P, bool own_queries) {
  BlockRows r;
  r.bh = blockIdx.z;
  const int64_t chunk = blockIdx.y;
  row_range(P, own_queries, r.bh, chunk, &r.own_lo, &r.own_hi);
  row_range(P, !own_queries, r.bh, chunk, &r.other_lo, &r.other_hi);
  r.pos = r.own_lo + static_cast<int64_t>(blockIdx.x) * kRows + threadIdx.x;
  r.owns = r.pos < r.own_hi;
  return r;
}

// Forward over one problem: out_i and lse_i of this problem's keys, then either written (dense)
// or merged into the running (out, lse) of earlier rounds (cluster mode: out/lse hold the merge).
__global__ void forward_kernel(Problem P, const float* __restrict__ q, const float* __restrict__ k,
                               const float* __restrict__ v, float* __restrict__ out,
                               float* __restrict__ lse) {
  __shared__ float sk[kTile * kMaxHead];
  __shared__ float sv[kTile * kMaxHead];
  __shared__ int64_t sj[kTile];
  const BlockRows br = block_rows(P, true);
  const int64_t bh = br.bh, khi = br.other_hi;
  const bool owns = br.owns;
  const int64_t i = owns ? row_index(P, true, bh, br.pos) : 0;
  const bool active = owns && !query_is_padding(P, bh, i);
  const int d = P.d, dv = P.dv;

  float qr[kMaxHead], acc[kMaxHead];
  if (active)
    for (int c = 0; c < d; ++c) qr[c] = q[(bh * P.nq + i) * d + c];
  for (int c = 0; c < dv; ++c) acc[c] = 0.0f;
  float m = -INFINITY, l = 0.0f;

  for (int64_t t0 = br.other_lo; t0 < khi; t0 += kTile) {
    const int n = static_cast<int>(min(static_cast<int64_t>(kTile), khi - t0));
    stage_rows(P, false, bh, t0, n, k, d, v, dv, sk, sv, sj);
    if (!active) continue;
    for (int t = 0; t < n; ++t) {
      const int64_t j = sj[t];
      if (!pair_allowed(P, bh, i, j)) continue;
      float dot = 0.0f;
      for (int c = 0; c < d; ++c) dot += qr[c] * sk[t * d + c];
      const float s = pair_score(P, bh, i, j, dot);
      if (s == -INFINITY) continue;
      if (s > m) {  // rescale what was accumulated under the old maximum
        const float corr = m == -INFINITY ? 0.0f : expf(m - s);
        l *= corr;
        for (int c = 0; c < dv; ++c) acc[c] *= corr;
        m = s;
      }
      const float pr = expf(s - m);
      l += pr;  // lse is the pre-dropout normaliser
      const float w = pr * dropout_factor(P, bh, i, j);
      if (w != 0.0f)
        for (int c = 0; c < dv; ++c) acc[c] += w * sv[t * dv + c];
    }
  }
  if (!owns) return;
  const float lse_r = l > 0.0f ? m + logf(l) : -INFINITY;
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  float* o = out + (bh * P.nq + i) * dv;
  float* L = lse + bh * P.nq + i;
  if (!cluster_mode(P)) {
    for (int c = 0; c < dv; ++c) o[c] = acc[c] * inv;
    *L = lse_r;
    return;
  }
  if (lse_r == -INFINITY) return;  // nothing in this round: the running merge is unchanged
  const float old = *L, merged = old == -INFINITY
                                     ? lse_r
                                     : fmaxf(old, lse_r) + log1pf(expf(-fabsf(old - lse_r)));
  const float a = old == -INFINITY ? 0.0f : expf(old - merged), b = expf(lse_r - merged) * inv;
  for (int c = 0; c < dv; ++c) o[c] = o[c] * a + acc[c] * b;
  *L = merged;
}

__global__ void fill_kernel(float* x, int64_t n, float value) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) x[i] = value;
}

// D_i = dout_i . out_i for every query (the backward's row correction).
__global__ void row_dot_kernel(const float* __restrict__ dout, const float* __restrict__ out,
                               float* __restrict__ D, int64_t rows, int dv) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= rows) return;
  float acc = 0.0f;
  for (int c = 0; c < dv; ++c) acc += dout[r * dv + c] * out[r * dv + c];
  D[r] = acc;
}

// dq over one problem, one thread per query: dq_i (+)= scale sum_j dS_ij k_j with
// P_ij = exp(s_ij - lse_i), dS_ij = P_ij (z_ij dout_i . v_j - D_i). accumulate: add to dq (cluster
// rounds) instead of writing it.
__global__ void dq_kernel(Problem P, const float* __restrict__ q, const float* __restrict__ k,
                          const float* __restrict__ v, const float* __restrict__ lse,
                          const float* __restrict__ D, const float* __restrict__ dout,
                          float* __restrict__ dq, bool accumulate) {
  __shared__ float sk[kTile * kMaxHead];
  __shared__ float sv[kTile * kMaxHead];
  __shared__ int64_t sj[kTile];
  const BlockRows br = block_rows(P, true);
  const int64_t bh = br.bh, khi = br.other_hi;
  const bool owns = br.owns;
  const int64_t i = owns ? row_index(P, true, bh, br.pos) : 0;
  const float lse_i = owns ? lse[bh * P.nq + i] : -INFINITY;
  const bool active = owns && lse_i != -INFINITY && !query_is_padding(P, bh, i);
  const int d = P.d, dv = P.dv;

  float qr[kMaxHead], dor[kMaxHead], g[kMaxHead];
  if (active) {
    for (int c = 0; c < d; ++c) qr[c] = q[(bh * P.nq + i) * d + c];
    for (int c = 0; c < dv; ++c) dor[c] = dout[(bh * P.nq + i) * dv + c];
  }
  for (int c = 0; c < d; ++c) g[c] = 0.0f;
  const float Di = active ? D[bh * P.nq + i] : 0.0f;

  for (int64_t t0 = br.other_lo; t0 < khi; t0 += kTile) {
    const int n = static_cast<int>(min(static_cast<int64_t>(kTile), khi - t0));
    stage_rows(P, false, bh, t0, n, k, d, v, dv, sk, sv, sj);
    if (!active) continue;
    for (int t = 0; t < n; ++t) {
      const int64_t j = sj[t];
      if (!pair_allowed(P, bh, i, j)) continue;
      float dot = 0.0f;
      for (int c = 0; c < d; ++c) dot += qr[c] * sk[t * d + c];
      const float s = pair_score(P, bh, i, j, dot);
      if (s == -INFINITY) continue;
      const float pr = expf(s - lse_i);
      float dp = 0.0f;
      for (int c = 0; c < dv; ++c) dp += dor[c] * sv[t * dv + c];
      const float ds = pr * (dropout_factor(P, bh, i, j) * dp - Di) * P.scale;
      for (int c = 0; c < d; ++c) g[c] += ds * sk[t * d + c];
    }
  }
  if (!owns) return;
  float* o = dq + (bh * P.nq + i) * d;
  for (int c = 0; c < d; ++c) o[c] = accumulate ? o[c] + g[c] : g[c];
}

// dk and dv over one problem, one thread per key: dv_j (+)= sum_i P_ij z_ij dout_i and
// dk_j (+)= scale sum_i dS_ij q_i, queries staged through shared memory.
__global__ void dkv_kernel(Problem P, const float* __restrict__ q, const float* __restrict__ k,
                           const float* __restrict__ v, const float* __restrict__ lse,
                           const float* __restrict__ D, const float* __restrict__ dout,
                           float* __restrict__ dk, float* __restrict__ dvo, bool accumulate) {
  __shared__ float sq[kTile * kMaxHead];
  __shared__ float sdo[kTile * kMaxHead];
  __shared__ int64_t si[kTile];
  __shared__ float slse[kTile], sD[kTile];
  const BlockRows br = block_rows(P, false);
  const int64_t bh = br.bh, qhi = br.other_hi;
  const bool owns = br.owns;
  const int64_t j = owns ? row_index(P, false, bh, br.pos) : 0;
  const int d = P.d, dv = P.dv;

  float kr[kMaxHead], vr[kMaxHead], gk[kMaxHead], gv[kMaxHead];
  if (owns) {
    for (int c = 0; c < d; ++c) kr[c] = k[(bh * P.nk + j) * d + c];
    for (int c = 0; c < dv; ++c) vr[c] = v[(bh * P.nk + j) * dv + c];
  }
  for (int c = 0; c < d; ++c) gk[c] = 0.0f;
  for (int c = 0; c < dv; ++c) gv[c] = 0.0f;

  for (int64_t t0 = br.other_lo; t0 < qhi; t0 += kTile) {
    const int n = static_cast<int>(min(static_cast<int64_t>(kTile), qhi - t0));
    stage_rows(P, true, bh, t0, n, q, d, dout, dv, sq, sdo, si);
    if (threadIdx.x < n) {  // per-query scalars; read after the next barrier
      const int64_t i = si[threadIdx.x];
      slse[threadIdx.x] = query_is_padding(P, bh, i) ? -INFINITY : lse[bh * P.nq + i];
      sD[threadIdx.x] = D[bh * P.nq + i];
    }
    __syncthreads();
    if (!owns) continue;
    for (int t = 0; t < n; ++t) {
      const int64_t i = si[t];
      if (slse[t] == -INFINITY || !pair_allowed(P, bh, i, j)) continue;
      float dot = 0.0f;
      for (int c = 0; c < d; ++c) dot += sq[t * d + c] * kr[c];
      const float s = pair_score(P, bh, i, j, dot);
      if (s == -INFINITY) continue;
      const float pr = expf(s - slse[t]);
      const float z = dropout_factor(P, bh, i, j);
      float dp = 0.0f;
      for (int c = 0; c < dv; ++c) dp += sdo[t * dv + c] * vr[c];
      const float ds = pr * (z * dp - sD[t]) * P.scale;
      const float w = pr * z;
      for (int c = 0; c < dv; ++c) gv[c] += w * sdo[t * dv + c];
      for (int c = 0; c < d; ++c) gk[c] += ds * sq[t * d + c];
    }
  }
  if (!owns) return;
  float* ok = dk + (bh * P.nk + j) * d;
  float* ov = dvo + (bh * P.nk + j) * dv;
  for (int c = 0; c < d; ++c) ok[c] = accumulate ? ok[c] + gk[c] : gk[c];
  for (int c = 0; c < dv; ++c) ov[c] = accumulate ? ov[c] + gv[c] : gv[c];
}

}  // namespace smyrf::kernels::cuda::attn
