// The parallel driver of the short-row block kernels (kernels/cpu/short_rows_avx2.h), shared
// by softmax.cpp, reduce.cpp and norm.cpp. Header-only, internal to kernels/cpu.
#pragma once
#include <omp.h>

#include <cstdint>

#include "kernels/cpu/nd_loop.h"
#include "kernels/cpu/short_rows_avx2.h"
#include "kernels/cpu/streaming_store.h"

namespace smyrf::kernels::cpu {

// Rows of n floats in blocks of eight (kernels/cpu/short_rows_avx2.h): group(r0, blocks) handles
// rows r0 .. r0 + 8 blocks - 1 (blocks <= avx2::kShortGroup) and returns the blocks it declined;
// their rows, and the last rows % 8 rows, go to row(r) one at a time. Fences the streaming stores
// when `stream`.
template <typename Group, typename Row>
void row_blocks(int64_t rows, int64_t n, bool stream, Group group, Row row) {
  const int64_t blocks = rows / 8, G = avx2::kShortGroup;
  const int64_t groups = (blocks + G - 1) / G;
#pragma omp parallel if (rows_parallel_ok(rows, n))
  {
#pragma omp for schedule(static) nowait
    for (int64_t q = 0; q < groups; ++q) {
      const int64_t b0 = q * G, nb = blocks - b0 < G ? blocks - b0 : G;
      const unsigned declined = group(8 * b0, nb);
      for (int64_t b = 0; b < nb; ++b)
        if (declined >> b & 1)
          for (int64_t r = 8 * (b0 + b); r < 8 * (b0 + b + 1); ++r) row(r);
    }
#pragma omp for schedule(static) nowait
    for (int64_t r = 8 * blocks; r < rows; ++r) row(r);
    if (stream) streaming_store_fence();
  }
}

// row_blocks for the kernels that lay rows of n <= avx2::kShortRowMax floats out by lanes:
// group(r0, blocks, lanes), the lanes built once and shared (read-only) by the threads.
template <typename Group, typename Row>
void short_row_blocks(int64_t rows, int64_t n, bool stream, Group group, Row row) {
  const avx2::ShortRowLanes lanes(n);
  row_blocks(
      rows, n, stream, [&](int64_t r0, int64_t nb) { return group(r0, nb, lanes); }, row);
}

}  // namespace smyrf::kernels::cpu
