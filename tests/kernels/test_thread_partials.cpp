// ThreadPartials (kernels/cpu/thread_partials.h): every thread's row starts on a cache line of its
// own and no two rows share one, for any row length and element size; rows start zeroed.
#include <doctest/doctest.h>

#include <cstdint>

#include "kernels/cpu/thread_partials.h"

using smyrf::kernels::cpu::ThreadPartials;

namespace {
template <typename T>
void check_layout(int threads, int64_t n) {
  CAPTURE(threads);
  CAPTURE(n);
  CAPTURE(sizeof(T));
  ThreadPartials<T> p(threads, n);
  CHECK(p.size() == n);
  for (int t = 0; t < threads; ++t) {
    const auto begin = reinterpret_cast<std::uintptr_t>(p.row(t));
    CHECK(begin % 64 == 0);
    for (int64_t i = 0; i < n; ++i) CHECK(p.row(t)[i] == T(0));
    if (t + 1 < threads) {
      // the last line this row touches lies below the next row's first line
      const auto last = reinterpret_cast<std::uintptr_t>(p.row(t) + n) - 1;
      CHECK(last / 64 < reinterpret_cast<std::uintptr_t>(p.row(t + 1)) / 64);
    }
    for (int64_t i = 0; i < n; ++i) p.row(t)[i] = static_cast<T>(t + 1);  // writable, in bounds
  }
  for (int t = 0; t < threads; ++t)
    for (int64_t i = 0; i < n; ++i) CHECK(p.row(t)[i] == static_cast<T>(t + 1));
}
}  // namespace

TEST_CASE("thread partials: rows on cache lines of their own") {
  for (int threads : {1, 2, 3, 8})
    for (int64_t n : {1, 7, 8, 9, 16, 17, 100, 4096}) {
      check_layout<double>(threads, n);
      check_layout<float>(threads, n);
    }
}

TEST_CASE("thread partials: a partial of length 0 holds nothing") {
  ThreadPartials<double> p(4, 0);
  CHECK(p.size() == 0);
  for (int t = 0; t < 4; ++t) CHECK(p.row(t) == nullptr);
}
