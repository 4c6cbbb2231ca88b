// One element of the Adam / AdamW update in double (kernels/cpu/optim.h): the scalar loop of
// optim.cpp and the AVX2 kernel's tail (optim_avx2.cpp) share it, so both round alike.
#pragma once
#include <cmath>

namespace smyrf::kernels::cpu {

template <typename T>
inline void adam_element(T* p, T g, T* m, T* v, double lr, double beta1, double beta2, double eps,
                         double weight_decay, bool decoupled, double step_size,
                         double inv_sqrt_bc2) {
  double gi = g;
  double pi = *p;
  if (weight_decay != 0) {
    if (decoupled)
      pi -= lr * weight_decay * pi;
    else
      gi += weight_decay * pi;
  }
  const double mi = beta1 * *m + (1 - beta1) * gi;
  const double vi = beta2 * *v + (1 - beta2) * gi * gi;
  *m = static_cast<T>(mi);
  *v = static_cast<T>(vi);
  *p = static_cast<T>(pi - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps));
}

}  // namespace smyrf::kernels::cpu
