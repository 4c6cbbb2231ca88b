// Thin, checked wrappers over the CUDA runtime used by core/ (host code only; no CUDA headers
// leak out of kernels/cuda). Every call is checked; a failure throws std::runtime_error with
// file:line and the CUDA error string. Only compiled when CMake found nvcc.
#pragma once
#include <cstddef>
#include <string>

namespace smyrf::kernels::cuda {

// Number of devices the runtime can see; 0 when there is no GPU or driver (never throws).
int device_count();
// Name, compute capability and memory of device i, for reports.
std::string device_description(int device);

void* device_alloc(size_t nbytes, int device);
void device_free(void* ptr, int device);
void device_memset_zero(void* ptr, size_t nbytes);
// Copies nbytes between host and/or device pointers (synchronous).
void memcpy_any(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t nbytes);
void synchronize();

// Fills n floats at `ptr` on the device with `value` (a hand-written kernel; used by tests).
void fill_f32(float* ptr, size_t n, float value);

}  // namespace smyrf::kernels::cuda
