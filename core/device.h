// Where a tensor's storage lives. The CUDA device is part of the API in every build; in a build
// without CUDA (or before the CUDA backend supports an op) using it raises an smyrf::Error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace smyrf {

struct Device {
  enum class Kind { CPU, CUDA };
  Kind kind = Kind::CPU;
  int index = 0;

  static Device cpu() { return Device{Kind::CPU, 0}; }
  static Device cuda(int i = 0) { return Device{Kind::CUDA, i}; }
  bool is_cpu() const { return kind == Kind::CPU; }
  bool is_cuda() const { return kind == Kind::CUDA; }
  std::string str() const;  // "cpu", "cuda:0"
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

// True when this binary was compiled with the CUDA backend.
bool built_with_cuda();
// Number of usable CUDA devices (0 without CUDA or without a GPU); never throws.
int cuda_device_count();
// Throws an Error naming `op` when `device` is a CUDA device this binary cannot use (built
// without CUDA, or no such GPU), with the hint to build with CUDA or to use the CPU.
void require_device(const Device& device, const char* op);

// The CUDA caching allocator (kernels/cuda/allocator.h) seen from core: bytes held by tensors,
// bytes cached in free lists, the peak, and how many cudaMalloc/cudaFree calls were made (a
// training loop in steady state adds none). All zero in a build without CUDA.
struct CudaMemoryStats {
  size_t allocated = 0, cached = 0, peak_allocated = 0;
  uint64_t num_mallocs = 0, num_frees = 0;
};
CudaMemoryStats cuda_memory_stats(int device = 0);
void cuda_reset_peak_memory(int device = 0);
// Hands every cached block back to the driver (for other processes; never needed for correctness).
void cuda_empty_cache();
// Waits for all queued work on the device (for timing; host reads synchronise by themselves).
void cuda_synchronize();

}  // namespace smyrf
