#include "core/device.h"

#ifdef SMYRF_WITH_CUDA
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

}  // namespace smyrf
