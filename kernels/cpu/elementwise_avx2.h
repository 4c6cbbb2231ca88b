// AVX2+FMA float32 inner loops for contiguous runs. Each returns false when it has no
// vectorised form of the op, and the caller then runs the scalar reference loop.
#pragma once
#include <cstdint>

#include "kernels/cpu/elementwise.h"

namespace smyrf::kernels::cpu::avx2 {

// Whether unary_f32 has a vector form of the op (with these scalars); binary_f32 has one for
// every BinaryOp.
bool unary_f32_supported(UnaryOp op, float a, float b);

// stream: write y with non-temporal stores (plain ones for the unaligned head and the tail), for
// outputs that use_streaming_stores() says are too large to be read back from the cache
// (kernels/cpu/streaming_store.h). The caller then issues streaming_store_fence() on this
// thread before y is read elsewhere (nd_loop and nd_loop_tiles end every thread's share with
// one); these functions do not, since a fence per short run costs more than the run.
bool unary_f32(UnaryOp op, float a, float b, const float* x, float* y, int64_t n,
               bool stream = false);
// Float64 runs (kernels/cpu/unary_f64_avx2.cpp) of Exp, Expm1, Log, Log1p, Tanh, Sigmoid,
// Silu (vec_math_f64_avx2.h: 1 to 3 ulp from libm), Sqrt, Rsqrt and Reciprocal (the reference's
// results exactly); false for the other ops.
bool unary_f64(UnaryOp op, const double* x, double* y, int64_t n);

// a_stride / b_stride are 0 (a broadcast scalar) or 1.
bool binary_f32(BinaryOp op, const float* a, int64_t a_stride, const float* b, int64_t b_stride,
                float* y, int64_t n, bool stream = false);

// y[i] = x[i * xs] for i < n, xs 0 (a fill) or 1 (a copy; x and y must not overlap unless
// equal); stream as for unary_f32.
void copy_f32(const float* x, int64_t xs, float* y, int64_t n, bool stream = false);

// dst[j * n + c] = x[j * xs] for j < rows, c < n: each value repeated n times (a column
// broadcast along short rows, as one run). Writes up to 7 floats past rows * n.
void repeat_each_f32(const float* x, int64_t xs, int64_t rows, int64_t n, float* dst);

// Mask ops (kernels/cpu/mask_ops_avx2.cpp). Strides are 0 (a broadcast scalar) or 1; bools are
// bytes of 0 or 1.
//   compare_f32: y[i] = a[i] op b[i] with C++'s semantics (NaN compares false except !=).
//   where_f32:   y[i] = c[i] ? a[i] : b[i]; stream as for unary_f32.
//   bool_to_f32: y[i] = x[i] ? 1 : 0 (a contiguous run).
void compare_f32(CompareOp op, const float* a, int64_t as, const float* b, int64_t bs, bool* y,
                 int64_t n);
void where_f32(const bool* c, int64_t cs, const float* a, int64_t as, const float* b, int64_t bs,
               float* y, int64_t n, bool stream);
void bool_to_f32(const bool* x, float* y, int64_t n, bool stream);
//   masked_scale_f32: y[i] = x[i] * (keep[i] ? scale : 0) (elementwise.h's masked_scale; y may
//   be x, then nothing is streamed).
void masked_scale_f32(const float* x, const bool* keep, float scale, float* y, int64_t n,
                      bool stream);

// dst[i * ld + j] = src[i * s_row + j * s_col] for i < rows, j < cols. With s_row == 1 (a
// transposed source) it moves 8x8 blocks through registers, reading each source run
// src[j * s_col + i], i < rows, whole before the next, and prefetches the runs 32 columns on
// (past cols: the next tile's) into L2.
void gather_tile_f32(const float* src, int64_t s_row, int64_t s_col, int64_t rows, int64_t cols,
                     float* dst, int64_t ld);

// Prefetch into L2 the lines of the runs src[j * s_col + i], i < rows, for j_begin <= j <
// j_begin + cols (a hint: runs past the end of the data are harmless, nothing is dereferenced).
void prefetch_columns_f32(const float* src, int64_t s_col, int64_t rows, int64_t j_begin,
                          int64_t cols);

}  // namespace smyrf::kernels::cpu::avx2
