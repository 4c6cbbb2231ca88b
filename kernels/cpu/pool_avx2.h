// AVX2 float32 pooling rows (kernels/cpu/conv.h's max_pool2d_forward, 2 x 2 windows with stride
// 2 and no padding: the common downsampling), and the 2x upsample's rows. Same results and indices
// as the scalar loop: the first maximum in window order (row 0 left, right, row 1 left, right), the
// first NaN wins.
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu::avx2 {
// y[q] = max of the window (r0[2q], r0[2q + 1], r1[2q], r1[2q + 1]) and idx[q] its flat index,
// row0_index + 2q + dw (+ W when it lies in r1 = r0 + W), for q < Q (2Q <= W).
void max_pool2x2_row_f32(const float* r0, int64_t W, int64_t Q, int64_t row0_index, float* y,
                         int64_t* idx);
// The backward of one such output row: rows r0 and r0 + W of dx (2Q floats each) get dy[q] at
// idx[q] (the forward's indices) and 0 at the window's other three places, as the scalar
// scatter into zeros (0 + dy: a -0 gradient lands as +0).
void max_pool2x2_row_backward_f32(const float* dy, const int64_t* idx, int64_t W, int64_t Q,
                                  int64_t row0_index, float* r0);

// Rows of the 2x nearest upsample (kernels/cpu/conv.h), with the scalar loops' exact results:
// forward y0[2i] = y0[2i + 1] = y1[2i] = y1[2i + 1] = x[i] for i < n (y0, y1: 2n floats each, the
// two output rows of input row x); backward y[i] = (((0 + r0[2i]) + r0[2i + 1]) + r1[2i]) +
// r1[2i + 1] for i < n (the scalar sum starts at +0, so a block of -0 sums to +0).
void upsample2x_row_f32(const float* x, int64_t n, float* y0, float* y1);
void upsample2x_row_backward_f32(const float* r0, const float* r1, int64_t n, float* y);
}  // namespace smyrf::kernels::cpu::avx2
