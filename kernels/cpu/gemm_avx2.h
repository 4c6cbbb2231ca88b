// Internal entry points of the AVX2/FMA sgemm (kernels/cpu/gemm_avx2.cpp); gemm.cpp dispatches
// to them. Same conventions as gemm.h. Only call these when active_isa() == Isa::Avx2.
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu {

// C = alpha * op(A) op(B) + beta * C with up to `threads` OpenMP threads (1: run inline on the
// calling thread, which is what the batched loop and callers inside a parallel region use).
void sgemm_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                int64_t ldc, int threads);

// The float64 product (kernels/cpu/dgemm_avx2.cpp), same contract.
void dgemm_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
                int64_t ldc, int threads);

// One product of a batch on the calling thread (as sgemm_avx2 with threads = 1). next_a and
// next_b (nullptr: none) are the operands of the product this thread runs next, laid out as A and
// B are; small products pull them into L2 while they compute.
void sgemm_avx2_batch_item(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                           const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                           float* C, int64_t ldc, const float* next_a, const float* next_b);

// True when one product of this size is cheap enough that a batch should be split across threads
// product by product rather than splitting each product.
bool sgemm_avx2_prefers_batch_parallel(int64_t M, int64_t N, int64_t K);

}  // namespace smyrf::kernels::cpu
