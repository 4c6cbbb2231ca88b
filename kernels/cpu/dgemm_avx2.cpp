// AVX2/FMA dgemm: a 6x8 register-blocked micro-kernel (12 ymm accumulators of 4 doubles) with
// the BLIS-style blocking of the float32 kernel (gemm_avx2.cpp), kept simpler: float64 products
// are gradient checks, the gradient study's references and users' float64 matmuls, not the hot
// path of training.
//
//   for jc over N in NC columns      B block (KC x NC) packed into 8-column panels (shared)
//     for pc over K in KC steps
//       for ic over M in MC rows     A block (mc x KC) packed into 6-row panels (per thread)
//         for jr over 8-col panels   micro-kernel over 6-row panels, K steps from packed data
//
// Packing absorbs the transposes and zero-pads the edges, so the micro-kernel always runs full
// 6x8 tiles; only edge tiles store through a small buffer. The threads share each packed B
// block (packed panel by panel between them) and take row blocks of A; mc shrinks so that every
// thread has rows when M is small.
//
// Why: the portable loop ran 1024^3 in 118 ms (18 GFLOP/s) on the 2-vCPU EPYC where PyTorch's
// (OpenBLAS) dgemm took 23.5 ms.
#include "kernels/cpu/gemm_avx2.h"
#include "kernels/cpu/gemm_slices.h"
#include "kernels/cpu/grow_scratch.h"

#if defined(SMYRF_HAVE_AVX2_BUILD)
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <new>

namespace smyrf::kernels::cpu {
namespace {

constexpr int MR = 6;
constexpr int NR = 8;
// KC * NR * 8 B = 24 KiB of B micro-panel in L1 (Zen 2-4 have 32 KiB); MC * KC * 8 B = 144 KiB
// of packed A in L2; KC * NC * 8 B = 6 MiB of packed B in L3. On the 2-vCPU EPYC (Zen 5),
// 512^3 / 1024^3 / 2048^3, two interleaved rounds of each: KC 256 / MC 72 78-85 GFLOP/s, KC 384 /
// MC 48 81-88, KC 512 / MC 36-48 83-90 (within the host's noise of each other, so the L1-safe
// one); unrolling the k loop 4 times, prefetching C before a tile or A ahead in the loop changed
// nothing measurable.
constexpr int64_t KC = 384;
constexpr int64_t MC = 48;
constexpr int64_t NC = 2048;
static_assert(MC % MR == 0 && NC % NR == 0, "blocks hold whole micro-panels");

using Scratch = GrowScratch<double>;
thread_local Scratch tl_pack_a;
thread_local Scratch tl_pack_b;  // the calling thread's, shared with its team

// Packs op(A)[i0:i0+mc, k0:k0+kc] into 6-row panels: dst[p * kc * MR + k * MR + i].
void pack_a(bool trans_a, const double* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0,
            int64_t kc, double* dst) {
  for (int64_t p = 0; p < mc; p += MR) {
    const int64_t rows = std::min<int64_t>(MR, mc - p);
    double* d = dst + (p / MR) * kc * MR;
    for (int64_t k = 0; k < kc; ++k) {
      for (int64_t i = 0; i < rows; ++i)
        d[k * MR + i] = trans_a ? A[(k0 + k) * lda + i0 + p + i] : A[(i0 + p + i) * lda + k0 + k];
      for (int64_t i = rows; i < MR; ++i) d[k * MR + i] = 0.0;
    }
  }
}

// Packs op(B)[k0:k0+kc, j0:j0+NR) (cols valid columns) into one panel dst[k * NR + j].
void pack_b_panel(bool trans_b, const double* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                  int64_t cols, double* dst) {
  if (!trans_b && cols == NR) {
    for (int64_t k = 0; k < kc; ++k) {
      const double* s = B + (k0 + k) * ldb + j0;
      _mm256_store_pd(dst + k * NR, _mm256_loadu_pd(s));
      _mm256_store_pd(dst + k * NR + 4, _mm256_loadu_pd(s + 4));
    }
    return;
  }
  for (int64_t k = 0; k < kc; ++k) {
    for (int64_t j = 0; j < cols; ++j)
      dst[k * NR + j] = trans_b ? B[(j0 + j) * ldb + k0 + k] : B[(k0 + k) * ldb + j0 + j];
    for (int64_t j = cols; j < NR; ++j) dst[k * NR + j] = 0.0;
  }
}

// acc (6 x 8) = sum over k of a[k * MR + i] * b[k * NR + j].
// C[0:m, 0:n] = alpha * acc + (first ? beta * C : C); beta == 0 on the first step never reads C.
void micro_kernel(int64_t kc, const double* a, const double* b, double* C, int64_t ldc, int64_t m,
                  int64_t n, double alpha, double beta, bool first) {
  __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
          c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t k = 0; k < kc; ++k) {
    const __m256d b0 = _mm256_load_pd(b), b1 = _mm256_load_pd(b + 4);
    __m256d x = _mm256_broadcast_sd(a);
    c00 = _mm256_fmadd_pd(x, b0, c00);
    c01 = _mm256_fmadd_pd(x, b1, c01);
    x = _mm256_broadcast_sd(a + 1);
    c10 = _mm256_fmadd_pd(x, b0, c10);
    c11 = _mm256_fmadd_pd(x, b1, c11);
    x = _mm256_broadcast_sd(a + 2);
    c20 = _mm256_fmadd_pd(x, b0, c20);
    c21 = _mm256_fmadd_pd(x, b1, c21);
    x = _mm256_broadcast_sd(a + 3);
    c30 = _mm256_fmadd_pd(x, b0, c30);
    c31 = _mm256_fmadd_pd(x, b1, c31);
    x = _mm256_broadcast_sd(a + 4);
    c40 = _mm256_fmadd_pd(x, b0, c40);
    c41 = _mm256_fmadd_pd(x, b1, c41);
    x = _mm256_broadcast_sd(a + 5);
    c50 = _mm256_fmadd_pd(x, b0, c50);
    c51 = _mm256_fmadd_pd(x, b1, c51);
    a += MR;
    b += NR;
  }
  alignas(32) double t[MR * NR];
  const __m256d rows[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                               {c30, c31}, {c40, c41}, {c50, c51}};
  const __m256d va = _mm256_set1_pd(alpha), vb = _mm256_set1_pd(first ? beta : 1.0);
  const bool read_c = !(first && beta == 0.0);
  if (m == MR && n == NR) {
    for (int i = 0; i < MR; ++i) {
      double* c = C + i * ldc;
      for (int h = 0; h < 2; ++h) {
        __m256d v = _mm256_mul_pd(va, rows[i][h]);
        if (read_c) v = _mm256_fmadd_pd(vb, _mm256_loadu_pd(c + 4 * h), v);
        _mm256_storeu_pd(c + 4 * h, v);
      }
    }
    return;
  }
  for (int i = 0; i < MR; ++i)
    for (int h = 0; h < 2; ++h) _mm256_store_pd(t + i * NR + 4 * h, rows[i][h]);
  const double bb = first ? beta : 1.0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double& c = C[i * ldc + j];
      c = read_c ? alpha * t[i * NR + j] + bb * c : alpha * t[i * NR + j];
    }
}

// Up to ~640^3 the team's two barriers per K step (after packing B, after the row blocks) cost
// more than packing B once per thread: C is cut into one slice of whole tiles per thread (rows,
// or columns when C is wide), each run by the one-thread code. 2 threads, GFLOP/s, team ->
// slices, two interleaved rounds: 128^3 82-85 -> 101-103, 256^3 104 -> 108-112, 333x777x555 NT
// 108 -> 114, 512^3 100-101 -> 116; 768^3, 1024^3 and 2048^3 even within the noise (1024^3 TN
// 117 -> 106 with slices at 2100^3, so the team keeps them).
constexpr int64_t kSliceMaxProduct = int64_t{640} * 640 * 640;

void dgemm_slices(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                  const double* A, int64_t lda, const double* B, int64_t ldb, double beta,
                  double* C, int64_t ldc, int threads) {
  const CSlices sl(M, N, MR, NR);
  const int64_t slices = std::min<int64_t>(sl.tiles, threads);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t s = 0; s < slices; ++s)  // inside the region dgemm_avx2 runs on this thread alone
    sl.run(s, slices, trans_a, trans_b, M, N, A, lda, B, ldb, C, ldc,
           [&](int64_t m, int64_t n, const double* a, const double* b, double* c) {
             dgemm_avx2(trans_a, trans_b, m, n, K, alpha, a, lda, b, ldb, beta, c, ldc, 1);
           });
}

}  // namespace

void dgemm_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
                int64_t ldc, int threads) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0) {  // C = beta * C
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0 ? 0.0 : beta * C[i * ldc + j];
    return;
  }
  if (omp_in_parallel() || M * N * K < 48 * 48 * 48) threads = 1;
  if (threads > 1 && M * N * K <= kSliceMaxProduct) {
    dgemm_slices(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads);
    return;
  }
  // rows a block: MC, or fewer so that every thread has a block
  const int64_t per_thread = (M + threads - 1) / threads;
  const int64_t mc = std::min<int64_t>(MC, (per_thread + MR - 1) / MR * MR);
  const int64_t nc_max = std::min<int64_t>(NC, (N + NR - 1) / NR * NR);
  double* pb = tl_pack_b.get(static_cast<size_t>(std::min(KC, K) * nc_max));
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    double* pa = tl_pack_a.get(static_cast<size_t>(MC * KC));
    for (int64_t jc = 0; jc < N; jc += NC) {
      const int64_t nc = std::min(NC, N - jc), panels = (nc + NR - 1) / NR;
      for (int64_t pc = 0; pc < K; pc += KC) {
        const int64_t kc = std::min(KC, K - pc);
#pragma omp for schedule(static)
        for (int64_t p = 0; p < panels; ++p)
          pack_b_panel(trans_b, B, ldb, pc, kc, jc + p * NR, std::min<int64_t>(NR, nc - p * NR),
                       pb + p * kc * NR);
#pragma omp for schedule(dynamic, 1)
        for (int64_t ic = 0; ic < M; ic += mc) {
          const int64_t m = std::min(mc, M - ic);
          pack_a(trans_a, A, lda, ic, m, pc, kc, pa);
          for (int64_t p = 0; p < panels; ++p) {
            const int64_t n = std::min<int64_t>(NR, nc - p * NR);
            for (int64_t ir = 0; ir < m; ir += MR)
              micro_kernel(kc, pa + (ir / MR) * kc * MR, pb + p * kc * NR,
                           C + (ic + ir) * ldc + jc + p * NR, ldc, std::min<int64_t>(MR, m - ir), n,
                           alpha, beta, pc == 0);
          }
        }
      }
    }
  }
}

}  // namespace smyrf::kernels::cpu

#endif  // SMYRF_HAVE_AVX2_BUILD
