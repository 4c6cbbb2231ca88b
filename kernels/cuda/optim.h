// Fused optimizer updates on contiguous device buffers: the formulas of kernels/cpu/optim.h
// (computed in double per element, as the CPU), one pass over param, grad and state.
// float and double. Queued on the current stream.
//
// Status: ran on an NVIDIA H200 on 2026-11-28 (tests/cuda, all passing; scripts/gpu-check).
#pragma once
#include <cstdint>

namespace smyrf::kernels::cuda {

template <typename T>
void adam_update(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2,
                 double eps, double weight_decay, bool decoupled, int64_t step);

template <typename T>
void sgd_update(T* p, const T* g, T* buf, int64_t n, double lr, double momentum,
                double weight_decay, bool nesterov, bool first_step);

}  // namespace smyrf::kernels::cuda
