// The CUDA strided index spaces' division by invariant divisors (kernels/cuda/int_divider.h),
// checked on the host: the same header, the same arithmetic as the device (__umulhi emulated by a
// 64-bit product), against the division operator.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cuda/int_divider.h"

using smyrf::kernels::cuda::IntDivider;

TEST_CASE("IntDivider: n / d for every divisor kind and numerators up to 2^31 - 1") {
  std::vector<uint32_t> divisors;
  for (uint32_t d = 1; d <= 4100; ++d) divisors.push_back(d);
  for (int k = 12; k <= 31; ++k)
    for (int64_t delta : {-3, -1, 0, 1, 3}) {
      const int64_t d = (int64_t{1} << k) + delta;
      if (d >= 1 && d <= (int64_t{1} << 31)) divisors.push_back(static_cast<uint32_t>(d));
    }
  for (uint32_t d : {12345u, 1000000u, 16777215u, 99999989u, 1999999973u, 2147483647u})
    divisors.push_back(d);
  std::mt19937 gen(17);
  std::uniform_int_distribution<uint32_t> any(0, (1u << 31) - 1);
  int64_t bad = 0, checked = 0;
  for (uint32_t d : divisors) {
    const IntDivider div(d);
    CHECK(div.divisor == d);
    std::vector<uint32_t> ns = {0, 1, d - 1, (1u << 31) - 1, (1u << 31) - 2};
    for (uint32_t m : {1u, 2u, 3u, 1000u, 65536u})  // multiples of d and their neighbours
      if (uint64_t{d} * m + 1 < (uint64_t{1} << 31))
        for (int64_t e : {-1, 0, 1}) ns.push_back(static_cast<uint32_t>(int64_t{d} * m + e));
    for (int r = 0; r < 200; ++r) ns.push_back(any(gen));
    for (uint32_t n : ns) {
      if (n >= (1u << 31)) continue;
      ++checked;
      if (div.div(n) != n / d) ++bad;
    }
  }
  CHECK(checked > 900000);
  CHECK(bad == 0);
  // every numerator for a few divisors, from 0 up to 2^22
  for (uint32_t d : {3u, 7u, 10u, 641u, 4095u, 65537u}) {
    const IntDivider div(d);
    int64_t wrong = 0;
    for (uint32_t n = 0; n < (1u << 22); ++n) wrong += div.div(n) != n / d;
    CHECK(wrong == 0);
  }
}
