// Dense and SMYRF attention as differentiable ops: CPU (float32 and float64) and CUDA (float32 on
// the CUDA-core kernels, bfloat16 on the tensor-core ones; kernels/cuda/attention.h). Causal SMYRF
// on CUDA tensors builds its plan on the host from copies of q and k (its snapshot walk is
// sequential) and runs the attention on the device over the plan's pair lists; it takes float32
// only there, and its multiplicity and coverage diagnostics come back as CPU tensors.
// bfloat16 (CUDA only): out and the gradients are bfloat16, the saved LSE float32; the kernels
// accumulate in float32 (about 1e-2 relative agreement with float32 on the rounded inputs, see
// tests/cuda/test_cuda_attention_bf16.cpp). Status of the bfloat16 autograd path: written
// 2026-11-29 and compiled; it has not run on a GPU (the raw bfloat16 ops it calls have).
//
// Shapes: q (B, H, Nq, d), k (B, H, Nk, d), v (B, H, Nk, dv) -> out (B, H, Nq, dv).
// B = batch, H = heads. Nq != Nk is cross-attention. Inputs of any strides are accepted (copied to
// contiguous buffers when needed). q, k, v share one dtype (float32 or float64) on the CPU.
//
// Each call is ONE autograd node ("attention" / "smyrf_attention") whose backward is the fused
// kernel backward of kernels/cpu/attention.h / smyrf.h: the forward saves only its output and the
// per-query log-sum-exp (and, for SMYRF, the clustering plan), never a score matrix.
//
// Masks are bool tensors where TRUE MEANS A REAL TOKEN and false means padding (the opposite of
// torch.nn.MultiheadAttention's key_padding_mask, which marks padding with true):
//   key_padding_mask   (B, Nk): padded keys are never attended.
//   query_padding_mask (B, Nq): padded queries output zeros and receive zero gradient.
// A query with no attendable key (all keys masked, or none shares a cluster) outputs zeros and
// gets zero gradient; nothing becomes NaN.
//
// Errors are smyrf::Error naming the op and the shapes, with a hint, for: undefined inputs, ranks
// other than 4, inputs on different devices, non-float inputs (float64 on CUDA, bfloat16 on the
// CPU or for causal SMYRF), mixed dtypes, q/k
// head sizes that differ, k/v lengths that differ, batch or heads that differ, masks of the wrong
// shape or dtype, a bias of the wrong shape or one that requires grad, dropout outside [0, 1), and
// (SMYRF) non-positive n_hashes or cluster sizes, query/key chunk counts that cannot pair
// (ceil(Nq/Cq) != ceil(Nk/Ck)) and causal mode with Nq != Nk.
#pragma once
#include <cstdint>
#include <optional>

#include "core/random.h"
#include "core/tensor.h"

namespace smyrf {

// Options shared by both ops.
struct AttentionOptions {
  std::optional<double> scale;  // scores are scale * q.k; default 1/sqrt(d)
  Tensor key_padding_mask;      // (B, Nk) bool, true = real key; undefined = no padding
  Tensor query_padding_mask;    // (B, Nq) bool, true = real query
  // Query i sees keys j <= i + (Nk - Nq) (queries are the last Nq positions; j <= i when Nq == Nk).
  bool causal = false;
  // Attention dropout on the probabilities (inverted: survivors scaled by 1/(1-p)). Active when
  // training and p > 0; the dropout seed is drawn from `generator` (the default generator when
  // null) once per call, and the backward regenerates the same mask from it.
  double dropout_p = 0.0;
  bool training = true;
  Generator* generator = nullptr;
  // Optional additive score bias, (Nq, Nk) (broadcast over batch and heads) or (B, H, Nq, Nk), of
  // q's dtype; -inf removes a pair. A constant: it gets no gradient, and passing one that
  // requires grad is an error. Dense attention only (the SMYRF oracle uses it with log M).
  Tensor bias;
};

enum class SmyrfDuplicates : uint8_t {
  Multiset,  // a pair co-clustered in r rounds counts r times: bias log M (the paper)
  Set,       // each co-clustered pair counts once: bias log 1[M > 0]
};

// Optional outputs of smyrf_attention, filled when SmyrfOptions::diagnostics points here.
// Set the request flags before the call.
struct SmyrfDiagnostics {
  bool want_clusters = true;              // q_cluster, k_cluster (non-causal only)
  bool want_multiplicity = false;         // multiplicity
  bool want_coverage = false;             // coverage
  int64_t max_matrix_elements = 1 << 26;  // B*H*Nq*Nk limit for multiplicity (error above)

  uint64_t seed = 0;          // the hash seed this call used (explicit or drawn)
  uint64_t dropout_seed = 0;  // the dropout seed (0 when dropout is off)
  // Cluster id of every token per round, -1 for padding: (B, H, R, Nq) and (B, H, R, Nk) int32.
  // Query chunk c attends key chunk c. Undefined in causal mode (each query has its own window).
  Tensor q_cluster, k_cluster;
  // M (B, H, Nq, Nk) int32: rounds in which query i attends key j (multiset count in both
  // duplicate modes; set semantics uses 1[M > 0]).
  Tensor multiplicity;
  // (B, H, Nq) float64: the share of DENSE attention mass (softmax of scale q.k over the keys the
  // same masks and causal rule allow) that falls on keys the query attends in at least one round.
  // 1 means SMYRF sees every key that matters; 0 for padded queries. O(B H Nq Nk d) to compute.
  Tensor coverage;
};

struct SmyrfOptions : AttentionOptions {
  int64_t n_hashes = 2;
  int64_t q_cluster_size = 32;  // Cq; causal: block length
  int64_t k_cluster_size = 32;  // Ck; causal: window of past keys
  SmyrfDuplicates duplicates = SmyrfDuplicates::Multiset;
  // Hash seed. Unset: drawn from `generator` (before the dropout seed) on every call, so each
  // step gets fresh clusters; the node keeps its plan, so backward reuses the same clusters, and
  // diagnostics->seed reports the seed for recomputation (pass it back here to reproduce them).
  std::optional<uint64_t> seed;
  SmyrfDiagnostics* diagnostics = nullptr;
};

// softmax(scale q k^T + bias + masks) v, one autograd node; gradients flow to q, k and v.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v,
                 const AttentionOptions& options = {});

// SMYRF clustered attention (docs/smyrf.md): equals attention() with the bias log M of its own
// clusters (bias must be undefined here). Gradients are exact for the clustered function with
// the clusters held fixed.
Tensor smyrf_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                       const SmyrfOptions& options = {});

}  // namespace smyrf
