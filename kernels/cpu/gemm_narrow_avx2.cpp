// AVX2/FMA products with 2 to 8 columns in op(B) (see gemm_narrow_avx2.h).
//
// C[i, j] = sum_k A[i, k] Bt[j, k]: op(B) is packed as Bt, up to 8 rows of kKBlock floats (zero
// padded to a whole number of 8-float vectors and to 4 or 8 rows), which stays in L1 while the
// rows of A stream past it. A tile is 3 rows of A against 4 rows of Bt: 12 accumulators, 7
// vector loads a step of 8 k for 12 FMAs (the 6x16 micro-kernel needs 8 loads for 12 FMAs, but
// here none of the FMAs is spent on padding). At the end of K each accumulator is reduced
// across its lanes, four at a time with horizontal adds.
#include "kernels/cpu/gemm_narrow_avx2.h"

#if defined(SMYRF_HAVE_AVX2_BUILD)
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/grow_scratch.h"   // GrowScratch
#include "kernels/cpu/vec_math_avx2.h"  // tail_mask

namespace smyrf::kernels::cpu {
namespace {

using avx2::tail_mask;

// Depth packed at a time: 8 rows of Bt are 64 KiB, L2-resident next to the A rows in flight;
// C accumulates over the blocks (beta only on the first).
constexpr int64_t kKBlock = 2048;

thread_local GrowScratch<float> tl_bt;

// Bt[j * kp + k] = op(B)[k0 + k, j] for j < N, k < kc; zeros for k in [kc, kp) and rows N..rows-1.
void pack_bt(bool trans_b, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t N,
             int64_t rows, int64_t kp, float* bt) {
  if (trans_b) {  // op(B)[k, j] = B[j, k]: rows of B are rows of Bt
    for (int64_t j = 0; j < N; ++j) {
      std::copy(B + j * ldb + k0, B + j * ldb + k0 + kc, bt + j * kp);
      std::fill(bt + j * kp + kc, bt + (j + 1) * kp, 0.0f);
    }
    for (int64_t j = N; j < rows; ++j) std::fill(bt + j * kp, bt + (j + 1) * kp, 0.0f);
  } else {  // 8 rows of B (N <= 8 floats each) at a time, transposed in registers
    const __m256i cols = tail_mask(N);
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t k = 0; k < kp; k += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i)
        r[i] = k + i < kc ? _mm256_maskload_ps(B + (k0 + k + i) * ldb, cols) : zero;
      // 8x8 transpose: r[i][j] -> t[j][i]
      const __m256 a0 = _mm256_unpacklo_ps(r[0], r[1]), a1 = _mm256_unpackhi_ps(r[0], r[1]);
      const __m256 a2 = _mm256_unpacklo_ps(r[2], r[3]), a3 = _mm256_unpackhi_ps(r[2], r[3]);
      const __m256 a4 = _mm256_unpacklo_ps(r[4], r[5]), a5 = _mm256_unpackhi_ps(r[4], r[5]);
      const __m256 a6 = _mm256_unpacklo_ps(r[6], r[7]), a7 = _mm256_unpackhi_ps(r[6], r[7]);
      const __m256 b0 = _mm256_shuffle_ps(a0, a2, 0x44), b1 = _mm256_shuffle_ps(a0, a2, 0xEE);
      const __m256 b2 = _mm256_shuffle_ps(a1, a3, 0x44), b3 = _mm256_shuffle_ps(a1, a3, 0xEE);
      const __m256 b4 = _mm256_shuffle_ps(a4, a6, 0x44), b5 = _mm256_shuffle_ps(a4, a6, 0xEE);
      const __m256 b6 = _mm256_shuffle_ps(a5, a7, 0x44), b7 = _mm256_shuffle_ps(a5, a7, 0xEE);
      const __m256 t[8] = {
          _mm256_permute2f128_ps(b0, b4, 0x20), _mm256_permute2f128_ps(b1, b5, 0x20),
          _mm256_permute2f128_ps(b2, b6, 0x20), _mm256_permute2f128_ps(b3, b7, 0x20),
          _mm256_permute2f128_ps(b0, b4, 0x31), _mm256_permute2f128_ps(b1, b5, 0x31),
          _mm256_permute2f128_ps(b2, b6, 0x31), _mm256_permute2f128_ps(b3, b7, 0x31)};
      for (int64_t j = 0; j < rows; ++j) _mm256_storeu_ps(bt + j * kp + k, t[j]);  // j >= N: 0
    }
  }
}

// Lanes 0..3 of the result: the lane sums of s0..s3.
inline __m128 sum4(__m256 s0, __m256 s1, __m256 s2, __m256 s3) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// C[r, 0:n] (n <= 4) = alpha * v + beta_C, beta == 0 never reading C.
inline void store4(float* c, __m128 v, int n, float alpha, float beta) {
  v = _mm_mul_ps(v, _mm_set1_ps(alpha));
  const __m128i m = _mm_cmpgt_epi32(_mm_set1_epi32(n), _mm_setr_epi32(0, 1, 2, 3));
  if (beta != 0.0f) v = _mm_fmadd_ps(_mm_set1_ps(beta), _mm_maskload_ps(c, m), v);
  if (n == 4)
    _mm_storeu_ps(c, v);
  else
    _mm_maskstore_ps(c, m, v);
}

// Rows i0..i0+R-1 of C (R = 1..3) against 4 rows of Bt (kp apart), columns j0..j0+n-1 of C.
// The last step of k is masked in A (Bt's padding is zero, and masked lanes load as 0).
#define SMYRF_NARROW_ROW(r)                       \
  if (R > r) {                                    \
    c##r##0 = _mm256_fmadd_ps(a##r, b0, c##r##0); \
    c##r##1 = _mm256_fmadd_ps(a##r, b1, c##r##1); \
    c##r##2 = _mm256_fmadd_ps(a##r, b2, c##r##2); \
    c##r##3 = _mm256_fmadd_ps(a##r, b3, c##r##3); \
  }
template <int R>
void narrow_tile(int64_t kc, const float* a, int64_t lda, const float* bt, int64_t kp, float* c,
                 int64_t ldc, int n, float alpha, float beta) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00,
         c12 = c00, c13 = c00, c20 = c00, c21 = c00, c22 = c00, c23 = c00;
  const float* a0p = a;
  const float* a1p = a + (R > 1 ? lda : 0);
  const float* a2p = a + (R > 2 ? 2 * lda : 0);
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8) {
    const __m256 b0 = _mm256_loadu_ps(bt + k), b1 = _mm256_loadu_ps(bt + kp + k);
    const __m256 b2 = _mm256_loadu_ps(bt + 2 * kp + k), b3 = _mm256_loadu_ps(bt + 3 * kp + k);
    const __m256 a0 = _mm256_loadu_ps(a0p + k);
    const __m256 a1 = R > 1 ? _mm256_loadu_ps(a1p + k) : a0;
    const __m256 a2 = R > 2 ? _mm256_loadu_ps(a2p + k) : a0;
    SMYRF_NARROW_ROW(0)
    SMYRF_NARROW_ROW(1)
    SMYRF_NARROW_ROW(2)
  }
  if (k < kc) {
    const __m256i m = tail_mask(kc - k);
    const __m256 b0 = _mm256_loadu_ps(bt + k), b1 = _mm256_loadu_ps(bt + kp + k);
    const __m256 b2 = _mm256_loadu_ps(bt + 2 * kp + k), b3 = _mm256_loadu_ps(bt + 3 * kp + k);
    const __m256 a0 = _mm256_maskload_ps(a0p + k, m);
    const __m256 a1 = R > 1 ? _mm256_maskload_ps(a1p + k, m) : a0;
    const __m256 a2 = R > 2 ? _mm256_maskload_ps(a2p + k, m) : a0;
    SMYRF_NARROW_ROW(0)
    SMYRF_NARROW_ROW(1)
    SMYRF_NARROW_ROW(2)
  }
  store4(c, sum4(c00, c01, c02, c03), n, alpha, beta);
  if (R > 1) store4(c + ldc, sum4(c10, c11, c12, c13), n, alpha, beta);
  if (R > 2) store4(c + 2 * ldc, sum4(c20, c21, c22, c23), n, alpha, beta);
}
#undef SMYRF_NARROW_ROW

// ---- transposed A: outer products --------------------------------------------------------
// op(A) = A^T stored K x M: a row of C's tile is a column of A^T, so the dot form would need A
// transposed first. Instead a tile of R <= 12 rows accumulates outer products: per k, one
// 8-float row of op(B) (packed as Bp[k * 8 + j], zero padded) times R broadcasts from row k of
// A^T, which are contiguous. 12 accumulators, 13 loads for 12 FMAs; no reduction at the end.

// Bp[k * 8 + j] = op(B)[k0 + k, j] for j < N, zeros for j in [N, 8).
void pack_bp(bool trans_b, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t N,
             float* bp) {
  if (!trans_b) {
    const __m256i cols = tail_mask(N);
    for (int64_t k = 0; k < kc; ++k)
      _mm256_storeu_ps(bp + k * 8, _mm256_maskload_ps(B + (k0 + k) * ldb, cols));
  } else {
    for (int64_t k = 0; k < kc; ++k) {
      for (int64_t j = 0; j < N; ++j) bp[k * 8 + j] = B[j * ldb + k0 + k];
      for (int64_t j = N; j < 8; ++j) bp[k * 8 + j] = 0.0f;
    }
  }
}

#define SMYRF_OUTER_ROW(r) \
  if (R > r) c##r = _mm256_fmadd_ps(_mm256_broadcast_ss(a + r), b, c##r);
#define SMYRF_OUTER_STORE(r) \
  if (R > r) store8(c + r * ldc, c##r, cols, n, alpha, beta);

// C[r, 0:n] (n <= 8) = alpha * v + beta * C, beta == 0 never reading C.
inline void store8(float* c, __m256 v, __m256i cols, int n, float alpha, float beta) {
  v = _mm256_mul_ps(v, _mm256_set1_ps(alpha));
  if (beta != 0.0f) v = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_maskload_ps(c, cols), v);
  if (n == 8)
    _mm256_storeu_ps(c, v);
  else
    _mm256_maskstore_ps(c, cols, v);
}

template <int R>
void outer_tile(int64_t kc, const float* a, int64_t lda, const float* bp, float* c, int64_t ldc,
                int n, float alpha, float beta) {
  __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0,
         c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  for (int64_t k = 0; k < kc; ++k, a += lda) {
    const __m256 b = _mm256_loadu_ps(bp + k * 8);
    SMYRF_OUTER_ROW(0)
    SMYRF_OUTER_ROW(1)
    SMYRF_OUTER_ROW(2)
    SMYRF_OUTER_ROW(3)
    SMYRF_OUTER_ROW(4)
    SMYRF_OUTER_ROW(5)
    SMYRF_OUTER_ROW(6)
    SMYRF_OUTER_ROW(7)
    SMYRF_OUTER_ROW(8)
    SMYRF_OUTER_ROW(9)
    SMYRF_OUTER_ROW(10)
    SMYRF_OUTER_ROW(11)
  }
  const __m256i cols = tail_mask(n);
  SMYRF_OUTER_STORE(0)
  SMYRF_OUTER_STORE(1)
  SMYRF_OUTER_STORE(2)
  SMYRF_OUTER_STORE(3)
  SMYRF_OUTER_STORE(4)
  SMYRF_OUTER_STORE(5)
  SMYRF_OUTER_STORE(6)
  SMYRF_OUTER_STORE(7)
  SMYRF_OUTER_STORE(8)
  SMYRF_OUTER_STORE(9)
  SMYRF_OUTER_STORE(10)
  SMYRF_OUTER_STORE(11)
}
#undef SMYRF_OUTER_ROW
#undef SMYRF_OUTER_STORE

constexpr int kOuterRows = 12;
// Rows of A^T a tile walks before the next tile: its 128 lines (lda apart) are still in L1 or L2
// when the next tile reads the rest of each line. Walking all of K (2048) left the next tile to
// find them in L3 or memory: one thread, GFLOP/s, k-block 2048 / 128: 4096x8x4096 TN 17-22 /
// 51-52 (the 6x16 path: 30), 2048x8x1024 69-72 / 95-98, 256x8x1024 88-94 / 113-114; 64 and 256
// were close to 128, 8-32 lost up to 4x where N < 8 (a masked load and store of C per block).
constexpr int64_t kOuterKBlock = 128;

template <int R = kOuterRows>
void outer_rows(int rows, int64_t kc, const float* a, int64_t lda, const float* bp, float* c,
                int64_t ldc, int n, float alpha, float beta) {
  if constexpr (R > 1) {
    if (rows < R) return outer_rows<R - 1>(rows, kc, a, lda, bp, c, ldc, n, alpha, beta);
  }
  outer_tile<R>(kc, a, lda, bp, c, ldc, n, alpha, beta);
}

void narrow_transposed_a(bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                         int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                         int64_t ldc) {
  const int64_t kb = std::min(K, kOuterKBlock);
  float* bp = tl_bt.get(static_cast<size_t>(kb) * 8);
  const int n = static_cast<int>(N);
  for (int64_t k0 = 0; k0 < K; k0 += kOuterKBlock) {
    const int64_t kc = std::min(kOuterKBlock, K - k0);
    const float beta_eff = k0 == 0 ? beta : 1.0f;
    pack_bp(trans_b, B, ldb, k0, kc, N, bp);
    const float* a = A + k0 * lda;
    for (int64_t i = 0; i < M; i += kOuterRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kOuterRows, M - i));
      outer_rows(rows, kc, a + i, lda, bp, C + i * ldc, ldc, n, alpha, beta_eff);
    }
  }
}

}  // namespace

void sgemm_narrow_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                       float* C, int64_t ldc) {
  if (trans_a) return narrow_transposed_a(trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  const int64_t rows = N <= 4 ? 4 : 8;
  const int64_t kb = std::min(K, kKBlock);
  const int64_t kp_max = (kb + 7) / 8 * 8;
  float* bt = tl_bt.get(static_cast<size_t>(rows) * kp_max);
  for (int64_t k0 = 0; k0 < K; k0 += kKBlock) {
    const int64_t kc = std::min(kKBlock, K - k0);
    const int64_t kp = (kc + 7) / 8 * 8;
    const float beta_eff = k0 == 0 ? beta : 1.0f;
    pack_bt(trans_b, B, ldb, k0, kc, N, rows, kp, bt);
    for (int64_t j0 = 0; j0 < N; j0 += 4) {
      const int n = static_cast<int>(std::min<int64_t>(4, N - j0));
      const float* b = bt + j0 * kp;
      const float* a = A + k0;
      int64_t i = 0;
      for (; i + 3 <= M; i += 3)
        narrow_tile<3>(kc, a + i * lda, lda, b, kp, C + i * ldc + j0, ldc, n, alpha, beta_eff);
      if (M - i == 2)
        narrow_tile<2>(kc, a + i * lda, lda, b, kp, C + i * ldc + j0, ldc, n, alpha, beta_eff);
      else if (M - i == 1)
        narrow_tile<1>(kc, a + i * lda, lda, b, kp, C + i * ldc + j0, ldc, n, alpha, beta_eff);
    }
  }
}

}  // namespace smyrf::kernels::cpu

#else  // built without AVX2 support: sgemm_avx2 never dispatches here.

namespace smyrf::kernels::cpu {
void sgemm_narrow_avx2(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                       const float*, int64_t, float, float*, int64_t) {}
}  // namespace smyrf::kernels::cpu

#endif
