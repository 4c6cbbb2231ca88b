// Matrix products on device buffers through cuBLAS, with the row-major interface of
// kernels/cpu/gemm.h (same arguments, same meaning of trans_*, lda/ldb/ldc and batch strides;
// stride 0 broadcasts a matrix across the batch; beta == 0 makes C write-only).
//
// cuBLAS is column-major; a row-major C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T,
// so the operands are swapped (B first) and M/N exchanged: no transposed copies are made.
// FP32 products use cuBLAS's default math mode (no TF32), so they agree with the CPU to float
// rounding. Sizes and leading dimensions must fit in int (checked). A cuBLAS handle is created
// per thread and device, bound to the current stream at each call.
//
// Status: ran on an NVIDIA H200 on 2026-11-28 (tests/cuda, all passing; scripts/gpu-check).
#pragma once
#include <cstdint>

namespace smyrf::kernels::cuda {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void dgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
           const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
           int64_t ldc);
void sgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                   float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                   int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                   int64_t stride_c);
void dgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                   double alpha, const double* A, int64_t lda, int64_t stride_a, const double* B,
                   int64_t ldb, int64_t stride_b, double beta, double* C, int64_t ldc,
                   int64_t stride_c);

// bfloat16 operands (raw bit patterns), float32 C, float32 accumulation
// (cublasGemmStridedBatchedEx, CUBLAS_COMPUTE_32F); otherwise as sgemm_batched. For the
// stored-dS dq path of SMYRF's bfloat16 backward (attention.cu). Written 2026-11-30 without a
// GPU: compiled, not yet run on one.
void bf16_gemm_batched_f32(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N,
                           int64_t K, float alpha, const uint16_t* A, int64_t lda, int64_t stride_a,
                           const uint16_t* B, int64_t ldb, int64_t stride_b, float beta, float* C,
                           int64_t ldc, int64_t stride_c);

}  // namespace smyrf::kernels::cuda
