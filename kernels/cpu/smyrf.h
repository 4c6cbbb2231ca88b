// SMYRF clustered attention on raw CPU buffers (docs/smyrf.md): XBOX+ lifting, one Gaussian
// hash direction per round, balanced clusters by sorting, attention inside each cluster, and the
// online (out, LSE) merge across rounds; the backward is exact for the clustered function, using
// the global LSE (FlashAttention-2 style recomputation, no atomics).
//
// Layout (contiguous, row-major), BH = batch * heads, batch b = bh / heads:
//   q (BH, Nq, d)   k (BH, Nk, d)   v (BH, Nk, dv)   out (BH, Nq, dv)   lse (BH, Nq)
//   key_mask (B, Nk), query_mask (B, Nq): uint8, nonzero = real token, 0 = padding.
//
// Result: out = softmax(scale * Q K^T + log M) V per bh, where M_ij counts the rounds in which
// query i and key j share a cluster (set semantics: bias log 1[M_ij > 0], each pair once). Padded
// keys are never attended; padded queries, and queries with no real key in any round, output
// zeros with lse = -inf and get zero gradient.
//
// Non-causal clustering, per (bh, round r):
//   MQ = max |q_i|, MK = max |k_j| over real tokens, M2 = MQ^2 + MK^2; lift q -> [q, 0, sqrt(M2 -
//   |q|^2)], k -> [k, sqrt(M2 - |k|^2), 0]; hash = a_r . lifted, a_r ~ N(0, I_{d+2}) drawn by
//   Philox keyed by (seed, r) (the same for every bh). Queries and keys are stably sorted by hash,
//   padded tokens last; sorted queries are cut into chunks of Cq and keys into chunks of Ck (tail
//   chunks shorter), query chunk c attends to key chunk c. Requires ceil(Nq/Cq) == ceil(Nk/Ck).
//
// Causal design (Nq == Nk required; no chunk-count rule). The quantile clusters above cannot be
// causal: a query's cluster depends on where later tokens fall in the sort and on max norms over
// the whole sequence. Instead, with block length L = Cq and window W = Ck:
//   - hashes are angular, a_r . x / |x| (the XBOX+ lifting of unit vectors adds the same constant
//     to every hash, so this is the lifting with per-token normalisation): each hash is a function
//     of its own token only;
//   - query i in block b = i / L (block start s = b L) attends, in every round, to
//       (local)  the real keys j with s <= j <= i: its causal block, always including its own key;
//       (window) the W real keys of [0, s) nearest to it in hash order: the past keys, stably
//                sorted by (hash, index), are a function of tokens < s only; the query's position
//                in that order is found by binary search on its hash and the window is the W
//                consecutive keys centred there (clamped to the ends).
//   So out_i is a function of tokens <= i only (bit-identical when later tokens change) and every
//   real query with a real own key sees at least that key. M_ij = (rounds whose window holds j) +
//   n_hashes * [j local]. Costs O(N W d) attention plus O(N^2 / L) memory moves for the sorted
//   snapshots; causal mode parallelises over bh only.
//
// Dropout multiplies each pair by attention_dropout_keep(dropout_seed, bh, i, j)/(1-p) (the same
// mask in every round), so SMYRF with dropout equals dense attention with the log M bias and the
// same dropout seed.
//
// Errors: std::invalid_argument with a "[smyrf_attention] ..." message naming the shapes and a
// hint (chunk counts differ, bad sizes, causal with Nq != Nk, dropout outside [0, 1)).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/cpu/host_memory.h"

namespace smyrf::kernels::cpu {

enum class SmyrfDuplicates : uint8_t {
  Multiset,  // bias log M: a pair co-clustered in r rounds counts r times (the paper)
  Set,       // bias log 1[M > 0]: a pair counts once (in the first round that clusters it)
};

struct SmyrfParams {
  int64_t batch_heads = 1, heads = 1;
  int64_t nq = 0, nk = 0, d = 0, dv = 0;
  int64_t n_hashes = 1;
  int64_t cq = 32, ck = 32;  // cluster sizes (causal: block length and window)
  double scale = 1.0;
  bool causal = false;
  const uint8_t* key_mask = nullptr;
  const uint8_t* query_mask = nullptr;
  SmyrfDuplicates duplicates = SmyrfDuplicates::Multiset;
  uint64_t seed = 0;  // hash directions
  double dropout_p = 0.0;
  uint64_t dropout_seed = 0;
};

// The clustering of every (bh, round), computed once by smyrf_make_plan and reused by forward,
// backward and the diagnostics. O(BH * n_hashes * (Nq + Nk)) integers (plus doubles in causal
// mode); no gradients flow through it. Uninitialised host arrays (host_memory.h), every entry
// written by smyrf_make_plan: as zero-filled std::vectors, with the plan's scratch, they were
// most of the plan's time (8 x 8192, 4 rounds of clusters of 64: memset and first-touch faults,
// the threads waiting for them, ~70% of the samples).
struct SmyrfPlan {
  int64_t batch_heads = 0, rounds = 0, nq = 0, nk = 0, n_chunks = 0;
  bool causal = false;
  // Non-causal: token indices in sorted order per (bh, r), real tokens first.
  HostArray<int32_t> q_order, k_order;      // (BH, R, Nq), (BH, R, Nk)
  HostArray<int32_t> q_cluster, k_cluster;  // chunk id per token, -1 for padding
  HostArray<int32_t> q_real, k_real;        // (BH): number of real tokens
  // Causal: angular hashes per (bh, r, token).
  HostArray<double> q_hash, k_hash;  // (BH, R, Nq), (BH, R, Nk)
};

// Throws std::invalid_argument when the parameters are inconsistent.
void smyrf_check(const SmyrfParams& p);

// The hash direction of round r, d + 2 numbers (the lifted dimension).
std::vector<double> smyrf_hash_direction(uint64_t seed, int64_t round, int64_t d);

template <typename T>
SmyrfPlan smyrf_make_plan(const SmyrfParams& p, const T* q, const T* k);

// out (BH, Nq, dv) and lse (BH, Nq) are overwritten.
template <typename T>
void smyrf_forward(const SmyrfParams& p, const SmyrfPlan& plan, const T* q, const T* k, const T* v,
                   T* out, T* lse);

// dq, dk, dv are overwritten with the exact gradients of the clustered function (plan held fixed).
template <typename T>
void smyrf_backward(const SmyrfParams& p, const SmyrfPlan& plan, const T* q, const T* k, const T* v,
                    const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv);

// Diagnostics. Cluster id per round of every token: q_cluster (BH, R, Nq), k_cluster (BH, R, Nk),
// -1 for padded tokens. Not defined for causal plans (throws).
void smyrf_cluster_assignment(const SmyrfParams& p, const SmyrfPlan& plan, int32_t* q_cluster,
                              int32_t* k_cluster);

// Multiplicity M (BH, Nq, Nk): the number of rounds in which real query i attends real key j
// (pairs with a padded token are 0). Multiset counts in both duplicate modes: apply 1[M > 0]
// for set semantics. O(BH Nq Nk) memory: for small tests.
void smyrf_multiplicity(const SmyrfParams& p, const SmyrfPlan& plan, int32_t* m);

}  // namespace smyrf::kernels::cpu
