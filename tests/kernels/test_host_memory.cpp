// host_alloc and ScratchBuffer (kernels/cpu/host_memory.h): 64-byte aligned, writable to the end,
// uninitialised scratch of any size (the huge-page advice itself is checked through cpu_alloc in
// tests/core/test_storage.cpp, which is host_alloc plus smyrf::Error).
#include <doctest/doctest.h>

#include <cstdint>
#include <initializer_list>

#include "kernels/cpu/host_memory.h"

using namespace smyrf::kernels::cpu;

TEST_CASE("host_alloc: 64-byte aligned blocks of every size class, writable to the end") {
  for (size_t n : {size_t(0), size_t(1), size_t(65), kHugePageMin - 1, kHugePageMin,
                   kHugePageMin + 3, size_t(37) << 20}) {
    CAPTURE(n);
    auto* p = static_cast<unsigned char*>(host_alloc(n));
    REQUIRE(p != nullptr);
    CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
    if (n) {
      p[0] = 1;
      p[n - 1] = 2;
      CHECK(int(p[0]) + int(p[n - 1]) == (n == 1 ? 4 : 3));
    }
    host_free(p);
  }
}

TEST_CASE("ScratchBuffer: n elements, aligned, including none") {
  ScratchBuffer<float> none(0);
  CHECK(none.data() != nullptr);
  const size_t n = (size_t(9) << 20) / sizeof(double) + 5;  // past kHugePageMin
  ScratchBuffer<double> big(n);
  CHECK(reinterpret_cast<uintptr_t>(big.data()) % 64 == 0);
  for (size_t i = 0; i < n; i += 4096) big.data()[i] = static_cast<double>(i);
  big.data()[n - 1] = 7.0;
  CHECK(big.data()[4096] == 4096.0);
  CHECK(big.data()[n - 1] == 7.0);
}
