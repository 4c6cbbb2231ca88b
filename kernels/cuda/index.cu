// Indexing kernels (see index.h). Status: ran on an NVIDIA H200 on 2026-11-28 (tests/cuda, all
// passing; scripts/gpu-check); indices_in_range, written 2026-11-30 without a GPU, has compiled
// only.
#include <cstdint>

#include "kernels/cuda/allocator.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/index.h"
#include "kernels/cuda/runtime.h"

namespace smyrf::kernels::cuda {
namespace {
using namespace detail;
constexpr int kThreads = 256;

template <typename T>
__global__ void index_select_kernel(const T* x, const int64_t* idx, T* y, int64_t n, int64_t k,
                                    int64_t inner, int64_t total) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += step) {
    const int64_t j = t % inner, rest = t / inner, i = rest % k, o = rest / k;
    y[t] = x[(o * n + idx[i]) * inner + j];
  }
}

template <typename T>
__global__ void gather_kernel(const T* x, const int64_t* idx, T* y, int64_t n, int64_t k,
                              int64_t inner, int64_t total) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += step) {
    const int64_t j = t % inner, o = t / inner / k;
    y[t] = x[(o * n + idx[t]) * inner + j];
  }
}

// *bad = 1 when an index lies outside [0, bound) and is not the exempt value (a flag: the order
// of the writes does not matter, every writer stores the same 1).
__global__ void find_out_of_range(const int64_t* idx, int64_t count, uint64_t bound,
                                  bool has_exempt, int64_t exempt, int* bad) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  bool any = false;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < count;
       t += step) {
    const int64_t v = idx[t];  // negatives wrap above the bound
    any = any || (static_cast<uint64_t>(v) >= bound && !(has_exempt && v == exempt));
  }
  if (__syncthreads_or(any) && threadIdx.x == 0) *bad = 1;
}

// keys_t[(o * inner + j) * k + i] = idx[(o * k + i) * inner + j]: one row of keys per destination
// column, so the segmented sort sees contiguous rows.
__global__ void columns_to_rows(const int64_t* idx, int64_t* keys_t, int64_t k, int64_t inner,
                                int64_t total) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += step) {
    const int64_t j = t % inner, rest = t / inner, i = rest % k, o = rest / k;
    keys_t[(o * inner + j) * k + i] = idx[t];
  }
}

// index_add: one sorted key row shared by every (o, j). Thread (o, p, j) runs only when position
// p starts a run of equal keys; it adds the run's sources in their original order.
template <typename T>
__global__ void index_add_runs(T* y, const int64_t* skeys, const int32_t* perm, const T* src,
                               int64_t n, int64_t k, int64_t inner, int64_t total) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += step) {
    const int64_t j = t % inner, rest = t / inner, p = rest % k, o = rest / k;
    const int64_t key = skeys[p];
    if (p > 0 && skeys[p - 1] == key) continue;
    T* dst = y + (o * n + key) * inner + j;
    T acc = *dst;
    for (int64_t q = p; q < k && skeys[q] == key; ++q) acc += src[(o * k + perm[q]) * inner + j];
    *dst = acc;
  }
}

// scatter_add: key row per (o, j) column; thread (o, j, p) as above.
template <typename T>
__global__ void scatter_add_runs(T* y, const int64_t* skeys, const int32_t* perm, const T* src,
                                 int64_t n, int64_t k, int64_t inner, int64_t total) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += step) {
    const int64_t p = t % k, col = t / k, j = col % inner, o = col / inner;
    const int64_t* row = skeys + col * k;
    const int32_t* prow = perm + col * k;
    const int64_t key = row[p];
    if (p > 0 && row[p - 1] == key) continue;
    T* dst = y + (o * n + key) * inner + j;
    T acc = *dst;
    for (int64_t q = p; q < k && row[q] == key; ++q) acc += src[(o * k + prow[q]) * inner + j];
    *dst = acc;
  }
}

}  // namespace

bool indices_in_range(const int64_t* idx, int64_t count, int64_t bound, bool has_exempt,
                      int64_t exempt) {
  if (count == 0) return true;
  DeviceArray<int> bad(1);
  SMYRF_CUDA_CHECK(cudaMemsetAsync(bad.data(), 0, sizeof(int), stream()));
  find_out_of_range<<<grid_for(count, kThreads, 4096), kThreads, 0, stream()>>>(
      idx, count, static_cast<uint64_t>(bound < 0 ? 0 : bound), has_exempt, exempt, bad.data());
  SMYRF_CUDA_CHECK_LAUNCH();
  int host = 0;
  memcpy_any(&host, false, bad.data(), true, sizeof(int));
  return host == 0;
}

template <typename T>
void index_select(const T* x, const int64_t* idx, T* y, int64_t outer, int64_t n, int64_t k,
                  int64_t inner) {
  const int64_t total = outer * k * inner;
  if (total == 0) return;
  index_select_kernel<T>
      <<<grid_for(total, kThreads), kThreads, 0, stream()>>>(x, idx, y, n, k, inner, total);
  SMYRF_CUDA_CHECK_LAUNCH();
}

template <typename T>
void gather(const T* x, const int64_t* idx, T* y, int64_t outer, int64_t n, int64_t k,
            int64_t inner) {
  const int64_t total = outer * k * inner;
  if (total == 0) return;
  gather_kernel<T>
      <<<grid_for(total, kThreads), kThreads, 0, stream()>>>(x, idx, y, n, k, inner, total);
  SMYRF_CUDA_CHECK_LAUNCH();
}

template <typename T>
void index_add(T* y, const int64_t* idx, const T* src, int64_t outer, int64_t n, int64_t k,
               int64_t inner) {
  const int64_t total = outer * k * inner;
  if (total == 0) return;
  Scratch skeys(static_cast<size_t>(k) * sizeof(int64_t)),
      perm(static_cast<size_t>(k) * sizeof(int32_t));
  stable_argsort_small_keys(idx, 1, k, n, skeys.as<int64_t>(), perm.as<int32_t>());
  index_add_runs<T><<<grid_for(total, kThreads), kThreads, 0, stream()>>>(
      y, skeys.as<int64_t>(), perm.as<int32_t>(), src, n, k, inner, total);
  SMYRF_CUDA_CHECK_LAUNCH();
}

template <typename T>
void scatter_add(T* y, const int64_t* idx, const T* src, int64_t outer, int64_t n, int64_t k,
                 int64_t inner) {
  const int64_t total = outer * k * inner;
  if (total == 0) return;
  const size_t cnt = static_cast<size_t>(total);
  Scratch keys_t(cnt * sizeof(int64_t)), skeys(cnt * sizeof(int64_t)), perm(cnt * sizeof(int32_t));
  const int64_t* rows_keys = idx;
  if (inner != 1) {  // with inner == 1 the key rows are already contiguous
    columns_to_rows<<<grid_for(total, kThreads), kThreads, 0, stream()>>>(idx, keys_t.as<int64_t>(),
                                                                          k, inner, total);
    SMYRF_CUDA_CHECK_LAUNCH();
    rows_keys = keys_t.as<int64_t>();
  }
  stable_argsort_small_keys(rows_keys, outer * inner, k, n, skeys.as<int64_t>(),
                            perm.as<int32_t>());
  scatter_add_runs<T><<<grid_for(total, kThreads), kThreads, 0, stream()>>>(
      y, skeys.as<int64_t>(), perm.as<int32_t>(), src, n, k, inner, total);
  SMYRF_CUDA_CHECK_LAUNCH();
}

#define SMYRF_IDX_COPY(T)                                                                          \
  template void index_select<T>(const T*, const int64_t*, T*, int64_t, int64_t, int64_t, int64_t); \
  template void gather<T>(const T*, const int64_t*, T*, int64_t, int64_t, int64_t, int64_t);
#define SMYRF_IDX_ADD(T)                                                                        \
  template void index_add<T>(T*, const int64_t*, const T*, int64_t, int64_t, int64_t, int64_t); \
  template void scatter_add<T>(T*, const int64_t*, const T*, int64_t, int64_t, int64_t, int64_t);
SMYRF_IDX_COPY(bool)
SMYRF_IDX_COPY(int32_t)
SMYRF_IDX_COPY(int64_t)
SMYRF_IDX_COPY(float)
SMYRF_IDX_COPY(double)
SMYRF_IDX_ADD(int32_t)
SMYRF_IDX_ADD(int64_t)
SMYRF_IDX_ADD(float)
SMYRF_IDX_ADD(double)

}  // namespace smyrf::kernels::cuda
