// CUDA dispatch for the fused network ops that autograd/ calls directly on the CPU through
// kernels/cpu (attention, SMYRF attention, convolution): the same parameters, device buffers.
// Each function makes the tensors' device current and turns kernel failures into smyrf::Error
// naming the op; in a build without CUDA every function throws (unreachable: no CUDA tensor can
// exist there). All CUDA #ifdefs live in ops_cuda_nn.cpp.
//
// Tensors are contiguous, on one CUDA device; masks and bias in the parameter structs must already
// point to device memory. Attention takes float32 (CUDA-core kernels) or bfloat16 (tensor-core
// kernels, float32 accumulation): q, k, v, out, dout, dq, dk, dv share q's dtype, lse is float32
// in both cases (a bfloat16 bias is widened to float32). Anything else is an Error naming the op.
// Note: autograd/attention_ops allocates lse in q's dtype, so bfloat16 through the autograd ops
// needs its lse allocation changed to float32 first; the raw ops here are bfloat16-ready.
//
// Status: ran on an NVIDIA H200 on 2026-11-30 (tests/cuda 42/42: every function here is compared
// with the CPU op there).
#pragma once
#include <memory>

#include "core/tensor.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/smyrf.h"

namespace smyrf::cuda_ops {

void attention_forward(const kernels::cpu::AttentionParams& p, const Tensor& q, const Tensor& k,
                       const Tensor& v, const Tensor& bias, const Tensor& out, const Tensor& lse);
void attention_backward(const kernels::cpu::AttentionParams& p, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& bias, const Tensor& out, const Tensor& lse,
                        const Tensor& dout, const Tensor& dq, const Tensor& dk, const Tensor& dv);

// The device clustering of one call (kept by the autograd node for backward).
struct SmyrfCudaPlan;
std::shared_ptr<SmyrfCudaPlan> smyrf_make_plan(const kernels::cpu::SmyrfParams& p, const Tensor& q,
                                               const Tensor& k);
void smyrf_forward(const kernels::cpu::SmyrfParams& p, const SmyrfCudaPlan& plan, const Tensor& q,
                   const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse);
void smyrf_backward(const kernels::cpu::SmyrfParams& p, const SmyrfCudaPlan& plan, const Tensor& q,
                    const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                    const Tensor& dout, const Tensor& dq, const Tensor& dk, const Tensor& dv);
// A causal plan's host clustering (the pair lists were built from it), null for a non-causal
// plan: the multiplicity and coverage diagnostics read it instead of rebuilding it.
const kernels::cpu::SmyrfPlan* smyrf_host_plan(const SmyrfCudaPlan& plan);
// Cluster ids of the plan, (BH, R, Nq) and (BH, R, Nk) int32 tensors on the plan's device.
void smyrf_clusters(const SmyrfCudaPlan& plan, const Tensor& q_cluster, const Tensor& k_cluster);

// Pipeline depth of the bfloat16 attention kernels (kernels/cuda/attention.h): 2 (default)
// double-buffers the other side's tiles with cp.async, 1 loads one buffer synchronously. Error
// for other values. In a build without CUDA the setting is kept and has no effect.
void set_attention_pipeline_stages(int stages);
int attention_pipeline_stages();
// How the bfloat16 SMYRF backward gets dq (kernels/cuda/attention.h, set_smyrf_stored_ds): false
// (the default) recomputes the scores in a dq kernel, true stores dS and takes dQ = scale dS K as
// one batched product. Returns the previous setting; an Error names a bad SMYRF_CUDA_SMYRF_DQ.
// In a build without CUDA the setting is kept and has no effect. Written 2026-11-30 without a
// GPU: compiled, not yet run on one.
bool set_smyrf_stored_ds(bool stored);
bool smyrf_stored_ds();

void conv2d_forward(const kernels::cpu::Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                    const Tensor& bias, const Tensor& y);
void conv2d_backward_data(const kernels::cpu::Conv2dGeometry& g, const Tensor& dy, const Tensor& w,
                          const Tensor& dx);
void conv2d_backward_filter(const kernels::cpu::Conv2dGeometry& g, const Tensor& x,
                            const Tensor& dy, const Tensor& dw, const Tensor& dbias);

// Pooling and nearest upsampling (kernels/cuda/pool.h: the CPU kernels' semantics; backwards
// overwrite dx). Contiguous NCHW, float32 or float64.
void avg_pool2d_forward(const kernels::cpu::Pool2dGeometry& g, const Tensor& x, const Tensor& y,
                        bool count_include_pad);
void avg_pool2d_backward(const kernels::cpu::Pool2dGeometry& g, const Tensor& dy, const Tensor& dx,
                         bool count_include_pad);
void max_pool2d_forward(const kernels::cpu::Pool2dGeometry& g, const Tensor& x, const Tensor& y,
                        const Tensor& indices);
void max_pool2d_backward(const kernels::cpu::Pool2dGeometry& g, const Tensor& dy,
                         const Tensor& indices, const Tensor& dx);
void upsample_nearest2d_forward(int64_t planes, int64_t H, int64_t W, int64_t fh, int64_t fw,
                                const Tensor& x, const Tensor& y);
void upsample_nearest2d_backward(int64_t planes, int64_t H, int64_t W, int64_t fh, int64_t fw,
                                 const Tensor& dy, const Tensor& dx);

// Batch normalisation over contiguous (N, C, L) (kernels/cuda/batch_norm.h); undefined w, b, dx,
// dw, db are passed as null.
void batch_norm_stats(const Tensor& x, int64_t N, int64_t C, int64_t L, const Tensor& mean,
                      const Tensor& var);
// rstd and, when running_mean / running_var are defined, their momentum update (see
// kernels/cuda/batch_norm.h); count = N * L.
void batch_norm_finish_stats(const Tensor& mean, const Tensor& var, double eps, double momentum,
                             int64_t count, const Tensor& running_mean, const Tensor& running_var,
                             const Tensor& rstd);
void batch_norm_apply(const Tensor& x, int64_t N, int64_t C, int64_t L, const Tensor& mean,
                      const Tensor& rstd, const Tensor& w, const Tensor& b, int64_t affine_stride_n,
                      const Tensor& y);
void batch_norm_backward(const Tensor& dy, const Tensor& x, int64_t N, int64_t C, int64_t L,
                         const Tensor& mean, const Tensor& rstd, const Tensor& w,
                         int64_t affine_stride_n, bool training, const Tensor& dx, const Tensor& dw,
                         const Tensor& db);

}  // namespace smyrf::cuda_ops
