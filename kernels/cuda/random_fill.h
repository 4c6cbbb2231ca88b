// Philox random fills of contiguous device buffers: the same numbers as kernels/cpu/random_fill.h
// for the same (seed, offset) — element i uses block (offset + i / L) and lane i % L, computed by
// the shared kernels/cpu/philox.h. Uniform, integer and Bernoulli draws are bit-identical to the
// CPU (integer arithmetic, then one rounded multiply-add written without contraction); normal
// draws go through CUDA's logf/sinf/cosf and agree with glibc's to a few ulp.
// Queued on the current stream.
//
// Status: ran on an NVIDIA H200 on 2026-11-28 (tests/cuda, all passing; scripts/gpu-check).
#pragma once
#include <cstdint>

namespace smyrf::kernels::cuda {

void random_uniform_f32(float* y, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi);
void random_uniform_f64(double* y, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi);
void random_normal_f32(float* y, int64_t n, uint64_t seed, uint64_t offset, float mean, float std);
void random_normal_f64(double* y, int64_t n, uint64_t seed, uint64_t offset, double mean,
                       double std);
void random_int64(int64_t* y, int64_t n, uint64_t seed, uint64_t offset, int64_t low, int64_t high);
void random_bernoulli(bool* y, int64_t n, uint64_t seed, uint64_t offset, double p);

}  // namespace smyrf::kernels::cuda
