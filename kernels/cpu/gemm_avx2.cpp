// AVX2/FMA sgemm: a 6x16 register-blocked micro-kernel with BLIS-style cache blocking.
//
// Layout of the work (one thread):
//   for jc over N in NC columns      B block (KC x NC) packed into 16-column panels -> L3/L2
//     for pc over K in KC steps
//       for ic over M in MC rows     A block (MC x KC) packed into 6-row panels      -> L2
//         for jr over 16-col panels  one B panel (KC x 16) stays in L1
//           for ir over 6-row panels micro-kernel: 12 ymm accumulators
// Packing absorbs the transposes and leading dimensions, and pads the edges with zeros so the
// micro-kernel always runs full 6x16 tiles over K; only the final store is masked (partial N)
// or shortened (partial M, through the MR template argument).
//
// Small products (batched attention blocks, 16..128) skip A packing: the micro-kernel reads A
// in place through (row stride, k stride) and B either in place (no transpose, full 16-column
// strips) or from one packed 16-column strip, so no work is spent copying data that is used
// only a handful of times.
//
// Threads: with K of at least 256 a thread each thread takes a share of K over
// all of C, the others' partial products added in at the end (gemm_k_split). Otherwise packed
// products run as a team that packs each operand once. When C has at least as
// many rows as columns the team shares one packed B block per (NC, KC) step and takes the row
// blocks of A dynamically (gemm_blocked_team, as BLIS and OpenBLAS do); wide products share the
// packed rows of A and take column blocks (gemm_blocked_team_wide). Products below ~400^3 are
// cut into slices of C, each run by the one-thread code.
#include "kernels/cpu/gemm_avx2.h"
#include "kernels/cpu/elementwise_avx2.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_narrow_avx2.h"
#include "kernels/cpu/gemm_slices.h"
#include "kernels/cpu/gemv_avx2.h"
#include "kernels/cpu/grow_scratch.h"
#include "kernels/cpu/register_tile_rows.h"

#if defined(SMYRF_HAVE_AVX2_BUILD)
#include <immintrin.h>
#include <omp.h>

#include "kernels/cpu/transpose_avx2.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

namespace smyrf::kernels::cpu {
namespace {

constexpr int MR = 6;
constexpr int NR = 16;
// Measured on a Xeon (48 KiB L1, 2 MiB L2) against OpenBLAS's Haswell kernels and chosen to
// also fit Zen (32 KiB L1, 512 KiB+ L2):
// KC * NR * 4 B = 24 KiB of B micro-panel held in L1 while 6-row A panels stream past it;
// KC = 384 rather than 256 also means fewer read-modify-write passes over C.
constexpr int64_t KC = 384;
// MC * KC * 4 B = 144 KiB of packed A resident in L2.
constexpr int64_t MC = 96;
// KC * NC * 4 B = 6 MiB of packed B: L3 resident.
constexpr int64_t NC = 4096;
static_assert(MC % MR == 0 && NC % NR == 0, "blocks hold whole micro-panels (buffers assume it)");
static_assert(MR == kRegisterTileRows, "the small path cuts rows as register_tile_rows.h does");

using Scratch = GrowScratch<float>;
thread_local Scratch tl_a, tl_b;

// Lane masks for storing the first n (0..16) columns of a 16-wide row as two ymm halves.
inline void column_masks(int n, __m256i& m0, __m256i& m1) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
  m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), idx);
}

// C[0:m_rows=R, 0:n] = alpha * acc + beta * C. beta == 0 never reads C.
template <int R>
__attribute__((always_inline)) inline void store_tile(__m256 (&acc)[6][2], float* c, int64_t ldc,
                                                      int n, float alpha, float beta) {
  const __m256 va = _mm256_set1_ps(alpha);
  if (n == NR) {
    if (beta == 0.0f) {
      for (int i = 0; i < R; ++i) {
        _mm256_storeu_ps(c + i * ldc, _mm256_mul_ps(va, acc[i][0]));
        _mm256_storeu_ps(c + i * ldc + 8, _mm256_mul_ps(va, acc[i][1]));
      }
    } else {
      const __m256 vb = _mm256_set1_ps(beta);
      for (int i = 0; i < R; ++i) {
        float* ci = c + i * ldc;
        _mm256_storeu_ps(ci,
                         _mm256_fmadd_ps(va, acc[i][0], _mm256_mul_ps(vb, _mm256_loadu_ps(ci))));
        _mm256_storeu_ps(
            ci + 8, _mm256_fmadd_ps(va, acc[i][1], _mm256_mul_ps(vb, _mm256_loadu_ps(ci + 8))));
      }
    }
    return;
  }
  __m256i m0, m1;
  column_masks(n, m0, m1);
  const __m256 vb = _mm256_set1_ps(beta);
  for (int i = 0; i < R; ++i) {
    float* ci = c + i * ldc;
    __m256 r0 = _mm256_mul_ps(va, acc[i][0]);
    __m256 r1 = _mm256_mul_ps(va, acc[i][1]);
    if (beta != 0.0f) {
      r0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ci, m0), r0);
      r1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ci + 8, m1), r1);
    }
    _mm256_maskstore_ps(ci, m0, r0);
    _mm256_maskstore_ps(ci + 8, m1, r1);
  }
}

// The micro-kernel: an R x 16 tile of C from K steps. B is 16 floats per k step, b_ks apart
// (16 for a packed panel, ldb when read in place). A is either a packed panel (element (i, k)
// at a[k * MR + i]) or read in place (element (i, k) at a[i * a_rs + k * a_cs]).
// The accumulators are named variables, not an array: GCC keeps an array of __m256 in memory
// and reloads/stores it every iteration, which halves the speed.
#define SMYRF_FMA_ROW(i, aexpr)                   \
  if (R > i) {                                    \
    const __m256 av = _mm256_broadcast_ss(aexpr); \
    c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0);   \
    c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1);   \
  }
// One k step against a packed A panel (a advances by MR floats, b by b_ks).
#define SMYRF_PACKED_K_STEP                   \
  {                                           \
    const __m256 b0 = _mm256_loadu_ps(b);     \
    const __m256 b1 = _mm256_loadu_ps(b + 8); \
    b += b_ks;                                \
    SMYRF_FMA_ROW(0, a + 0)                   \
    SMYRF_FMA_ROW(1, a + 1)                   \
    SMYRF_FMA_ROW(2, a + 2)                   \
    SMYRF_FMA_ROW(3, a + 3)                   \
    SMYRF_FMA_ROW(4, a + 4)                   \
    SMYRF_FMA_ROW(5, a + 5)                   \
    a += MR;                                  \
  }
template <int R, bool PackedA>
void micro_kernel(int64_t K, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
                  int64_t b_ks, float* c, int64_t ldc, int n, float alpha, float beta,
                  const float* pf = nullptr, int64_t pf_n = 0) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  // The C tile is read and written only after the K loop; fetching it now hides the miss. A row
  // of 16 floats spans two lines unless C is 64-byte aligned.
  for (int i = 0; i < R; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + NR - 1), _MM_HINT_T0);
  }
  if (PackedA) {
    // The first pf_n k steps each also pull one line (16 floats) of pf into L2: the caller's
    // share of the next B panel (see run_packed_block).
    int64_t k = 0;
    for (const int64_t kp = std::min(pf_n, K); k < kp; ++k) {
      _mm_prefetch(reinterpret_cast<const char*>(pf + k * 16), _MM_HINT_T1);
      SMYRF_PACKED_K_STEP
    }
#pragma GCC unroll 4
    for (; k < K; ++k) {
      SMYRF_PACKED_K_STEP
    }
  } else {
    const float* a0 = a;
    const float* a1 = a + (R > 1 ? 1 : 0) * a_rs;
    const float* a2 = a + (R > 2 ? 2 : 0) * a_rs;
    const float* a3 = a + (R > 3 ? 3 : 0) * a_rs;
    const float* a4 = a + (R > 4 ? 4 : 0) * a_rs;
    const float* a5 = a + (R > 5 ? 5 : 0) * a_rs;
    int64_t ko = 0;
#pragma GCC unroll 4
    for (int64_t k = 0; k < K; ++k) {
      const __m256 b0 = _mm256_loadu_ps(b);
      const __m256 b1 = _mm256_loadu_ps(b + 8);
      b += b_ks;
      SMYRF_FMA_ROW(0, a0 + ko)
      SMYRF_FMA_ROW(1, a1 + ko)
      SMYRF_FMA_ROW(2, a2 + ko)
      SMYRF_FMA_ROW(3, a3 + ko)
      SMYRF_FMA_ROW(4, a4 + ko)
      SMYRF_FMA_ROW(5, a5 + ko)
      ko += a_cs;
    }
  }
  __m256 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  store_tile<R>(acc, c, ldc, n, alpha, beta);
}
#undef SMYRF_PACKED_K_STEP
#undef SMYRF_FMA_ROW

// Rows m (1..MR) of one tile: the full tile is the hot path, the rest are edge tiles.
template <bool PackedA>
inline void tile(int m, int64_t K, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
                 int64_t b_ks, float* c, int64_t ldc, int n, float alpha, float beta) {
  switch (m) {
    case 6:
      return micro_kernel<6, PackedA>(K, a, a_rs, a_cs, b, b_ks, c, ldc, n, alpha, beta);
    case 5:
      return micro_kernel<5, PackedA>(K, a, a_rs, a_cs, b, b_ks, c, ldc, n, alpha, beta);
    case 4:
      return micro_kernel<4, PackedA>(K, a, a_rs, a_cs, b, b_ks, c, ldc, n, alpha, beta);
    case 3:
      return micro_kernel<3, PackedA>(K, a, a_rs, a_cs, b, b_ks, c, ldc, n, alpha, beta);
    case 2:
      return micro_kernel<2, PackedA>(K, a, a_rs, a_cs, b, b_ks, c, ldc, n, alpha, beta);
    default:
      return micro_kernel<1, PackedA>(K, a, a_rs, a_cs, b, b_ks, c, ldc, n, alpha, beta);
  }
}

// ---- packing -------------------------------------------------------------------------------

// Packs op(B)[k0:k0+kc, j0:j0+n] (n <= 16) into one panel dst[k * 16 + j], zero padding j >= n.
void pack_b_panel(bool trans_b, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                  int n, float* dst) {
  if (!trans_b) {
    const float* src = B + k0 * ldb + j0;
    if (n == NR) {
      for (int64_t k = 0; k < kc; ++k, src += ldb, dst += NR) {
        _mm256_store_ps(dst, _mm256_loadu_ps(src));
        _mm256_store_ps(dst + 8, _mm256_loadu_ps(src + 8));
      }
    } else {
      __m256i m0, m1;
      column_masks(n, m0, m1);
      for (int64_t k = 0; k < kc; ++k, src += ldb, dst += NR) {
        _mm256_store_ps(dst, _mm256_maskload_ps(src, m0));
        _mm256_store_ps(dst + 8, _mm256_maskload_ps(src + 8, m1));
      }
    }
    return;
  }
  // op(B)(k, j) = B[j * ldb + k]: read 16 rows of B along k, write them as columns. Blocks of
  // 8 k's keep the reads sequential and the writes within one 512-byte stretch of dst; each
  // half of the 16 rows is one 8x8 register transpose (8 loads, 24 shuffles, 8 stores where
  // the scalar copy moved 64 floats one by one: ~2.5% of a 1-thread NT product).
  const float* src = B + j0 * ldb + k0;
  int64_t k = 0;
  if (n == NR) {
    for (; k + 8 <= kc; k += 8) {
      for (int h = 0; h < NR; h += 8) {
        __m256 r[8];
        for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(src + (h + j) * ldb + k);
        avx2::transpose8x8_ps(r);
        for (int kk = 0; kk < 8; ++kk) _mm256_store_ps(dst + (k + kk) * NR + h, r[kk]);
      }
    }
  }
  for (; k < kc; ++k) {
    float* d = dst + k * NR;
    for (int j = 0; j < n; ++j) d[j] = src[j * ldb + k];
    for (int j = n; j < NR; ++j) d[j] = 0.0f;
  }
}

// Packs op(B)[k0:k0+kc, j0:j0+ncols] into consecutive 16-column panels (panel p at
// dst + p * kc * 16), the last one zero padded. Without a transpose each panel is 64 bytes of
// each of kc rows ldb apart, i.e. for the usual ldb one line per page: packing panel by panel
// touches every page once per panel. Up to 8 panels go row by row instead, 512 contiguous
// bytes of each row into 8 destination streams, so each page visit brings 8 lines.
void pack_b_panels(bool trans_b, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                   int64_t ncols, float* dst) {
  constexpr int64_t G = 8;
  const int64_t full = trans_b ? 0 : ncols / NR;
  for (int64_t p = 0; p < full; p += G) {
    const int64_t g = std::min(G, full - p);
    const float* src = B + k0 * ldb + j0 + p * NR;
    float* d = dst + p * NR * kc;
    for (int64_t k = 0; k < kc; ++k, src += ldb) {
      for (int64_t q = 0; q < g; ++q) {
        float* dq = d + q * NR * kc + k * NR;
        _mm256_store_ps(dq, _mm256_loadu_ps(src + q * NR));
        _mm256_store_ps(dq + 8, _mm256_loadu_ps(src + q * NR + 8));
      }
    }
  }
  for (int64_t j = full * NR; j < ncols; j += NR)
    pack_b_panel(trans_b, B, ldb, k0, kc, j0 + j,
                 static_cast<int>(std::min<int64_t>(NR, ncols - j)), dst + j * kc);
}

// Packs op(A)[i0:i0+mc, k0:k0+kc] into 6-row panels: panel p holds dst[p * kc * MR + k * MR + i],
// zero padding rows past mc.
void pack_a_block(bool trans_a, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0,
                  int64_t kc, float* dst) {
  if (trans_a) {
    // op(A)(i, k) = A[k * lda + i]: each k is one contiguous run of mc floats in A. Walk A row by
    // row (k outer) and deal each run out to the panels 6 floats at a time, so every source line
    // is read once and in order; going panel by panel instead reads 6 floats from each of kc
    // rows lda apart, which for a power-of-two lda thrashes a handful of L1 sets.
    const int64_t full = mc / MR * MR;
    const float* src = A + k0 * lda + i0;
    for (int64_t k = 0; k < kc; ++k, src += lda) {
      float* d = dst + k * MR;
      int64_t ip = 0;
      for (; ip < full; ip += MR, d += kc * MR) {
        _mm_storeu_ps(d, _mm_loadu_ps(src + ip));
        // the last two of MR = 6: one 8-byte move (memcpy: float data has no double alignment)
        std::memcpy(d + 4, src + ip + 4, 2 * sizeof(float));
      }
      if (ip < mc) {
        const int m = static_cast<int>(mc - ip);
        int i = 0;
        for (; i < m; ++i) d[i] = src[ip + i];
        for (; i < MR; ++i) d[i] = 0.0f;
      }
    }
    return;
  }
  for (int64_t ip = 0; ip < mc; ip += MR, dst += kc * MR) {
    const int m = static_cast<int>(std::min<int64_t>(MR, mc - ip));
    const float* src = A + (i0 + ip) * lda + k0;
    if (m == MR) {
      // 6 rows by 8 k's at a time: an 8x8 register transpose (two rows of zeros) turns them
      // into 8 columns of 6, stored back to back. Each 8-float store also writes two floats of
      // the next column, which the next store overwrites; the last column of the group is
      // stored as 4 + 2 floats so nothing past the 48 floats is touched.
      int64_t k = 0;
      for (; k + 8 <= kc; k += 8) {
        float* d = dst + k * MR;
        __m256 r[8];
        for (int i = 0; i < MR; ++i) r[i] = _mm256_loadu_ps(src + i * lda + k);
        r[6] = r[7] = _mm256_setzero_ps();
        avx2::transpose8x8_ps(r);
        for (int kk = 0; kk < 7; ++kk) _mm256_storeu_ps(d + kk * MR, r[kk]);
        _mm_storeu_ps(d + 7 * MR, _mm256_castps256_ps128(r[7]));
        _mm_storel_pi(reinterpret_cast<__m64*>(d + 7 * MR + 4), _mm256_extractf128_ps(r[7], 1));
      }
      for (; k < kc; ++k)
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = src[i * lda + k];
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        float* d = dst + k * MR;
        int i = 0;
        for (; i < m; ++i) d[i] = src[i * lda + k];
        for (; i < MR; ++i) d[i] = 0.0f;
      }
    }
  }
}

// ---- one-thread drivers --------------------------------------------------------------------

// C = beta * C (K == 0 or alpha == 0: no product to add).
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.0f) {
      std::memset(c, 0, sizeof(float) * N);
    } else if (beta != 1.0f) {
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
    }
  }
}

// Pulls the operands of a batch's next product into L2 while the current one computes: the
// lines of a few row-major regions (rows x row_floats, stride floats apart) handed out a few at
// a time between micro-kernel calls. Batched attention blocks come from DRAM, and without this
// each product's first pass over A and B waits on misses the hardware prefetchers do not cover
// (they stop at every 4 KiB page).
class NextPrefetcher {
 public:
  void add(const float* base, int64_t rows, int64_t row_floats, int64_t stride) {
    if (!base || rows <= 0 || row_floats <= 0) return;
    if (stride == row_floats) row_floats *= rows, rows = 1;  // dense: one run of lines
    reg_[n_regions_++] = {reinterpret_cast<const char*>(base), rows, row_floats * 4, stride * 4};
    lines_ += rows * ((row_floats * 4 + 63) / 64 + 1);
  }
  int64_t lines() const { return lines_; }
  // Issues up to n prefetches (to L2: the next product does not fit L1 beside this one).
  void issue(int64_t n) {
    while (n > 0 && r_ < n_regions_) {
      const Region& g = reg_[r_];
      const char* row = g.base + row_ * g.stride;
      const uintptr_t first = reinterpret_cast<uintptr_t>(row) & ~uintptr_t(63);
      const uintptr_t end = reinterpret_cast<uintptr_t>(row) + g.row_bytes;
      const uintptr_t p = first + off_;
      if (p < end) {
        _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T1);
        off_ += 64;
        --n;
      } else {
        off_ = 0;
        if (++row_ == g.rows) row_ = 0, ++r_;
      }
    }
  }

 private:
  struct Region {
    const char* base;
    int64_t rows, row_bytes, stride;
  };
  Region reg_[2];
  unsigned n_regions_ = 0,
           r_ = 0;  // unsigned: GCC 12 cannot see r_ >= 0 otherwise (-Warray-bounds)
  int64_t row_ = 0, off_ = 0, lines_ = 0;
};

// Whether a 64-byte strip of each of `rows` rows `ld` floats apart can stay in L1 (64 sets of
// 64-byte lines, 8 ways on Zen 4, 12 on Zen 5 and recent Xeons): at most 8 of its lines fall in
// any one set. A stride of s lines (s = ld / 16 when ld is a multiple of 16) lands the rows on
// 64 / gcd(64, s) distinct sets, so a large power-of-two ld (a slice of a wide matrix) puts all
// of them in one: 32x4096x64 NN ran its slices (32 x 512 x 64 at ldb 4096) at half the rate of
// one thread on packed panels. Strides that are not whole lines drift across the sets.
inline bool strip_rows_spread_in_l1(int64_t rows, int64_t ld) {
  if (ld % 16 != 0) return true;
  const int64_t step = (ld / 16) % 64;
  const int64_t sets = step == 0 ? 1 : 64 >> std::min(6, __builtin_ctzll(step));
  return (rows + sets - 1) / sets <= 8;
}

// The most floats of B the small path packs in one go (a group of strips, 256 KiB; see gemm_small).
constexpr int64_t kSmallPackGroupFloats = 256 * 256;

// Small products: A read in place, B in place or one packed strip at a time, K not blocked.
void gemm_small(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                int64_t ldc, const float* next_a = nullptr, const float* next_b = nullptr) {
  NextPrefetcher next;
  next.add(next_a, trans_a ? K : M, trans_a ? M : K, lda);
  next.add(next_b, trans_b ? N : K, trans_b ? K : N, ldb);
  const int64_t tiles = (N + NR - 1) / NR * ((M + MR - 1) / MR);
  const int64_t per_tile = (next.lines() + tiles - 1) / tiles;
  const int64_t a_rs = trans_a ? 1 : lda;
  const int64_t a_cs = trans_a ? lda : 1;
  // In-place B strips are 16 floats of each of K rows, ldb apart. Past 64 rows they collide in
  // L1 for the usual power-of-two ldb (128 floats: 512-byte stride, 8 of 64 sets, 16 lines each
  // against 8-12 ways), so a packed copy (K * 16 floats, reused by every 6-row tile) is cheaper;
  // measured +7% on 128^3 blocks, one thread.
  const bool b_in_place = !trans_b && K <= 64 && strip_rows_spread_in_l1(K, ldb);
  // Packed without a transpose, B's strips are packed a group at a time, row by row
  // (pack_b_panels: 512 contiguous bytes of each row at a time instead of 64 bytes of each of K
  // rows per strip), groups of up to 256 KiB (an eighth of L2); 128^3 blocks, 6 alternated
  // rounds: 18.00 -> 17.77 ms one thread, 9.12 -> 9.02 two. All of B in one group when it fits
  // (the bound was 64 KiB; at 256 KiB, 2 threads, 3 alternated rounds, GFLOP/s: 32x4096x64 NN
  // (slices of 32 x 512 x 64 at ldb 4096) 107-165 -> 203-208, 16x8192x32 132-157 -> 184-189,
  // 64x4096x64 220-222 -> 229-232, batched 512 x 16x512x128 170-178 -> 186-193). Larger B went
  // strip by strip, each strip 64 bytes from every row, one line a page: with few rows of A to
  // share it that was most of the time (2 threads, GFLOP/s: 4x4096x512 NN 37-38 -> 97-99 in
  // groups, 2x4096x512 30-31 -> 55, 6x4096x512 79-82 -> 135-136, TN 4x4096x512 38 -> 106-107;
  // 8 alternated rounds even at 3x1024x1024, 12x4096x512, 24x4096x512, 48x4096x256).
  const bool pack_rows = !b_in_place && !trans_b && N >= 2 * NR;
  const int64_t group = pack_rows
                            ? std::min((N + NR - 1) / NR * NR,
                                       std::max<int64_t>(NR, kSmallPackGroupFloats / K / NR * NR))
                            : NR;
  const int64_t full_rows = full_register_tile_rows(M);     // see register_tile_rows.h
  float* strip = tl_b.get(static_cast<size_t>(K) * group);  // in-place B: its partial last strip
  for (int64_t j = 0; j < N; j += NR) {
    const int n = static_cast<int>(std::min<int64_t>(NR, N - j));
    const float* b;
    int64_t b_ks;
    if (pack_rows) {
      if (j % group == 0) pack_b_panels(false, B, ldb, 0, K, j, std::min(group, N - j), strip);
      b = strip + (j % group) * K;
      b_ks = NR;
    } else if (b_in_place && n == NR) {
      b = B + j;
      b_ks = ldb;
    } else {
      pack_b_panel(trans_b, B, ldb, 0, K, j, n, strip);
      b = strip;
      b_ks = NR;
    }
    int64_t i = 0;
    for (; i + MR <= full_rows; i += MR) {
      next.issue(per_tile);
      micro_kernel<MR, false>(K, A + i * a_rs, a_rs, a_cs, b, b_ks, C + i * ldc + j, ldc, n, alpha,
                              beta);
    }
    while (i < M) {
      const int64_t rows = edge_register_tile_rows(M - i);
      next.issue(per_tile);
      tile<false>(static_cast<int>(rows), K, A + i * a_rs, a_rs, a_cs, b, b_ks, C + i * ldc + j,
                  ldc, n, alpha, beta);
      i += rows;
    }
  }
}

// K is cut into equal steps of at most KC (1024 -> 3 x 342, not 384 + 384 + 256): a short
// last step would pay a full read-modify-write pass over C for little arithmetic.
int64_t k_block(int64_t K) {
  const int64_t steps = (K + KC - 1) / KC;
  return (K + steps - 1) / steps;
}

// One packed A block (mc x kc, 6-row panels) against packed B panels (kc x 16 each, nc columns):
// the jr / ir loops of the blocking, C[ic.., jc..] += (or = beta *) the products.
// While the tiles of one B panel run, their micro-kernels pull the next panel into L2 (each tile
// an equal share of its kc lines): when the packed B block is larger than L2 (2048 columns) the
// panel would otherwise come from L3, page by page, as the first tile runs. `next` (optional)
// hands out more lines to prefetch, a few before each tile: the rows of A the caller packs next.
void run_packed_block(int64_t mc, int64_t nc, int64_t kc, const float* ap, const float* bp,
                      float* c, int64_t ldc, float alpha, float beta,
                      NextPrefetcher* next = nullptr) {
  const int64_t tiles = mc / MR;  // full tiles per panel
  const int64_t all_tiles = (nc + NR - 1) / NR * ((mc + MR - 1) / MR);
  const int64_t per_tile = next ? (next->lines() + all_tiles - 1) / all_tiles : 0;
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const int n = static_cast<int>(std::min<int64_t>(NR, nc - jr));
    const float* b = bp + jr * kc;
    const float* b_next = jr + NR < nc ? b + NR * kc : nullptr;
    float* cj = c + jr;
    int64_t ir = 0;
    for (int64_t t = 0; ir + MR <= mc; ir += MR, ++t) {
      const int64_t l0 = kc * t / tiles, l1 = kc * (t + 1) / tiles;
      if (next) next->issue(per_tile);
      micro_kernel<MR, true>(kc, ap + ir * kc, 0, 0, b, NR, cj + ir * ldc, ldc, n, alpha, beta,
                             b_next ? b_next + l0 * NR : nullptr, b_next ? l1 - l0 : 0);
    }
    if (next) next->issue(per_tile);
    if (ir < mc)
      tile<true>(static_cast<int>(mc - ir), kc, ap + ir * kc, 0, 0, b, NR, cj + ir * ldc, ldc, n,
                 alpha, beta);
  }
}

// The source of op(A)[i0:i0+mc, k0:k0+kc] (what pack_a_block reads) as a prefetch region.
void add_a_block(NextPrefetcher& next, bool trans_a, const float* A, int64_t lda, int64_t i0,
                 int64_t mc, int64_t k0, int64_t kc) {
  if (trans_a)
    next.add(A + k0 * lda + i0, kc, mc, lda);
  else
    next.add(A + i0 * lda + k0, mc, kc, lda);
}

// Large products: packed A and B, blocked for the cache hierarchy (see the top of the file).
void gemm_blocked(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                  int64_t ldc) {
  const int64_t nc_max = std::min(NC, (N + NR - 1) / NR * NR);
  const int64_t kb = k_block(K);
  const int64_t mc_max = std::min(MC, (M + MR - 1) / MR * MR);
  float* bp = tl_b.get(static_cast<size_t>(kb) * nc_max);
  float* ap = tl_a.get(static_cast<size_t>(kb) * mc_max);
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    for (int64_t pc = 0; pc < K; pc += kb) {
      const int64_t kc = std::min(kb, K - pc);
      const float beta_eff = pc == 0 ? beta : 1.0f;
      pack_b_panels(trans_b, B, ldb, pc, kc, jc, nc, bp);
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int64_t mc = std::min(MC, M - ic);
        // The next A block's rows go to L2 while this one computes (the packing then reads
        // L2 rather than waiting on DRAM page by page).
        NextPrefetcher next;
        if (ic + MC < M)
          add_a_block(next, trans_a, A, lda, ic + MC, std::min(MC, M - ic - MC), pc, kc);
        else if (pc + kb < K)
          add_a_block(next, trans_a, A, lda, 0, std::min(MC, M), pc + kb,
                      std::min(kb, K - pc - kb));
        pack_a_block(trans_a, A, lda, ic, mc, pc, kc, ap);
        run_packed_block(mc, nc, kc, ap, bp, C + ic * ldc + jc, ldc, alpha, beta_eff, &next);
      }
    }
  }
}

// The team version of gemm_blocked (threads > 1, C at least as tall as wide). Per (NC, KC)
// step the threads pack the B block together into one shared buffer (each a share of the
// 16-column panels), meet at a barrier, then take the row blocks of A dynamically, each packing
// its own A block and running it against the whole shared block. B is packed once in total,
// where per-thread row slices pack all of B once per slice (4 slices at 1024^3: ~6% of the
// time). B is double-buffered, so one barrier per step suffices: a thread packing step s + 1
// overwrites the buffer of step s - 1, which every thread left before the barrier of step s.
// The same barrier orders the steps' read-modify-writes of a C block across threads.
// Row blocks: at least two per thread, a multiple of the team size, as equal as whole 6-row
// tiles allow (a short last block would idle a thread at every barrier); taken dynamically, one
// ahead (for the prefetch of the next block's A), so a thread the shared host preempts holds
// back at most two blocks per step.
void gemm_blocked_team(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                       float* C, int64_t ldc, int threads) {
  const int64_t nc_max = std::min(NC, (N + NR - 1) / NR * NR);
  const int64_t kb = k_block(K);
  const int64_t tiles = (M + MR - 1) / MR;
  int64_t blocks = std::max<int64_t>((M + MC - 1) / MC, 2 * threads);
  blocks = std::min(tiles, (blocks + threads - 1) / threads * threads);
  const int64_t mc_max = (tiles + blocks - 1) / blocks * MR;
  const size_t b_size = static_cast<size_t>(kb) * nc_max;
  float* bp_pair = tl_b.get(2 * b_size);  // the caller's buffer, shared by the team
  const int64_t k_steps = (K + kb - 1) / kb;
  const int64_t steps = (N + NC - 1) / NC * k_steps;
  const int64_t total = steps * blocks;
  std::atomic<int64_t> claim{0};
#pragma omp parallel num_threads(threads)
  {
    float* ap = tl_a.get(static_cast<size_t>(kb) * mc_max);
    int64_t mine = claim.fetch_add(1, std::memory_order_relaxed);
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t jc = s / k_steps * NC, pc = s % k_steps * kb;
      const int64_t nc = std::min(NC, N - jc), kc = std::min(kb, K - pc);
      const float beta_eff = pc == 0 ? beta : 1.0f;
      float* bp = bp_pair + (s & 1) * b_size;
      const int64_t panels = (nc + NR - 1) / NR;
#pragma omp for schedule(static) nowait
      for (int64_t p = 0; p < panels; p += 8)
        pack_b_panels(trans_b, B, ldb, pc, kc, jc + p * NR, std::min<int64_t>(8 * NR, nc - p * NR),
                      bp + p * NR * kc);
#pragma omp barrier
      // Blocks are claimed one ahead: a thread takes its next block as it starts the current one,
      // so the current block's micro-kernels can pull the next one's rows of A into L2 for its
      // packing. A claim may fall into the next step; it runs there, after that step's barrier.
      while (mine < (s + 1) * blocks) {
        const int64_t blk = mine - s * blocks;
        const int64_t ic = tiles * blk / blocks * MR;
        const int64_t mc = std::min(tiles * (blk + 1) / blocks * MR, M) - ic;
        mine = claim.fetch_add(1, std::memory_order_relaxed);
        NextPrefetcher next;
        if (mine < total) {
          const int64_t ns = mine / blocks, nb = mine % blocks;
          const int64_t nic = tiles * nb / blocks * MR;
          const int64_t nmc = std::min(tiles * (nb + 1) / blocks * MR, M) - nic;
          const int64_t npc = ns % k_steps * kb;
          if (nmc > 0) add_a_block(next, trans_a, A, lda, nic, nmc, npc, std::min(kb, K - npc));
        }
        if (mc <= 0) continue;
        pack_a_block(trans_a, A, lda, ic, mc, pc, kc, ap);
        run_packed_block(mc, nc, kc, ap, bp, C + ic * ldc + jc, ldc, alpha, beta_eff, &next);
      }
    }
  }
}

// The team version for wide products (threads > 1, fewer rows than columns): the dual of
// gemm_blocked_team with the roles of A and B swapped. Per (row chunk, KC) step the threads
// pack the step's rows of A together into one shared, double-buffered buffer (each a share of
// the 6-row panels), meet at a barrier, then take column blocks of C dynamically: each packs
// its own B block (kc x up to WIDE_NC columns, L2-resident) and runs every MC-row block of the
// shared A against it. A and B are each packed once in total, where column slices pack all of
// A once per slice. The barrier orders the buffers and the C read-modify-writes as in
// gemm_blocked_team.
constexpr int64_t WIDE_NC = 512;     // B block of a column block: kc x 512 floats <= 768 KiB
constexpr int64_t WIDE_ROWS = 3840;  // rows of A per step (40 MC blocks): 2 x 3840 x KC floats
static_assert(WIDE_ROWS % MC == 0 && WIDE_NC % NR == 0, "whole MC blocks and 16-col panels");
void gemm_blocked_team_wide(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                            float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                            float beta, float* C, int64_t ldc, int threads) {
  const int64_t kb = k_block(K);
  const int64_t rows_max = std::min(WIDE_ROWS, (M + MR - 1) / MR * MR);
  const int64_t col_tiles = (N + NR - 1) / NR;
  int64_t blocks = std::max<int64_t>((N + WIDE_NC - 1) / WIDE_NC, 2 * threads);
  blocks = std::min(col_tiles, (blocks + threads - 1) / threads * threads);
  const int64_t nc_max = (col_tiles + blocks - 1) / blocks * NR;
  const size_t a_size = static_cast<size_t>(kb) * rows_max;
  float* ap_pair = tl_a.get(2 * a_size);  // the caller's buffer, shared by the team
  const int64_t k_steps = (K + kb - 1) / kb;
  const int64_t steps = (M + WIDE_ROWS - 1) / WIDE_ROWS * k_steps;
#pragma omp parallel num_threads(threads)
  {
    float* bp = tl_b.get(static_cast<size_t>(kb) * nc_max);
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t i0 = s / k_steps * WIDE_ROWS, pc = s % k_steps * kb;
      const int64_t rows = std::min(WIDE_ROWS, M - i0), kc = std::min(kb, K - pc);
      const float beta_eff = pc == 0 ? beta : 1.0f;
      float* ap = ap_pair + (s & 1) * a_size;
      const int64_t panels = (rows + MR - 1) / MR;
      // Packed in groups of 8 panels (48 rows): a transposed A is packed row of A by row, and
      // 48 floats of each row is what keeps those reads sequential.
#pragma omp for schedule(static) nowait
      for (int64_t g = 0; g < (panels + 7) / 8; ++g) {
        const int64_t r0 = g * 8 * MR;
        pack_a_block(trans_a, A, lda, i0 + r0, std::min<int64_t>(8 * MR, rows - r0), pc, kc,
                     ap + r0 * kc);
      }
#pragma omp barrier
#pragma omp for schedule(dynamic, 1) nowait
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t jc = col_tiles * blk / blocks * NR;
        const int64_t nc = std::min(col_tiles * (blk + 1) / blocks * NR, N) - jc;
        if (nc <= 0) continue;
        pack_b_panels(trans_b, B, ldb, pc, kc, jc, nc, bp);
        for (int64_t ic = 0; ic < rows; ic += MC)
          run_packed_block(std::min(MC, rows - ic), nc, kc, ap + ic * kc, bp,
                           C + (i0 + ic) * ldc + jc, ldc, alpha, beta_eff);
      }
    }
  }
}

// M * N * K from which a multi-threaded packed product runs as a team (see sgemm_avx2).
constexpr int64_t kTeamMinProduct = int64_t(64) << 20;
// The most floats of private partial products gemm_k_split may hold ((threads - 1) * M * N):
// 16 MiB, kept by the calling thread for reuse like the packing buffers.
constexpr int64_t kSplitKMaxPartials = int64_t(4) << 20;

bool use_small_path(int64_t M, int64_t N, int64_t K) {
  // Without A packing every 6-row tile re-reads A rows from wherever they live; that is fine
  // while the whole A (and a B strip) stays in L1/L2, i.e. for attention-sized blocks.
  return K <= 512 && M * K <= 128 * 128 && M * N * K <= 128 * 128 * 128;
}

void gemm_one_thread(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                     int64_t ldc) {
  if (sgemm_is_narrow(M, N, K))
    sgemm_narrow_avx2(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (use_small_path(M, N, K))
    gemm_small(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_blocked(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// Long K (weight gradients X^T dY over many tokens, and big products generally): each thread
// takes an equal share of K and runs the one-thread code over all of C: thread 0 accumulates
// straight into C (with beta), the others into private M x N partials that are then added into
// C, the rows shared among the team. No barrier per K step, no operand packed twice, and small
// outputs are not cut into slivers: slicing C made every slice pack and stream the whole of the
// other operand, so at 64x64x16384 two threads ran slower than one. The extra traffic is
// (threads - 1) * M * N floats against M * N * K / threads multiply-adds per thread.
// Measured at 2 threads on the 2-vCPU EPYC, warm process, 3 interleaved rounds, GFLOP/s slicing
// or team -> split: 64x64x16384 NN 35-44 -> 45-60, 128x128x65536 TN 93-99 -> 141, 1024x1024x4096
// 161-163 -> 187-194, 2048^3 161-173 -> 186-191, 1024^3 NN 144-170 -> 175-192, 511x512x512
// 167-188 -> 178-187, 1024x1024x512 156-158 -> 168-183, 768^3 160-175 -> 172-189, 64x64x1024
// 119-122 -> 161-166; 256x4096x1024 (the wide team's case) 178-190 -> 172-185.
// Small outputs (up to 256 x 256) split K from 128 a thread: sliced into two 128-row halves,
// 256^3 ran at 170-200 GFLOP/s on two threads against 230-240 split (and 121 on one thread), at
// 256 x 256 x 256-384 all four transposes; 240 x 240 x 256 and 192 x 256 x 256 were unchanged
// either way (2-vCPU EPYC, 8 interleaved runs, session 20).
constexpr int64_t kSplitKMinShare = 256;  // K per thread; below it C is sliced as before
constexpr int64_t kSplitKMinShareSmallC = 128;
constexpr int64_t kSplitKSmallC = 256 * 256;
// Up to 512 x 512 from 192 a thread: 448^3 NN 0.827 -> 0.769 ms (the team path before), 400^3
// and 480^3 TN unchanged; larger outputs keep 256 (2048 x 512 x 400 was 5% slower split: its
// partial is 4 MiB).
constexpr int64_t kSplitKMinShareMediumC = 192;
constexpr int64_t kSplitKMediumC = 512 * 512;
std::atomic<bool> g_split_k{[] {
  const char* e = std::getenv("SMYRF_GEMM_SPLIT_K");
  return !(e && std::strcmp(e, "0") == 0);
}()};
// Wide products (N >= 16 M) keep the column split (the wide team, or column slices): each thread
// reads the few rows of A and its own columns of B once, where split-K reads all of B's columns
// and adds an M x N partial. Alternated runs (6-8 each, ms, split -> not): 256x4096x1024 9.42 ->
// 9.17 (TN 9.62 -> 9.22), 256x8192x512 10.18 -> 9.37, 128x4096x4096 21.3 -> 20.1, 64x4096x8192
// 23.5 -> 22.8, 32x4096x1024 1.83 -> 1.73, 16x1024x2048 0.470 -> 0.456; at N = 8 M even
// (512x4096x1024, 256x2048x2048), and tall products gain nothing either way (4096x256x1024).
constexpr int64_t kSplitKMaxWidth = 16;
bool prefers_k_split(int64_t M, int64_t N, int64_t K, int threads) {
  if (N >= kSplitKMaxWidth * M) return false;
  const int64_t min_share = M * N <= kSplitKSmallC    ? kSplitKMinShareSmallC
                            : M * N <= kSplitKMediumC ? kSplitKMinShareMediumC
                                                      : kSplitKMinShare;
  return threads >= 2 && K >= min_share * threads && (threads - 1) * M * N <= kSplitKMaxPartials &&
         g_split_k.load(std::memory_order_relaxed);
}

thread_local Scratch tl_partials;  // the caller's: (threads - 1) partial products of gemm_k_split

void gemm_k_split(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                  int64_t ldc, int threads) {
  const size_t plane = static_cast<size_t>(M) * N;
  float* partials = tl_partials.get(plane * (threads - 1));
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
    const int64_t k0 = K * t / team, k1 = K * (t + 1) / team;
    const float* a = trans_a ? A + k0 * lda : A + k0;
    const float* b = trans_b ? B + k0 : B + k0 * ldb;
    if (t == 0)
      gemm_one_thread(trans_a, trans_b, M, N, k1 - k0, alpha, a, lda, b, ldb, beta, C, ldc);
    else
      gemm_one_thread(trans_a, trans_b, M, N, k1 - k0, alpha, a, lda, b, ldb, 0.0f,
                      partials + (t - 1) * plane, N);
#pragma omp barrier
#pragma omp for schedule(static)
    for (int64_t i = 0; i < M; ++i) {
      float* c = C + i * ldc;
      for (int p = 1; p < team; ++p)
        avx2::binary_f32(BinaryOp::Add, c, 1, partials + (p - 1) * plane + i * N, 1, c, N);
    }
  }
}

}  // namespace

bool set_sgemm_split_k(bool enabled) { return g_split_k.exchange(enabled); }

void sgemm_avx2_batch_item(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                           const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                           float* C, int64_t ldc, const float* next_a, const float* next_b) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  if (sgemm_is_gemv(M, N, K)) {  // one row or one column (gemv_avx2.h), on this thread
    sgemm_gemv_avx2(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 1);
    return;
  }
  // Below 32^3 a product takes a few hundred cycles: the hardware prefetchers keep up with a
  // batch's consecutive blocks, and handing out prefetches costs more than it saves (16^3
  // blocks: 10% slower with it; 32^3 15% and 128^3 10% faster, one thread).
  if (M * N * K < 32 * 32 * 32) next_a = next_b = nullptr;
  // Narrow products of a batch from K = 32 (below it they are bound by memory either way, and
  // the small path's prefetch of the next product won: 2048 x 128x8x16 NN 94-100 against 88
  // GFLOP/s narrow, 2 threads; 128x8x32 and up even or better narrow).
  if (K >= 32 && sgemm_is_narrow(M, N, K))
    sgemm_narrow_avx2(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (use_small_path(M, N, K))
    gemm_small(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, next_a, next_b);
  else
    gemm_blocked(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

bool sgemm_avx2_prefers_batch_parallel(int64_t M, int64_t N, int64_t K) {
  return M * N * K <= 256 * 256 * 256;
}

void sgemm_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                int64_t ldc, int threads) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  if (sgemm_is_gemv(M, N, K)) {  // one row or one column: stream the matrix once (gemv_avx2.h)
    sgemm_gemv_avx2(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads);
    return;
  }
  // Below ~80^3 the fork/join costs more than a second core gains. Measured on the 2-vCPU EPYC in
  // a warm process (after seconds of work, as in training), GFLOP/s 1 / 2 threads: 64^3 91-111 /
  // 68, 72^3 81-98 / 76-79, 80^3 90-107 / 96-98, 96^3 94-110 / 124-125, 112^3 95-110 / 141-142.
  // (Running up to 128^3 on one thread protects an oversubscribed host, where a join can wait a
  // whole time slice, but costs a quiet one: 128^3 fell from 1.56x to 0.69x OpenBLAS in
  // bench/compare gemm. The quiet host is what we optimise for; a loaded one is better served by
  // a shorter OpenMP spin.)
  if (M * N * K < 80 * 80 * 80) threads = 1;
  if (prefers_k_split(M, N, K, threads)) {
    gemm_k_split(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads);
    return;
  }
  const CSlices sl(M, N, MR, NR);
  threads = static_cast<int>(std::min<int64_t>(threads, sl.tiles));
  if (threads <= 1) {
    gemm_one_thread(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Packed products from ~400^3 up run as a team: tall (or square) ones share one packed B
  // block per step, wide ones one packed A block (see gemm_blocked_team and
  // gemm_blocked_team_wide). Below that the team's barrier (a futex wake under the short OpenMP
  // spin) costs more than the duplicated packing it saves: 256^3 best of 25 at 2 threads,
  // slices 154 vs team 141 GFLOP/s; 512^3 156 vs 153; 1024^3 142 vs 158.
  if (!use_small_path(M, N, K) && !sgemm_is_narrow(M, N, K) && M * N * K >= kTeamMinProduct) {
    if (sl.rows)
      gemm_blocked_team(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads);
    else
      gemm_blocked_team_wide(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                             threads);
    return;
  }
  // Smaller products: split C into slices of whole tiles along the larger dimension, each run
  // by the one-thread code with its own buffers (no barrier). A few slices per thread, handed
  // out dynamically: the host is shared, and when one thread is preempted the other takes over
  // its slices instead of idling at the join for a whole time slice. Slices stay >= ~256
  // rows/columns, so the packing of the operand every slice needs is duplicated little.
  const int64_t per_thread = std::clamp<int64_t>(sl.extent / (threads * 256), 1, 4);
  const int64_t slices = std::min<int64_t>(sl.tiles, threads * per_thread);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t s = 0; s < slices; ++s)
    sl.run(s, slices, trans_a, trans_b, M, N, A, lda, B, ldb, C, ldc,
           [&](int64_t m, int64_t n, const float* a, const float* b, float* c) {
             gemm_one_thread(trans_a, trans_b, m, n, K, alpha, a, lda, b, ldb, beta, c, ldc);
           });
}

}  // namespace smyrf::kernels::cpu

#else  // built without AVX2 support: gemm.cpp never dispatches here.

namespace smyrf::kernels::cpu {
bool set_sgemm_split_k(bool) { return false; }
bool sgemm_avx2_prefers_batch_parallel(int64_t, int64_t, int64_t) { return false; }
void sgemm_avx2(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                int64_t, float, float*, int64_t, int) {}
void sgemm_avx2_batch_item(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                           const float*, int64_t, float, float*, int64_t, const float*,
                           const float*) {}
}  // namespace smyrf::kernels::cpu

#endif
