// train/alloc_policy: after retain_freed_memory() a large buffer comes from malloc's heap (not a
// private mmap) and stays there once freed, so the next step's buffer of the same size reuses it.
#include <malloc.h>

#include <cstdlib>
#include <cstring>

#include <doctest/doctest.h>
#include "tests/sanitizers.h"
#include "train/alloc_policy.h"

TEST_CASE("alloc_policy: a freed 48 MiB buffer stays in the heap and is reused") {
#ifdef SMYRF_TEST_ASAN
  // ASan replaces malloc: mallopt is refused (retain_freed_memory returns false, the process
  // keeps ASan's allocator) and mallinfo2 does not describe the heap.
  CHECK_FALSE(smyrf::train::retain_freed_memory());
  return;
#endif
  REQUIRE(smyrf::train::retain_freed_memory());
  const size_t bytes = size_t{48} << 20;  // above glibc's largest dynamic mmap threshold (32 MiB)
  const size_t mapped_before = mallinfo2().hblkhd;
  void* a = std::malloc(bytes);
  REQUIRE(a != nullptr);
  std::memset(a, 1, bytes);
  // served from the heap: no new mmapped block
  CHECK(mallinfo2().hblkhd == mapped_before);
  std::free(a);
  // kept as free heap memory, not trimmed back to the OS
  CHECK(mallinfo2().fordblks >= bytes);
  const size_t arena_after_first = mallinfo2().arena;
  void* b = std::malloc(bytes);
  REQUIRE(b != nullptr);
  CHECK(mallinfo2().arena == arena_after_first);  // the heap did not grow: the block was reused
  std::free(b);
}
