// The CUDA device runtime used by core/: devices, the current stream, host <-> device copies
// through pinned staging buffers, and checked errors. Host code only: no CUDA header leaks out of
// kernels/cuda, so core/ compiles without nvcc. Every call is checked; a failure throws
// std::runtime_error with file:line and the CUDA error string (core/ rethrows it as smyrf::Error).
// Only compiled when CMake found nvcc.
//
// Status: ran on an NVIDIA H200 on 2026-11-28 (tests/cuda, all passing; scripts/gpu-check).
#pragma once
#include <cstddef>
#include <string>

namespace smyrf::kernels::cuda {

// Number of devices the runtime can see; 0 when there is no GPU or driver (never throws).
int device_count();
// Name, compute capability and memory of device i, for reports.
std::string device_description(int device);
// Makes `device` current for this thread (kernels launch on the current device).
void set_device(int device);
int current_device();

// ---------------------------------------------------------------- streams
// An opaque cudaStream_t. Every kernel and copy of the library is queued on the calling thread's
// current stream; the default is the legacy default stream (nullptr), which orders everything
// on the device like synchronous code would. Host reads (device -> host copies) synchronise the
// current stream before returning, so the host never sees stale data.
using Stream = void*;
Stream current_stream();
void set_current_stream(Stream s);
Stream create_stream();  // non-blocking stream on the current device
void destroy_stream(Stream s);
void stream_synchronize(Stream s);  // waits for the work queued on s
void synchronize();                 // waits for the whole device

// Sets the current stream for a scope (restores the previous one on exit).
class StreamGuard {
 public:
  explicit StreamGuard(Stream s) : prev_(current_stream()) { set_current_stream(s); }
  ~StreamGuard() { set_current_stream(prev_); }
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Stream prev_;
};

// ---------------------------------------------------------------- copies
// Host <-> device copies of nbytes; host memory may be pageable: it is staged through pinned
// buffers in chunks (double-buffered, so the memcpy into one buffer overlaps the DMA of the
// other). Device -> host and host -> device return when the host buffer may be reused / read.
// Device -> device is queued on the current stream and returns at once.
void memcpy_any(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t nbytes);
void memset_zero_async(void* ptr, size_t nbytes);  // on the current stream

// Pinned (page-locked) host memory for the data loader: batches assembled in it are copied to the
// device by DMA without staging. pinned_free must be given the pointer pinned_alloc returned.
void* pinned_alloc(size_t nbytes);
void pinned_free(void* ptr);

// Legacy entry points kept for callers outside the caching allocator (tests, tools).
void* device_alloc(size_t nbytes, int device);  // raw cudaMalloc (no cache)
void device_free(void* ptr, int device);
void device_memset_zero(void* ptr, size_t nbytes);

}  // namespace smyrf::kernels::cuda
