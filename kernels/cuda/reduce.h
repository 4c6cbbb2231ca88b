// CUDA reductions over strided index spaces: the interface and semantics of
// kernels/cpu/reduce.h with device pointers (output contiguous over the kept dims; Sum/Prod
// accumulate in double for floating types and int64 for integers; Max/Min propagate NaN;
// argreduce returns the first extremum, NaN counting as the extremum). Each output is reduced
// in a fixed order (a tree over a block, or a sequential loop), so results are deterministic
// run to run, though the summation order differs from the CPU's (agreement to rounding).
// Types: int32_t, int64_t, float, double. Queued on the current stream.
//
// Status: ran on an NVIDIA H200 on 2026-11-28 (tests/cuda, all passing; scripts/gpu-check).
#pragma once
#include <cstdint>

#include "kernels/cpu/reduce.h"

namespace smyrf::kernels::cuda {

using cpu::ReduceOp;

template <typename T>
void reduce(ReduceOp op, int kept_ndim, const int64_t* kept_sizes, const int64_t* kept_strides,
            int red_ndim, const int64_t* red_sizes, const int64_t* red_strides, const T* x, T* y);

template <typename T>
void argreduce(bool is_max, int kept_ndim, const int64_t* kept_sizes, const int64_t* kept_strides,
               int64_t n, int64_t red_stride, const T* x, int64_t* y);

}  // namespace smyrf::kernels::cuda
