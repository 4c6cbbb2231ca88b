// AVX2+FMA float32 inner loops for contiguous runs. Each returns false when it has no
// vectorised form of the op, and the caller then runs the scalar reference loop.
#pragma once
#include <cstdint>

#include "kernels/cpu/elementwise.h"

namespace smyrf::kernels::cpu::avx2 {

// Whether unary_f32 / binary_f32 have a vector form of the op (with these scalars).
bool unary_f32_supported(UnaryOp op, float a, float b);
bool binary_f32_supported(BinaryOp op);

bool unary_f32(UnaryOp op, float a, float b, const float* x, float* y, int64_t n);
// a_stride / b_stride are 0 (a broadcast scalar) or 1.
bool binary_f32(BinaryOp op, const float* a, int64_t a_stride, const float* b, int64_t b_stride,
                float* y, int64_t n);

// dst[i * ld + j] = src[i * s_row + j * s_col] for i < rows, j < cols. With s_row == 1 (a
// transposed source) it moves 8x8 blocks through registers, reading the source in order.
void gather_tile_f32(const float* src, int64_t s_row, int64_t s_col, int64_t rows, int64_t cols,
                     float* dst, int64_t ld);

}  // namespace smyrf::kernels::cpu::avx2
