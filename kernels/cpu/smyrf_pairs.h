// The attended (query, key) pairs of a SMYRF plan as explicit lists, with their multiplicity:
// by the identity of docs/smyrf.md, SMYRF equals attention over these pairs with the additive
// bias log M_ij (log 1 = 0 under set semantics). Built on the host from a plan (causal or not);
// the CUDA causal kernels (kernels/cuda/attention.h) run on them, since causal windows are not
// clusters: each query has its own window of past keys.
//
// Layout: two CSR views of the same pairs, for every bh (BH = batch * heads):
//   query-major: row bh * Nq + i lists the real keys j query i attends (each once, in the order
//                the rounds met them: window keys, then the causal block's local keys) in
//                q_keys[q_offsets[row] .. q_offsets[row + 1]), and their weight in q_mult: M_ij
//                (multiset semantics) or 1 (set semantics), the bias being log q_mult;
//   key-major:   row bh * Nk + j lists the queries that attend key j, ascending, in k_queries,
//                with the same weights in k_mult (the backward's dk / dv side).
// Padded queries and keys appear in no pair. O(pairs) memory: about n_hashes * Ck + Cq / 2
// pairs a query in causal mode, up to n_hashes * Ck otherwise.
#pragma once
#include <cstdint>

#include "kernels/cpu/host_memory.h"
#include "kernels/cpu/smyrf.h"

namespace smyrf::kernels::cpu {

struct SmyrfPairs {
  int64_t batch_heads = 0, nq = 0, nk = 0;
  // host_memory.h arrays: uninitialised and cached, so a training step's lists reuse the last
  // step's pages instead of zero-filling and faulting in fresh ones
  HostArray<int64_t> q_offsets;  // (BH * Nq + 1)
  HostArray<int32_t> q_keys;
  HostArray<int32_t> q_mult;
  HostArray<int64_t> k_offsets;  // (BH * Nk + 1)
  HostArray<int32_t> k_queries;
  HostArray<int32_t> k_mult;
  int64_t size() const { return static_cast<int64_t>(q_keys.size()); }
};

// The pairs of `plan` (made by smyrf_make_plan with the same parameters). Throws
// std::invalid_argument like the other plan consumers when plan and parameters disagree.
SmyrfPairs smyrf_pairs(const SmyrfParams& p, const SmyrfPlan& plan);

}  // namespace smyrf::kernels::cpu
