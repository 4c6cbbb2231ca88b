#include <cuda_runtime.h>

#include <sstream>
#include <stdexcept>

#include "kernels/cuda/runtime.h"

namespace smyrf::kernels::cuda {
namespace {
void check(cudaError_t err, const char* what, const char* file, int line) {
  if (err == cudaSuccess) return;
  std::ostringstream os;
  os << "[cuda] " << what << " failed at " << file << ":" << line << ": " << cudaGetErrorName(err) << " ("
     << cudaGetErrorString(err) << ")";
  throw std::runtime_error(os.str());
}
#define SMYRF_CUDA_CHECK(call) check((call), #call, __FILE__, __LINE__)

__global__ void fill_kernel(float* p, size_t n, float v) {
  size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (; i < n; i += stride) p[i] = v;
}
}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

std::string device_description(int device) {
  cudaDeviceProp p{};
  SMYRF_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  std::ostringstream os;
  os << p.name << " (sm_" << p.major << p.minor << ", " << (p.totalGlobalMem >> 20) << " MiB)";
  return os.str();
}

void* device_alloc(size_t nbytes, int device) {
  SMYRF_CUDA_CHECK(cudaSetDevice(device));
  void* p = nullptr;
  SMYRF_CUDA_CHECK(cudaMalloc(&p, nbytes));
  return p;
}

void device_free(void* ptr, int device) {
  cudaSetDevice(device);
  cudaFree(ptr);  // no throw from destructors; errors surface on the next checked call
}

void device_memset_zero(void* ptr, size_t nbytes) { SMYRF_CUDA_CHECK(cudaMemset(ptr, 0, nbytes)); }

void memcpy_any(void* dst, bool dst_dev, const void* src, bool src_dev, size_t nbytes) {
  cudaMemcpyKind kind = dst_dev ? (src_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                : (src_dev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  SMYRF_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, kind));
}

void synchronize() { SMYRF_CUDA_CHECK(cudaDeviceSynchronize()); }

void fill_f32(float* ptr, size_t n, float value) {
  if (n == 0) return;
  int blocks = static_cast<int>((n + 255) / 256);
  if (blocks > 4096) blocks = 4096;
  fill_kernel<<<blocks, 256>>>(ptr, n, value);
  SMYRF_CUDA_CHECK(cudaGetLastError());
}

}  // namespace smyrf::kernels::cuda
