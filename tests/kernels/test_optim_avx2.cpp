// The AVX2 Adam update (kernels/cpu/optim_avx2.h) against the scalar loop of adam_update<float>:
// the same double arithmetic, so p, m and v must agree bit for bit, for decoupled, coupled and
// no weight decay, first and later steps, lengths with a tail and past one parallel chunk.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/optim.h"
#include "tests/kernels/kernel_test_util.h"

using namespace smyrf::kernels::cpu;
using kernel_test::both;
using kernel_test::randn;

TEST_CASE("Adam update: AVX2 equals the scalar loop bit for bit") {
  if (!cpu_has_avx2_fma()) return;
  for (int64_t n :
       {int64_t(1), int64_t(3), int64_t(4), int64_t(7), int64_t(1000), int64_t(50001)}) {
    auto p0 = randn(static_cast<size_t>(n), 1, 1.f), g = randn(static_cast<size_t>(n), 2, 1e-2f);
    auto m0 = randn(static_cast<size_t>(n), 3, 1e-3f), v0 = randn(static_cast<size_t>(n), 4, 1e-3f);
    for (auto& e : v0) e = e * e;  // second moments are non-negative
    g[0] = 0.f;
    if (n > 2) g[2] = std::numeric_limits<float>::quiet_NaN(), g[1] = 3e4f;
    for (double wd : {0.0, 0.01}) {
      for (bool decoupled : {true, false}) {
        for (int64_t step : {int64_t(1), int64_t(10)}) {
          CAPTURE(n);
          CAPTURE(wd);
          CAPTURE(decoupled);
          CAPTURE(step);
          std::vector<float> p[2] = {p0, p0}, m[2] = {m0, m0}, v[2] = {v0, v0};
          both([&](bool vec) {
            const int k = vec ? 1 : 0;
            adam_update<float>(p[k].data(), g.data(), m[k].data(), v[k].data(), n, 1e-3, 0.9, 0.999,
                               1e-8, wd, decoupled, step);
          });
          const size_t bytes = sizeof(float) * static_cast<size_t>(n);
          CHECK(std::memcmp(p[0].data(), p[1].data(), bytes) == 0);
          CHECK(std::memcmp(m[0].data(), m[1].data(), bytes) == 0);
          CHECK(std::memcmp(v[0].data(), v[1].data(), bytes) == 0);
        }
      }
    }
  }
}
