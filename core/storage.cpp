#include "core/storage.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/host_memory.h"
#ifdef SMYRF_WITH_CUDA
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/runtime.h"
#endif

namespace smyrf {

bool cpu_hugepages_enabled() { return kernels::cpu::huge_pages_enabled(); }

void* cpu_alloc(size_t nbytes) {
  void* p = kernels::cpu::host_alloc(nbytes);
  SMYRF_CHECK_HINT(p != nullptr, "storage",
                   "out of memory allocating " << nbytes << " bytes on cpu",
                   "use smaller tensors or free the ones you no longer need");
  return p;
}

void cpu_free(void* p) { kernels::cpu::host_free(p); }

Storage::Storage(size_t nbytes, Device device, bool zero) : nbytes_(nbytes), device_(device) {
  if (device.is_cuda()) {
#ifdef SMYRF_WITH_CUDA
    // checked here so a machine without a GPU gets an Error naming the device, not a raw
    // cudaErrorNoDevice from cudaSetDevice
    static const int count = kernels::cuda::device_count();  // fixed for the process
    SMYRF_CHECK_HINT(
        device.index >= 0 && device.index < count, "storage",
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
  data_ = cpu_alloc(nbytes);
  // the 64-byte padding too, as before (every allocation holds at least that much)
  if (zero) std::memset(data_, 0, (nbytes + 63) / 64 * 64);
}

Storage::~Storage() {
  if (!data_) return;
  if (device_.is_cuda()) {
#ifdef SMYRF_WITH_CUDA
    kernels::cuda::cached_free(data_);
#endif
    return;
  }
  cpu_free(data_);
}

}  // namespace smyrf
