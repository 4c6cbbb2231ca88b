#include "core/device.h"

#include "core/error.h"

#ifdef SMYRF_WITH_CUDA
#include <stdexcept>

#include "kernels/cuda/allocator.h"
#include "kernels/cuda/runtime.h"
#endif

namespace smyrf {

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

bool built_with_cuda() {
#ifdef SMYRF_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#ifdef SMYRF_WITH_CUDA
  return kernels::cuda::device_count();
#else
  return 0;
#endif
}

void require_device(const Device& device, const char* op) {
  if (!device.is_cuda()) return;
  SMYRF_CHECK_HINT(
      built_with_cuda() && device.index >= 0 && device.index < cuda_device_count(), op,
      "cannot run on " << device.str() << ": this binary was built "
                       << (built_with_cuda() ? "with" : "without") << " CUDA and sees "
                       << cuda_device_count() << " CUDA device(s)",
      "build with -DSMYRF_CUDA=ON on a machine with an NVIDIA GPU, or use --device cpu");
}

CudaMemoryStats cuda_memory_stats(int device) {
  CudaMemoryStats r;
#ifdef SMYRF_WITH_CUDA
  kernels::cuda::AllocatorStats s = kernels::cuda::allocator_stats(device);
  r.allocated = s.allocated, r.cached = s.cached, r.peak_allocated = s.peak_allocated;
  r.num_mallocs = s.num_mallocs, r.num_frees = s.num_frees;
#else
  (void)device;
#endif
  return r;
}

void cuda_reset_peak_memory(int device) {
#ifdef SMYRF_WITH_CUDA
  kernels::cuda::reset_peak_stats(device);
#else
  (void)device;
#endif
}

void cuda_empty_cache() {
#ifdef SMYRF_WITH_CUDA
  if (kernels::cuda::device_count() == 0) return;
  try {
    kernels::cuda::empty_cache();
  } catch (const std::runtime_error& e) {
    throw Error("cuda_empty_cache", e.what());
  }
#endif
}

void cuda_synchronize() {
#ifdef SMYRF_WITH_CUDA
  if (kernels::cuda::device_count() == 0) return;
  try {
    kernels::cuda::synchronize();
  } catch (const std::runtime_error& e) {
    throw Error("cuda_synchronize", e.what());
  }
#endif
}

}  // namespace smyrf
