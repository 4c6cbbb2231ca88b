// 2-D convolution on device buffers through cuDNN, with the interface and semantics of
// kernels/cpu/conv.h (NCHW, weight (K, C/groups, R, S), stride, padding, dilation, groups; the
// geometry is validated by the caller). float and double.
//
// Algorithms come from cuDNN's heuristics (cudnnGet*Algorithm_v7) restricted to those that fit
// the caching allocator's workspace; with `deterministic` set (SMYRF_DETERMINISTIC=1 in the
// environment) only algorithms cuDNN marks deterministic are used. A handle per (thread, device)
// is bound to the current stream at every call. cuDNN sits in this one translation unit.
//
// Status: ran on an NVIDIA H200 on 2026-11-28 (tests/cuda, all passing; scripts/gpu-check).
#pragma once
#include <cstdint>

#include "kernels/cpu/conv.h"

namespace smyrf::kernels::cuda {

template <typename T>
void conv2d_forward(const cpu::Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y);
template <typename T>
void conv2d_backward_data(const cpu::Conv2dGeometry& g, const T* dy, const T* w, T* dx);
// dbias may be null.
template <typename T>
void conv2d_backward_filter(const cpu::Conv2dGeometry& g, const T* x, const T* dy, T* dw, T* dbias);

}  // namespace smyrf::kernels::cuda
