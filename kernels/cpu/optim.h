// Fused optimizer updates on contiguous buffers (one pass over param, grad and state).
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu {

// Adam / AdamW. decoupled: p -= lr * wd * p (AdamW); else g += wd * p (Adam's L2).
// step is 1-based (for bias correction).
template <typename T>
void adam_update(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bool decoupled, int64_t step);

// SGD with momentum (buf may be null when momentum == 0), dampening 0, optional Nesterov.
template <typename T>
void sgd_update(T* p, const T* g, T* buf, int64_t n, double lr, double momentum, double weight_decay,
                bool nesterov, bool first_step);

}  // namespace smyrf::kernels::cpu
