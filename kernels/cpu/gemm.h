// Dense matrix products on raw row-major buffers (no tensors here).
//
//   C[M, N] = alpha * op(A)[M, K] * op(B)[K, N] + beta * C
//
// op(X) is X or X^T (trans_* flag). Leading dimensions are row strides in elements of the matrix
// as stored: A is stored (M, K) with row stride lda when !trans_a, and (K, M) when trans_a; the
// same for B ((K, N) or (N, K)). C is always (M, N) with row stride ldc. beta == 0 means C is
// write-only (NaNs in C are not propagated). M, N or K may be 0.
//
// Threading: uses the OpenMP threads available; runs on one thread when called from inside a
// parallel region. The float32 entry points dispatch once to the AVX2/FMA variant when cpuid
// reports it (SMYRF_CPU=scalar forces the reference); float64 is used by gradient checks.
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

void dgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
           const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
           int64_t ldc);

// batch independent products; matrix b starts at A + b * stride_a (stride 0 broadcasts one
// matrix across the batch), likewise for B and C (stride_c must not alias between batches).
void sgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                   float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                   int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                   int64_t stride_c);

void dgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                   double alpha, const double* A, int64_t lda, int64_t stride_a, const double* B,
                   int64_t ldb, int64_t stride_b, double beta, double* C, int64_t ldc,
                   int64_t stride_c);

// Split-K (AVX2 sgemm with 2+ threads and K >= 256 * threads: each thread a share of K over all
// of C, see gemm_avx2.cpp) is on unless SMYRF_GEMM_SPLIT_K=0 at start-up; this switch turns it
// off and on at run time (for A/B measurements, and for tests that must reach the team paths
// with such K). Returns the previous setting.
bool set_sgemm_split_k(bool enabled);

// The scalar reference every optimised variant is tested against (single-threaded, naive loops).
void sgemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                     int64_t ldc);

}  // namespace smyrf::kernels::cpu
