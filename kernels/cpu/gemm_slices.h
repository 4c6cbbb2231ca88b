// Slices of C for the multi-threaded products that run as independent one-thread products
// (gemm_avx2.cpp's sgemm below the team size, dgemm_avx2.cpp's up to ~640^3): C cut along its
// larger dimension (rows when M >= N) into slices of whole register tiles, each run by the
// one-thread code on the slice's own operands (no barrier, no shared buffers).
#pragma once
#include <algorithm>
#include <cstdint>

namespace smyrf::kernels::cpu {

struct CSlices {
  bool rows;       // slices of rows (M >= N), else of columns
  int64_t extent;  // M or N
  int64_t unit;    // the tile's rows or columns
  int64_t tiles;   // whole tiles along the extent (the last one may be partial)

  CSlices(int64_t M, int64_t N, int64_t row_unit, int64_t col_unit)
      : rows(M >= N),
        extent(rows ? M : N),
        unit(rows ? row_unit : col_unit),
        tiles((extent + unit - 1) / unit) {}

  // Slice s of `slices` (tiles spread evenly): one(m, n, a, b, c) on its size and operands, as
  // op(A) (m x K), op(B) (K x n) and C (m x n) with the original leading dimensions; nothing for
  // an empty slice.
  template <typename T, typename One>
  void run(int64_t s, int64_t slices, bool trans_a, bool trans_b, int64_t M, int64_t N, const T* A,
           int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, One one) const {
    const int64_t lo = tiles * s / slices * unit;
    const int64_t hi = std::min(tiles * (s + 1) / slices * unit, extent);
    if (hi <= lo) return;
    if (rows)
      one(hi - lo, N, trans_a ? A + lo : A + lo * lda, B, C + lo * ldc);
    else
      one(M, hi - lo, A, trans_b ? B + lo * ldb : B + lo, C + lo);
  }
};

}  // namespace smyrf::kernels::cpu
