// Batch normalisation on device buffers, with kernels/cpu/batch_norm.h's interface and semantics
// ((N, C, L) contiguous; per-channel or per-sample (conditional) affine parameters by
// affine_stride_n; statistics and gradient sums in double). float and double.
//
// Deterministic and free of atomics: one block per channel (statistics) or per (sample, channel)
// (the backward's partial sums) reduces with a fixed tree, and one thread per channel combines
// the samples in order; the sums' order differs from the CPU's sequential loops (rounding only).
//
// Status: ran on an NVIDIA H200 on 2026-11-30 (tests/cuda 42/42 passing; scripts/gpu-check);
// tests/cuda/test_cuda_batch_norm.cpp compares the op with the CPU.
#pragma once
#include <cstdint>

namespace smyrf::kernels::cuda {

// Per-channel mean and biased variance (divisor N*L).
template <typename T>
void batch_norm_stats(const T* x, int64_t N, int64_t C, int64_t L, T* mean, T* var);

// rstd[c] = 1 / sqrt(var[c] + eps), in double and rounded to T (as the CPU path); when running
// statistics are given (non-null), also their update with momentum from mean and var, the variance
// unbiased by count / (count - 1) (PyTorch's convention). One thread a channel, no host copies.
template <typename T>
void batch_norm_finish_stats(const T* mean, const T* var, int64_t C, double eps, double momentum,
                             int64_t count, T* running_mean, T* running_var, T* rstd);

// y = x * scale + shift with scale = rstd[c] * w[a], shift = b[a] - mean[c] * scale (w, b may be
// null: 1 and 0), as the CPU kernel.
template <typename T>
void batch_norm_apply(const T* x, int64_t N, int64_t C, int64_t L, const T* mean, const T* rstd,
                      const T* w, const T* b, int64_t affine_stride_n, T* y);

// Gradients of the forward above (see kernels/cpu/batch_norm.h); dx, dw, db may be null.
template <typename T>
void batch_norm_backward(const T* dy, const T* x, int64_t N, int64_t C, int64_t L, const T* mean,
                         const T* rstd, const T* w, int64_t affine_stride_n, bool training, T* dx,
                         T* dw, T* db);

}  // namespace smyrf::kernels::cuda
