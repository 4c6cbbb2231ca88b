// Winograd F(4x4, 3x3) float32 convolution for 3x3 kernels with stride 1, no dilation, one group
// and padding <= 2: the three passes of conv.h for the wide layers (128 -> 128 channels in the
// BigGAN configurations) where im2col + GEMM spends 9 multiply-adds per output and input pair.
// conv2d_forward/backward_*<float> (conv.cpp) route here when conv2d_winograd_applies() says so.
//
// Algorithm (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): every
// 4x4 output tile is A^T [ (G g G^T) . (B^T d B) ] A, with d the 6x6 input patch under the tile,
// g a 3x3 filter and . the elementwise product; summed over input channels, the product becomes
// 36 independent GEMMs (one per point xi of the 6x6 transform domain):
//   M[xi] (K, tiles) = U[xi] (K, C) @ V[xi] (C, tiles),   U = G g G^T,  V = B^T d B
// 144 / 36 = 4x fewer multiplications than the direct sum, at the price of rounding error: the
// transforms have entries up to 8 (A), 5 (B) and 1/24 (G), so float32 results differ from the
// exact convolution by a few 1e-4 relative to the output's scale (tests/kernels/test_winograd.cpp
// states the tolerances). Tiles of all images are numbered together (batch folded into the GEMM's
// long dimension, so 4x4 images with batch 32 still make 32-column GEMMs) and processed in blocks
// of up to kTileBlock tiles per thread; the GEMMs are our sgemm (single-threaded inside the
// parallel region; no barrier until the end).
//
//   forward         as above, bias added in the output transform
//   backward data   the forward pass on dy with the flipped, transposed filter and padding 2 - pad
//   backward filter the adjoint of the forward pass: dM = A dY A^T per tile, dU[xi] (K, C) =
//                   sum over tiles dM[xi] V[xi]^T (36 GEMMs accumulated per thread), dg = G^T dU G;
//                   per-thread partials summed in a fixed order (deterministic)
// Partial tiles at the bottom/right edge are computed on zero-padded patches and their outputs
// past P, Q dropped (their dY counts as zero in the filter gradient). Shapes as conv.h.
#pragma once
#include <cstdint>

#include "kernels/cpu/conv.h"
#include "kernels/cpu/conv_direct.h"

namespace smyrf::kernels::cpu {

// Whether the Winograd kernels can run this geometry (3x3, stride 1, dilation 1, one group,
// 0 <= pad <= 2, a non-empty output).
bool conv2d_winograd_supports(const Conv2dGeometry& g);
// Whether they are chosen for it: supports() and at least 32 channels on both sides (the filter
// gradient of 32..63-channel layers only up to 16x16 outputs), by measurement. The
// environment variable SMYRF_CONV_WINOGRAD=0 (read once) turns the Winograd path off.
bool conv2d_winograd_applies(const Conv2dGeometry& g, ConvPass pass);

void conv2d_winograd_forward(const Conv2dGeometry& g, const float* x, const float* w,
                             const float* bias, float* y);
// dx overwritten.
void conv2d_winograd_backward_data(const Conv2dGeometry& g, const float* dy, const float* w,
                                   float* dx);
// dw overwritten; dbias (may be null) overwritten with the sums of dy.
void conv2d_winograd_backward_filter(const Conv2dGeometry& g, const float* x, const float* dy,
                                     float* dw, float* dbias);

namespace winograd {
// The per-tile transforms, 8 tiles at a time ("lanes"; the AVX2 variant keeps one tile per
// vector lane). Index xi = 6 * i + j addresses row i, column j of a 6x6 transform-domain tile.
//   input:        d[(6 a + b) * 8 + l] (the 6x6 patch of lane l)  ->  v[xi * ldv + l] = B^T d B
//   output:       m[xi * ldm + l]  ->  y[(4 p + q) * 8 + l] = (A^T m A)[p][q] + bias
//   grad_output:  dy[(4 p + q) * 8 + l]  ->  dm[xi * ldm + l] = (A dy A^T)[xi]
//   gather:       the 6x6 input patches of 8 output tiles into d[(6 a + b) * 8 + l] =
//                 plane_l[(h0_l + a) * W + w0_l + b], zero outside the (H, W) plane and in empty
//                 lanes (plane_l null). The AVX2 variant loads each patch row once (masked to the
//                 plane's columns) and transposes 8 of them in registers; the scalar one, element
//                 by element, was 14% of a CPU BigGAN training step.
struct PatchLanes {
  const float* plane[8];
  int64_t h0[8], w0[8];
};
void gather_patches_scalar(const PatchLanes& p, int64_t H, int64_t W, float* d);
void gather_patches_avx2(const PatchLanes& p, int64_t H, int64_t W, float* d);
//   scatter:      the output tiles of 8 lanes into the image: origin_l[p * ldy + q] =
//                 y[(4 p + q) * 8 + l] for p < np_l, q < nq_l (origin_l null: an empty lane). The
//                 AVX2 variant transposes each tile row into place (one 4-float store a lane and
//                 row) where the scalar one stores 16 floats a lane one by one.
//   gather_tiles: the inverse for the filter gradient's dY tiles: y[(4 p + q) * 8 + l] =
//                 origin_l[p * ldy + q] inside lane l's tile, 0 elsewhere and in empty lanes.
template <typename P>
struct TileLanesOf {
  P origin[8];
  int np[8], nq[8];
};
using TileLanes = TileLanesOf<float*>;             // scatter destinations
using ConstTileLanes = TileLanesOf<const float*>;  // gather sources
void scatter_tiles_scalar(const float* y, const TileLanes& t, int64_t ldy);
void scatter_tiles_avx2(const float* y, const TileLanes& t, int64_t ldy);
void gather_tiles_scalar(const ConstTileLanes& t, int64_t ldy, float* y);
void gather_tiles_avx2(const ConstTileLanes& t, int64_t ldy, float* y);
void input_transform_scalar(const float* d, float* v, int64_t ldv);
void output_transform_scalar(const float* m, int64_t ldm, float bias, float* y);
void grad_output_transform_scalar(const float* dy, float* dm, int64_t ldm);
void input_transform_avx2(const float* d, float* v, int64_t ldv);
void output_transform_avx2(const float* m, int64_t ldm, float bias, float* y);
void grad_output_transform_avx2(const float* dy, float* dm, int64_t ldm);

// Filter transforms (double inside; run once per call, cost K*C):
//   u[xi * K * C + k * C + c] = (G w[k][c] G^T)[xi] for w (K, C, 3, 3)
void filter_transform(const float* w, int64_t K, int64_t C, float* u);
//   dw[k][c] = G^T du[k][c] G, du laid out as u above; dw (K, C, 3, 3) overwritten
void filter_transform_adjoint(const float* du, int64_t K, int64_t C, float* dw);
}  // namespace winograd

}  // namespace smyrf::kernels::cpu
