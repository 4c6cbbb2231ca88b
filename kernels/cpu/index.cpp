#include "kernels/cpu/index.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

#include "kernels/cpu/nd_loop.h"

namespace smyrf::kernels::cpu {

template <typename T>
void index_select(const T* x, const int64_t* idx, T* y, int64_t outer, int64_t n, int64_t k,
                  int64_t inner) {
#pragma omp parallel for collapse(2) if (outer * k * inner >= kParallelGrain && !omp_in_parallel())
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < k; ++i)
      std::memcpy(y + (o * k + i) * inner, x + (o * n + idx[i]) * inner, sizeof(T) * inner);
}

template <typename T>
void index_add(T* y, const int64_t* idx, const T* src, int64_t outer, int64_t n, int64_t k,
               int64_t inner) {
#pragma omp parallel for if (outer * k * inner >= kParallelGrain && outer > 1 && !omp_in_parallel())
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < k; ++i) {
      T* yr = y + (o * n + idx[i]) * inner;
      const T* sr = src + (o * k + i) * inner;
      for (int64_t j = 0; j < inner; ++j) yr[j] += sr[j];
    }
}

template <typename T>
void gather(const T* x, const int64_t* idx, T* y, int64_t outer, int64_t n, int64_t k,
            int64_t inner) {
#pragma omp parallel for collapse(2) if (outer * k * inner >= kParallelGrain && !omp_in_parallel())
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < inner; ++j) {
        int64_t p = (o * k + i) * inner + j;
        y[p] = x[(o * n + idx[p]) * inner + j];
      }
}

template <typename T>
void scatter_add(T* y, const int64_t* idx, const T* src, int64_t outer, int64_t n, int64_t k,
                 int64_t inner) {
  // parallel over (outer, inner) columns; each column is summed in index order
#pragma omp parallel for collapse(2) if (outer * k * inner >= kParallelGrain && !omp_in_parallel())
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; ++j)
      for (int64_t i = 0; i < k; ++i) {
        int64_t p = (o * k + i) * inner + j;
        y[(o * n + idx[p]) * inner + j] += src[p];
      }
}

// Whether entry a of row xr comes before entry b in sort order: ascending or descending, NaN as
// the largest value. Equal entries are unordered (the sorts make them stable).
template <typename T>
inline bool sorts_before(const T* xr, int64_t a, int64_t b, bool descending) {
  T va = xr[a], vb = xr[b];
  if constexpr (std::is_floating_point_v<T>) {
    bool na = std::isnan(va), nb = std::isnan(vb);
    if (na || nb) return descending ? (na && !nb) : (!na && nb);
  }
  return descending ? va > vb : va < vb;
}

template <typename T>
void sort_rows(const T* x, T* values, int64_t* indices, int64_t rows, int64_t n, bool descending) {
#pragma omp parallel for if (rows > 1 && rows * n >= kParallelGrain && !omp_in_parallel())
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    int64_t* ir = indices + r * n;
    std::iota(ir, ir + n, int64_t{0});
    std::stable_sort(ir, ir + n,
                     [&](int64_t a, int64_t b) { return sorts_before(xr, a, b, descending); });
    for (int64_t i = 0; i < n; ++i) values[r * n + i] = xr[ir[i]];
  }
}

template <typename T>
void topk_rows(const T* x, T* values, int64_t* indices, int64_t rows, int64_t n, int64_t k,
               bool largest) {
#pragma omp parallel if (rows > 1 && rows * n >= kParallelGrain && !omp_in_parallel())
  {
    std::vector<int64_t> ir(static_cast<size_t>(n));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * n;
      std::iota(ir.begin(), ir.end(), int64_t{0});
      // (value order, then index order): a strict order whose first k are the stable sort's
      std::partial_sort(ir.begin(), ir.begin() + k, ir.end(), [&](int64_t a, int64_t b) {
        if (sorts_before(xr, a, b, largest)) return true;
        if (sorts_before(xr, b, a, largest)) return false;
        return a < b;
      });
      for (int64_t i = 0; i < k; ++i) {
        values[r * k + i] = xr[ir[i]];
        indices[r * k + i] = ir[i];
      }
    }
  }
}

#define SMYRF_INSTANTIATE_INDEX(T)                                                                 \
  template void index_select<T>(const T*, const int64_t*, T*, int64_t, int64_t, int64_t, int64_t); \
  template void index_add<T>(T*, const int64_t*, const T*, int64_t, int64_t, int64_t, int64_t);    \
  template void gather<T>(const T*, const int64_t*, T*, int64_t, int64_t, int64_t, int64_t);       \
  template void scatter_add<T>(T*, const int64_t*, const T*, int64_t, int64_t, int64_t, int64_t);  \
  template void sort_rows<T>(const T*, T*, int64_t*, int64_t, int64_t, bool);                      \
  template void topk_rows<T>(const T*, T*, int64_t*, int64_t, int64_t, int64_t, bool);
SMYRF_INSTANTIATE_INDEX(int32_t)
SMYRF_INSTANTIATE_INDEX(int64_t)
SMYRF_INSTANTIATE_INDEX(float)
SMYRF_INSTANTIATE_INDEX(double)

template void index_select<bool>(const bool*, const int64_t*, bool*, int64_t, int64_t, int64_t,
                                 int64_t);
template void gather<bool>(const bool*, const int64_t*, bool*, int64_t, int64_t, int64_t, int64_t);

}  // namespace smyrf::kernels::cpu
