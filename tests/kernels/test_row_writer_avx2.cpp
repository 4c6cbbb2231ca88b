// rows::LineWriter (kernels/cpu/row_avx2.h), the row kernels' streaming writer, against the values
// it was given (this file is built with -mavx2 -mfma, like the kernels that use it).
#include <doctest/doctest.h>
#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/row_avx2.h"
#include "kernels/cpu/streaming_store.h"

using namespace smyrf::kernels::cpu;

TEST_CASE("rows::LineWriter: whole lines streamed, shared lines assembled, nothing else written") {
  if (!cpu_has_avx2_fma()) return;
  // consecutive rows of n floats from every 4-byte phase of a line, written as two threads would
  // (rows [0, k) by one writer, [k, rows) by another, in either order): every value once,
  // equal to f's, and nothing before or after the rows
  for (int64_t n : {16, 17, 31, 32, 33, 47, 64, 100, 129}) {
    for (int64_t phase = 0; phase < 16; ++phase) {
      CAPTURE(n);
      CAPTURE(phase);
      const int64_t rows = 9, N = rows * n;
      std::vector<float> store(N + 64, -7.f);
      float* base = store.data() + (64 - reinterpret_cast<uintptr_t>(store.data()) % 64) % 64 / 4;
      float* y = base + 16 + phase;
      auto write = [&](int64_t r0, int64_t r1) {
        avx2::rows::LineWriter lw;
        for (int64_t r = r0; r < r1; ++r)
          lw.row(y + r * n, n, [&](int64_t i, bool tail) {
            alignas(32) float v[8];
            for (int l = 0; l < 8; ++l) v[l] = tail && i + l >= n ? 1e9f : float(r * 1000 + i + l);
            return _mm256_load_ps(v);
          });
        lw.finish();
      };
      const int64_t k = 1 + phase % (rows - 1);
      if (phase % 2) {
        write(k, rows);
        write(0, k);
      } else {
        write(0, k);
        write(k, rows);
      }
      streaming_store_fence();
      bool ok = true;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < n; ++i) ok = ok && y[r * n + i] == float(r * 1000 + i);
      CHECK(ok);
      CHECK(y[-1] == -7.f);
      CHECK(y[N] == -7.f);
    }
  }
}
