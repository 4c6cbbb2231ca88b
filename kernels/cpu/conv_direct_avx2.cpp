// AVX2/FMA kernels of the direct convolution (conv_direct.h); the scalar twins are in
// conv_direct.cpp and the tests compare both with the naive loops.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/conv_direct.h"

namespace smyrf::kernels::cpu::direct {
namespace {

// KB output channels x VB vectors of 8 pixels, all taps: KB broadcasts and VB loads feed KB*VB
// FMAs per tap (4 x 3: 7 loads per 12 FMAs, 16 registers).
template <int KB, int VB>
inline void forward_tile(const float* in, const int64_t* off, int64_t T, const float* wt,
                         float* out, int64_t ldo, bool accumulate) {
  __m256 acc[KB][VB];
#pragma GCC unroll 8
  for (int kb = 0; kb < KB; ++kb)
#pragma GCC unroll 8
    for (int v = 0; v < VB; ++v)
      acc[kb][v] = accumulate ? _mm256_loadu_ps(out + kb * ldo + 8 * v) : _mm256_setzero_ps();
  for (int64_t t = 0; t < T; ++t) {
    const float* src = in + off[t];
    __m256 xv[VB];
#pragma GCC unroll 8
    for (int v = 0; v < VB; ++v) xv[v] = _mm256_loadu_ps(src + 8 * v);
    const float* wk = wt + t * 4;  // the block's 4 weights of tap t
#pragma GCC unroll 8
    for (int kb = 0; kb < KB; ++kb) {
      const __m256 wv = _mm256_broadcast_ss(wk + kb);
#pragma GCC unroll 8
      for (int v = 0; v < VB; ++v) acc[kb][v] = _mm256_fmadd_ps(wv, xv[v], acc[kb][v]);
    }
  }
#pragma GCC unroll 8
  for (int kb = 0; kb < KB; ++kb)
#pragma GCC unroll 8
    for (int v = 0; v < VB; ++v) _mm256_storeu_ps(out + kb * ldo + 8 * v, acc[kb][v]);
}

// KB channels x TB taps of dot products over the pixels, 8 at a time.
template <int KB, int TB>
inline void filter_tile(const float* a, int64_t lda, const float* in, const int64_t* off,
                        int64_t L8, float* acc, int64_t T) {
  __m256 s[KB][TB];
#pragma GCC unroll 8
  for (int kb = 0; kb < KB; ++kb)
#pragma GCC unroll 8
    for (int tb = 0; tb < TB; ++tb) s[kb][tb] = _mm256_setzero_ps();
  const float* src[TB];
#pragma GCC unroll 8
  for (int tb = 0; tb < TB; ++tb) src[tb] = in + off[tb];
  for (int64_t j = 0; j < L8; j += 8) {
    __m256 xv[TB];
#pragma GCC unroll 8
    for (int tb = 0; tb < TB; ++tb) xv[tb] = _mm256_loadu_ps(src[tb] + j);
#pragma GCC unroll 8
    for (int kb = 0; kb < KB; ++kb) {
      const __m256 av = _mm256_loadu_ps(a + kb * lda + j);
#pragma GCC unroll 8
      for (int tb = 0; tb < TB; ++tb) s[kb][tb] = _mm256_fmadd_ps(av, xv[tb], s[kb][tb]);
    }
  }
#pragma GCC unroll 8
  for (int kb = 0; kb < KB; ++kb)
#pragma GCC unroll 8
    for (int tb = 0; tb < TB; ++tb) {
      const __m128 lo = _mm256_castps256_ps128(s[kb][tb]), hi = _mm256_extractf128_ps(s[kb][tb], 1);
      __m128 v = _mm_add_ps(lo, hi);
      v = _mm_add_ps(v, _mm_movehl_ps(v, v));
      v = _mm_add_ss(v, _mm_movehdup_ps(v));
      acc[kb * T + tb] += _mm_cvtss_f32(v);
    }
}

template <int KB>
void filter_channels(const float* a, int64_t lda, const float* in, const int64_t* off, int64_t T,
                     int64_t L8, float* acc) {
  int64_t t = 0;
  for (; t + 3 <= T; t += 3) filter_tile<KB, 3>(a, lda, in, off + t, L8, acc + t, T);
  if (T - t == 2) filter_tile<KB, 2>(a, lda, in, off + t, L8, acc + t, T);
  if (T - t == 1) filter_tile<KB, 1>(a, lda, in, off + t, L8, acc + t, T);
}

}  // namespace

void taps_forward_avx2(const float* in, const int64_t* off, int64_t T, const float* wt, int64_t K,
                       float* out, int64_t ldo, int64_t L) {
  // Taps in chunks whose input rows (about 2 cache lines per tap and pixel tile) fit L1 with
  // room to spare: with 128 input channels all 1152 taps of a tile would not, and every channel
  // block would re-read them from L2. Later chunks add to the tile's partial sums.
  constexpr int64_t kTapChunk = 192;
  const int64_t KB4 = (K + 3) / 4;
  for (int64_t t0 = 0; t0 < T; t0 += kTapChunk) {
    const int64_t tc = std::min(kTapChunk, T - t0);
    const bool acc = t0 > 0;
    if (K == 1) {  // the image layer of a grayscale G: one channel, wider pixel tiles
      for (int64_t j0 = 0; j0 < L; j0 += 64)
        forward_tile<1, 8>(in + j0, off + t0, tc, wt + t0 * 4, out + j0, ldo, acc);
      continue;
    }
    // Pixel tiles outside, channel blocks inside: a pixel tile's input rows stay in L1 while
    // every channel block streams them; a block's weights are contiguous (T x 4).
    for (int64_t j0 = 0; j0 < L; j0 += 24)
      for (int64_t kb = 0; kb < KB4; ++kb)
        forward_tile<4, 3>(in + j0, off + t0, tc, wt + (kb * T + t0) * 4, out + kb * 4 * ldo + j0,
                           ldo, acc);
  }
}

void taps_filter_avx2(const float* a, int64_t lda, int64_t K, const float* in, const int64_t* off,
                      int64_t T, int64_t L8, float* acc) {
  int64_t k0 = 0;
  for (; k0 + 4 <= K; k0 += 4) filter_channels<4>(a + k0 * lda, lda, in, off, T, L8, acc + k0 * T);
  switch (K - k0) {
    case 3:
      filter_channels<3>(a + k0 * lda, lda, in, off, T, L8, acc + k0 * T);
      break;
    case 2:
      filter_channels<2>(a + k0 * lda, lda, in, off, T, L8, acc + k0 * T);
      break;
    case 1:
      filter_channels<1>(a + k0 * lda, lda, in, off, T, L8, acc + k0 * T);
      break;
    default:
      break;
  }
}

}  // namespace smyrf::kernels::cpu::direct
