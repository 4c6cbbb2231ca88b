// AVX2 float32 row kernels for softmax and cross-entropy (one row each; see kernels/cpu/softmax.h
// for the semantics they must match).
//   next     the row the calling thread processes next, or null: it is prefetched while this row
//            computes (only read as a hint; any address, even past the end of a buffer, is safe).
//   stream   write the output row with streaming (non-temporal) stores, for outputs too large
//            to stay in cache (kernels/cpu/streaming_store.h decides); the caller issues
//            streaming_store_fence() once per thread after its last row.
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu::avx2 {
// scratch: n floats of per-thread work space, used (and required) only when stream && !log: the
// exps wait there, in cache, for the 1 / sum scaling instead of in y (whose lines would be read
// from memory first, an extra stream of traffic).
void softmax_row_f32(const float* x, float* y, int64_t n, bool log, float* scratch, bool stream,
                     const float* next);
void softmax_row_backward_f32(const float* y, const float* dy, float* dx, int64_t n, bool log,
                              bool stream);
// logsumexp of a row of logits; the plain sum of the row in *sum_x when sum_x is not null (label
// smoothing needs it).
void cross_entropy_row_f32(const float* x, int64_t C, double* lse, double* sum_x,
                           const float* next);
// dx[c] = g * (exp(x[c] - lse) - off) for every c, except dx[t] = dt (the caller computes the
// target's entry in double; t outside [0, C) for none).
void cross_entropy_row_backward_f32(const float* x, float* dx, int64_t C, double lse, double g,
                                    double off, int64_t t, float dt, bool stream);
// y[i] = v for the n entries of a row (an ignored cross-entropy row's zeros).
void fill_row_f32(float* y, int64_t n, float v, bool stream);
}  // namespace smyrf::kernels::cpu::avx2
