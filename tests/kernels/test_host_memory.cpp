// host_alloc and ScratchBuffer (kernels/cpu/host_memory.h): 64-byte aligned, writable to the end,
// uninitialised scratch of any size (the huge-page advice itself is checked through cpu_alloc in
// tests/core/test_storage.cpp, which is host_alloc plus smyrf::Error).
#include <doctest/doctest.h>

#include <cstdint>
#include <initializer_list>
#include <utility>

#include <omp.h>

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

TEST_CASE(
    "host block cache: a freed large block is handed out again, by size class, under a limit") {
  constexpr size_t MiB = size_t(1) << 20;
  const size_t prev = set_host_cache_limit(64 * MiB);
  empty_host_cache();
  const HostCacheStats s0 = host_cache_stats();
  CHECK(s0.cached_bytes == 0);
  // a 3 MiB block is allocated, freed into the cache and handed out for a request of its class
  auto* a = static_cast<unsigned char*>(host_alloc(3 * MiB));
  a[0] = 1;
  a[3 * MiB - 1] = 2;
  HostCacheStats s = host_cache_stats();
  CHECK(s.allocated_bytes == s0.allocated_bytes + 3 * MiB);
  CHECK(s.misses == s0.misses + 1);
  CHECK(s.peak_allocated_bytes >= s.allocated_bytes);
  host_free(a);
  CHECK(host_cache_stats().cached_bytes == 3 * MiB);
  CHECK(host_cache_stats().allocated_bytes == s0.allocated_bytes);
  void* b = host_alloc(3 * MiB - 1000);  // the same class (eighths of 2 MiB above 2 MiB)
  CHECK(b == a);
  CHECK(host_cache_stats().hits == s0.hits + 1);
  CHECK(host_cache_stats().cached_bytes == 0);
  host_free(b);
  // not for a request more than a quarter smaller than the block, but for one within a quarter
  void* c = host_alloc(2 * MiB);
  CHECK(c != a);
  void* d = host_alloc(5 * MiB / 2);
  CHECK(d == a);
  host_free(c);
  host_free(d);
  CHECK(host_cache_stats().cached_bytes == 5 * MiB);
  // a lower limit drops the largest cached blocks first; a block over the limit is not kept
  set_host_cache_limit(4 * MiB);
  CHECK(host_cache_stats().cached_bytes == 2 * MiB);
  host_free(host_alloc(8 * MiB));
  CHECK(host_cache_stats().cached_bytes == 2 * MiB);
  host_free(host_alloc(3 * MiB));  // kept, the 2 MiB block dropped to make room
  CHECK(host_cache_stats().cached_bytes == 3 * MiB);
  // limit 0: nothing kept
  set_host_cache_limit(0);
  CHECK(host_cache_stats().cached_bytes == 0);
  host_free(host_alloc(2 * MiB));
  CHECK(host_cache_stats().cached_bytes == 0);
  // empty_host_cache gives back every cached block
  set_host_cache_limit(64 * MiB);
  void* e = host_alloc(2 * MiB);
  void* f = host_alloc(6 * MiB);
  host_free(e);
  host_free(f);
  CHECK(host_cache_stats().cached_bytes == 8 * MiB);
  empty_host_cache();
  CHECK(host_cache_stats().cached_bytes == 0);
  CHECK(host_cache_stats().allocated_bytes == s0.allocated_bytes);
  set_host_cache_limit(prev);
}

TEST_CASE("host block cache: threads allocating and freeing at once keep the books") {
  constexpr size_t MiB = size_t(1) << 20;
  const size_t prev = set_host_cache_limit(24 * MiB);
  const HostCacheStats s0 = host_cache_stats();
  bool ok = true;
#pragma omp parallel num_threads(4) reduction(&& : ok)
  for (int i = 0; i < 300; ++i) {
    const size_t n = MiB + size_t((i * 7919 + omp_get_thread_num() * 104729) % (5 * MiB));
    auto* p = static_cast<unsigned char*>(host_alloc(n));
    ok = ok && p != nullptr && reinterpret_cast<uintptr_t>(p) % 64 == 0;
    p[0] = static_cast<unsigned char>(i);
    p[n - 1] = static_cast<unsigned char>(i + 1);
    ok = ok && p[0] == static_cast<unsigned char>(i) &&
         p[n - 1] == static_cast<unsigned char>(i + 1);
    host_free(p);
  }
  CHECK(ok);
  const HostCacheStats s = host_cache_stats();
  CHECK(s.allocated_bytes == s0.allocated_bytes);
  CHECK(s.cached_bytes <= 24 * MiB);
  CHECK(s.hits + s.misses == s0.hits + s0.misses + 4 * 300);
  set_host_cache_limit(prev);
}

TEST_CASE("HostArray: sizes, deep copies, moves and the block cache's books") {
  constexpr size_t MiB = size_t(1) << 20;
  const HostCacheStats s0 = host_cache_stats();
  {
    HostArray<int32_t> a;
    CHECK(a.empty());
    CHECK(a.data() == nullptr);
    a.resize(MiB);  // 4 MiB: a cached, huge-page-advised block
    REQUIRE(a.size() == MiB);
    CHECK(reinterpret_cast<uintptr_t>(a.data()) % 64 == 0);
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<int32_t>(i * 3);
    HostArray<int32_t> b = a;  // deep copy
    CHECK(b.data() != a.data());
    CHECK(b == a);
    b[7] = -1;
    CHECK(b != a);
    CHECK(a[7] == 21);
    const int32_t* p = a.data();
    HostArray<int32_t> c = std::move(a);  // the block moves, the source is empty
    CHECK(c.data() == p);
    CHECK(a.empty());
    CHECK(c[MiB - 1] == static_cast<int32_t>((MiB - 1) * 3));
    c = b;  // copy-assign over a live block
    CHECK(c == b);
    int64_t sum = 0;
    for (int32_t v : HostArray<int32_t>(c)) sum += v == -1;
    CHECK(sum == 1);
    c.resize(0);
    CHECK(c.empty());
    CHECK(host_cache_stats().allocated_bytes == s0.allocated_bytes + 4 * MiB);  // b alone
  }
  CHECK(host_cache_stats().allocated_bytes == s0.allocated_bytes);
}
