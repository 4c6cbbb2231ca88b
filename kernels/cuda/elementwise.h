// CUDA elementwise kernels over strided n-d index spaces: the same interface and semantics as
// kernels/cpu/elementwise.h (same UnaryOp/BinaryOp/CompareOp enums, strides in elements, stride 0
// for broadcast dims, ndim <= 16), with device pointers. Work is queued on the current stream
// (kernels/cuda/runtime.h); errors throw std::runtime_error.
//
// Differences from the CPU reference: float32 transcendental ops are computed in float with
// CUDA's libdevice functions (<= 2 ulp) instead of through double, so results agree with the CPU
// to a few ulp, not bit for bit. Integer and bool ops agree exactly.
//
// Status: ran on an NVIDIA H200 on 2026-11-28 (tests/cuda, all passing; scripts/gpu-check).
#pragma once
#include <cstdint>

#include "kernels/cpu/elementwise.h"

namespace smyrf {
struct bfloat16;  // core/bfloat16.h (a dependency-free scalar type)
}

namespace smyrf::kernels::cuda {

using cpu::BinaryOp;
using cpu::CompareOp;
using cpu::UnaryOp;

template <typename T>  // int32_t, int64_t, float, double
void unary(UnaryOp op, double a, double b, int ndim, const int64_t* sizes, const T* x,
           const int64_t* xs, T* y, const int64_t* ys);

template <typename T>  // bool, int32_t, int64_t, float, double
void binary(BinaryOp op, int ndim, const int64_t* sizes, const T* a, const int64_t* as, const T* b,
            const int64_t* bs, T* y, const int64_t* ys);

template <typename T>
void compare(CompareOp op, int ndim, const int64_t* sizes, const T* a, const int64_t* as,
             const T* b, const int64_t* bs, bool* y, const int64_t* ys);

template <typename T>
void where(int ndim, const int64_t* sizes, const bool* c, const int64_t* cs, const T* a,
           const int64_t* as, const T* b, const int64_t* bs, T* y, const int64_t* ys);

template <typename S, typename D>  // any pair of the five types and smyrf::bfloat16
void convert(int ndim, const int64_t* sizes, const S* x, const int64_t* xs, D* y,
             const int64_t* ys);

// y[i] = x[i] * (keep[i] ? scale : 0) over n contiguous elements (dropout and its backward;
// kernels/cpu/elementwise.h masked_scale). float, double. Written 2026-11-30 without a GPU:
// compiled, not yet run on one.
template <typename T>
void masked_scale(const T* x, const bool* keep, T scale, T* y, int64_t n);

template <typename T>  // the five types and smyrf::bfloat16
void fill(int ndim, const int64_t* sizes, T* y, const int64_t* ys, T value);

// The rows path of the strided kernels (kernels/cuda/device_utils.cuh, pointwise_rows_kernel):
// index spaces that are not one dense run and whose innermost dim has at least n elements go one
// block-row per outer index, without the per-element split of the flat index. 0 turns it off
// (the default, until it has been measured on a GPU; SMYRF_CUDA_POINTWISE_ROWS=n, read once,
// sets the starting value). Its gain should come from rows of 1024 elements and more (a block's
// whole step, 256 threads x 4 elements, per row; shorter rows keep one element a thread in
// flight), so 1024 is the value to try first (scripts/gpu-check does). Returns the previous value.
// Written 2026-11-30 without a GPU: compiled, not yet run on one.
int64_t set_pointwise_rows_min_inner(int64_t n);

}  // namespace smyrf::kernels::cuda
