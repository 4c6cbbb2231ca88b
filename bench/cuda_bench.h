// GPU benchmarks behind `smyrf bench gemm --device cuda`, `smyrf bench elementwise --device cuda`
// and `smyrf bench attention --device cuda` (cuda_attention_bench.cpp). They go through core
// tensors on cuda:0 (no CUDA headers here) and synchronise the device inside each timed run
// (attention: CUDA events on the current stream, in its .cpp).
// Without a GPU (or without a CUDA build) they throw an smyrf::Error with a clear message, which
// the CLI prints before exiting non-zero. Status: ran on NVIDIA H200s (scripts/gpu-check,
// 2026-11-28 to 11-30).
#pragma once
#include <cstdint>

#include "bench/registry.h"

namespace smyrf::bench {

// Throws unless a CUDA device is usable; `what` names the workload in the message.
void require_cuda_device(const char* what);

// cuBLAS sgemm (batch == 1) or strided batched sgemm throughput for one case.
void run_cuda_gemm(const Options& opt, const char* workload, int64_t batch, int64_t m, int64_t n,
                   int64_t k, const char* trans, const char* shape);

// Dense and SMYRF attention fwd and fwd+bwd on CUDA tensors: CUDA-event timing after a device
// synchronisation, the caching allocator's peak (see cuda_attention_bench.cpp for the cases).
void run_cuda_attention(const Options& opt);

// Elementwise GB/s (copy, add, scale, exp, gelu, broadcast add, sum) against a device-to-device
// copy of the same bytes, at 1M, 16M and 128M floats.
void run_cuda_elementwise(const Options& opt);

}  // namespace smyrf::bench
