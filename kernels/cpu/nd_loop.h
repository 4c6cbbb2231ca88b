// The strided n-d loop shared by elementwise kernels: splits the index space over OpenMP threads
// and hands each thread runs along the innermost dim, with one element offset per operand.
// Pure index arithmetic on sizes and strides (in elements); nothing of tensors.
#pragma once
#include <omp.h>

#include <array>
#include <cstdint>

#include "kernels/cpu/streaming_store.h"

namespace smyrf::kernels::cpu {

constexpr int kMaxDims = 16;
// Below this many elements an op runs on one thread: the fork costs more than it saves.
constexpr int64_t kParallelGrain = 32768;

// Whether a row kernel (softmax, layer norm, cross-entropy: rows x n elements) splits its rows
// across threads: more than one row, enough work, and not already inside a parallel region.
inline bool rows_parallel_ok(int64_t rows, int64_t n) {
  return rows > 1 && rows * n >= kParallelGrain && !omp_in_parallel();
}

// inner(offsets, n, inner_strides): process n elements along the last dim starting at the given
// per-operand element offsets. ndim may be 0 (a scalar: one run of length 1).
//   Each thread ends its share with streaming_store_fence(), so inner() may write with
// non-temporal stores without fencing every run (a fence per 1 KiB run cost more than the run:
// it waits for the write-combining buffers to drain).
template <int NOps, typename Inner>
void nd_loop(int ndim, const int64_t* sizes, const std::array<const int64_t*, NOps>& strides,
             Inner&& inner) {
  int64_t total = 1;
  for (int d = 0; d < ndim; ++d) total *= sizes[d];
  if (total == 0) return;
  if (ndim == 0) {
    std::array<int64_t, NOps> off{};
    std::array<int64_t, NOps> st{};
    inner(off, int64_t{1}, st);
    return;
  }
  const int last = ndim - 1;
  const int64_t row = sizes[last];
  std::array<int64_t, NOps> inner_strides;
  for (int k = 0; k < NOps; ++k) inner_strides[k] = strides[k][last];

  auto run_range = [&](int64_t begin, int64_t end) {
    // multi-index of `begin`
    int64_t idx[kMaxDims];
    int64_t rem = begin;
    for (int d = last; d >= 0; --d) {
      idx[d] = rem % sizes[d];
      rem /= sizes[d];
    }
    std::array<int64_t, NOps> off{};
    for (int k = 0; k < NOps; ++k)
      for (int d = 0; d < ndim; ++d) off[k] += idx[d] * strides[k][d];
    int64_t pos = begin;
    while (pos < end) {
      int64_t n = row - idx[last];
      if (n > end - pos) n = end - pos;
      inner(off, n, inner_strides);
      pos += n;
      if (pos >= end) break;
      // advance: move to the start of the next row
      for (int k = 0; k < NOps; ++k) off[k] += (n - 0) * strides[k][last];
      idx[last] += n;
      for (int d = last; d > 0 && idx[d] == sizes[d]; --d) {
        for (int k = 0; k < NOps; ++k) off[k] -= sizes[d] * strides[k][d];
        idx[d] = 0;
        ++idx[d - 1];
        for (int k = 0; k < NOps; ++k) off[k] += strides[k][d - 1];
      }
    }
  };

  if (total < kParallelGrain || omp_in_parallel() || omp_get_max_threads() == 1) {
    run_range(0, total);
    streaming_store_fence();
    return;
  }
#pragma omp parallel
  {
    int nt = omp_get_num_threads();
    int t = omp_get_thread_num();
    // chunk boundaries rounded to 16 elements so threads never share a cache line of output
    int64_t chunk = (total + nt - 1) / nt;
    chunk = (chunk + 15) / 16 * 16;
    int64_t b = t * chunk, e = b + chunk < total ? b + chunk : total;
    if (b < e) run_range(b, e);
    streaming_store_fence();
  }
}

// Tiled traversal for index spaces where operands disagree on which dim is contiguous (say the
// output runs along the last dim and a transposed input along dim p): the plane (p, last) is cut
// into rows x cols tiles (at most tile_rows x tile_cols), visited for every index of the other
// dims, so each tile reads and writes whole cache lines of every operand. Tiles are split over
// OpenMP threads like nd_loop's ranges, and each thread ends with a store fence as there.
//   tile(offsets, rows, cols, row_strides, col_strides): row_strides along p, col_strides along
//   the last dim, offsets of the tile's first element.
template <int NOps, typename Tile>
void nd_loop_tiles(int ndim, const int64_t* sizes, const std::array<const int64_t*, NOps>& strides,
                   int p, int64_t tile_rows, int64_t tile_cols, Tile&& tile) {
  const int last = ndim - 1;
  int64_t outer = 1, total = 1;
  for (int d = 0; d < ndim; ++d) {
    total *= sizes[d];
    if (d != p && d != last) outer *= sizes[d];
  }
  if (total == 0) return;
  const int64_t tr = (sizes[p] + tile_rows - 1) / tile_rows;
  const int64_t tc = (sizes[last] + tile_cols - 1) / tile_cols;
  const int64_t ntiles = outer * tr * tc;
  std::array<int64_t, NOps> row_st, col_st;
  for (int k = 0; k < NOps; ++k) {
    row_st[k] = strides[k][p];
    col_st[k] = strides[k][last];
  }
  auto run = [&](int64_t t) {
    const int64_t c = t % tc;
    t /= tc;
    const int64_t r = t % tr;
    t /= tr;
    std::array<int64_t, NOps> off{};
    for (int d = last - 1; d >= 0; --d) {
      if (d == p) continue;
      const int64_t i = t % sizes[d];
      t /= sizes[d];
      for (int k = 0; k < NOps; ++k) off[k] += i * strides[k][d];
    }
    for (int k = 0; k < NOps; ++k) off[k] += r * tile_rows * row_st[k] + c * tile_cols * col_st[k];
    const int64_t rows =
        sizes[p] - r * tile_rows < tile_rows ? sizes[p] - r * tile_rows : tile_rows;
    const int64_t cols =
        sizes[last] - c * tile_cols < tile_cols ? sizes[last] - c * tile_cols : tile_cols;
    tile(off, rows, cols, row_st, col_st);
  };
  const bool par =
      total >= kParallelGrain && ntiles > 1 && !omp_in_parallel() && omp_get_max_threads() > 1;
#pragma omp parallel if (par)
  {
#pragma omp for schedule(static) nowait
    for (int64_t t = 0; t < ntiles; ++t) run(t);
    streaming_store_fence();
  }
}

}  // namespace smyrf::kernels::cpu
