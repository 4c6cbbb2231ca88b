// Direct (im2col-free) float32 convolution for stride 1 and one group: the three passes of
// conv.h without a column matrix. conv2d_forward/backward_*<float> (conv.cpp) route here when
// conv2d_direct_applies() says so; tests call these entry points directly as well.
//
// Why: BigGAN's 3x3 convolutions have few channels (32 at ch 8), so im2col + GEMM spends most of
// its time writing, re-packing and re-reading a column matrix 9x the image, for only K = 32
// products per column entry. Here every image is copied once into a zero-padded buffer (C, Hp,
// Wp) and the convolution becomes a 1-D one over the flattened padded image: output pixel
// (p, q) sits at j = p * Wp + q, and tap (c, r, s) reads in[j + c*Hp*Wp + r*dil_h*Wp + s*dil_w].
// The Wp - Q columns per row that fall into the padding are computed and dropped (2 of 34 at
// 32x32). The inner kernel keeps a 4-channel x 24-pixel tile of outputs in registers and streams
// the taps (conv_direct_avx2.cpp; conv_direct.cpp holds its scalar twin).
//
//   forward         y = conv(x, w) + bias
//   backward data   dx = conv(dy padded by dil*(R-1) - pad, w flipped and transposed): the same
//                   kernel; needs pad <= dil*(R-1) in both dims (else the im2col path runs)
//   backward filter dw[k][c,r,s] = sum over images and pixels of dy[k][j] * in[j + off(c,r,s)],
//                   a 4-channel x 3-tap tile of dot products per pass over the pixels
// Images are split across the OpenMP threads; the filter gradient sums per-thread partials in a
// fixed order (deterministic). Shapes as conv.h; the caller validates them.
#pragma once
#include <cstdint>

#include "kernels/cpu/conv.h"

namespace smyrf::kernels::cpu {

enum class ConvPass { Forward, BackwardData, BackwardFilter };

// Whether the direct kernels handle this geometry and pass (stride 1, groups 1, a kernel larger
// than 1x1, and for BackwardData pad <= dil*(kernel-1)), and are chosen over im2col for it.
// The environment variable SMYRF_CONV_DIRECT=0 (read once) turns the direct path off.
bool conv2d_direct_applies(const Conv2dGeometry& g, ConvPass pass);
// Whether they can run it at all (the same without the speed heuristic); tests use this.
bool conv2d_direct_supports(const Conv2dGeometry& g, ConvPass pass);

void conv2d_direct_forward(const Conv2dGeometry& g, const float* x, const float* w,
                           const float* bias, float* y);
void conv2d_direct_backward_data(const Conv2dGeometry& g, const float* dy, const float* w,
                                 float* dx);
// dw overwritten; dbias (may be null) overwritten with the sums of dy.
void conv2d_direct_backward_filter(const Conv2dGeometry& g, const float* x, const float* dy,
                                   float* dw, float* dbias);

namespace direct {
// The inner kernels, on buffers the callers above prepare (exposed for the AVX2 twin):
//   taps_forward: out[k * ldo + j] = sum_t wt[((k / 4) * T + t) * 4 + k % 4] * in[off[t] + j]
//     for k < K and j < L: the weights in blocks of 4 channels, each block (T, 4), zero past K.
//     It may write rows up to round_up(K, 4) and columns up to L + 63 (ldo >= L + 64), and reads
//     `in` up to 64 floats past off[t] + L.
//   taps_filter: acc[k * T + t] += sum_{j < L8} a[k * lda + j] * in[off[t] + j], L8 a multiple
//     of 8 (a is zero where it should not count).
void taps_forward_scalar(const float* in, const int64_t* off, int64_t T, const float* wt, int64_t K,
                         float* out, int64_t ldo, int64_t L);
void taps_filter_scalar(const float* a, int64_t lda, int64_t K, const float* in, const int64_t* off,
                        int64_t T, int64_t L8, float* acc);
void taps_forward_avx2(const float* in, const int64_t* off, int64_t T, const float* wt, int64_t K,
                       float* out, int64_t ldo, int64_t L);
void taps_filter_avx2(const float* a, int64_t lda, int64_t K, const float* in, const int64_t* off,
                      int64_t T, int64_t L8, float* acc);
}  // namespace direct

}  // namespace smyrf::kernels::cpu
