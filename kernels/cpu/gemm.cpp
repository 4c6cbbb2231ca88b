// Dispatch for the dense products of gemm.h, the portable blocked kernel (float64 and the scalar
// float32 variant), the batched loops and the naive reference.
#include "kernels/cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm_avx2.h"

namespace smyrf::kernels::cpu {
namespace {

int available_threads() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

// Portable cache-blocked product. op(B) is copied block by block into a contiguous (kc x nc)
// buffer so the inner loop is a unit-stride axpy the compiler vectorises for every transpose;
// rows of C are split across threads. Correctness first: this backs gradient checks and the
// scalar variant, not the hot path.
template <typename T>
void gemm_portable(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                   int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, int threads) {
  if (M <= 0 || N <= 0) return;
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0)) {
      std::fill(c, c + N, T(0));
    } else if (beta != T(1)) {
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
    }
  }
  if (K <= 0 || alpha == T(0)) return;
  constexpr int64_t kKc = 256, kNc = 512;
  std::vector<T> bbuf(static_cast<size_t>(std::min(kKc, K) * std::min(kNc, N)));
  T* bb = bbuf.data();
  if (M * N * K < 64 * 64 * 64) threads = 1;
  for (int64_t jc = 0; jc < N; jc += kNc) {
    const int64_t nc = std::min(kNc, N - jc);
    for (int64_t pc = 0; pc < K; pc += kKc) {
      const int64_t kc = std::min(kKc, K - pc);
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t j = 0; j < nc; ++j)
          bb[k * nc + j] = trans_b ? B[(jc + j) * ldb + pc + k] : B[(pc + k) * ldb + jc + j];
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
      for (int64_t i = 0; i < M; ++i) {
        T* c = C + i * ldc + jc;
        for (int64_t k = 0; k < kc; ++k) {
          const T a = alpha * (trans_a ? A[(pc + k) * lda + i] : A[i * lda + pc + k]);
          const T* b = bb + k * nc;
          for (int64_t j = 0; j < nc; ++j) c[j] += a * b[j];
        }
      }
    }
  }
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
#if defined(SMYRF_HAVE_AVX2_BUILD)
  if (active_isa() == Isa::Avx2) {
    sgemm_avx2(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, available_threads());
    return;
  }
#endif
  gemm_portable<float>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                       available_threads());
}

void dgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
           const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
           int64_t ldc) {
#if defined(SMYRF_HAVE_AVX2_BUILD)
  if (active_isa() == Isa::Avx2) {
    dgemm_avx2(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, available_threads());
    return;
  }
#endif
  gemm_portable<double>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                        available_threads());
}

void sgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                   float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                   int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                   int64_t stride_c) {
  if (batch <= 0) return;
  const int threads = available_threads();
  const bool avx2 = active_isa() == Isa::Avx2;
  // Small products (clustered attention: thousands of 16..128 blocks) go one product per thread
  // at a time, each on the one-thread path; big ones are split inside each product.
  const bool per_product =
      (threads == 1 || batch >= 2 * threads) &&
      (avx2 ? sgemm_avx2_prefers_batch_parallel(M, N, K) : M * N * K <= 256 * 256 * 256);
  if (per_product) {
    // Dynamic chunks of ~1/16 of a thread's share: cheap to hand out, and a preempted thread
    // (the host is shared) does not hold the others at the join. Within a chunk each product
    // knows the next one it runs, and the AVX2 path pulls that one's operands into L2 meanwhile.
    const int64_t chunk = std::max<int64_t>(1, batch / (threads * 16));
    const int64_t chunks = (batch + chunk - 1) / chunk;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (threads > 1)
    for (int64_t ch = 0; ch < chunks; ++ch) {
      const int64_t end = std::min(batch, (ch + 1) * chunk);
      for (int64_t b = ch * chunk; b < end; ++b) {
#if defined(SMYRF_HAVE_AVX2_BUILD)
        if (avx2) {
          const bool more = b + 1 < end;
          sgemm_avx2_batch_item(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda,
                                B + b * stride_b, ldb, beta, C + b * stride_c, ldc,
                                more && stride_a ? A + (b + 1) * stride_a : nullptr,
                                more && stride_b ? B + (b + 1) * stride_b : nullptr);
          continue;
        }
#endif
        gemm_portable<float>(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda,
                             B + b * stride_b, ldb, beta, C + b * stride_c, ldc, 1);
      }
    }
    return;
  }
  for (int64_t b = 0; b < batch; ++b)
    sgemm(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta,
          C + b * stride_c, ldc);
}

void dgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                   double alpha, const double* A, int64_t lda, int64_t stride_a, const double* B,
                   int64_t ldb, int64_t stride_b, double beta, double* C, int64_t ldc,
                   int64_t stride_c) {
  if (batch <= 0) return;
  const int threads = available_threads();
  if (threads > 1 && batch >= 2 * threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = 0; b < batch; ++b)  // dgemm runs on this thread alone inside the region
      dgemm(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta,
            C + b * stride_c, ldc);
    return;
  }
  for (int64_t b = 0; b < batch; ++b)
    dgemm(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta,
          C + b * stride_c, ldc);
}

void sgemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                     int64_t ldc) {
  // Double accumulation so the reference is accurate to well below float32 rounding of the
  // optimised kernels it judges.
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const double a = trans_a ? A[k * lda + i] : A[i * lda + k];
        const double b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        acc += a * b;
      }
      const double prev = beta == 0.0f ? 0.0 : static_cast<double>(beta) * C[i * ldc + j];
      C[i * ldc + j] = static_cast<float>(static_cast<double>(alpha) * acc + prev);
    }
  }
}

}  // namespace smyrf::kernels::cpu
