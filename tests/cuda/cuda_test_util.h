// Helpers for the CUDA suites: move tensors between devices and compare a CUDA result with the
// CPU result of the same op (NaN == NaN, infinities equal, per-op tolerances).
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/tensor.h"
#include "data/image_dataset.h"

namespace smyrf::cuda_test {

inline Tensor cu(const Tensor& t) { return t.to(Device::cuda(0)); }
inline Tensor host(const Tensor& t) { return t.detach().to(Device::cpu()); }
// A fresh leaf holding t's values that requires grad (the gradient comparisons start from it).
inline Tensor leaf(const Tensor& t) { return t.detach().clone().requires_grad_(); }

inline std::vector<double> values_of(const Tensor& t) {
  return host(t).to(kFloat64).contiguous().to_vector<double>();
}

// |gpu - cpu| <= atol + rtol * |cpu| elementwise; shapes and dtypes must match.
inline void check_close(const Tensor& gpu, const Tensor& cpu, double rtol, double atol,
                        const std::string& what) {
  INFO(what);
  REQUIRE(gpu.device().is_cuda());
  REQUIRE(cpu.device().is_cpu());
  REQUIRE(gpu.shape() == cpu.shape());
  REQUIRE(gpu.dtype() == cpu.dtype());
  const std::vector<double> g = values_of(gpu), c = values_of(cpu);
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    const bool ok = (std::isnan(c[i]) && std::isnan(g[i])) || (std::isinf(c[i]) && g[i] == c[i]) ||
                    std::fabs(g[i] - c[i]) <= atol + rtol * std::fabs(c[i]);
    if (!ok && bad++ == 0) first = i;
  }
  if (bad) {
    FAIL_CHECK(what << ": " << bad << " of " << c.size() << " elements differ; first at " << first
                    << ": cuda " << g[first] << " vs cpu " << c[first]);
  }
}

inline void check_equal(const Tensor& gpu, const Tensor& cpu, const std::string& what) {
  check_close(gpu, cpu, 0, 0, what);
}

// float32 values in [lo, hi) drawn on the CPU from a fixed seed.
inline Tensor rnd(const Shape& s, uint32_t seed, DType dt = kFloat32, double lo = -2,
                  double hi = 2) {
  Generator g(seed);
  return uniform(s, lo, hi, TensorOptions(dt), &g);
}

// Random sizes with odd values mixed in (1, primes, one past powers of two).
inline int64_t odd_size(std::mt19937& gen) {
  static const int64_t sizes[] = {1, 2, 3, 5, 7, 31, 33, 64, 127, 129, 257, 1025};
  return sizes[gen() % (sizeof(sizes) / sizeof(sizes[0]))];
}

// n single-channel images (32 x 32, values in [lo, hi) from `seed`) labelled i % classes, for
// the training suites.
inline data::ImageDataset labelled_images(int64_t n, int64_t classes, uint32_t seed, double lo,
                                          double hi) {
  data::ImageDataset ds;
  ds.images = rnd({n, 1, 32, 32}, seed, kFloat32, lo, hi);
  std::vector<int64_t> ys(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ys[static_cast<size_t>(i)] = i % classes;
  ds.labels = from_vector<int64_t>(ys, {n});
  ds.num_classes = classes;
  return ds;
}

}  // namespace smyrf::cuda_test
