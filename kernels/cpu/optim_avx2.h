// AVX2 form of kernels/cpu/optim.h's Adam update for float parameters: the same double-precision
// arithmetic, four elements at a time, with the scalar loop's float results bit for bit
// (compiled without floating-point contraction: no multiply-add fused that the scalar loop
// rounds twice).
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu::avx2 {
// Elements [0, n) of adam_update<float>: wd_lr = lr * weight_decay (decoupled) or weight_decay
// (coupled), c1 = 1 - beta1, c2 = 1 - beta2, step_size = lr / bc1, inv_sqrt_bc2 = 1 / sqrt(bc2).
void adam_update_f32(float* p, const float* g, float* m, float* v, int64_t n, double wd,
                     bool decoupled, double beta1, double beta2, double step_size,
                     double inv_sqrt_bc2, double eps, double lr);
}  // namespace smyrf::kernels::cpu::avx2
