// Dense scaled dot-product attention on raw CPU buffers: fused online-softmax forward and the
// FlashAttention-2 style backward that recomputes the scores from the saved log-sum-exp.
//
// Layout (all contiguous, row-major):
//   q    (BH, Nq, d)      k (BH, Nk, d)      v (BH, Nk, dv)
//   out  (BH, Nq, dv)     lse (BH, Nq)        BH = batch * heads, batch b = bh / heads
//   bias optional additive scores, (Nq, Nk) per bh at bias + bh * bias_bh_stride
//        (bias_bh_stride = 0 broadcasts one matrix over all rows; Nq * Nk gives one per bh).
//        -inf entries remove a pair. The bias gets no gradient (it is a constant, e.g. log M).
//   key_mask   optional (B, Nk) uint8: nonzero = real key, 0 = padding (never attended).
//   query_mask optional (B, Nq) uint8: nonzero = real query, 0 = padding (out 0, lse -inf, no
//              gradient flows from it).
//
//   s_ij = scale * q_i . k_j + bias_ij   (-inf where masked)
//   lse_i = log sum_j exp(s_ij),  P_ij = exp(s_ij - lse_i),  out_i = sum_j P_ij z_ij v_j
//
// Causal: query i sees keys j <= i + (Nk - Nq) (queries are the last Nq positions of a length-Nk
// sequence, the usual convention for cached keys; with Nq == Nk it is j <= i).
// Dropout: z_ij = keep_ij / (1 - p), keep_ij drawn by attention_dropout_keep(seed, bh, i, j), a
// counter-based hash, so the backward regenerates the mask without storing it. lse is the
// pre-dropout log-sum-exp.
// A query whose every key is masked (or that is padding) outputs zeros with lse = -inf and
// receives zero gradient; nothing becomes NaN.
//
// Backward: given dout (BH, Nq, dv), writes (overwrites) dq, dk, dv with D_i = dout_i . out_i and
// dS_ij = P_ij (z_ij dout_i . v_j - D_i): dq = scale dS k, dk = scale dS^T q, dv = (P z)^T dout.
//
// Threading: OpenMP over (bh, query tile) in forward, over key tiles with per-thread dq buffers in
// backward. Float entry points use the AVX2/FMA build when active_isa() says so; there, float
// calls without bias, key mask, causality or dropout and with d, dv multiples of 8 (at most 128)
// run SMYRF's packed 128 x 128 tiles (key blocks merged by log-sum-exp in the forward).
// Errors: std::invalid_argument naming [attention] and the sizes for negative or zero sizes,
// heads not dividing BH, or dropout_p outside [0, 1).
#pragma once
#include <cstdint>

#include "kernels/cpu/philox.h"

namespace smyrf::kernels::cpu {

struct AttentionParams {
  int64_t batch_heads = 1;  // BH
  int64_t heads = 1;        // H (BH % H == 0); only used to index the masks
  int64_t nq = 0, nk = 0;   // query and key lengths
  int64_t d = 0, dv = 0;    // head size of q/k and of v
  double scale = 1.0;
  bool causal = false;
  const uint8_t* key_mask = nullptr;    // (B, Nk), nonzero = keep
  const uint8_t* query_mask = nullptr;  // (B, Nq), nonzero = keep
  int64_t bias_bh_stride = 0;           // elements between the bias matrices of consecutive bh
  double dropout_p = 0.0;               // probability of dropping a pair
  uint64_t dropout_seed = 0;
};

template <typename T>
void attention_forward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* bias,
                       T* out, T* lse);

template <typename T>
void attention_backward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* bias,
                        const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv);

// Validates the sizes; throws std::invalid_argument with an "[attention] ..." message.
void attention_check(const AttentionParams& p);

// Dropout threshold on the first Philox word: keep when word >= threshold.
inline uint32_t attention_dropout_threshold(double p) {
  const double t = p * 4294967296.0;
  return t >= 4294967295.0 ? 0xFFFFFFFFu : static_cast<uint32_t>(t);
}

// Whether pair (i, j) of row bh survives dropout; the same function is used by SMYRF, so SMYRF with
// dropout equals dense attention with the log M bias and the same dropout seed.
SMYRF_HOST_DEVICE inline bool attention_dropout_keep(uint64_t seed, int64_t bh, int64_t i,
                                                     int64_t j, uint32_t threshold) {
  const Philox4x32 r =
      philox4x32(static_cast<uint32_t>(i), static_cast<uint32_t>(j), static_cast<uint32_t>(bh),
                 0xA77E0000u ^ static_cast<uint32_t>(static_cast<uint64_t>(bh) >> 32), seed);
  return r.v[0] >= threshold;
}

}  // namespace smyrf::kernels::cpu
