// Host-side runtime: compiled by the host compiler against the CUDA runtime API (no kernels).
// Status: ran on an NVIDIA H200 on 2026-11-28 (tests/cuda, all passing; scripts/gpu-check).
#include "kernels/cuda/runtime.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <sstream>

#include "kernels/cuda/check.h"

namespace smyrf::kernels::cuda {
namespace detail {
void throw_cuda(cudaError_t err, const char* what, const char* file, int line) {
  std::ostringstream os;
  os << "[cuda] " << what << " failed at " << file << ":" << line << ": " << cudaGetErrorName(err)
     << " (" << cudaGetErrorString(err) << ")";
  throw std::runtime_error(os.str());
}
void throw_library(const char* lib, int status, const char* status_name, const char* what,
                   const char* file, int line) {
  std::ostringstream os;
  os << "[" << lib << "] " << what << " failed at " << file << ":" << line << ": " << status_name
     << " (status " << status << ")";
  throw std::runtime_error(os.str());
}
}  // namespace detail

namespace {
thread_local Stream tls_stream = nullptr;  // legacy default stream until a guard says otherwise

// Pageable host memory is staged through two pinned buffers so the host memcpy into one overlaps
// the DMA out of the other. Chunks of 4 MiB keep the pinned footprint small (8 MiB for the
// process) while staying well above the size where DMA reaches full PCIe/NVLink bandwidth.
constexpr size_t kStageBytes = size_t{4} << 20;
// Below this a copy goes straight through cudaMemcpyAsync: the driver's own staging is cheaper
// than two hops for a few KiB (scalars, index vectors).
constexpr size_t kDirectBytes = size_t{64} << 10;

struct Staging {
  std::mutex mu;
  void* buf[2] = {nullptr, nullptr};
  cudaEvent_t done[2] = {nullptr, nullptr};
  bool used[2] = {false, false};
  void ensure() {
    if (buf[0]) return;
    for (int i = 0; i < 2; ++i) {
      SMYRF_CUDA_CHECK(cudaHostAlloc(&buf[i], kStageBytes, cudaHostAllocDefault));
      SMYRF_CUDA_CHECK(cudaEventCreateWithFlags(&done[i], cudaEventDisableTiming));
    }
  }
  void wait(int i) {
    if (used[i]) SMYRF_CUDA_CHECK(cudaEventSynchronize(done[i]));
    used[i] = false;
  }
};
// Leaked on purpose: destroying it at exit would call into a CUDA runtime already torn down.
Staging& staging() {
  static Staging* s = new Staging;
  return *s;
}

bool is_pinned(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeHost;
}

void h2d(void* dst, const void* src, size_t n, cudaStream_t st) {
  if (n <= kDirectBytes || is_pinned(src)) {
    SMYRF_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, st));
    if (n > kDirectBytes)
      SMYRF_CUDA_CHECK(cudaStreamSynchronize(st));  // caller may reuse src at once
    return;
  }
  Staging& s = staging();
  std::lock_guard<std::mutex> lock(s.mu);
  s.ensure();
  int k = 0;
  for (size_t off = 0; off < n; off += kStageBytes, k ^= 1) {
    const size_t len = std::min(kStageBytes, n - off);
    s.wait(k);  // the DMA that last read this buffer has finished
    std::memcpy(s.buf[k], static_cast<const char*>(src) + off, len);
    SMYRF_CUDA_CHECK(
        cudaMemcpyAsync(static_cast<char*>(dst) + off, s.buf[k], len, cudaMemcpyHostToDevice, st));
    SMYRF_CUDA_CHECK(cudaEventRecord(s.done[k], st));
    s.used[k] = true;
  }
  // no final wait: src has been copied out already; the next user of a buffer waits on its event
}

void d2h(void* dst, const void* src, size_t n, cudaStream_t st) {
  if (n <= kDirectBytes || is_pinned(dst)) {
    SMYRF_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, st));
    SMYRF_CUDA_CHECK(cudaStreamSynchronize(st));  // a host read must see the finished data
    return;
  }
  Staging& s = staging();
  std::lock_guard<std::mutex> lock(s.mu);
  s.ensure();
  s.wait(0);
  s.wait(1);
  auto issue = [&](size_t off, int k) {
    const size_t len = std::min(kStageBytes, n - off);
    SMYRF_CUDA_CHECK(cudaMemcpyAsync(s.buf[k], static_cast<const char*>(src) + off, len,
                                     cudaMemcpyDeviceToHost, st));
    SMYRF_CUDA_CHECK(cudaEventRecord(s.done[k], st));
    s.used[k] = true;
  };
  issue(0, 0);
  int k = 0;
  for (size_t off = 0; off < n; off += kStageBytes, k ^= 1) {
    if (off + kStageBytes < n) issue(off + kStageBytes, k ^ 1);  // overlaps the memcpy below
    s.wait(k);
    std::memcpy(static_cast<char*>(dst) + off, s.buf[k], std::min(kStageBytes, n - off));
  }
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
  os << p.name << " (sm_" << p.major << p.minor << ", " << (p.totalGlobalMem >> 20) << " MiB, "
     << p.multiProcessorCount << " SMs)";
  return os.str();
}

void set_device(int device) { SMYRF_CUDA_CHECK(cudaSetDevice(device)); }
int current_device() {
  int d = 0;
  SMYRF_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

Stream current_stream() { return tls_stream; }
void set_current_stream(Stream s) { tls_stream = s; }
Stream create_stream() {
  cudaStream_t s = nullptr;
  SMYRF_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}
void destroy_stream(Stream s) {
  if (s) SMYRF_CUDA_CHECK(cudaStreamDestroy(static_cast<cudaStream_t>(s)));
}
void stream_synchronize(Stream s) {
  SMYRF_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(s)));
}
void synchronize() { SMYRF_CUDA_CHECK(cudaDeviceSynchronize()); }

void memcpy_any(void* dst, bool dst_dev, const void* src, bool src_dev, size_t nbytes) {
  if (nbytes == 0) return;
  cudaStream_t st = detail::stream();
  if (dst_dev && src_dev) {
    SMYRF_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, st));
  } else if (dst_dev) {
    h2d(dst, src, nbytes, st);
  } else if (src_dev) {
    d2h(dst, src, nbytes, st);
  } else {
    std::memcpy(dst, src, nbytes);
  }
}

void memset_zero_async(void* ptr, size_t nbytes) {
  if (nbytes) SMYRF_CUDA_CHECK(cudaMemsetAsync(ptr, 0, nbytes, detail::stream()));
}

void* pinned_alloc(size_t nbytes) {
  void* p = nullptr;
  SMYRF_CUDA_CHECK(cudaHostAlloc(&p, nbytes ? nbytes : 1, cudaHostAllocDefault));
  return p;
}
void pinned_free(void* ptr) {
  if (ptr) cudaFreeHost(ptr);  // no throw: called from destructors
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

}  // namespace smyrf::kernels::cuda
