// Products with a narrow op(B) (2 to 8 columns), for sgemm_avx2 (kernels/cpu/gemm_narrow_avx2.cpp).
// The 6x16 micro-kernel pads such a B panel to 16 columns, so half or more of its multiply-adds
// are wasted: 256x8x64 NN and TN ran at 0.77-0.78x OpenBLAS, 256x8x1024 NN at 0.56-1.0x. Here,
// with A untransposed, each row of C is a set of dot products of a row of A (contiguous along k)
// with the columns of op(B), packed once as rows; with A transposed (its columns contiguous), a
// tile of 12 rows of C accumulates outer products of 12 entries of a column with an 8-wide row
// of op(B). Same conventions as gemm.h; only call when active_isa() == Isa::Avx2.
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu {

// Whether sgemm_avx2 hands C = alpha op(A) op(B) + beta C to sgemm_narrow_avx2: 2 <= N <= 8, and
// enough rows (M >= 12) and depth (K >= 16) to repay packing op(B).
inline bool sgemm_is_narrow(int64_t M, int64_t N, int64_t K) {
  return N >= 2 && N <= 8 && M >= 12 && K >= 16;
}

// C = alpha op(A) op(B) + beta C on the calling thread, for sgemm_is_narrow shapes (alpha != 0).
// beta == 0: C is write-only (NaN in C does not propagate).
void sgemm_narrow_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                       float* C, int64_t ldc);

}  // namespace smyrf::kernels::cpu
