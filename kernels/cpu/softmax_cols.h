// Softmax / log_softmax along a dim that is not the last, in place of transposing it last and
// back: x is a contiguous (outer, n, inner) buffer and the softmax runs over n for each of the
// outer * inner columns (stride inner). Columns are processed in blocks of up to 2048
// neighbours, so every pass reads whole row runs and keeps its per-column state in cache:
// forward = the column max, the sum of exp(x - max), the write (three reads, one write);
// backward = the column sum of y dy (or of dy), the write. The old path (transpose to last,
// row softmax, transpose back) moved each element through two gathers and two extra buffers:
// softmax over dim 0 of 4096 x 4096 took 30-35 ms.
//
// Semantics are softmax_rows' per column (kernels/cpu/softmax.h): a column with a NaN is NaN, one
// whose max is +inf is NaN, one of all -inf gives 0 (softmax) / -inf (log_softmax); those blocks
// go through the double reference. The float AVX2 path sums in float, folded into double every
// 256 rows, with softmax_rows' exp (row_math_avx2.h).
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu {

template <typename T>
void softmax_cols(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log);
//   softmax:     dx = y * (dy - sum_n(dy * y));   log_softmax: dx = dy - exp(y) * sum_n(dy)
template <typename T>
void softmax_cols_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t n, int64_t inner,
                           bool log);

namespace avx2 {
// One block of w <= kColsBlock columns (stride `inner` between rows, n rows): false, with
// nothing written, when a column's max comes out not finite (+inf, all -inf, a NaN); the caller
// then takes the reference. scratch: 6 w floats, 8-byte aligned (doubles in front).
constexpr int64_t kColsBlock = 2048;
bool softmax_cols_block_f32(const float* x, float* y, int64_t n, int64_t inner, int64_t w, bool log,
                            float* scratch);
void softmax_cols_block_backward_f32(const float* y, const float* dy, float* dx, int64_t n,
                                     int64_t inner, int64_t w, bool log, float* scratch);
}  // namespace avx2

}  // namespace smyrf::kernels::cpu
