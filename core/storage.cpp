#include "core/storage.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"
#ifdef SMYRF_WITH_CUDA
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/runtime.h"
#endif

namespace smyrf {

Storage::Storage(size_t nbytes, Device device, bool zero) : nbytes_(nbytes), device_(device) {
  if (device.is_cuda()) {
#ifdef SMYRF_WITH_CUDA
    // checked here so a machine without a GPU gets an Error naming the device, not a raw
    // cudaErrorNoDevice from cudaSetDevice
    static const int count = kernels::cuda::device_count();  // fixed for the process
    SMYRF_CHECK_HINT(device.index >= 0 && device.index < count, "storage",
                     "cannot allocate on " << device.str() << ": " << count << " CUDA device(s) visible",
                     (count == 0 ? "no GPU or driver on this machine; use Device::cpu()"
                                 : "use an index below the device count"));
    // through the caching allocator, for the current stream (see kernels/cuda/allocator.h)
    try {
      data_ = kernels::cuda::cached_alloc(nbytes, device.index, kernels::cuda::current_stream());
      if (zero && nbytes) kernels::cuda::memset_zero_async(data_, nbytes);
    } catch (const kernels::cuda::OutOfMemory& e) {
      throw Error(
          "storage", e.what(),
          "use a smaller batch, free tensors you no longer need, or call cuda_empty_cache() when "
          "another process needs the cached memory");
    } catch (const std::runtime_error& e) {
      throw Error("storage", e.what());
    }
    return;
#else
    throw Error("storage", "cannot allocate on " + device.str() + ": smyrf was built without CUDA",
                "configure on a machine with nvcc (/usr/local/cuda/bin/nvcc) or use Device::cpu()");
#endif
  }
  // Round up to the alignment so aligned_alloc's contract holds; 64 bytes = one cache line.
  size_t padded = ((nbytes == 0 ? 1 : nbytes) + 63) / 64 * 64;
  data_ = std::aligned_alloc(64, padded);
  SMYRF_CHECK(data_ != nullptr, "storage", "out of memory allocating " << nbytes << " bytes on cpu");
  if (zero) std::memset(data_, 0, padded);
}

Storage::~Storage() {
  if (!data_) return;
  if (device_.is_cuda()) {
#ifdef SMYRF_WITH_CUDA
    kernels::cuda::cached_free(data_);
#endif
    return;
  }
  std::free(data_);
}

}  // namespace smyrf
