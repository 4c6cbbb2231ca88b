// Batch normalisation over contiguous (N, C, L) buffers (L = H*W, or 1 for (N, C) inputs), the
// statistics per channel over N*L values, forward and backward, float and double. Channels are
// split across threads.
//
// The affine parameters may be per channel (affine_stride_n = 0: w, b of C values) or per sample
// and channel (affine_stride_n = C: w, b of N*C values), the second being conditional batch norm
// (BigGAN's class-conditional gain and bias) fused into the same pass.
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu {

// Per-channel mean and biased variance (divisor N*L), accumulated in double.
template <typename T>
void batch_norm_stats(const T* x, int64_t N, int64_t C, int64_t L, T* mean, T* var);

// y = (x - mean[c]) * rstd[c] * w + b; w and b may be null (1 and 0).
template <typename T>
void batch_norm_apply(const T* x, int64_t N, int64_t C, int64_t L, const T* mean, const T* rstd,
                      const T* w, const T* b, int64_t affine_stride_n, T* y);

// Gradients of the forward above. training: mean and rstd were computed from x, so dx includes
// the terms through the batch statistics; otherwise they were constants (running statistics).
// dx, dw, db may each be null (not wanted); dw and db are overwritten (C or N*C values, by
// affine_stride_n). w may be null (1).
template <typename T>
void batch_norm_backward(const T* dy, const T* x, int64_t N, int64_t C, int64_t L, const T* mean,
                         const T* rstd, const T* w, int64_t affine_stride_n, bool training, T* dx,
                         T* dw, T* db);

}  // namespace smyrf::kernels::cpu
