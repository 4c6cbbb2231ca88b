// The random fills (kernels/cpu/random_fill.h) drawn sixteen Philox blocks at a time: the AVX2
// Philox against the scalar one word for word, and every fill against its definition (element i
// uses block offset + i / L, lane i % L) under both kernel variants, with tails, offsets whose
// low word carries, and threads.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/philox.h"
#include "kernels/cpu/philox_avx2.h"
#include "kernels/cpu/random_fill.h"
#include "tests/kernels/kernel_test_util.h"

using namespace smyrf::kernels;
using namespace smyrf::kernels::cpu;

namespace {
Philox4x32 block_at(uint64_t seed, uint64_t c) {
  return philox4x32(static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), 0u, 0u, seed);
}
const uint64_t kSeeds[] = {0, 42, 0xFFFFFFFFFFFFFFFFull, 0x0123456789ABCDEFull};
// the low counter word carries within a group, and the 64-bit counter wraps
const uint64_t kOffsets[] = {0, 7, 0xFFFFFFFBull, 0xFFFFFFFFFFFFFFFDull};
}  // namespace

TEST_CASE("philox4x32_blocks16 equals sixteen scalar philox4x32 blocks") {
  if (!cpu_has_avx2_fma()) return;
  for (uint64_t seed : kSeeds)
    for (uint64_t c : kOffsets) {
      CAPTURE(seed);
      CAPTURE(c);
      uint32_t w[64];
      avx2::philox4x32_blocks16(seed, c, w);
      for (int k = 0; k < 16; ++k) {
        const Philox4x32 r = block_at(seed, c + static_cast<uint64_t>(k));
        for (int l = 0; l < 4; ++l) CHECK(w[4 * k + l] == r.v[l]);
      }
    }
}

TEST_CASE("random fills equal their per-element definition under both kernel variants") {
  const int64_t sizes[] = {1, 3, 63, 64, 65, 129, 100003};
  for (uint64_t seed : kSeeds)
    for (uint64_t off : kOffsets)
      for (int64_t n : sizes) {
        CAPTURE(seed);
        CAPTURE(off);
        CAPTURE(n);
        kernel_test::both([&](bool) {
          std::vector<char> keep_buf(static_cast<size_t>(n) + 1, 7);
          bool* keep = reinterpret_cast<bool*>(keep_buf.data());
          std::vector<float> u(static_cast<size_t>(n) + 1, -1.f),
              z(static_cast<size_t>(n) + 1, -7.f);
          std::vector<int64_t> k(static_cast<size_t>(n) + 1, -1);
          std::vector<double> ud(static_cast<size_t>(n) + 1, -1.0),
              zd(static_cast<size_t>(n) + 1, -7.0);
          random_bernoulli(keep, n, seed, off, 0.3);
          random_uniform_f32(u.data(), n, seed, off, -2.f, 3.f);
          random_normal_f32(z.data(), n, seed, off, 0.5f, 2.f);
          random_int64(k.data(), n, seed, off, -5, 1000);
          random_uniform_f64(ud.data(), n, seed, off, 0.0, 1.0);
          random_normal_f64(zd.data(), n, seed, off, -1.0, 0.5);
          int64_t bad = -1;
          for (int64_t i = 0; i < n && bad < 0; ++i) {
            const Philox4x32 r = block_at(seed, off + static_cast<uint64_t>(i / 4));
            const uint32_t word = r.v[i % 4];
            const bool want_keep = uniform_float(word) < 0.3f;
            const float want_u = -2.f + 5.f * uniform_float(word);
            float zz[4];
            box_muller(uniform_float_open(r.v[0]), uniform_float_open(r.v[1]), &zz[0], &zz[1]);
            box_muller(uniform_float_open(r.v[2]), uniform_float_open(r.v[3]), &zz[2], &zz[3]);
            const Philox4x32 r2 = block_at(seed, off + static_cast<uint64_t>(i / 2));
            const int l = static_cast<int>(i % 2);
            const uint64_t u64 = (static_cast<uint64_t>(r2.v[2 * l]) << 32) | r2.v[2 * l + 1];
            const int64_t want_k = -5 + static_cast<int64_t>(u64 % 1005);
            const double want_ud = uniform_double(r2.v[2 * l], r2.v[2 * l + 1]);
            double zz2[2];
            box_muller(uniform_double_open(r2.v[0], r2.v[1]), uniform_double_open(r2.v[2], r2.v[3]),
                       &zz2[0], &zz2[1]);
            if (keep[i] != want_keep || u[i] != want_u || z[i] != 0.5f + 2.f * zz[i % 4] ||
                k[i] != want_k || ud[i] != want_ud || zd[i] != -1.0 + 0.5 * zz2[l])
              bad = i;
          }
          CHECK(bad == -1);
          // nothing written past the end
          CHECK(keep_buf[static_cast<size_t>(n)] == 7);
          CHECK(u[static_cast<size_t>(n)] == -1.f);
          CHECK(k[static_cast<size_t>(n)] == -1);
          CHECK(ud[static_cast<size_t>(n)] == -1.0);
          CHECK(z[static_cast<size_t>(n)] == -7.f);
          CHECK(zd[static_cast<size_t>(n)] == -7.0);
        });
      }
}
