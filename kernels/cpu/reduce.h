// Reductions over strided index spaces. The output is contiguous over the kept dims.
//   kept_*:  sizes/strides of the dims that remain (row-major order of the output)
//   red_*:   sizes/strides of the dims reduced away
// Sum/Prod accumulate in double for floating types (int64 for integers); Max/Min propagate NaN.
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu {

enum class ReduceOp { Sum, Max, Min, Prod };

template <typename T>
void reduce(ReduceOp op, int kept_ndim, const int64_t* kept_sizes, const int64_t* kept_strides,
            int red_ndim, const int64_t* red_sizes, const int64_t* red_strides, const T* x, T* y);

// Index of the first maximum (or minimum) along one dim of length n with stride red_stride;
// NaN counts as the maximum (and the minimum), as in PyTorch.
template <typename T>
void argreduce(bool is_max, int kept_ndim, const int64_t* kept_sizes, const int64_t* kept_strides,
               int64_t n, int64_t red_stride, const T* x, int64_t* y);

// sum of x[i]^2 over n contiguous values, each square and the sum in double; the same result
// for any thread count (fixed blocks of kSumSquaresBlock values, their partial sums added in
// order). float runs use the AVX2 variant (reduce_avx2.h) when active_isa() is Avx2.
constexpr int64_t kSumSquaresBlock = 1 << 16;
template <typename T>
double sum_squares(const T* x, int64_t n);

}  // namespace smyrf::kernels::cpu
