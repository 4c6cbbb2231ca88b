// The index arithmetic and the batched product of the stored-dS dq path of SMYRF's bfloat16
// backward (kernels/cuda/attention.cu, set_smyrf_stored_ds), shared by the CUDA code and a CPU
// test (tests/attention/test_smyrf_stored_ds.cpp) that runs the same arithmetic with
// kernels/cpu's sgemm_batched (the row-major interface blas.h also has) against
// cpu::smyrf_backward's dq. No CUDA headers: host and device alike.
//
// Per round r, with the plan's chunks (chunk c: query list positions [c cq, c cq + cq) and key
// positions [c ck, c ck + ck), both cut at the real counts):
//   ds_t[stored_ds_index(...)] = dS_ij / scale for query i at position qpos and key j at kpos of
//     chunk c (bfloat16; the entries past either list stay 0),
//   k_sorted = K's rows in key order (SortedRows, 0 for padding slots),
//   dq_sorted (per cluster cq x d) = scale ds_t^T k_sorted (stored_ds_product),
//   dq[token] += dq_sorted[slot] for every real query slot (SortedRows).
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define SMYRF_STORED_DS_HD __host__ __device__ __forceinline__
#else
#define SMYRF_STORED_DS_HD inline
#endif

namespace smyrf::kernels::cuda {

// One round's rows in cluster order: slot (bh, pos) of `slots` per bh holds token
// order[(bh * rounds + r) * n + pos] of its bh for pos < real[bh] (padding past it), w values a
// row.
struct SortedRows {
  const int32_t* order;
  const int32_t* real;
  int64_t n, rounds, r, slots;
  int w;
  // The token-order index of element e of the sorted rows, -1 for a padding slot.
  SMYRF_STORED_DS_HD int64_t token_element(int64_t e) const {
    const int64_t c = e % w, row = e / w, bh = row / slots, pos = row % slots;
    if (pos >= real[bh]) return -1;
    return (bh * n + order[(bh * rounds + r) * n + pos]) * w + c;
  }
};

// Where dS of the pair (query position qpos, key position kpos) of chunk `chunk` of bh goes:
// per cluster a ck x cq row-major block (dS transposed), clusters in (bh, chunk) order.
SMYRF_STORED_DS_HD int64_t stored_ds_index(int64_t bh, int64_t chunks, int64_t chunk, int64_t ck,
                                           int64_t cq, int64_t kpos, int64_t qpos) {
  return ((bh * chunks + chunk) * ck + kpos) * cq + qpos;
}

// The row-major strided batched product dq_sorted = scale ds_t^T k_sorted, one per cluster:
// C (cq x d) = alpha op(A) (cq x ck) B (ck x d), A = ds_t stored ck x cq (transposed).
struct StoredDsProduct {
  bool trans_a = true, trans_b = false;
  int64_t batch, M, N, K, lda, stride_a, ldb, stride_b, ldc, stride_c;
  float alpha;
};
inline StoredDsProduct stored_ds_product(int64_t clusters, int64_t cq, int64_t ck, int64_t d,
                                         double scale) {
  StoredDsProduct g;
  g.batch = clusters, g.M = cq, g.N = d, g.K = ck;
  g.lda = cq, g.stride_a = ck * cq;
  g.ldb = d, g.stride_b = ck * d;
  g.ldc = d, g.stride_c = cq * d;
  g.alpha = static_cast<float>(scale);
  return g;
}

}  // namespace smyrf::kernels::cuda
