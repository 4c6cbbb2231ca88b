// Matrix-vector products for sgemm_avx2 (kernels/cpu/gemv_avx2.cpp): the sgemm cases with N == 1
// or M == 1, where the packed micro-kernel would pad a 1-wide panel to its full tile width and
// stream the matrix at a fraction of the memory bandwidth (4096 x 1 x 4096 ran at 0.65x
// OpenBLAS). Same conventions as gemm.h; only call when active_isa() == Isa::Avx2.
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu {

// True when sgemm_avx2 should hand C = alpha op(A) op(B) + beta C to sgemm_gemv_avx2: one of M
// and N is 1 (and the product is not empty).
inline bool sgemm_is_gemv(int64_t M, int64_t N, int64_t K) {
  return (M == 1 || N == 1) && M > 0 && N > 0 && K > 0;
}

// C = alpha op(A) op(B) + beta C for M == 1 or N == 1 (sgemm_is_gemv), K > 0, with up to
// `threads` OpenMP threads. The matrix operand is read once, row by row: as dot products of its
// rows with the vector (y[i] = sum_k R[i, k] v[k]) or as a sum of its rows scaled by the vector
// (y = sum_k v[k] R[k, :]), whichever its layout makes contiguous. beta == 0: C is write-only.
void sgemm_gemv_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                     int64_t ldc, int threads);

}  // namespace smyrf::kernels::cpu
