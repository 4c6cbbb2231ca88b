// AVX2 row kernel of gather along the last dim (kernels/cpu/index.h) for 4-byte elements.
//
// The scalar loop y[i] = x[idx[i]] issues a load, a load and a store per element; here eight
// gathered elements are assembled in a register and leave as one vector store (streamed when
// the caller asks for it: the output is not read for ownership). vpgatherdps was slower on our
// EPYC than eight scalar loads (it is microcoded on Zen), so the loads stay scalar. Measured on
// a (2048, 2048) float gather with int64 indices, 2 threads: 1.6-2.1 ms scalar, 0.9-1.3 here.
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu::avx2 {
// y[i] = x[idx[i]] for i < k, each block of indices checked against [0, n) before it is used:
// false (y partly written, nothing read out of bounds) at the first block with one outside.
// stream: vector stores from the first 32-byte boundary of y on are non-temporal; the caller
// fences.
bool gather_row_b32(const uint32_t* x, int64_t n, const int64_t* idx, uint32_t* y, int64_t k,
                    bool stream);

// The first i in [i0, n) whose sort key (kernels/cpu/index.cpp sort_key: the IEEE bits with the
// sign folded, -0 as +0, NaN above everything; inverted when descending) is below thr, unsigned;
// n when none is. Eight keys a compare: topk over long rows skips most entries this way.
int64_t first_key_below_f32(const float* x, int64_t i0, int64_t n, uint32_t thr, bool descending);
int64_t first_key_below_i32(const int32_t* x, int64_t i0, int64_t n, uint32_t thr, bool descending);
}  // namespace smyrf::kernels::cpu::avx2
