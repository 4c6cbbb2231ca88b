// cuBLAS wrappers (host code, compiled by the host compiler). Status: ran on an NVIDIA
// H200 on 2026-11-28 (tests/cuda, all passing).
#include "kernels/cuda/blas.h"

#include <cublas_v2.h>

#include <algorithm>
#include <climits>
#include <map>
#include <string>
#include <type_traits>

#include "kernels/cuda/check.h"

#define SMYRF_CUBLAS_CHECK(call)                                                           \
  do {                                                                                     \
    cublasStatus_t smyrf_st_ = (call);                                                     \
    if (smyrf_st_ != CUBLAS_STATUS_SUCCESS)                                                \
      ::smyrf::kernels::cuda::detail::throw_library("cublas", static_cast<int>(smyrf_st_), \
                                                    cublasGetStatusName(smyrf_st_), #call, \
                                                    __FILE__, __LINE__);                   \
  } while (0)

namespace smyrf::kernels::cuda {
namespace {

// One handle per (thread, device): a cuBLAS handle must not be used by two threads at once.
// Handles live until the thread ends; the main thread's are leaked at exit on purpose (the
// runtime may already be shut down when static destructors run).
cublasHandle_t handle() {
  thread_local std::map<int, cublasHandle_t>* handles = new std::map<int, cublasHandle_t>;
  const int dev = current_device();
  auto it = handles->find(dev);
  if (it == handles->end()) {
    cublasHandle_t h = nullptr;
    SMYRF_CUBLAS_CHECK(cublasCreate(&h));
    it = handles->emplace(dev, h).first;
  }
  SMYRF_CUBLAS_CHECK(cublasSetStream(it->second, detail::stream()));
  return it->second;
}

int checked_int(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX)
    throw std::runtime_error(std::string("[cublas] ") + what + " = " + std::to_string(v) +
                             " does not fit in int");
  return static_cast<int>(v);
}

// The checked int sizes of a row-major product as cuBLAS takes them. cuBLAS requires ld >= rows
// of the stored column-major matrix, even when a dim is 1 or K == 0.
struct GemmDims {
  int m, n, k, batch, la, lb, lc;
};
GemmDims gemm_dims(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, int64_t lda,
                   int64_t ldb, int64_t ldc) {
  GemmDims g;
  g.m = checked_int(M, "M"), g.n = checked_int(N, "N"), g.k = checked_int(K, "K");
  g.batch = checked_int(batch, "batch");
  g.la = checked_int(
      std::max<int64_t>(lda, ta ? M : K) > 0 ? std::max<int64_t>(lda, ta ? M : K) : 1, "lda");
  g.lb = checked_int(
      std::max<int64_t>(ldb, tb ? K : N) > 0 ? std::max<int64_t>(ldb, tb ? K : N) : 1, "ldb");
  g.lc = checked_int(std::max<int64_t>(ldc, N), "ldc");
  return g;
}

template <typename T>
void gemm_batched(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, T alpha,
                  const T* A, int64_t lda, int64_t sa, const T* B, int64_t ldb, int64_t sb, T beta,
                  T* C, int64_t ldc, int64_t sc) {
  if (batch == 0 || M == 0 || N == 0) return;
  const GemmDims g = gemm_dims(ta, tb, batch, M, N, K, lda, ldb, ldc);
  const int m = g.m, n = g.n, k = g.k, bt = g.batch, la = g.la, lb = g.lb, lc = g.lc;
  // row-major C (M x N) = op(A) op(B)  <=>  column-major C^T (N x M) = op(B)^T op(A)^T
  const cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                          opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasHandle_t h = handle();
  if constexpr (std::is_same_v<T, float>) {
    if (bt == 1)
      SMYRF_CUBLAS_CHECK(cublasSgemm(h, opb, opa, n, m, k, &alpha, B, lb, A, la, &beta, C, lc));
    else
      SMYRF_CUBLAS_CHECK(cublasSgemmStridedBatched(h, opb, opa, n, m, k, &alpha, B, lb, sb, A, la,
                                                   sa, &beta, C, lc, sc, bt));
  } else {
    if (bt == 1)
      SMYRF_CUBLAS_CHECK(cublasDgemm(h, opb, opa, n, m, k, &alpha, B, lb, A, la, &beta, C, lc));
    else
      SMYRF_CUBLAS_CHECK(cublasDgemmStridedBatched(h, opb, opa, n, m, k, &alpha, B, lb, sb, A, la,
                                                   sa, &beta, C, lc, sc, bt));
  }
}
}  // namespace

void bf16_gemm_batched_f32(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K,
                           float alpha, const uint16_t* A, int64_t lda, int64_t sa,
                           const uint16_t* B, int64_t ldb, int64_t sb, float beta, float* C,
                           int64_t ldc, int64_t sc) {
  if (batch == 0 || M == 0 || N == 0) return;
  const GemmDims g = gemm_dims(ta, tb, batch, M, N, K, lda, ldb, ldc);
  // row-major C = op(A) op(B) as the column-major C^T = op(B)^T op(A)^T (see gemm_batched)
  SMYRF_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      handle(), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, g.n, g.m, g.k,
      &alpha, B, CUDA_R_16BF, g.lb, sb, A, CUDA_R_16BF, g.la, sa, &beta, C, CUDA_R_32F, g.lc, sc,
      g.batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_batched<float>(ta, tb, 1, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0);
}
void dgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
           int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  gemm_batched<double>(ta, tb, 1, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0);
}
void sgemm_batched(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, int64_t sa, const float* B, int64_t ldb, int64_t sb,
                   float beta, float* C, int64_t ldc, int64_t sc) {
  gemm_batched<float>(ta, tb, batch, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc);
}
void dgemm_batched(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
                   const double* A, int64_t lda, int64_t sa, const double* B, int64_t ldb,
                   int64_t sb, double beta, double* C, int64_t ldc, int64_t sc) {
  gemm_batched<double>(ta, tb, batch, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc);
}

}  // namespace smyrf::kernels::cuda
