// Dense and SMYRF attention on raw CUDA buffers: the semantics, layouts and parameters of
// kernels/cpu/attention.h and kernels/cpu/smyrf.h (read those first), float32 only.
//
// Every pointer, including the masks and the bias inside the parameter structs, is a device
// pointer; work is queued on the current stream. Each kernel reads q/k/v rows through the
// cluster permutation while it loads its tiles (no permuted copies), keeps the online softmax per
// query in registers, merges the rounds' (out, LSE) in original token order, and the backward
// recomputes probabilities from the global LSE (the spec's exact gradient). Deterministic and free
// of atomics: within one launch every query (forward, dq) and every key (dk, dv) is owned by one
// thread, and SMYRF rounds are launched one after another.
//
// Limits (std::invalid_argument, "[attention] ..." / "[smyrf_attention] ..."): head sizes d and
// dv at most 128. The clustered SMYRF kernels are the non-causal ones. Causal SMYRF runs over
// explicit pair lists (smyrf_pairs.cu): its plan walks sorted past-key snapshots block by block
// (kernels/cpu/smyrf.h), a sequential algorithm that core/ops_cuda_nn runs on the host (from host
// copies of q and k), and the lists it yields (kernels/cpu/smyrf_pairs.h) are uploaded once per
// call; the attention, forward and backward, runs here. Dense causal attention runs here too.
//
// Two paths:
//  - float32: straightforward thread-per-row CUDA-core kernels (attention_tiles.cuh), the
//    reference path;
//  - bfloat16 (the *_bf16 functions): tensor-core kernels (attention_mma.cuh: mma.sync
//    m16n8k16, bfloat16 operands, float32 accumulation). q, k, v, dout, out, dq, dk, dv are
//    bfloat16 bit patterns (core/bfloat16.h); lse, D and the bias are float32. Softmax, the LSE,
//    the round merge and the per-round gradient sums are float32; P and dS are rounded to
//    bfloat16 as the products' operands (FlashAttention does the same), so gradients agree with
//    the float32 op on the same (bfloat16-rounded) inputs to about 1e-2 relative. The SMYRF plan
//    hashes float32 copies of q and k, so it equals the plan of the float32 op on the rounded
//    inputs. Same limits, same determinism (no atomics).
//
// Status: ran on an NVIDIA H200 on 2026-11-29 (tests/cuda, all passing; scripts/gpu-check), both
// bfloat16 pipeline depths included (depth 2 took 7-28% less time there than depth 1). The exact
// head-width kernels (attention_mma.cuh) and the plan's sliced max-norm and single sort
// (smyrf_plan.cu), written after that run, ran on an NVIDIA H200 on 2026-11-30 (tests/cuda 42/42
// passing; scripts/gpu-check).
#pragma once
#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/smyrf.h"
#include "kernels/cpu/smyrf_pairs.h"
#include "kernels/cuda/device_buffer.h"

namespace smyrf::kernels::cuda {

constexpr int64_t kAttentionMaxHead = 128;
// std::invalid_argument "[op] head sizes ... exceed 128 on CUDA; hint: ..." above that limit.
void check_attention_heads(const char* op, int64_t d, int64_t dv);

void attention_forward(const cpu::AttentionParams& p, const float* q, const float* k,
                       const float* v, const float* bias, float* out, float* lse);
// dq, dk, dv are overwritten.
void attention_backward(const cpu::AttentionParams& p, const float* q, const float* k,
                        const float* v, const float* bias, const float* out, const float* lse,
                        const float* dout, float* dq, float* dk, float* dv);

// The clustering of every (bh, round) on the device: as cpu::SmyrfPlan (non-causal part).
struct SmyrfDevicePlan {
  int64_t batch_heads = 0, rounds = 0, nq = 0, nk = 0, n_chunks = 0;
  DeviceArray<int32_t> q_order, k_order;      // (BH, R, Nq), (BH, R, Nk): sorted token indices
  DeviceArray<int32_t> q_cluster, k_cluster;  // chunk id per token, -1 for padding
  DeviceArray<int32_t> q_real, k_real;        // (BH): real tokens
};

// Throws std::invalid_argument for causal parameters (see above).
void smyrf_require_non_causal(const cpu::SmyrfParams& p);

SmyrfDevicePlan smyrf_make_plan(const cpu::SmyrfParams& p, const float* q, const float* k);
void smyrf_forward(const cpu::SmyrfParams& p, const SmyrfDevicePlan& plan, const float* q,
                   const float* k, const float* v, float* out, float* lse);
// dq, dk, dv are overwritten with the exact gradients of the clustered function.
void smyrf_backward(const cpu::SmyrfParams& p, const SmyrfDevicePlan& plan, const float* q,
                    const float* k, const float* v, const float* out, const float* lse,
                    const float* dout, float* dq, float* dk, float* dv);

// --- causal SMYRF over pair lists (smyrf_pairs.cu; float32, compiled only so far) ---
// The lists of cpu::SmyrfPairs on the device (each array at least one element long).
struct SmyrfDevicePairs {
  int64_t batch_heads = 0, nq = 0, nk = 0, size = 0;
  DeviceArray<int64_t> q_offsets, k_offsets;  // (BH * Nq + 1), (BH * Nk + 1)
  DeviceArray<int32_t> q_keys, q_mult, k_queries, k_mult;
};
SmyrfDevicePairs smyrf_upload_pairs(const cpu::SmyrfPairs& pairs);
// Causal parameters only (std::invalid_argument otherwise, or for pairs of other sizes).
void smyrf_pairs_forward(const cpu::SmyrfParams& p, const SmyrfDevicePairs& pairs, const float* q,
                         const float* k, const float* v, float* out, float* lse);
// dq, dk, dv are overwritten with the exact gradients over the listed pairs.
void smyrf_pairs_backward(const cpu::SmyrfParams& p, const SmyrfDevicePairs& pairs, const float* q,
                          const float* k, const float* v, const float* out, const float* lse,
                          const float* dout, float* dq, float* dk, float* dv);

// --- bfloat16 on the tensor cores (see above) ---
// Pipeline depth of the bfloat16 kernels (attention_mma.cuh): 2 (the default) copies the next
// tile of the other side with cp.async while the current one is computed; 1 loads each tile
// synchronously into one buffer (the layout first run on a GPU). The environment variable
// SMYRF_CUDA_ATTN_STAGES (1 or 2) sets the default once; the setter overrides it (tests run both).
// std::invalid_argument for other values.
void set_attention_pipeline_stages(int stages);
int attention_pipeline_stages();

// How smyrf_backward_bf16 gets dq. false (the default): mma_dq_kernel, which recomputes each
// cluster's scores and dO V^T beside the dk/dv kernel's. true ("stored dS"): the dk/dv kernel
// also stores each round's dS (bfloat16, per cluster), and dQ = scale dS K is one batched cuBLAS
// product over the clusters (K gathered into cluster order first), added into dq in token order
// round by round (deterministic, no atomics); it saves two of the backward's seven products
// per pair and costs BH x clusters x ck x cq bfloat16 of workspace. SMYRF_CUDA_SMYRF_DQ=stored
// (or recompute), read once, sets the default; the setter overrides it and returns the previous
// setting. Written 2026-11-30 without a GPU: compiled, not yet run on one (tests/cuda runs the
// SMYRF bfloat16 cases under both).
bool set_smyrf_stored_ds(bool stored);
bool smyrf_stored_ds();

void attention_forward_bf16(const cpu::AttentionParams& p, const uint16_t* q, const uint16_t* k,
                            const uint16_t* v, const float* bias, uint16_t* out, float* lse);
// dq, dk, dv are overwritten.
void attention_backward_bf16(const cpu::AttentionParams& p, const uint16_t* q, const uint16_t* k,
                             const uint16_t* v, const float* bias, const uint16_t* out,
                             const float* lse, const uint16_t* dout, uint16_t* dq, uint16_t* dk,
                             uint16_t* dv);
SmyrfDevicePlan smyrf_make_plan_bf16(const cpu::SmyrfParams& p, const uint16_t* q,
                                     const uint16_t* k);
void smyrf_forward_bf16(const cpu::SmyrfParams& p, const SmyrfDevicePlan& plan, const uint16_t* q,
                        const uint16_t* k, const uint16_t* v, uint16_t* out, float* lse);
void smyrf_backward_bf16(const cpu::SmyrfParams& p, const SmyrfDevicePlan& plan, const uint16_t* q,
                         const uint16_t* k, const uint16_t* v, const uint16_t* out,
                         const float* lse, const uint16_t* dout, uint16_t* dq, uint16_t* dk,
                         uint16_t* dv);

}  // namespace smyrf::kernels::cuda
