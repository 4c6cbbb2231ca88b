// AVX2/FMA matrix-vector products (see gemv_avx2.h).
//
// Both forms stream the matrix once and keep the vector (and, for the row sums, the output
// block) in L1/L2; they are bound by memory, not by the FMAs:
//   dot form   y[i] = sum_k R[i * ld + k] v[k]: four rows at a time share each vector load,
//              two accumulators a row (eight FMA chains cover the FMA latency);
//   rows form  y[j] = sum_k v[k] R[k * ld + j]: four rows at a time are added into a float
//              accumulator block of the output (kColBlock columns, in L1), so each output
//              element is loaded and stored once per four rows.
// Threads split the output (rows of the dot form, column blocks of the rows form), so every
// thread streams its own part of the matrix and no reduction across threads is needed.
#include "kernels/cpu/gemv_avx2.h"

#if defined(SMYRF_HAVE_AVX2_BUILD)
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <memory>

#include "kernels/cpu/vec_math_avx2.h"  // hsum_ps, tail_mask

namespace smyrf::kernels::cpu {
namespace {

using avx2::hsum_ps;
using avx2::tail_mask;

// Below this many matrix elements a second thread costs more (fork/join) than it saves.
constexpr int64_t kParallelMin = 1 << 16;
// Output columns a thread accumulates at a time in the rows form (16 KiB of floats).
constexpr int64_t kColBlock = 4096;

// y = alpha * acc + beta * y (beta == 0: y is written without being read)
inline void finish(float* y, float acc, float alpha, float beta) {
  *y = beta == 0.0f ? alpha * acc : alpha * acc + beta * *y;
}

inline __m256 load_part(const float* p, int64_t left) {
  return left >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, tail_mask(left));
}

// y[i * ys] = alpha * sum_k R[i * ld + k] v[k] + beta * y[i * ys] for i in [r0, r1); v is
// contiguous, K floats.
void dot_rows(const float* R, int64_t ld, const float* v, int64_t K, float* y, int64_t ys,
              int64_t r0, int64_t r1, float alpha, float beta) {
  int64_t i = r0;
  for (; i + 4 <= r1; i += 4) {
    const float* p0 = R + i * ld;
    const float* p1 = p0 + ld;
    const float* p2 = p1 + ld;
    const float* p3 = p2 + ld;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      const __m256 x0 = _mm256_loadu_ps(v + k), x1 = _mm256_loadu_ps(v + k + 8);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p0 + k), x0, a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(p1 + k), x0, a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(p2 + k), x0, a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(p3 + k), x0, a3);
      b0 = _mm256_fmadd_ps(_mm256_loadu_ps(p0 + k + 8), x1, b0);
      b1 = _mm256_fmadd_ps(_mm256_loadu_ps(p1 + k + 8), x1, b1);
      b2 = _mm256_fmadd_ps(_mm256_loadu_ps(p2 + k + 8), x1, b2);
      b3 = _mm256_fmadd_ps(_mm256_loadu_ps(p3 + k + 8), x1, b3);
    }
    for (; k < K; k += 8) {  // masked lanes load as 0
      const __m256 x0 = load_part(v + k, K - k);
      a0 = _mm256_fmadd_ps(load_part(p0 + k, K - k), x0, a0);
      a1 = _mm256_fmadd_ps(load_part(p1 + k, K - k), x0, a1);
      a2 = _mm256_fmadd_ps(load_part(p2 + k, K - k), x0, a2);
      a3 = _mm256_fmadd_ps(load_part(p3 + k, K - k), x0, a3);
    }
    finish(y + i * ys, hsum_ps(_mm256_add_ps(a0, b0)), alpha, beta);
    finish(y + (i + 1) * ys, hsum_ps(_mm256_add_ps(a1, b1)), alpha, beta);
    finish(y + (i + 2) * ys, hsum_ps(_mm256_add_ps(a2, b2)), alpha, beta);
    finish(y + (i + 3) * ys, hsum_ps(_mm256_add_ps(a3, b3)), alpha, beta);
  }
  for (; i < r1; ++i) {
    const float* p = R + i * ld;
    __m256 a = _mm256_setzero_ps(), b = a;
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      a = _mm256_fmadd_ps(_mm256_loadu_ps(p + k), _mm256_loadu_ps(v + k), a);
      b = _mm256_fmadd_ps(_mm256_loadu_ps(p + k + 8), _mm256_loadu_ps(v + k + 8), b);
    }
    for (; k < K; k += 8) a = _mm256_fmadd_ps(load_part(p + k, K - k), load_part(v + k, K - k), a);
    finish(y + i * ys, hsum_ps(_mm256_add_ps(a, b)), alpha, beta);
  }
}

// acc[0, n) = sum_k v[k] R[k * ld + j0 + j] over all K rows (acc is overwritten).
void sum_rows(const float* R, int64_t ld, const float* v, int64_t K, int64_t j0, int64_t n,
              float* acc) {
  std::fill(acc, acc + n, 0.0f);
  const __m256i tail = tail_mask(n % 8);
  const int64_t n8 = n - n % 8;
  int64_t k = 0;
  for (; k + 4 <= K; k += 4) {
    const float* p0 = R + k * ld + j0;
    const float* p1 = p0 + ld;
    const float* p2 = p1 + ld;
    const float* p3 = p2 + ld;
    const __m256 v0 = _mm256_set1_ps(v[k]), v1 = _mm256_set1_ps(v[k + 1]);
    const __m256 v2 = _mm256_set1_ps(v[k + 2]), v3 = _mm256_set1_ps(v[k + 3]);
    for (int64_t j = 0; j < n8; j += 8) {
      __m256 s = _mm256_loadu_ps(acc + j);
      s = _mm256_fmadd_ps(_mm256_loadu_ps(p0 + j), v0, s);
      s = _mm256_fmadd_ps(_mm256_loadu_ps(p1 + j), v1, s);
      s = _mm256_fmadd_ps(_mm256_loadu_ps(p2 + j), v2, s);
      s = _mm256_fmadd_ps(_mm256_loadu_ps(p3 + j), v3, s);
      _mm256_storeu_ps(acc + j, s);
    }
    if (n8 < n) {
      __m256 s = _mm256_maskload_ps(acc + n8, tail);
      s = _mm256_fmadd_ps(_mm256_maskload_ps(p0 + n8, tail), v0, s);
      s = _mm256_fmadd_ps(_mm256_maskload_ps(p1 + n8, tail), v1, s);
      s = _mm256_fmadd_ps(_mm256_maskload_ps(p2 + n8, tail), v2, s);
      s = _mm256_fmadd_ps(_mm256_maskload_ps(p3 + n8, tail), v3, s);
      _mm256_maskstore_ps(acc + n8, tail, s);
    }
  }
  for (; k < K; ++k) {
    const float* p = R + k * ld + j0;
    const __m256 vk = _mm256_set1_ps(v[k]);
    for (int64_t j = 0; j < n8; j += 8)
      _mm256_storeu_ps(acc + j,
                       _mm256_fmadd_ps(_mm256_loadu_ps(p + j), vk, _mm256_loadu_ps(acc + j)));
    if (n8 < n)
      _mm256_maskstore_ps(acc + n8, tail,
                          _mm256_fmadd_ps(_mm256_maskload_ps(p + n8, tail), vk,
                                          _mm256_maskload_ps(acc + n8, tail)));
  }
}

// The vector operand as K contiguous floats: v itself when its stride is 1, else a copy in
// small (K <= kSmallVector, on the caller's stack) or in heap.
constexpr int64_t kSmallVector = 1024;
const float* contiguous(const float* v, int64_t stride, int64_t K, float* small,
                        std::unique_ptr<float[]>& heap) {
  if (stride == 1) return v;
  float* buf = small;
  if (K > kSmallVector) {
    heap.reset(new float[K]);
    buf = heap.get();
  }
  for (int64_t k = 0; k < K; ++k) buf[k] = v[k * stride];
  return buf;
}

}  // namespace

void sgemm_gemv_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                     int64_t ldc, int threads) {
  // The matrix operand R (rows x ... as stored), the vector v (K floats, stride vs) and the
  // output y (n_out floats, stride ys). N == 1: R is A, v the column op(B), y the column of C.
  // M == 1: R is B, v the row op(A), y the row of C.
  const bool column = N == 1;
  const int64_t n_out = column ? M : N;
  const float* R = column ? A : B;
  const int64_t ld = column ? lda : ldb;
  // R's rows are the output's rows (dot form) unless R is stored the other way round
  const bool dot = column ? !trans_a : trans_b;
  const float* v_raw = column ? B : A;
  // op(B) is K x 1: B stored (K, 1) with row stride ldb, or (1, K) contiguous when transposed;
  // op(A) is 1 x K: A stored (1, K) contiguous, or (K, 1) with row stride lda when transposed
  const int64_t vs = column ? (trans_b ? 1 : ldb) : (trans_a ? lda : 1);
  const int64_t ys = column ? ldc : 1;
  // (no heap allocation for the small products of a batch: the vector copy and the rows form's
  // accumulator block live on the stack)
  float vsmall[kSmallVector];
  std::unique_ptr<float[]> vheap;
  const float* v = contiguous(v_raw, vs, K, vsmall, vheap);
  if (n_out * K < kParallelMin) threads = 1;

  // One thread (small products, batch items, callers inside a parallel region) runs the loops
  // directly: entering even a one-thread OpenMP region costs about half a microsecond, which
  // doubled the time of a batch of 4096 products of 1 x 64 by 64 x 64.
  if (dot) {
    if (threads == 1) return dot_rows(R, ld, v, K, C, ys, 0, n_out, alpha, beta);
    // rows of R in blocks of 4 per thread share; dynamic so a preempted thread is covered
    const int64_t blocks = (n_out + 3) / 4;
    const int64_t chunk = std::max<int64_t>(1, blocks / (threads * 8));
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int64_t c = 0; c < (blocks + chunk - 1) / chunk; ++c) {
      const int64_t r0 = c * chunk * 4, r1 = std::min(n_out, (c + 1) * chunk * 4);
      dot_rows(R, ld, v, K, C, ys, r0, r1, alpha, beta);
    }
    return;
  }
  // rows form: column blocks of y, each a thread's own; narrow outputs split finer so both
  // threads have work
  const int64_t per = std::max<int64_t>(
      8, std::min<int64_t>(kColBlock, ((n_out + threads - 1) / threads + 7) / 8 * 8));
  const int64_t nblocks = (n_out + per - 1) / per;
  auto block = [&](int64_t b, float* acc) {
    const int64_t j0 = b * per, n = std::min(per, n_out - j0);
    sum_rows(R, ld, v, K, j0, n, acc);
    for (int64_t j = 0; j < n; ++j) finish(C + (j0 + j) * ys, acc[j], alpha, beta);
  };
  if (threads == 1 || nblocks == 1) {
    alignas(32) float acc[kColBlock];  // per <= kColBlock
    for (int64_t b = 0; b < nblocks; ++b) block(b, acc);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    alignas(32) float acc[kColBlock];
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < nblocks; ++b) block(b, acc);
  }
}

}  // namespace smyrf::kernels::cpu

#else  // built without AVX2 support: sgemm_avx2 never dispatches here.

namespace smyrf::kernels::cpu {
void sgemm_gemv_avx2(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                     const float*, int64_t, float, float*, int64_t, int) {}
}  // namespace smyrf::kernels::cpu

#endif
