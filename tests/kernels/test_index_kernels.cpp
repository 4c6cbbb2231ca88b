// The indexing kernels' vector paths: the AVX2 gather row kernel (kernels/cpu/index_avx2.h)
// against the scalar loop on every row length around the vector width, unaligned and streamed
// outputs; gather / scatter_add along the last dim (the per-row loops) against written-out
// loops for 4- and 8-byte types.
#include <doctest/doctest.h>
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/index.h"
#include "kernels/cpu/index_avx2.h"
#include "tests/kernels/kernel_test_util.h"

using namespace smyrf::kernels::cpu;
using kernel_test::both;
using kernel_test::SkewedBuf;

namespace {
std::vector<int64_t> random_indices(size_t count, int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<int64_t> v(count);
  for (auto& i : v) i = static_cast<int64_t>(gen() % static_cast<uint32_t>(n));
  return v;
}
}  // namespace

TEST_CASE("gather_row_b32 equals the scalar loop: lengths 0-40, skews 0-7, streamed or not") {
  if (!cpu_has_avx2_fma()) return;
  const int64_t n = 53;
  std::vector<uint32_t> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = 0x9E3779B9u * static_cast<uint32_t>(i + 1);
  for (int64_t k = 0; k <= 40; ++k)
    for (size_t skew = 0; skew < 8; ++skew)
      for (bool stream : {false, true}) {
        CAPTURE(k);
        CAPTURE(skew);
        CAPTURE(stream);
        const std::vector<int64_t> idx = random_indices(static_cast<size_t>(k), n, 7 + k);
        SkewedBuf out(static_cast<size_t>(k), skew);
        uint32_t* y = reinterpret_cast<uint32_t*>(out.p);
        REQUIRE(avx2::gather_row_b32(x.data(), n, idx.data(), y, k, stream));
        _mm_sfence();
        for (int64_t i = 0; i < k; ++i) REQUIRE(y[i] == x[idx[i]]);
        for (int g = 0; g < 2; ++g) REQUIRE(out.p[k + g] == 0.f);  // nothing past the row
      }
}

TEST_CASE("gather and scatter_add along the last dim: scalar and AVX2 against loops") {
  // rows of 17 (vector body + tail) and 300 (both threads), 4- and 8-byte types
  for (int64_t k : {int64_t{5}, int64_t{17}, int64_t{300}}) {
    const int64_t outer = 70, n = 211;
    CAPTURE(k);
    const std::vector<int64_t> idx = random_indices(static_cast<size_t>(outer * k), n, 3);
    std::vector<float> xf(outer * n);
    std::vector<int64_t> xl(outer * n);
    for (size_t i = 0; i < xf.size(); ++i) {
      xf[i] = static_cast<float>(i % 1000) * 0.25f - 7.f;
      xl[i] = static_cast<int64_t>(i) * 1000003;
    }
    std::vector<float> want_f(outer * k);
    std::vector<int64_t> want_l(outer * k);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < k; ++i) {
        want_f[o * k + i] = xf[o * n + idx[o * k + i]];
        want_l[o * k + i] = xl[o * n + idx[o * k + i]];
      }
    both([&](bool) {
      std::vector<float> yf(outer * k, -1.f);
      std::vector<int64_t> yl(outer * k, -1);
      REQUIRE(gather(xf.data(), idx.data(), yf.data(), outer, n, k, 1));
      REQUIRE(gather(xl.data(), idx.data(), yl.data(), outer, n, k, 1));
      CHECK(std::memcmp(yf.data(), want_f.data(), yf.size() * sizeof(float)) == 0);
      CHECK(yl == want_l);
    });
    // scatter_add: duplicates accumulate in index order (float sums are order-sensitive)
    std::vector<float> src(outer * k), acc(outer * n, 0.5f);
    for (size_t i = 0; i < src.size(); ++i) src[i] = 1.f / static_cast<float>(i % 13 + 1);
    std::vector<float> want_acc = acc;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < k; ++i) want_acc[o * n + idx[o * k + i]] += src[o * k + i];
    scatter_add(acc.data(), idx.data(), src.data(), outer, n, k, 1);
    CHECK(std::memcmp(acc.data(), want_acc.data(), acc.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("gather reports an index out of range at any position and reads nothing out of bounds") {
  // x is exactly n long (a std::vector: the sanitizer build sees any read past it); every bad
  // value at every position of rows of 37 (vector head, body, tail) and of a middle dim
  const int64_t n = 29, outer = 3, k = 37;
  std::vector<float> x(outer * n, 1.f);
  for (int64_t bad : {n, int64_t{-1}, INT64_MAX, INT64_MIN, int64_t{1} << 40})
    for (int64_t pos = 0; pos < k; ++pos)
      both([&](bool) {
        CAPTURE(bad);
        CAPTURE(pos);
        std::vector<int64_t> idx = random_indices(static_cast<size_t>(outer * k), n, 5);
        idx[(outer - 1) * k + pos] = bad;
        std::vector<float> y(outer * k);
        CHECK_FALSE(gather(x.data(), idx.data(), y.data(), outer, n, k, 1));
        // along a middle dim: (outer, k, 2) from (outer, n, 2)
        std::vector<float> x2(outer * n * 2, 1.f), y2(outer * k * 2);
        std::vector<int64_t> idx2 = random_indices(static_cast<size_t>(outer * k * 2), n, 6);
        idx2[pos * 2 + 1] = bad;
        CHECK_FALSE(gather(x2.data(), idx2.data(), y2.data(), outer, n, k, 2));
      });
  if (!cpu_has_avx2_fma()) return;
  for (bool stream : {false, true})
    for (int64_t pos = 0; pos < k; ++pos) {
      std::vector<int64_t> idx = random_indices(static_cast<size_t>(k), n, 8);
      idx[pos] = -5;
      SkewedBuf out(static_cast<size_t>(k), 3);
      CHECK_FALSE(avx2::gather_row_b32(reinterpret_cast<const uint32_t*>(x.data()), n, idx.data(),
                                       reinterpret_cast<uint32_t*>(out.p), k, stream));
      _mm_sfence();
    }
}
