#include "kernels/cpu/optim.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/cpu/adam_element.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/nd_loop.h"
#include "kernels/cpu/optim_avx2.h"

namespace smyrf::kernels::cpu {

template <typename T>
void adam_update(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2,
                 double eps, double weight_decay, bool decoupled, int64_t step) {
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  const double step_size = lr / bc1;
  const double inv_sqrt_bc2 = 1.0 / std::sqrt(bc2);
  if constexpr (std::is_same_v<T, float>) {
    if (active_isa() == Isa::Avx2) {
      // the same double arithmetic four lanes at a time (kernels/cpu/optim_avx2.h): the scalar
      // loop's SSE2 square roots and divisions bound it (16M parameters: 49.5 ms)
      const int64_t kChunk = 1 << 14;
#pragma omp parallel for if (n >= kParallelGrain && !omp_in_parallel()) schedule(static)
      for (int64_t c = 0; c < (n + kChunk - 1) / kChunk; ++c) {
        const int64_t b = c * kChunk, len = std::min(kChunk, n - b);
        avx2::adam_update_f32(p + b, g + b, m + b, v + b, len, weight_decay, decoupled, beta1,
                              beta2, step_size, inv_sqrt_bc2, eps, lr);
      }
      return;
    }
  }
#pragma omp parallel for if (n >= kParallelGrain && !omp_in_parallel()) schedule(static)
  for (int64_t i = 0; i < n; ++i)
    adam_element(p + i, g[i], m + i, v + i, lr, beta1, beta2, eps, weight_decay, decoupled,
                 step_size, inv_sqrt_bc2);
}

template <typename T>
void sgd_update(T* p, const T* g, T* buf, int64_t n, double lr, double momentum,
                double weight_decay, bool nesterov, bool first_step) {
#pragma omp parallel for if (n >= kParallelGrain && !omp_in_parallel()) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    double gi = g[i] + weight_decay * p[i];
    if (momentum != 0) {
      double b = first_step ? gi : momentum * buf[i] + gi;
      buf[i] = static_cast<T>(b);
      gi = nesterov ? gi + momentum * b : b;
    }
    p[i] = static_cast<T>(p[i] - lr * gi);
  }
}

template void adam_update<float>(float*, const float*, float*, float*, int64_t, double, double,
                                 double, double, double, bool, int64_t);
template void adam_update<double>(double*, const double*, double*, double*, int64_t, double, double,
                                  double, double, double, bool, int64_t);
template void sgd_update<float>(float*, const float*, float*, int64_t, double, double, double, bool,
                                bool);
template void sgd_update<double>(double*, const double*, double*, int64_t, double, double, double,
                                 bool, bool);

}  // namespace smyrf::kernels::cpu
