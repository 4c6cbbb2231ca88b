// Rows split between the threads of one parallel region, for row ops whose rows are too few to
// give every thread whole rows (one row of 16M floats ran softmax on one core) or too long for
// one core's cache: every thread takes one contiguous part of each row, computes a statistic of
// its part, and after one barrier combines all threads' statistics in thread order (so every
// thread gets the same bits) and finishes its part with the combined value.
//
// Part boundaries fall on multiples of 16 elements (64 bytes of floats), so no two threads write
// one cache line. The statistic slots are one 64-byte line per thread in two sets used by row
// parity: a thread can run at most one row ahead of the slowest (it waits at the next row's
// barrier), so the set it writes is never one another thread still reads. One barrier a row.
//
// Results depend on the thread count (the parts' statistics are combined in another order than
// one thread's sum), as every multi-threaded reduction here; with a fixed count they are the
// same from run to run.
#pragma once
#include <omp.h>

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/streaming_store.h"
#include "kernels/cpu/thread_partials.h"

namespace smyrf::kernels::cpu {

// Whether rows take split_row_parts instead of whole rows a thread: rows of at least
// kSplitRowMin elements when there are fewer than two a thread (whole rows would leave threads
// idle or unbalanced), outside any parallel region. Measured on softmax (2 threads, 3
// interleaved rounds, medians, 2026-11-29): 1 x 16M forward 14.3 -> 3.7 ms, log_softmax 12.8 ->
// 3.3, backward 13.0 -> 5.5; 2 x 4M (one row a thread already) 2.86 -> 1.89, 2.98 -> 1.40,
// 3.00 -> 1.96 (a row's half fits the core's caches between its two passes). Splitting every
// long row (64 x 262144, 16 x 1M) measured even to 15% slower, so whole rows stay the rule there.
constexpr int64_t kSplitRowMin = 1 << 17;
// Whether rows of n elements can be split at all: long enough, several threads, not nested.
inline bool split_rows_possible(int64_t n) {
  return n >= kSplitRowMin && !omp_in_parallel() && omp_get_max_threads() > 1;
}
inline bool split_rows_wanted(int64_t rows, int64_t n) {
  return split_rows_possible(n) && rows < 2 * omp_get_max_threads();
}

// Part [*b, *e) of a row of n elements for thread t of nt.
inline void split_row_part(int64_t n, int t, int nt, int64_t* b, int64_t* e) {
  *b = n * t / nt / 16 * 16;
  *e = t + 1 == nt ? n : n * (t + 1) / nt / 16 * 16;
}

// part_stat(r, b, e) -> Stat for thread's part [b, e) of row r (possibly empty);
// finish(r, b, e, stats, nt): stats[0..nt) are every part's statistic in thread order.
// Stat must be trivially copyable and at most 64 bytes. Runs on one thread (in order) when the
// region gets only one. fence_streams: finish wrote with streaming stores, so each thread ends
// with streaming_store_fence().
template <typename Stat, typename PartStat, typename Finish>
void split_row_parts(int64_t rows, int64_t n, PartStat&& part_stat, Finish&& finish,
                     bool fence_streams = false) {
  static_assert(std::is_trivially_copyable_v<Stat> && sizeof(Stat) <= 64,
                "a part's statistic must fit its cache line");
  const int max_threads = omp_get_max_threads();
  ThreadPartials<unsigned char> slots(2 * max_threads, 64);
#pragma omp parallel num_threads(max_threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t b, e;
    split_row_part(n, t, nt, &b, &e);
    std::vector<Stat> all(static_cast<size_t>(nt));
    for (int64_t r = 0; r < rows; ++r) {
      const int set = static_cast<int>(r & 1) * nt;
      const Stat mine = part_stat(r, b, e);
      std::memcpy(slots.row(set + t), &mine, sizeof(Stat));
#pragma omp barrier
      for (int p = 0; p < nt; ++p) std::memcpy(&all[p], slots.row(set + p), sizeof(Stat));
      finish(r, b, e, static_cast<const Stat*>(all.data()), nt);
    }
    if (fence_streams) streaming_store_fence();
  }
}

}  // namespace smyrf::kernels::cpu
