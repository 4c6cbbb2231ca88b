// Causal SMYRF on CUDA: attention over the plan's explicit pair lists (kernels/cpu/smyrf_pairs.h),
// float32 on CUDA cores. Causal windows are per query (each query's W nearest past keys in hash
// order), not clusters, so the clustered tile kernels do not apply; by the identity of
// docs/smyrf.md the op is attention over the listed pairs with the bias log M_ij.
//
// One warp owns one row: a query (forward; backward dq and D) or a key (backward dk, dv). A row's
// pairs go 32 at a time: each lane scores one pair (a whole dot product against the row staged in
// shared memory), the warp reduces the chunk's max / sum by shuffles, and the chunk's weights are
// then broadcast lane by lane while every lane accumulates its own slice of the output columns
// (c = lane + 32 t, t < 4: coalesced reads of the partner rows). The forward keeps an online
// softmax (m, l) per row; the backward recomputes P_ij = M_ij exp(s_ij - LSE_i) from the forward's
// LSE, dq and D_i = dO_i . out_i per query first, then dk and dv per key over the key-major lists.
// Every output row is written by one warp in a fixed order: deterministic, no atomics.
//
// Status: written 2026-11-30 on a machine without a GPU; compiled for sm_90, not yet run on one
// (tests/cuda "causal SMYRF on CUDA" waits for the next GPU run). The same algorithm in float64
// (tests/kernels/test_smyrf_kernels.cpp, run_pairs) equals the CPU op to 1e-10.
#include <cmath>
#include <stdexcept>

#include "kernels/cpu/attention.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/check.h"

namespace smyrf::kernels::cuda {
using detail::stream;
namespace {

constexpr int kWarps = 4;                       // rows per block, one warp each
constexpr int kSlots = kAttentionMaxHead / 32;  // output columns per lane
constexpr unsigned kFull = 0xffffffffu;

struct PairsArgs {
  int64_t rows = 0, nq = 0, nk = 0;
  int d = 0, dv = 0;
  float scale = 1;
  bool dropout = false;
  uint32_t threshold = 0;
  float drop_scale = 1;
  uint64_t drop_seed = 0;
};

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

// a (shared) . b (global), n terms
__device__ __forceinline__ float dot_row(const float* a, const float* __restrict__ b, int n) {
  float s = 0;
  for (int c = 0; c < n; ++c) s = fmaf(a[c], b[c], s);
  return s;
}

__device__ __forceinline__ float dropout_factor(const PairsArgs& A, int64_t bh, int64_t i,
                                                int64_t j) {
  if (!A.dropout) return 1.0f;
  return cpu::attention_dropout_keep(A.drop_seed, bh, i, j, A.threshold) ? A.drop_scale : 0.0f;
}

// Copies n floats of a global row into the warp's shared row.
__device__ __forceinline__ void stage(float* dst, const float* __restrict__ src, int n, int lane) {
  for (int c = lane; c < n; c += 32) dst[c] = src[c];
  __syncwarp();
}

// Writes the lane's slots of an n-wide row, times f.
__device__ __forceinline__ void write_slots(float* dst, const float (&acc)[kSlots], int n, float f,
                                            int lane) {
#pragma unroll
  for (int t = 0; t < kSlots; ++t) {
    const int c = lane + 32 * t;
    if (c < n) dst[c] = acc[t] * f;
  }
}

// acc[t] += w * row[lane + 32 t] over an n-wide row.
__device__ __forceinline__ void axpy_slots(float (&acc)[kSlots], float w,
                                           const float* __restrict__ row, int n, int lane) {
#pragma unroll
  for (int t = 0; t < kSlots; ++t) {
    const int c = lane + 32 * t;
    if (c < n) acc[t] = fmaf(w, row[c], acc[t]);
  }
}

__global__ void pairs_forward_kernel(PairsArgs A, const int64_t* __restrict__ off,
                                     const int32_t* __restrict__ keys,
                                     const int32_t* __restrict__ mult, const float* __restrict__ q,
                                     const float* __restrict__ k, const float* __restrict__ v,
                                     float* __restrict__ out, float* __restrict__ lse) {
  __shared__ float sq[kWarps][kAttentionMaxHead];
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + w;
  if (row >= A.rows) return;  // warp-uniform
  const int64_t bh = row / A.nq, i = row % A.nq;
  const int64_t e0 = off[row], e1 = off[row + 1];
  float acc[kSlots] = {};
  if (e0 == e1) {  // padded query, or no real key: zeros, LSE -inf
    write_slots(out + row * A.dv, acc, A.dv, 0.0f, lane);
    if (lane == 0) lse[row] = -INFINITY;
    return;
  }
  stage(sq[w], q + row * A.d, A.d, lane);
  const float* kb = k + bh * A.nk * A.d;
  const float* vb = v + bh * A.nk * A.dv;
  float m = -INFINITY, l = 0;
  for (int64_t base = e0; base < e1; base += 32) {
    const int n = static_cast<int>(min(static_cast<int64_t>(32), e1 - base));
    int j = 0;
    float s = -INFINITY;
    if (lane < n) {
      j = keys[base + lane];
      s = A.scale * dot_row(sq[w], kb + static_cast<int64_t>(j) * A.d, A.d) +
          logf(static_cast<float>(mult[base + lane]));
    }
    const float mn = fmaxf(m, warp_max(s));
    const float corr = expf(m - mn);  // 0 on the first chunk (m = -inf)
    const float p = lane < n ? expf(s - mn) : 0.0f;
    l = l * corr + warp_sum(p);
#pragma unroll
    for (int t = 0; t < kSlots; ++t) acc[t] *= corr;
    const float pz = lane < n ? p * dropout_factor(A, bh, i, j) : 0.0f;  // lse stays pre-dropout
    for (int u = 0; u < n; ++u) {
      const float wu = __shfl_sync(kFull, pz, u);
      const int ju = __shfl_sync(kFull, j, u);
      if (wu != 0.0f) axpy_slots(acc, wu, vb + static_cast<int64_t>(ju) * A.dv, A.dv, lane);
    }
    m = mn;
  }
  write_slots(out + row * A.dv, acc, A.dv, 1.0f / l, lane);
  if (lane == 0) lse[row] = m + logf(l);
}

// dq and D_i = dO_i . out_i, one warp per query.
__global__ void pairs_dq_kernel(PairsArgs A, const int64_t* __restrict__ off,
                                const int32_t* __restrict__ keys, const int32_t* __restrict__ mult,
                                const float* __restrict__ q, const float* __restrict__ k,
                                const float* __restrict__ v, const float* __restrict__ out,
                                const float* __restrict__ lse, const float* __restrict__ dout,
                                float* __restrict__ dq, float* __restrict__ D) {
  __shared__ float sq[kWarps][kAttentionMaxHead];
  __shared__ float sdo[kWarps][kAttentionMaxHead];
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + w;
  if (row >= A.rows) return;
  const int64_t bh = row / A.nq, i = row % A.nq;
  const int64_t e0 = off[row], e1 = off[row + 1];
  float acc[kSlots] = {};
  if (e0 == e1) {
    write_slots(dq + row * A.d, acc, A.d, 0.0f, lane);
    if (lane == 0) D[row] = 0.0f;
    return;
  }
  stage(sq[w], q + row * A.d, A.d, lane);
  stage(sdo[w], dout + row * A.dv, A.dv, lane);
  float part = 0;
  for (int c = lane; c < A.dv; c += 32) part = fmaf(sdo[w][c], out[row * A.dv + c], part);
  const float Di = warp_sum(part);
  if (lane == 0) D[row] = Di;
  const float L = lse[row];
  const float* kb = k + bh * A.nk * A.d;
  const float* vb = v + bh * A.nk * A.dv;
  for (int64_t base = e0; base < e1; base += 32) {
    const int n = static_cast<int>(min(static_cast<int64_t>(32), e1 - base));
    int j = 0;
    float ds = 0;
    if (lane < n) {
      j = keys[base + lane];
      const float s = A.scale * dot_row(sq[w], kb + static_cast<int64_t>(j) * A.d, A.d) +
                      logf(static_cast<float>(mult[base + lane]));
      const float p = expf(s - L);
      const float dp = dot_row(sdo[w], vb + static_cast<int64_t>(j) * A.dv, A.dv);
      ds = p * (dropout_factor(A, bh, i, j) * dp - Di) * A.scale;
    }
    for (int u = 0; u < n; ++u) {
      const float wu = __shfl_sync(kFull, ds, u);
      const int ju = __shfl_sync(kFull, j, u);
      if (wu != 0.0f) axpy_slots(acc, wu, kb + static_cast<int64_t>(ju) * A.d, A.d, lane);
    }
  }
  write_slots(dq + row * A.d, acc, A.d, 1.0f, lane);
}

// dk and dv, one warp per key over the key-major lists (A.rows = BH * Nk).
__global__ void pairs_dkdv_kernel(PairsArgs A, const int64_t* __restrict__ off,
                                  const int32_t* __restrict__ queries,
                                  const int32_t* __restrict__ mult, const float* __restrict__ q,
                                  const float* __restrict__ k, const float* __restrict__ v,
                                  const float* __restrict__ lse, const float* __restrict__ dout,
                                  const float* __restrict__ D, float* __restrict__ dk,
                                  float* __restrict__ dv) {
  __shared__ float sk[kWarps][kAttentionMaxHead];
  __shared__ float sv[kWarps][kAttentionMaxHead];
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kWarps + w;
  if (col >= A.rows) return;
  const int64_t bh = col / A.nk, j = col % A.nk;
  const int64_t e0 = off[col], e1 = off[col + 1];
  float acc_k[kSlots] = {}, acc_v[kSlots] = {};
  if (e0 != e1) {
    stage(sk[w], k + col * A.d, A.d, lane);
    stage(sv[w], v + col * A.dv, A.dv, lane);
  }
  const int64_t qrow0 = bh * A.nq;
  for (int64_t base = e0; base < e1; base += 32) {
    const int n = static_cast<int>(min(static_cast<int64_t>(32), e1 - base));
    int64_t qr = qrow0;
    float ds = 0, pz = 0;
    if (lane < n) {
      const int64_t i = queries[base + lane];
      qr = qrow0 + i;
      const float s =
          A.scale * dot_row(sk[w], q + qr * A.d, A.d) + logf(static_cast<float>(mult[base + lane]));
      const float p = expf(s - lse[qr]);
      const float dp = dot_row(sv[w], dout + qr * A.dv, A.dv);
      const float z = dropout_factor(A, bh, i, j);
      ds = p * (z * dp - D[qr]) * A.scale;
      pz = p * z;
    }
    for (int u = 0; u < n; ++u) {
      const float du = __shfl_sync(kFull, ds, u), pu = __shfl_sync(kFull, pz, u);
      const int64_t ru = __shfl_sync(kFull, qr, u);
      if (pu != 0.0f) axpy_slots(acc_v, pu, dout + ru * A.dv, A.dv, lane);
      if (du != 0.0f) axpy_slots(acc_k, du, q + ru * A.d, A.d, lane);
    }
  }
  write_slots(dk + col * A.d, acc_k, A.d, 1.0f, lane);
  write_slots(dv + col * A.dv, acc_v, A.dv, 1.0f, lane);
}

PairsArgs pairs_args(const cpu::SmyrfParams& p, const SmyrfDevicePairs& pairs) {
  cpu::smyrf_check(p);
  if (!p.causal)
    throw std::invalid_argument(
        "[smyrf_attention] the pair-list kernels run causal SMYRF; hint: the clustered kernels "
        "(smyrf_forward / smyrf_backward) run the non-causal op");
  check_attention_heads("smyrf_attention", p.d, p.dv);
  if (pairs.batch_heads != p.batch_heads || pairs.nq != p.nq || pairs.nk != p.nk)
    throw std::invalid_argument(
        "[smyrf_attention] the pair lists do not match the parameters; hint: build them with "
        "smyrf_pairs from a plan of the same SmyrfParams");
  PairsArgs A;
  A.nq = p.nq;
  A.nk = p.nk;
  A.d = static_cast<int>(p.d);
  A.dv = static_cast<int>(p.dv);
  A.scale = static_cast<float>(p.scale);
  A.dropout = p.dropout_p > 0.0;
  A.threshold = cpu::attention_dropout_threshold(p.dropout_p);
  A.drop_scale = static_cast<float>(1.0 / (1.0 - p.dropout_p));
  A.drop_seed = p.dropout_seed;
  return A;
}

unsigned blocks_for(int64_t rows) { return static_cast<unsigned>((rows + kWarps - 1) / kWarps); }

template <typename T>
DeviceArray<T> upload(const cpu::HostArray<T>& host) {
  DeviceArray<T> a(std::max<int64_t>(1, static_cast<int64_t>(host.size())));
  memcpy_any(a.data(), true, host.data(), false, host.size() * sizeof(T));
  return a;
}

}  // namespace

SmyrfDevicePairs smyrf_upload_pairs(const cpu::SmyrfPairs& pairs) {
  SmyrfDevicePairs d;
  d.batch_heads = pairs.batch_heads;
  d.nq = pairs.nq;
  d.nk = pairs.nk;
  d.size = pairs.size();
  d.q_offsets = upload(pairs.q_offsets);
  d.q_keys = upload(pairs.q_keys);
  d.q_mult = upload(pairs.q_mult);
  d.k_offsets = upload(pairs.k_offsets);
  d.k_queries = upload(pairs.k_queries);
  d.k_mult = upload(pairs.k_mult);
  return d;
}

void smyrf_pairs_forward(const cpu::SmyrfParams& p, const SmyrfDevicePairs& pairs, const float* q,
                         const float* k, const float* v, float* out, float* lse) {
  PairsArgs A = pairs_args(p, pairs);
  A.rows = p.batch_heads * p.nq;
  if (A.rows == 0) return;
  pairs_forward_kernel<<<blocks_for(A.rows), kWarps * 32, 0, stream()>>>(
      A, pairs.q_offsets.data(), pairs.q_keys.data(), pairs.q_mult.data(), q, k, v, out, lse);
  SMYRF_CUDA_CHECK_LAUNCH();
}

void smyrf_pairs_backward(const cpu::SmyrfParams& p, const SmyrfDevicePairs& pairs, const float* q,
                          const float* k, const float* v, const float* out, const float* lse,
                          const float* dout, float* dq, float* dk, float* dv) {
  PairsArgs A = pairs_args(p, pairs);
  const int64_t nq_rows = p.batch_heads * p.nq, nk_rows = p.batch_heads * p.nk;
  DeviceArray<float> D(std::max<int64_t>(1, nq_rows));
  if (nq_rows > 0) {
    A.rows = nq_rows;
    pairs_dq_kernel<<<blocks_for(nq_rows), kWarps * 32, 0, stream()>>>(
        A, pairs.q_offsets.data(), pairs.q_keys.data(), pairs.q_mult.data(), q, k, v, out, lse,
        dout, dq, D.data());
    SMYRF_CUDA_CHECK_LAUNCH();
  }
  if (nk_rows > 0) {
    A.rows = nk_rows;
    pairs_dkdv_kernel<<<blocks_for(nk_rows), kWarps * 32, 0, stream()>>>(
        A, pairs.k_offsets.data(), pairs.k_queries.data(), pairs.k_mult.data(), q, k, v, lse, dout,
        D.data(), dk, dv);
    SMYRF_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace smyrf::kernels::cuda
