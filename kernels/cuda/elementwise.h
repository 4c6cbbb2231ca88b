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

}  // namespace smyrf::kernels::cuda
