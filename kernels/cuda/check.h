// Internal to kernels/cuda: checked-call macros for the CUDA runtime, cuBLAS and cuDNN, and the
// launch helpers every .cu file shares. Includes CUDA headers, so nothing outside kernels/cuda
// may include it (core/ compiles with the host compiler only).
//
// Status: compiled with nvcc 13 on a machine without a GPU; none of this has run yet.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/runtime.h"

namespace smyrf::kernels::cuda::detail {

// Throws std::runtime_error "[cuda] <call> failed at file:line: <name> (<message>)"; core/ turns
// it into an smyrf::Error naming the op.
[[noreturn]] void throw_cuda(cudaError_t err, const char* what, const char* file, int line);
[[noreturn]] void throw_library(const char* lib, int status, const char* status_name,
                                const char* what, const char* file, int line);

inline cudaStream_t stream() { return static_cast<cudaStream_t>(current_stream()); }

// A grid that covers n items with `threads` per block, capped so grid-stride loops do the rest.
inline unsigned grid_for(int64_t n, int threads, int64_t cap = 65536) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > cap) b = cap;
  return static_cast<unsigned>(b);
}

}  // namespace smyrf::kernels::cuda::detail

#define SMYRF_CUDA_CHECK(call)                                                           \
  do {                                                                                   \
    cudaError_t smyrf_err_ = (call);                                                     \
    if (smyrf_err_ != cudaSuccess)                                                       \
      ::smyrf::kernels::cuda::detail::throw_cuda(smyrf_err_, #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: reports invalid configurations at the launch site (asynchronous faults
// surface at the next synchronising call, also checked).
#define SMYRF_CUDA_CHECK_LAUNCH() SMYRF_CUDA_CHECK(cudaGetLastError())
