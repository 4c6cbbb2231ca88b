#include "kernels/cpu/index.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/index_avx2.h"
#include "kernels/cpu/nd_loop.h"
#include "kernels/cpu/streaming_store.h"

namespace smyrf::kernels::cpu {

template <typename T>
void index_select(const T* x, const int64_t* idx, T* y, int64_t outer, int64_t n, int64_t k,
                  int64_t inner) {
  if (inner == 1) {  // along the last dim: a flat loop a row, not one memcpy call an element
                     // (4096^2 -> 4096 x 2048: 25-37 ms, against 1.4-2.7 along dim 0); 4-byte
                     // rows through gather's row kernel (its index check cannot fail here)
    const bool vec = sizeof(T) == 4 && k >= 16 && active_isa() == Isa::Avx2;
    const bool stream = vec && use_streaming_stores(outer * k * int64_t{sizeof(T)});
#pragma omp parallel if (outer * k >= kParallelGrain && outer > 1 && !omp_in_parallel())
    {
#pragma omp for
      for (int64_t o = 0; o < outer; ++o) {
        const T* xr = x + o * n;
        T* yr = y + o * k;
        if constexpr (sizeof(T) == 4) {
          if (vec) {
            avx2::gather_row_b32(reinterpret_cast<const uint32_t*>(xr), n, idx,
                                 reinterpret_cast<uint32_t*>(yr), k, stream);
            continue;
          }
        }
        for (int64_t i = 0; i < k; ++i) yr[i] = xr[idx[i]];
      }
      if (stream) streaming_store_fence();
    }
    return;
  }
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

namespace {
// Whether idx[0 .. count) all lie in [0, n): one branch-free pass (a block at a time, from L1
// right before the gather reads it again).
inline bool indices_in_range(const int64_t* idx, int64_t count, int64_t n) {
  const uint64_t bound = static_cast<uint64_t>(n);
  bool bad = false;
  for (int64_t i = 0; i < count; ++i) bad |= static_cast<uint64_t>(idx[i]) >= bound;
  return !bad;
}
constexpr int64_t kIndexBlock = 1024;
}  // namespace

template <typename T>
bool gather(const T* x, const int64_t* idx, T* y, int64_t outer, int64_t n, int64_t k,
            int64_t inner) {
  std::atomic<bool> ok{true};
  if (inner == 1) {  // along the last dim: one flat loop per row (the general nest's j loop of
                     // one trip and index arithmetic cost half the time of a 4096^2 gather)
    // 4-byte elements in rows of 16 and more: the AVX2 row kernel (index_avx2.h)
    const bool vec = sizeof(T) == 4 && k >= 16 && active_isa() == Isa::Avx2;
    const bool stream = vec && use_streaming_stores(outer * k * int64_t{sizeof(T)});
#pragma omp parallel if (outer * k >= kParallelGrain && !omp_in_parallel())
    {
#pragma omp for
      for (int64_t o = 0; o < outer; ++o) {
        if (!ok.load(std::memory_order_relaxed)) continue;
        const T* xr = x + o * n;
        const int64_t* ir = idx + o * k;
        T* yr = y + o * k;
        if constexpr (sizeof(T) == 4) {
          if (vec) {
            if (!avx2::gather_row_b32(reinterpret_cast<const uint32_t*>(xr), n, ir,
                                      reinterpret_cast<uint32_t*>(yr), k, stream))
              ok.store(false, std::memory_order_relaxed);
            continue;
          }
        }
        for (int64_t b = 0; b < k; b += kIndexBlock) {
          const int64_t e = std::min(k, b + kIndexBlock);
          if (!indices_in_range(ir + b, e - b, n)) {
            ok.store(false, std::memory_order_relaxed);
            break;
          }
          for (int64_t i = b; i < e; ++i) yr[i] = xr[ir[i]];
        }
      }
      if (stream) streaming_store_fence();
    }
    return ok.load();
  }
  // rows of `inner` indices (one per column j): checked a block at a time, then used
#pragma omp parallel for collapse(2) if (outer * k * inner >= kParallelGrain && !omp_in_parallel())
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < k; ++i) {
      const int64_t p = (o * k + i) * inner;
      const T* xo = x + o * n * inner;
      for (int64_t b = 0; b < inner; b += kIndexBlock) {
        const int64_t e = std::min(inner, b + kIndexBlock);
        if (!ok.load(std::memory_order_relaxed) || !indices_in_range(idx + p + b, e - b, n)) {
          ok.store(false, std::memory_order_relaxed);
          break;
        }
        for (int64_t j = b; j < e; ++j) y[p + j] = xo[idx[p + j] * inner + j];
      }
    }
  return ok.load();
}

template <typename T>
void scatter_add(T* y, const int64_t* idx, const T* src, int64_t outer, int64_t n, int64_t k,
                 int64_t inner) {
  if (inner == 1) {  // along the last dim: rows in index order, four indices loaded ahead (the
                     // adds stay in order; 15% off a 2048^2 scatter over the plain loop)
#pragma omp parallel for if (outer * k >= kParallelGrain && !omp_in_parallel())
    for (int64_t o = 0; o < outer; ++o) {
      T* yr = y + o * n;
      const int64_t* ir = idx + o * k;
      const T* sr = src + o * k;
      int64_t i = 0;
      for (; i + 4 <= k; i += 4) {
        const int64_t a = ir[i], b = ir[i + 1], c = ir[i + 2], d = ir[i + 3];
        yr[a] += sr[i];
        yr[b] += sr[i + 1];
        yr[c] += sr[i + 2];
        yr[d] += sr[i + 3];
      }
      for (; i < k; ++i) yr[ir[i]] += sr[i];
    }
    return;
  }
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

// A 32-bit key whose unsigned order is sort_rows' order for float / int32 values: IEEE bits
// with the sign folded (negative floats reversed), -0 as +0 (they compare equal), NaN above
// everything ascending; descending inverts the key, so NaN comes first. No branches (selects):
// the keys of short rows are computed in the selections' inner loops.
template <typename T>
inline uint32_t sort_key(T v, bool descending) {
  uint32_t k;
  if constexpr (std::is_same_v<T, float>) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    u = (u << 1) == 0 ? 0u : u;                                                    // -0 -> +0
    k = u ^ (static_cast<uint32_t>(static_cast<int32_t>(u) >> 31) | 0x80000000u);  // fold sign
    k = (u & 0x7FFFFFFFu) > 0x7F800000u ? 0xFFFFFFFFu : k;                         // NaN last
  } else {
    k = static_cast<uint32_t>(v) ^ 0x80000000u;
  }
  return descending ? ~k : k;
}

// (key << 32 | index): distinct for distinct indices, ordered as the stable sort orders entries.
template <typename T>
inline uint64_t keyed_entry(T v, int64_t i, bool descending) {
  return uint64_t(sort_key(v, descending)) << 32 | static_cast<uint64_t>(i);
}

// best[0..k) ascending: c goes to its place and the largest of the k + 1 drops off the end,
// through compare-selects only. Short rows' selections were bound by mispredicted branches
// (topk k = 1 of 4M rows of 4 floats: 32 ms by insertion with branches).
template <int K>
inline void insert_keyed(uint64_t* best, int64_t k, uint64_t c) {
  const int64_t kk = K > 0 ? K : k;
  for (int64_t j = 0; j < kk; ++j) {
    const uint64_t b = best[j];
    best[j] = b < c ? b : c;
    c = b < c ? c : b;
  }
}

// The k smallest keyed entries of row xr (n < 2^32), ascending, into best: every entry goes
// through insert_keyed.
template <int K, typename T>
void select_keyed(const T* xr, int64_t n, int64_t k, bool largest, uint64_t* best) {
  std::fill(best, best + k, ~uint64_t{0});
  for (int64_t i = 0; i < n; ++i) insert_keyed<K>(best, k, keyed_entry(xr[i], i, largest));
}

// The k smallest keyed entries of a long row xr (n < 2^32), ascending, into best: the first k
// entries seed them, then only entries whose key lies below the current k-th key are looked at
// (eight keys a compare under AVX2, index_avx2.h first_key_below_*); k <= kTopkInsertMax keep a
// sorted array (insert_keyed), larger k a max-heap (O(log k) an insertion, even on sorted input).
// The value insertion it replaces compared each entry with a branch and NaN checks, and k > 16
// took a partial sort of an index array: 64 rows of 50000 floats (an LM's top-k sampling),
// k = 5 / 50 / 200: 2.1 / 3.9 / 6.6 ms against PyTorch's 1.3 / 2.2 / 4.3.
template <typename T>
void select_long_keyed(const T* xr, int64_t n, int64_t k, bool largest, bool vec, uint64_t* best) {
  const bool heap = k > kTopkInsertMax;
  int64_t i = 0;
  if (heap) {
    for (; i < k; ++i) best[i] = keyed_entry(xr[i], i, largest);
    std::make_heap(best, best + k);
  } else {
    std::fill(best, best + k, ~uint64_t{0});
    for (; i < k; ++i) insert_keyed<0>(best, k, keyed_entry(xr[i], i, largest));
  }
  while (i < n) {
    // an entry whose key equals the k-th's comes later, so it loses the tie: strictly below
    const uint32_t thr = static_cast<uint32_t>((heap ? best[0] : best[k - 1]) >> 32);
    if (vec) {
      if constexpr (std::is_same_v<T, float>)
        i = avx2::first_key_below_f32(xr, i, n, thr, largest);
      else
        i = avx2::first_key_below_i32(xr, i, n, thr, largest);
    } else {
      while (i < n && sort_key(xr[i], largest) >= thr) ++i;
    }
    if (i >= n) break;
    const uint64_t c = keyed_entry(xr[i], i, largest);
    if (heap) {
      std::pop_heap(best, best + k);
      best[k - 1] = c;
      std::push_heap(best, best + k);
    } else {
      insert_keyed<0>(best, k, c);
    }
    ++i;
  }
  if (heap) std::sort_heap(best, best + k);
}

// Whether select_keyed (every entry through insert_keyed) beats select_long_keyed (a vector
// scan for the entries below the k-th key, then an insertion), 2 threads, 16M floats, ms,
// interleaved twice: k = 1 of 8: 10 / 124, of 32: 9.4 / 29, of 64: 10.3 / 16.5, of 128:
// 10.4 / 10.8; k = 2 of 128: 11.9 / 13.2, of 256: 11.6 / 8.1; k = 4 of 16: 34.6 / 78.7, of 64:
// 31.4 / 29.3; k = 8 of 32: 51.8 / 66.2, of 64: 50.6 / 43.2.
inline bool select_branchless(int64_t n, int64_t k) { return n <= 32 || n * k <= 256; }

// Stable LSD radix sort of v[0..n) by the high 32 bits (four passes of 8 bits, through tmp):
// entries with equal keys keep their order, i.e. their index order. Rows of 64 and more use it;
// std::sort of the 64-bit (key, index) values was bound by mispredicted branches (65536 rows of
// 256 floats: 364-396 ms).
constexpr int64_t kRadixMin = 64;
// Rows up to this long are sorted by select_keyed (an insertion sort through compare-selects,
// n^2 / 2 of them): std::sort's branches cost more there (4M rows of 4 floats: 69 ms).
constexpr int kSelectSortMax = 16;
inline void radix_sort_high32(uint64_t* v, uint64_t* tmp, int64_t n) {
  for (int shift = 32; shift < 64; shift += 8) {
    int64_t count[257] = {};
    for (int64_t i = 0; i < n; ++i) ++count[(v[i] >> shift & 0xFF) + 1];
    if (count[(v[0] >> shift & 0xFF) + 1] == n) continue;  // one digit for all: nothing moves
    for (int d = 0; d < 256; ++d) count[d + 1] += count[d];
    for (int64_t i = 0; i < n; ++i) tmp[count[v[i] >> shift & 0xFF]++] = v[i];
    std::copy(tmp, tmp + n, v);
  }
}

// select_keyed with k = n, the length known to the compiler (unrolled, the k sorted keys in
// registers): 4M rows of 4 floats 51 -> 26 ms against a runtime length.
template <typename T, int... Ns>
void sort_short_row(const T* xr, int64_t n, bool descending, uint64_t* keys,
                    std::integer_sequence<int, Ns...>) {
  ((n == Ns ? select_keyed<Ns>(xr, n, n, descending, keys) : void()), ...);
}

template <typename T>
void sort_rows(const T* x, T* values, int64_t* indices, int64_t rows, int64_t n, bool descending) {
  // float and int32 rows (of fewer than 2^32 entries): sort (key << 32 | index) as plain 64-bit
  // integers, ties ordered by index as the stable sort orders them. The index sort with a
  // comparator that looked both values up took 550-612 ms for 65536 rows of 256 floats; keyed,
  // 121-220 ms (radix) and 364-396 ms (std::sort). Short rows: see kSelectSortMax.
  constexpr bool kKeyed = std::is_same_v<T, float> || std::is_same_v<T, int32_t>;
  const bool keyed = kKeyed && n <= int64_t(0xFFFFFFFF);
#pragma omp parallel if (rows > 1 && rows * n >= kParallelGrain && !omp_in_parallel())
  {
    std::vector<uint64_t> keys(keyed ? static_cast<size_t>(n) : 0);
    std::vector<uint64_t> tmp(keyed && n >= kRadixMin ? static_cast<size_t>(n) : 0);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * n;
      int64_t* ir = indices + r * n;
      if constexpr (kKeyed) {
        if (keyed) {
          if (n <= kSelectSortMax) {
            sort_short_row(xr, n, descending, keys.data(),
                           std::make_integer_sequence<int, kSelectSortMax + 1>{});
          } else {
            for (int64_t i = 0; i < n; ++i) keys[i] = keyed_entry(xr[i], i, descending);
            if (n >= kRadixMin)
              radix_sort_high32(keys.data(), tmp.data(), n);
            else
              std::sort(keys.begin(), keys.end());
          }
          for (int64_t i = 0; i < n; ++i) {
            ir[i] = static_cast<int64_t>(keys[i] & 0xFFFFFFFFu);
            values[r * n + i] = xr[ir[i]];
          }
          continue;
        }
      }
      std::iota(ir, ir + n, int64_t{0});
      std::stable_sort(ir, ir + n,
                       [&](int64_t a, int64_t b) { return sorts_before(xr, a, b, descending); });
      for (int64_t i = 0; i < n; ++i) values[r * n + i] = xr[ir[i]];
    }
  }
}

template <typename T>
void topk_rows(const T* x, T* values, int64_t* indices, int64_t rows, int64_t n, int64_t k,
               bool largest) {
  if (k <= 0) return;
  constexpr bool kKeyed = std::is_same_v<T, float> || std::is_same_v<T, int32_t>;
  if constexpr (kKeyed) {
    if (k <= kTopkInsertMax && n <= int64_t(0xFFFFFFFF) && select_branchless(n, k)) {
      // short rows: compare-selects; longer ones below: select_long_keyed's vector scan
#pragma omp parallel for if (rows > 1 && rows * n >= kParallelGrain && !omp_in_parallel()) \
    schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * n;
        uint64_t best[kTopkInsertMax];
        if (k == 1)
          select_keyed<1>(xr, n, k, largest, best);
        else if (k == 2)
          select_keyed<2>(xr, n, k, largest, best);
        else
          select_keyed<0>(xr, n, k, largest, best);
        for (int64_t i = 0; i < k; ++i) {
          const int64_t at = static_cast<int64_t>(best[i] & 0xFFFFFFFFu);
          values[r * k + i] = xr[at];
          indices[r * k + i] = at;
        }
      }
      return;
    }
    if (n <= int64_t(0xFFFFFFFF)) {
      const bool vec = active_isa() == Isa::Avx2;
#pragma omp parallel if (rows > 1 && rows * n >= kParallelGrain && !omp_in_parallel())
      {
        std::vector<uint64_t> best(static_cast<size_t>(k));
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
          const T* xr = x + r * n;
          select_long_keyed(xr, n, k, largest, vec, best.data());
          for (int64_t i = 0; i < k; ++i) {
            const int64_t at = static_cast<int64_t>(best[i] & 0xFFFFFFFFu);
            values[r * k + i] = xr[at];
            indices[r * k + i] = at;
          }
        }
      }
      return;
    }
  }
  if (k <= kTopkInsertMax) {
    // Insertion into the best k so far: one comparison per entry that does not make the cut (the
    // common case), k at most for one that does. Element i comes after every kept entry it ties
    // with, so the order is (value, index) as the stable sort's. The partial sort over an index
    // array cost ~30 ns a row on short rows (topk k = 1 of 4M rows of 4 went through a full
    // sort: 121 ms, PyTorch 96).
#pragma omp parallel for if (rows > 1 && rows * n >= kParallelGrain && !omp_in_parallel()) \
    schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * n;
      int64_t best[kTopkInsertMax];
      int64_t kept = 0;
      for (int64_t i = 0; i < n; ++i) {
        int64_t pos;
        if (kept == k) {
          if (!sorts_before(xr, i, best[k - 1], largest)) continue;
          pos = k - 1;
        } else {
          pos = kept++;
        }
        for (; pos > 0 && sorts_before(xr, i, best[pos - 1], largest); --pos)
          best[pos] = best[pos - 1];
        best[pos] = i;
      }
      for (int64_t i = 0; i < k; ++i) {
        values[r * k + i] = xr[best[i]];
        indices[r * k + i] = best[i];
      }
    }
    return;
  }
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
  template bool gather<T>(const T*, const int64_t*, T*, int64_t, int64_t, int64_t, int64_t);       \
  template void scatter_add<T>(T*, const int64_t*, const T*, int64_t, int64_t, int64_t, int64_t);  \
  template void sort_rows<T>(const T*, T*, int64_t*, int64_t, int64_t, bool);                      \
  template void topk_rows<T>(const T*, T*, int64_t*, int64_t, int64_t, int64_t, bool);
SMYRF_INSTANTIATE_INDEX(int32_t)
SMYRF_INSTANTIATE_INDEX(int64_t)
SMYRF_INSTANTIATE_INDEX(float)
SMYRF_INSTANTIATE_INDEX(double)

template void index_select<bool>(const bool*, const int64_t*, bool*, int64_t, int64_t, int64_t,
                                 int64_t);
template bool gather<bool>(const bool*, const int64_t*, bool*, int64_t, int64_t, int64_t, int64_t);

}  // namespace smyrf::kernels::cpu
