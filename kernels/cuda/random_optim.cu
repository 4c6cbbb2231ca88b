// Philox fills and optimizer updates: small pointwise kernels sharing one translation unit to
// keep the number of nvcc invocations down. Status: ran on an NVIDIA H200 on 2026-11-28
// (tests/cuda, all passing; scripts/gpu-check).
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/philox.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/optim.h"
#include "kernels/cuda/random_fill.h"

namespace smyrf::kernels::cuda {
namespace {
using namespace detail;
constexpr int kThreads = 256;

__device__ __forceinline__ Philox4x32 block(uint64_t seed, uint64_t counter) {
  return philox4x32(static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), 0u, 0u,
                    seed);
}

enum class Dist { UniformF32, UniformF64, NormalF32, NormalF64, Int64, Bernoulli };

// One thread per Philox block (4 or 2 elements), as the CPU's for_blocks.
// lo + (hi - lo) * u is written with __fmul_rn/__fadd_rn: nvcc would otherwise fuse it into an
// FMA and round once where the CPU rounds twice, and the uniforms would differ in the last bit.
__global__ void fill_kernel(Dist dist, void* out, int64_t n, uint64_t seed, uint64_t offset,
                            double a, double b) {
  const int lanes =
      (dist == Dist::UniformF64 || dist == Dist::NormalF64 || dist == Dist::Int64) ? 2 : 4;
  const int64_t nb = (n + lanes - 1) / lanes, step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t bi = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; bi < nb;
       bi += step) {
    const Philox4x32 r = block(seed, offset + static_cast<uint64_t>(bi));
    const int64_t i0 = bi * lanes;
    switch (dist) {
      case Dist::UniformF32: {
        float* y = static_cast<float*>(out);
        const float lo = static_cast<float>(a), span = static_cast<float>(b) - lo;
        for (int l = 0; l < 4 && i0 + l < n; ++l)
          y[i0 + l] = __fadd_rn(lo, __fmul_rn(span, uniform_float(r.v[l])));
        break;
      }
      case Dist::UniformF64: {
        double* y = static_cast<double*>(out);
        for (int l = 0; l < 2 && i0 + l < n; ++l)
          y[i0 + l] = __dadd_rn(a, __dmul_rn(b - a, uniform_double(r.v[2 * l], r.v[2 * l + 1])));
        break;
      }
      case Dist::NormalF32: {
        float* y = static_cast<float*>(out);
        float z[4];
        box_muller(uniform_float_open(r.v[0]), uniform_float_open(r.v[1]), &z[0], &z[1]);
        box_muller(uniform_float_open(r.v[2]), uniform_float_open(r.v[3]), &z[2], &z[3]);
        const float mean = static_cast<float>(a), sd = static_cast<float>(b);
        for (int l = 0; l < 4 && i0 + l < n; ++l) y[i0 + l] = __fadd_rn(mean, __fmul_rn(sd, z[l]));
        break;
      }
      case Dist::NormalF64: {
        double* y = static_cast<double*>(out);
        double z[2];
        box_muller(uniform_double_open(r.v[0], r.v[1]), uniform_double_open(r.v[2], r.v[3]), &z[0],
                   &z[1]);
        for (int l = 0; l < 2 && i0 + l < n; ++l) y[i0 + l] = __dadd_rn(a, __dmul_rn(b, z[l]));
        break;
      }
      case Dist::Int64: {
        // a, b carry low and the range through their bits (see launch_int64)
        int64_t* y = static_cast<int64_t*>(out);
        const int64_t low = __double_as_longlong(a);
        const uint64_t range = static_cast<uint64_t>(__double_as_longlong(b));
        for (int l = 0; l < 2 && i0 + l < n; ++l) {
          const uint64_t u = (static_cast<uint64_t>(r.v[2 * l]) << 32) | r.v[2 * l + 1];
          y[i0 + l] = low + static_cast<int64_t>(u % range);
        }
        break;
      }
      case Dist::Bernoulli: {
        bool* y = static_cast<bool*>(out);
        const float p = static_cast<float>(a);
        for (int l = 0; l < 4 && i0 + l < n; ++l) y[i0 + l] = uniform_float(r.v[l]) < p;
        break;
      }
    }
  }
}

void launch_fill(Dist dist, void* out, int64_t n, uint64_t seed, uint64_t offset, double a,
                 double b) {
  if (n <= 0) return;
  const int64_t blocks = (n + 1) / 2;  // an upper bound of the Philox blocks
  fill_kernel<<<grid_for(blocks, kThreads), kThreads, 0, stream()>>>(dist, out, n, seed, offset, a,
                                                                     b);
  SMYRF_CUDA_CHECK_LAUNCH();
}

template <typename T>
__global__ void adam_kernel(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1,
                            double beta2, double eps, double wd, bool decoupled, double step_size,
                            double inv_sqrt_bc2) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) {
    double gi = g[i], pi = p[i];
    if (wd != 0) {
      if (decoupled)
        pi -= lr * wd * pi;
      else
        gi += wd * pi;
    }
    const double mi = beta1 * m[i] + (1 - beta1) * gi;
    const double vi = beta2 * v[i] + (1 - beta2) * gi * gi;
    m[i] = static_cast<T>(mi);
    v[i] = static_cast<T>(vi);
    p[i] = static_cast<T>(pi - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps));
  }
}

template <typename T>
__global__ void sgd_kernel(T* p, const T* g, T* buf, int64_t n, double lr, double momentum,
                           double wd, bool nesterov, bool first_step) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) {
    double gi = g[i] + wd * p[i];
    if (momentum != 0) {
      const double bv = first_step ? gi : momentum * buf[i] + gi;
      buf[i] = static_cast<T>(bv);
      gi = nesterov ? gi + momentum * bv : bv;
    }
    p[i] = static_cast<T>(p[i] - lr * gi);
  }
}
}  // namespace

void random_uniform_f32(float* y, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi) {
  launch_fill(Dist::UniformF32, y, n, seed, offset, lo, hi);
}
void random_uniform_f64(double* y, int64_t n, uint64_t seed, uint64_t offset, double lo,
                        double hi) {
  launch_fill(Dist::UniformF64, y, n, seed, offset, lo, hi);
}
void random_normal_f32(float* y, int64_t n, uint64_t seed, uint64_t offset, float mean, float std) {
  launch_fill(Dist::NormalF32, y, n, seed, offset, mean, std);
}
void random_normal_f64(double* y, int64_t n, uint64_t seed, uint64_t offset, double mean,
                       double std) {
  launch_fill(Dist::NormalF64, y, n, seed, offset, mean, std);
}
void random_int64(int64_t* y, int64_t n, uint64_t seed, uint64_t offset, int64_t low,
                  int64_t high) {
  // the 64-bit integers travel bit-exactly in the two double parameters
  double a, b;
  const int64_t range =
      static_cast<int64_t>(static_cast<uint64_t>(high) - static_cast<uint64_t>(low));
  static_assert(sizeof(double) == sizeof(int64_t), "bit transport");
  std::memcpy(&a, &low, sizeof a);
  std::memcpy(&b, &range, sizeof b);
  launch_fill(Dist::Int64, y, n, seed, offset, a, b);
}
void random_bernoulli(bool* y, int64_t n, uint64_t seed, uint64_t offset, double p) {
  launch_fill(Dist::Bernoulli, y, n, seed, offset, p, 0);
}

template <typename T>
void adam_update(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2,
                 double eps, double weight_decay, bool decoupled, int64_t step) {
  if (n <= 0) return;
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  adam_kernel<T><<<grid_for(n, kThreads), kThreads, 0, stream()>>>(p, g, m, v, n, lr, beta1, beta2,
                                                                   eps, weight_decay, decoupled,
                                                                   lr / bc1, 1.0 / std::sqrt(bc2));
  SMYRF_CUDA_CHECK_LAUNCH();
}

template <typename T>
void sgd_update(T* p, const T* g, T* buf, int64_t n, double lr, double momentum,
                double weight_decay, bool nesterov, bool first_step) {
  if (n <= 0) return;
  sgd_kernel<T><<<grid_for(n, kThreads), kThreads, 0, stream()>>>(
      p, g, buf, n, lr, momentum, weight_decay, nesterov, first_step);
  SMYRF_CUDA_CHECK_LAUNCH();
}

template void adam_update<float>(float*, const float*, float*, float*, int64_t, double, double,
                                 double, double, double, bool, int64_t);
template void adam_update<double>(double*, const double*, double*, double*, int64_t, double, double,
                                  double, double, double, bool, int64_t);
template void sgd_update<float>(float*, const float*, float*, int64_t, double, double, double, bool,
                                bool);
template void sgd_update<double>(double*, const double*, double*, int64_t, double, double, double,
                                 bool, bool);

}  // namespace smyrf::kernels::cuda
