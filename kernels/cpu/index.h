// Indexing kernels on contiguous buffers viewed as (outer, n, inner) around the indexed dim.
// Indices are validated by the caller (core/) before these run.
#pragma once
#include <cstdint>

namespace smyrf::kernels::cpu {

// y (outer, k, inner) = x (outer, n, inner) at idx (k) along the middle dim.
template <typename T>
void index_select(const T* x, const int64_t* idx, T* y, int64_t outer, int64_t n, int64_t k,
                  int64_t inner);
// y (outer, n, inner) += src (outer, k, inner) at idx (k); sequential over k (deterministic).
template <typename T>
void index_add(T* y, const int64_t* idx, const T* src, int64_t outer, int64_t n, int64_t k,
               int64_t inner);
// y (outer, k, inner)[o, i, j] = x (outer, n, inner)[o, idx[o, i, j], j]. Unlike the other
// kernels here it checks the indices itself, as it reads them (a separate pass over an int64
// index was a quarter of a 2048^2 gather): false, with y partly written and nothing read out of
// bounds, when one lies outside [0, n); the caller then raises the error.
template <typename T>
bool gather(const T* x, const int64_t* idx, T* y, int64_t outer, int64_t n, int64_t k,
            int64_t inner);
// y (outer, n, inner)[o, idx[o, i, j], j] += src (outer, k, inner)[o, i, j]; deterministic.
template <typename T>
void scatter_add(T* y, const int64_t* idx, const T* src, int64_t outer, int64_t n, int64_t k,
                 int64_t inner);
// Stable sort of each contiguous row of length n; NaN sorts as the largest value.
template <typename T>
void sort_rows(const T* x, T* values, int64_t* indices, int64_t rows, int64_t n, bool descending);
// The first k entries of sort_rows' result for each row (values and indices: rows x k): for
// k <= kTopkInsertMax by insertion into the best k (O(n) a row on typical data, O(n k) at worst),
// otherwise by a partial sort, O(n log k) a row instead of O(n log n). Ties keep index order, as
// the stable sort does.
constexpr int64_t kTopkInsertMax = 16;
template <typename T>
void topk_rows(const T* x, T* values, int64_t* indices, int64_t rows, int64_t n, int64_t k,
               bool largest);

}  // namespace smyrf::kernels::cpu
