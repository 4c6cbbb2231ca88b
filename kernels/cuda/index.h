// CUDA indexing and sorting kernels on contiguous device buffers viewed as (outer, n, inner)
// around the indexed dim: the interface and semantics of kernels/cpu/index.h. Indices are
// validated by the caller (core/).
//
// Deterministic without atomics: index_add and scatter_add first sort the indices of each
// destination column (CUB radix sort, stable), then one thread per distinct destination adds its
// sources in their original order, starting from the destination's value: exactly the order of
// the CPU's sequential loop, so results are run-to-run identical and equal to the CPU up to the
// float rounding of identical operations (bit-equal unless the compiler contracts differently).
// Queued on the current stream; scratch memory comes from the caching allocator.
//
// Status: ran on an NVIDIA H200 on 2026-11-28 (tests/cuda, all passing; scripts/gpu-check).
#pragma once
#include <cstdint>

namespace smyrf::kernels::cuda {

// Whether every one of the `count` indices lies in [0, bound) or equals `exempt` (when
// has_exempt: cross-entropy's ignore_index): one flag reduced on the device and a 4-byte read back
// (synchronises the stream), instead of copying the indices to the host.
// Written 2026-11-30 on a machine without a GPU: compiled, not yet run on one.
bool indices_in_range(const int64_t* idx, int64_t count, int64_t bound, bool has_exempt = false,
                      int64_t exempt = 0);

// bool, int32_t, int64_t, float, double
template <typename T>
void index_select(const T* x, const int64_t* idx, T* y, int64_t outer, int64_t n, int64_t k,
                  int64_t inner);
template <typename T>
void gather(const T* x, const int64_t* idx, T* y, int64_t outer, int64_t n, int64_t k,
            int64_t inner);
// int32_t, int64_t, float, double
template <typename T>
void index_add(T* y, const int64_t* idx, const T* src, int64_t outer, int64_t n, int64_t k,
               int64_t inner);
template <typename T>
void scatter_add(T* y, const int64_t* idx, const T* src, int64_t outer, int64_t n, int64_t k,
                 int64_t inner);
// Stable sort of each contiguous row of length n (CUB segmented radix sort); NaN sorts as the
// largest value, -0.0 and +0.0 compare equal (they keep their order). int32_t, int64_t, float,
// double. rows * n must be below 2^31.
template <typename T>
void sort_rows(const T* x, T* values, int64_t* indices, int64_t rows, int64_t n, bool descending);

namespace detail {
// For each of `rows` rows of k int64 keys in [0, key_bound), the positions 0..k-1 stably sorted
// by key (perm) and the sorted keys. Defined in sort.cu (the only CUB translation unit).
void stable_argsort_small_keys(const int64_t* keys, int64_t rows, int64_t k, int64_t key_bound,
                               int64_t* sorted_keys, int32_t* perm);
// Two sets of rows of double keys in one buffer: rows_a rows of n_a keys, then rows_b rows of
// n_b. For each row, the positions 0..n-1 stably sorted by key, into order_a (rows_a x n_a) and
// order_b (rows_b x n_b). One sort for both sets (SMYRF's query and key hashes of every head and
// round). Keys must not be NaN (+inf is allowed and sorts last: SMYRF uses it for padding).
void stable_argsort_double_row_sets(const double* keys, int64_t rows_a, int64_t n_a, int64_t rows_b,
                                    int64_t n_b, int32_t* order_a, int32_t* order_b);
}  // namespace detail

}  // namespace smyrf::kernels::cuda
