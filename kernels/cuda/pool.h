// Pooling and nearest upsampling on device buffers, with the semantics of kernels/cpu/conv.h
// (NCHW planes; windows clipped to the image, PyTorch's divisors; max pooling's first maximum in
// window order and first NaN, int64 indices flat within a plane). float and double.
//
// Every output element is computed by one thread, and every backward is a gather (one thread per
// input element summing the windows that cover it in the CPU scatter's order): deterministic,
// without atomics, the CPU loops' sums in the same order.
//
// Status: ran on an NVIDIA H200 on 2026-11-30 (tests/cuda 42/42 passing; scripts/gpu-check);
// tests/cuda/test_cuda_pool.cpp compares every function with the CPU kernels.
#pragma once
#include <cstdint>

#include "kernels/cpu/conv.h"

namespace smyrf::kernels::cuda {

template <typename T>
void avg_pool2d_forward(const cpu::Pool2dGeometry& g, const T* x, T* y, bool count_include_pad);
// dx overwritten.
template <typename T>
void avg_pool2d_backward(const cpu::Pool2dGeometry& g, const T* dy, T* dx, bool count_include_pad);
template <typename T>
void max_pool2d_forward(const cpu::Pool2dGeometry& g, const T* x, T* y, int64_t* indices);
// dx overwritten.
template <typename T>
void max_pool2d_backward(const cpu::Pool2dGeometry& g, const T* dy, const int64_t* indices, T* dx);
template <typename T>
void upsample_nearest2d_forward(int64_t planes, int64_t H, int64_t W, int64_t fh, int64_t fw,
                                const T* x, T* y);
// dx overwritten.
template <typename T>
void upsample_nearest2d_backward(int64_t planes, int64_t H, int64_t W, int64_t fh, int64_t fw,
                                 const T* dy, T* dx);

}  // namespace smyrf::kernels::cuda
