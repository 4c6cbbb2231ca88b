// Sorting through CUB radix sort: the only translation unit that includes CUB (its headers are
// heavy; keeping them here keeps nvcc time down). Radix sort is stable, ascending and descending.
// Status: ran on an NVIDIA H200 on 2026-11-29 (tests/cuda, all passing; scripts/gpu-check), with
// stable_argsort_double_rows (one row set); the two-set form stable_argsort_double_row_sets
// ran on an NVIDIA H200 on 2026-11-30 (tests/cuda 42/42 passing; scripts/gpu-check).
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>

#include <climits>
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/allocator.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/index.h"

namespace smyrf::kernels::cuda {
namespace {
using namespace detail;
constexpr int kThreads = 256;

// Radix sort orders keys by their bits: -0.0 would precede +0.0 and a NaN with the sign bit set
// would sort below -inf. Canonical keys (one +NaN, +0.0) give the CPU's order: NaN largest, signed
// zeros equal (kept in order by stability). The sorted values are gathered from x afterwards.
template <typename T>
__global__ void prepare_keys(const T* x, T* keys, int64_t* vals, int64_t n, int64_t total) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += step) {
    T v = x[i];
    if constexpr (std::is_floating_point_v<T>) {
      if (v != v)
        v = static_cast<T>(NAN);
      else if (v == T(0))
        v = T(0);
    }
    keys[i] = v;
    vals[i] = i % n;
  }
}

template <typename V>
__global__ void iota_rows(V* vals, int64_t n, int64_t total) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += step)
    vals[i] = static_cast<V>(i % n);
}

// Two sets of rows in one flat index space: [0, a_items) are rows of n_a, the rest rows of n_b.
struct RowSets {
  int64_t a_items, n_a, n_b;
  __device__ int64_t row(int64_t i) const {
    return i < a_items ? i / n_a : (n_a > 0 ? a_items / n_a : 0) + (i - a_items) / n_b;
  }
};

// rowk[i] = the row of flat index idx[i].
__global__ void row_of(const int32_t* idx, int64_t* rowk, RowSets sets, int64_t total) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += step)
    rowk[i] = sets.row(idx[i]);
}

// The position within its row of flat index idx[i], into out_a[i] for the first set's slots and
// out_b[i - a_items] for the second's (idx is sorted by row, so slot i holds a row of the same
// set as index i).
__global__ void position_in_row(const int32_t* idx, int32_t* out_a, int32_t* out_b, RowSets sets,
                                int64_t total) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += step) {
    const int64_t j = idx[i];
    if (i < sets.a_items)
      out_a[i] = static_cast<int32_t>(j % sets.n_a);
    else
      out_b[i - sets.a_items] = static_cast<int32_t>((j - sets.a_items) % sets.n_b);
  }
}

__global__ void row_offsets(int* off, int64_t rows, int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r <= rows;
       r += step)
    off[r] = static_cast<int>(r * n);
}

template <typename T>
__global__ void gather_sorted(const T* x, const int64_t* idx, T* values, int64_t n, int64_t total) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += step)
    values[i] = x[(i / n) * n + idx[i]];
}

void check_cub(cudaError_t err, const char* what, const char* file, int line) {
  if (err != cudaSuccess) throw_cuda(err, what, file, line);
}
#define SMYRF_CUB_CHECK(call) check_cub((call), #call, __FILE__, __LINE__)

// Sorts (keys, vals) rows of length n: one radix sort when there is one row, a segmented one
// otherwise. bits limits the key bits examined (small index keys need few passes).
template <typename K, typename V>
void sort_pairs(const K* kin, K* kout, const V* vin, V* vout, int64_t rows, int64_t n,
                bool descending, int end_bit) {
  const int64_t total = rows * n;
  cudaStream_t st = stream();
  size_t bytes = 0;
  if (rows == 1) {
    auto run = [&](void* tmp) {
      if (descending)
        SMYRF_CUB_CHECK(cub::DeviceRadixSort::SortPairsDescending(tmp, bytes, kin, kout, vin, vout,
                                                                  total, 0, end_bit, st));
      else
        SMYRF_CUB_CHECK(cub::DeviceRadixSort::SortPairs(tmp, bytes, kin, kout, vin, vout, total, 0,
                                                        end_bit, st));
    };
    run(nullptr);
    Scratch tmp(bytes);
    run(tmp.p);
    return;
  }
  Scratch offs(static_cast<size_t>(rows + 1) * sizeof(int));
  int* off = static_cast<int*>(offs.p);
  row_offsets<<<grid_for(rows + 1, kThreads), kThreads, 0, st>>>(off, rows, n);
  SMYRF_CUDA_CHECK_LAUNCH();
  const int items = static_cast<int>(total), segs = static_cast<int>(rows);
  auto run = [&](void* tmp) {
    if (descending)
      SMYRF_CUB_CHECK(cub::DeviceSegmentedRadixSort::SortPairsDescending(
          tmp, bytes, kin, kout, vin, vout, items, segs, off, off + 1, 0, end_bit, st));
    else
      SMYRF_CUB_CHECK(cub::DeviceSegmentedRadixSort::SortPairs(
          tmp, bytes, kin, kout, vin, vout, items, segs, off, off + 1, 0, end_bit, st));
  };
  run(nullptr);
  Scratch tmp(bytes);
  run(tmp.p);
}
}  // namespace

template <typename T>
void sort_rows(const T* x, T* values, int64_t* indices, int64_t rows, int64_t n, bool descending) {
  const int64_t total = rows * n;
  if (total == 0) return;
  if (total >= INT_MAX) throw std::runtime_error("[cuda] sort: rows * n must be below 2^31");
  Scratch keys(static_cast<size_t>(total) * sizeof(T)),
      skeys(static_cast<size_t>(total) * sizeof(T)),
      vals(static_cast<size_t>(total) * sizeof(int64_t));
  prepare_keys<T><<<grid_for(total, kThreads), kThreads, 0, stream()>>>(
      x, static_cast<T*>(keys.p), static_cast<int64_t*>(vals.p), n, total);
  SMYRF_CUDA_CHECK_LAUNCH();
  sort_pairs<T, int64_t>(static_cast<T*>(keys.p), static_cast<T*>(skeys.p),
                         static_cast<int64_t*>(vals.p), indices, rows, n, descending,
                         static_cast<int>(sizeof(T) * 8));
  gather_sorted<T>
      <<<grid_for(total, kThreads), kThreads, 0, stream()>>>(x, indices, values, n, total);
  SMYRF_CUDA_CHECK_LAUNCH();
}

namespace detail {
void stable_argsort_small_keys(const int64_t* keys, int64_t rows, int64_t k, int64_t key_bound,
                               int64_t* sorted_keys, int32_t* perm) {
  const int64_t total = rows * k;
  if (total == 0) return;
  if (total >= INT_MAX)
    throw std::runtime_error("[cuda] index_add/scatter_add: more than 2^31 indices");
  int bits = 1;  // keys are in [0, key_bound): only their low bits need radix passes
  while (bits < 63 && (int64_t{1} << bits) < key_bound) ++bits;
  Scratch vals(static_cast<size_t>(total) * sizeof(int32_t));
  iota_rows<int32_t><<<grid_for(total, kThreads), kThreads, 0, stream()>>>(
      static_cast<int32_t*>(vals.p), k, total);
  SMYRF_CUDA_CHECK_LAUNCH();
  sort_pairs<int64_t, int32_t>(keys, sorted_keys, static_cast<int32_t*>(vals.p), perm, rows, k,
                               false, bits);
}

void stable_argsort_double_row_sets(const double* keys, int64_t rows_a, int64_t n_a, int64_t rows_b,
                                    int64_t n_b, int32_t* order_a, int32_t* order_b) {
  const RowSets sets{rows_a * n_a, n_a, n_b};
  const int64_t total = rows_a * n_a + rows_b * n_b, rows = rows_a + rows_b;
  if (total == 0) return;
  if (total >= INT_MAX) throw std::runtime_error("[cuda] argsort: rows * n must be below 2^31");
  // All rows sorted as one array, then stably by row: a segmented sort runs one block per row,
  // which left 32 rows of 16384 keys (SMYRF's 8 heads x 4 rounds, a side) on 32 of an H200's 132
  // SMs for 11 passes of 32 us each. Both sorts are stable, so equal keys keep their index order
  // within a row.
  const size_t n_items = static_cast<size_t>(total);
  Scratch idx(n_items * sizeof(int32_t)), sidx(n_items * sizeof(int32_t)),
      skeys(n_items * sizeof(double));
  int32_t* const gidx = static_cast<int32_t*>(idx.p);
  int32_t* const gsorted = static_cast<int32_t*>(sidx.p);
  iota_rows<int32_t><<<grid_for(total, kThreads), kThreads, 0, stream()>>>(gidx, total, total);
  SMYRF_CUDA_CHECK_LAUNCH();
  sort_pairs<double, int32_t>(keys, static_cast<double*>(skeys.p), gidx, gsorted, 1, total, false,
                              64);
  int32_t* by_row = gsorted;
  if (rows > 1) {
    Scratch rowk(n_items * sizeof(int64_t)), srowk(n_items * sizeof(int64_t));
    row_of<<<grid_for(total, kThreads), kThreads, 0, stream()>>>(
        gsorted, static_cast<int64_t*>(rowk.p), sets, total);
    SMYRF_CUDA_CHECK_LAUNCH();
    int bits = 1;  // row ids are below rows: only their low bits need radix passes
    while (bits < 62 && (int64_t{1} << bits) < rows) ++bits;
    // int64 row keys: the instantiation the index sorts already compile (CUB is slow to compile)
    sort_pairs<int64_t, int32_t>(static_cast<int64_t*>(rowk.p), static_cast<int64_t*>(srowk.p),
                                 gsorted, gidx, 1, total, false, bits);
    by_row = gidx;
  }
  position_in_row<<<grid_for(total, kThreads), kThreads, 0, stream()>>>(by_row, order_a, order_b,
                                                                        sets, total);
  SMYRF_CUDA_CHECK_LAUNCH();
}
}  // namespace detail

template void sort_rows<int32_t>(const int32_t*, int32_t*, int64_t*, int64_t, int64_t, bool);
template void sort_rows<int64_t>(const int64_t*, int64_t*, int64_t*, int64_t, int64_t, bool);
template void sort_rows<float>(const float*, float*, int64_t*, int64_t, int64_t, bool);
template void sort_rows<double>(const double*, double*, int64_t*, int64_t, int64_t, bool);

}  // namespace smyrf::kernels::cuda
