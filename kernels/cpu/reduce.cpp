#include "kernels/cpu/reduce.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/nd_loop.h"
#include "kernels/cpu/reduce_avx2.h"
#include "kernels/cpu/short_rows.h"
#include "kernels/cpu/short_rows_avx2.h"

namespace smyrf::kernels::cpu {
namespace {

template <typename T>
using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

// offset of flat index `i` in an index space given by sizes/strides
inline int64_t offset_of(int64_t i, int ndim, const int64_t* sizes, const int64_t* strides) {
  int64_t off = 0;
  for (int d = ndim - 1; d >= 0; --d) {
    off += (i % sizes[d]) * strides[d];
    i /= sizes[d];
  }
  return off;
}

template <typename T>
T reduce_one(ReduceOp op, int red_ndim, const int64_t* red_sizes, const int64_t* red_strides,
             const T* base, bool vec) {
  int64_t inner_n = red_ndim ? red_sizes[red_ndim - 1] : 1;
  int64_t inner_s = red_ndim ? red_strides[red_ndim - 1] : 0;
  int64_t outer_n = 1;
  for (int d = 0; d + 1 < red_ndim; ++d) outer_n *= red_sizes[d];
  Acc<T> acc;
  T best{};
  bool have = false;
  if (op == ReduceOp::Sum) acc = 0;
  if (op == ReduceOp::Prod) acc = 1;
  for (int64_t o = 0; o < outer_n; ++o) {
    const T* p = base + (red_ndim > 1 ? offset_of(o, red_ndim - 1, red_sizes, red_strides) : 0);
    if constexpr (std::is_same_v<T, float>) {
      if (vec && inner_s == 1 && op == ReduceOp::Sum) {
        acc += avx2::sum_f32(p, inner_n);
        continue;
      }
      if (vec && inner_s == 1 && op == ReduceOp::Prod) {
        acc *= avx2::prod_f32(p, inner_n);
        continue;
      }
      if (vec && inner_s == 1 && (op == ReduceOp::Max || op == ReduceOp::Min)) {
        float v = avx2::maxmin_f32(p, inner_n, op == ReduceOp::Max);
        if (!have || std::isnan(v) || (op == ReduceOp::Max ? v > best : v < best)) best = v;
        if (std::isnan(best)) return best;
        have = true;
        continue;
      }
    }
    // contiguous sums and products without the per-element switch: integer sums vectorise, and
    // products run four chains (a chain of dependent multiplies bounded them; 4096^2 prod over
    // rows 8.1 ms against PyTorch's 1.2, int64 sum 5.9 against 2.5)
    if constexpr (std::is_same_v<T, double>) {
      if (vec && inner_s == 1 && op == ReduceOp::Sum) {
        acc += avx2::sum_f64(p, inner_n);
        continue;
      }
    }
    if (inner_s == 1 && op == ReduceOp::Sum) {
      if constexpr (std::is_floating_point_v<T>) {
        // eight chains: one chain of dependent double adds ran at an add's latency a term
        // (float64 4096^2 over rows 9.5-12 ms, PyTorch 8)
        double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t i = 0;
        for (; i + 8 <= inner_n; i += 8)
          for (int k = 0; k < 8; ++k) a[k] += static_cast<double>(p[i + k]);
        for (; i < inner_n; ++i) a[0] += static_cast<double>(p[i]);
        acc += ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
      } else {
        for (int64_t i = 0; i < inner_n; ++i) acc += static_cast<Acc<T>>(p[i]);
      }
      continue;
    }
    if (inner_s == 1 && inner_n > 0 && (op == ReduceOp::Max || op == ReduceOp::Min)) {
      // branch-free running max / min (the first NaN decides the result: tracked on the side)
      const bool mx = op == ReduceOp::Max;
      T m = p[0];
      bool nan = false;
      int64_t i0 = 0;
      if constexpr (std::is_integral_v<T>) {
        // integers: four independent chains (one chain waited on the compare and select of the
        // previous element: int64 4096 x 2048 over rows 0.57x PyTorch); exact in any order
        T m4[4] = {m, m, m, m};
        for (; i0 + 4 <= inner_n; i0 += 4)
          for (int k = 0; k < 4; ++k)
            m4[k] = (mx ? p[i0 + k] > m4[k] : p[i0 + k] < m4[k]) ? p[i0 + k] : m4[k];
        for (int k = 0; k < 4; ++k) m = (mx ? m4[k] > m : m4[k] < m) ? m4[k] : m;
      }
      for (int64_t i = i0; i < inner_n; ++i) {
        const T v = p[i];
        if constexpr (std::is_floating_point_v<T>) nan |= v != v;
        m = (mx ? v > m : v < m) ? v : m;
      }
      if constexpr (std::is_floating_point_v<T>) {
        if (nan) {
          for (int64_t i = 0; i < inner_n; ++i)
            if (std::isnan(p[i])) return p[i];
        }
      }
      if (!have || (mx ? m > best : m < best)) best = m;
      have = true;
      continue;
    }
    if (inner_s == 1 && op == ReduceOp::Prod) {
      Acc<T> a0 = 1, a1 = 1, a2 = 1, a3 = 1;
      int64_t i = 0;
      for (; i + 4 <= inner_n; i += 4) {
        a0 *= static_cast<Acc<T>>(p[i]);
        a1 *= static_cast<Acc<T>>(p[i + 1]);
        a2 *= static_cast<Acc<T>>(p[i + 2]);
        a3 *= static_cast<Acc<T>>(p[i + 3]);
      }
      for (; i < inner_n; ++i) a0 *= static_cast<Acc<T>>(p[i]);
      acc *= (a0 * a1) * (a2 * a3);
      continue;
    }
    for (int64_t i = 0; i < inner_n; ++i) {
      T v = p[i * inner_s];
      switch (op) {
        case ReduceOp::Sum:
          acc += static_cast<Acc<T>>(v);
          break;
        case ReduceOp::Prod:
          acc *= static_cast<Acc<T>>(v);
          break;
        case ReduceOp::Max:
        case ReduceOp::Min:
          if constexpr (std::is_floating_point_v<T>) {
            if (std::isnan(v)) return v;
          }
          if (!have || (op == ReduceOp::Max ? v > best : v < best)) best = v;
          have = true;
          break;
      }
    }
  }
  if (op == ReduceOp::Sum || op == ReduceOp::Prod) return static_cast<T>(acc);
  return best;
}

// AVX2 float column reductions (Sum / Max / Min over one strided dim, the kept last dim
// contiguous): whole rows are swept with vector loads into a block of kColBlock accumulators.
// Work is split over (outer index, column block) tasks; when there are fewer of those than
// threads (a tall, narrow matrix) the rows are split instead, and per-thread partials are
// combined in thread order. Blocks of 4096 columns (16 KiB of each row; 32 KiB of double
// accumulators): with 512-column blocks each task read 2 KiB of a row and jumped a page, which
// the hardware prefetchers serve badly; a 4096^2 column sum ran at 27-33 GB/s and max at 16-17
// against 54-57 and 56-58 now (2-vCPU EPYC, interleaved, contiguous rows ~80 GB/s).
constexpr int64_t kColBlock = 4096;

void column_reduce_f32(ReduceOp op, int kept_ndim, const int64_t* kept_sizes,
                       const int64_t* kept_strides, int64_t n_red, int64_t red_stride,
                       const float* x, float* y) {
  const int64_t row = kept_sizes[kept_ndim - 1];
  int64_t outer = 1;
  for (int d = 0; d + 1 < kept_ndim; ++d) outer *= kept_sizes[d];
  const int64_t nblk = (row + kColBlock - 1) / kColBlock;
  const int64_t tasks = outer * nblk;
  const bool par = outer * row * n_red >= kParallelGrain && !omp_in_parallel();
  const int nt = par ? omp_get_max_threads() : 1;
  const bool is_sum = op == ReduceOp::Sum, is_max = op == ReduceOp::Max;
  // reduce rows [r0, r1) of (outer o, block b) into acc / best
  auto partial = [&](int64_t o, int64_t b, int64_t r0, int64_t r1, double* acc, float* best) {
    const float* base = x + offset_of(o * row, kept_ndim, kept_sizes, kept_strides) + b * kColBlock;
    const int64_t cols = row - b * kColBlock < kColBlock ? row - b * kColBlock : kColBlock;
    if (is_sum) {
      avx2::col_sum_f32(base + r0 * red_stride, red_stride, r1 - r0, cols, acc);
    } else {
      const float* first = base + r0 * red_stride;
      for (int64_t j = 0; j < cols; ++j) best[j] = first[j];
      avx2::col_maxmin_f32(first + red_stride, red_stride, r1 - r0 - 1, cols, best, is_max);
    }
    return cols;
  };
  if (tasks >= nt || n_red < 2 * nt) {
#pragma omp parallel for schedule(static) if (par && tasks > 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t o = t / nblk, b = t % nblk;
      double acc[kColBlock];
      float* yo = y + o * row + b * kColBlock;
      if (is_sum) {
        const int64_t cols = row - b * kColBlock < kColBlock ? row - b * kColBlock : kColBlock;
        for (int64_t j = 0; j < cols; ++j) acc[j] = 0;
        partial(o, b, 0, n_red, acc, nullptr);
        for (int64_t j = 0; j < cols; ++j) yo[j] = static_cast<float>(acc[j]);
      } else {
        partial(o, b, 0, n_red, nullptr, yo);
      }
    }
    return;
  }
  // fewer column tasks than threads: split the reduced dim
  std::vector<double> pacc(is_sum ? static_cast<size_t>(nt) * tasks * kColBlock : 0);
  std::vector<float> pbest(is_sum ? 0 : static_cast<size_t>(nt) * tasks * kColBlock);
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), n_th = omp_get_num_threads();
    const int64_t r0 = n_red * t / n_th, r1 = n_red * (t + 1) / n_th;
    for (int64_t k = 0; k < tasks; ++k) {
      const size_t at = (static_cast<size_t>(t) * tasks + k) * kColBlock;
      if (is_sum) {
        for (int64_t j = 0; j < kColBlock; ++j) pacc[at + j] = 0;
        if (r1 > r0) partial(k / nblk, k % nblk, r0, r1, &pacc[at], nullptr);
      } else {
        // n_red >= 2 nt here, so every thread has at least one row
        partial(k / nblk, k % nblk, r0, r1, nullptr, &pbest[at]);
      }
    }
  }
  for (int64_t k = 0; k < tasks; ++k) {
    const int64_t o = k / nblk, b = k % nblk;
    const int64_t cols = row - b * kColBlock < kColBlock ? row - b * kColBlock : kColBlock;
    float* yo = y + o * row + b * kColBlock;
    for (int64_t j = 0; j < cols; ++j) {
      if (is_sum) {
        double a = 0;
        for (int t = 0; t < nt; ++t)
          a += pacc[(static_cast<size_t>(t) * tasks + k) * kColBlock + j];
        yo[j] = static_cast<float>(a);
      } else {
        // threads in row order, so the first NaN / first extreme wins as in the reference
        float best = pbest[static_cast<size_t>(k) * kColBlock + j];
        for (int t = 1; t < nt; ++t) {
          const float v = pbest[(static_cast<size_t>(t) * tasks + k) * kColBlock + j];
          if (std::isnan(best)) break;
          if (std::isnan(v) || (is_max ? v > best : v < best)) best = v;
        }
        yo[j] = best;
      }
    }
  }
}

// Thread t's share [begin, end) of a run of n elements split n_th ways, the edges on multiples
// of 64 elements (whole cache lines per thread).
inline std::pair<int64_t, int64_t> thread_chunk(int64_t n, int t, int n_th) {
  const int64_t b = (n * t / n_th) / 64 * 64;
  const int64_t e = t + 1 == n_th ? n : (n * (t + 1) / n_th) / 64 * 64;
  return {b, e};
}

// One long contiguous run per output but fewer outputs than threads (a full sum): each output is
// cut into one chunk per thread and the chunk results are combined in order.
void row_reduce_split_f32(ReduceOp op, int64_t n_out, const int64_t* out_offsets, int64_t n,
                          const float* x, float* y) {
  const int nt = omp_get_max_threads();
  std::vector<double> psum(static_cast<size_t>(nt));
  std::vector<float> pbest(static_cast<size_t>(nt));
  for (int64_t o = 0; o < n_out; ++o) {
    const float* p = x + out_offsets[o];
#pragma omp parallel num_threads(nt)
    {
      const int t = omp_get_thread_num();
      const auto [b, e] = thread_chunk(n, t, omp_get_num_threads());
      if (op == ReduceOp::Sum) {
        psum[t] = e > b ? avx2::sum_f32(p + b, e - b) : 0.0;
      } else {
        pbest[t] = e > b ? avx2::maxmin_f32(p + b, e - b, op == ReduceOp::Max)
                         : p[0];  // neutral: an element of the run
      }
    }
    if (op == ReduceOp::Sum) {
      double s = 0;
      for (int t = 0; t < nt; ++t) s += psum[t];
      y[o] = static_cast<float>(s);
    } else {
      float best = pbest[0];
      for (int t = 1; t < nt && !std::isnan(best); ++t) {
        const float v = pbest[t];
        if (std::isnan(v) || (op == ReduceOp::Max ? v > best : v < best)) best = v;
      }
      y[o] = best;
    }
  }
}

// Whether the kept index space is whole consecutive rows of n floats: kept index o at o * n.
bool rows_contiguous(int kept_ndim, const int64_t* kept_sizes, const int64_t* kept_strides,
                     int64_t n) {
  int64_t expect = n;
  for (int d = kept_ndim - 1; d >= 0; --d) {
    if (kept_sizes[d] > 1 && kept_strides[d] != expect) return false;
    expect *= kept_sizes[d];
  }
  return true;
}

// Sum / max / min of each of `rows` consecutive rows of n <= avx2::kShortRowForwardMax floats:
// eight rows at a time through 8 x 8 transposes (kernels/cpu/short_rows_avx2.h); the row loop paid
// a call and a horizontal reduction per row (1M rows of 16: sum 9.7 ms, PyTorch 6.1). The last rows
// % 8 rows go one at a time.
void short_row_reduce_f32(ReduceOp op, const float* x, float* y, int64_t rows, int64_t n) {
  short_row_blocks(
      rows, n, false,
      [&](int64_t r, int64_t nb, const avx2::ShortRowLanes&) {
        avx2::reduce_blocks_f32(op, x + r * n, y + r, nb, n);
        return 0u;
      },
      [&](int64_t r) {
        const float* p = x + r * n;
        y[r] = op == ReduceOp::Sum ? static_cast<float>(avx2::sum_f32(p, n))
                                   : avx2::maxmin_f32(p, n, op == ReduceOp::Max);
      });
}

// row_reduce_split_f32 for every type and op (reduce_one on each thread's chunk): float64 and
// integer full reductions ran on one thread (a full int64 max of 4096 x 2048 2.4 ms, float64 sum
// likewise). Chunk results are combined in thread order: integer results are exact in any order
// (sums and products wrap the same), float64 sums and products round per chunk.
template <typename T>
void row_reduce_split(ReduceOp op, int64_t n_out, const int64_t* out_offsets, int64_t n, const T* x,
                      T* y, bool vec) {
  const int nt = omp_get_max_threads();
  std::vector<T> part(static_cast<size_t>(nt));
  std::vector<char> have(static_cast<size_t>(nt));
  const int64_t one = 1;
  for (int64_t o = 0; o < n_out; ++o) {
    const T* p = x + out_offsets[o];
#pragma omp parallel num_threads(nt)
    {
      const int t = omp_get_thread_num();
      const auto [b, e] = thread_chunk(n, t, omp_get_num_threads());
      const int64_t len = e - b;
      have[t] = len > 0;
      if (len > 0) part[t] = reduce_one<T>(op, 1, &len, &one, p + b, vec);
    }
    Acc<T> acc = op == ReduceOp::Prod ? 1 : 0;
    T best{};
    bool any = false;
    for (int t = 0; t < nt; ++t) {
      if (!have[t]) continue;
      const T v = part[t];
      if (op == ReduceOp::Sum) acc += static_cast<Acc<T>>(v);
      if (op == ReduceOp::Prod) acc *= static_cast<Acc<T>>(v);
      if (op == ReduceOp::Max || op == ReduceOp::Min) {
        if constexpr (std::is_floating_point_v<T>) {
          if (std::isnan(v)) {
            best = v;
            break;
          }
        }
        if (!any || (op == ReduceOp::Max ? v > best : v < best)) best = v;
        any = true;
      }
    }
    y[o] = op == ReduceOp::Sum || op == ReduceOp::Prod ? static_cast<T>(acc) : best;
  }
}

// The running max / min of a column: v replaces b when it is more extreme or NaN, and a NaN,
// once in, stays (so the column's result is NaN when it has one, as reduce_one's).
template <typename T>
inline T column_better(bool is_max, T b, T v) {
  const bool take = is_max ? v > b : v < b;
  if constexpr (std::is_floating_point_v<T>) return b != b ? b : (take || v != v ? v : b);
  return take ? v : b;
}

// column_reduce_f32 for every type and op (float with the AVX2 ops goes there first): float64
// and integer columns went through reduce_one one strided element at a time, or (float64 sums)
// on one thread when there was one outer index (4096 x 2048 over dim 0: int64 sum 26.6 ms,
// float64 / int64 max 26 ms, PyTorch 3.5 / 25 / 25; float64 sum 3.6 against 3.3). Tasks are
// (outer index, block of kBlock columns); with fewer tasks than threads the rows are split and
// the threads' partials combined in thread order. Each column is accumulated in row order.
template <typename T>
void column_reduce(ReduceOp op, int kept_ndim, const int64_t* kept_sizes,
                   const int64_t* kept_strides, int64_t n_red, int64_t red_stride, const T* x,
                   T* y) {
  using A = Acc<T>;
  constexpr int64_t kBlock = 2048;  // narrower blocks jump a page every few lines of a row
  const int64_t row = kept_sizes[kept_ndim - 1];
  int64_t outer = 1;
  for (int d = 0; d + 1 < kept_ndim; ++d) outer *= kept_sizes[d];
  const int64_t nblk = (row + kBlock - 1) / kBlock, tasks = outer * nblk;
  const bool par = outer * row * n_red >= kParallelGrain && !omp_in_parallel();
  const int nt = par ? omp_get_max_threads() : 1;
  const bool accumulates = op == ReduceOp::Sum || op == ReduceOp::Prod;
  const bool is_max = op == ReduceOp::Max;
  auto cols_of = [&](int64_t b) { return std::min(kBlock, row - b * kBlock); };
  // rows [r0, r1) (r1 > r0) of block b of outer index o into acc (Sum / Prod, initialised by
  // the caller) or best (Max / Min, set from row r0)
  auto sweep = [&](int64_t o, int64_t b, int64_t r0, int64_t r1, A* acc, T* best) {
    const T* base = x + offset_of(o * row, kept_ndim, kept_sizes, kept_strides) + b * kBlock;
    const int64_t cols = cols_of(b);
    int64_t r = r0;
    if (op == ReduceOp::Sum) {
      for (; r + 4 <= r1; r += 4) {  // four rows a sweep over acc, still added in row order
        const T *p0 = base + r * red_stride, *p1 = p0 + red_stride, *p2 = p1 + red_stride,
                *p3 = p2 + red_stride;
        for (int64_t j = 0; j < cols; ++j)
          acc[j] = (((acc[j] + A(p0[j])) + A(p1[j])) + A(p2[j])) + A(p3[j]);
      }
      for (; r < r1; ++r)
        for (int64_t j = 0; j < cols; ++j) acc[j] += A(base[r * red_stride + j]);
    } else if (op == ReduceOp::Prod) {
      for (; r < r1; ++r)
        for (int64_t j = 0; j < cols; ++j) acc[j] *= A(base[r * red_stride + j]);
    } else {
      for (int64_t j = 0; j < cols; ++j) best[j] = base[r * red_stride + j];
      for (++r; r < r1; ++r) {
        const T* p = base + r * red_stride;
        for (int64_t j = 0; j < cols; ++j) best[j] = column_better(is_max, best[j], p[j]);
      }
    }
  };
  const A init = op == ReduceOp::Prod ? A(1) : A(0);
  if (tasks >= nt || n_red < 2 * nt) {
#pragma omp parallel for schedule(static) if (par && tasks > 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t o = t / nblk, b = t % nblk, cols = cols_of(b);
      T* yo = y + o * row + b * kBlock;
      if (accumulates) {
        A acc[kBlock];
        std::fill(acc, acc + cols, init);
        sweep(o, b, 0, n_red, acc, nullptr);
        for (int64_t j = 0; j < cols; ++j) yo[j] = static_cast<T>(acc[j]);
      } else {
        sweep(o, b, 0, n_red, nullptr, yo);
      }
    }
    return;
  }
  // fewer column tasks than threads: every thread takes a share of the rows of every task
  std::vector<A> pacc(accumulates ? static_cast<size_t>(nt * tasks * kBlock) : 0);
  std::vector<T> pbest(accumulates ? 0 : static_cast<size_t>(nt * tasks * kBlock));
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), n_th = omp_get_num_threads();
    const int64_t r0 = n_red * t / n_th, r1 = n_red * (t + 1) / n_th;  // n_red >= 2 nt: r1 > r0
    for (int64_t k = 0; k < tasks; ++k) {
      const size_t at = (static_cast<size_t>(t) * tasks + k) * kBlock;
      if (accumulates) std::fill(pacc.begin() + at, pacc.begin() + at + kBlock, init);
      sweep(k / nblk, k % nblk, r0, r1, accumulates ? &pacc[at] : nullptr,
            accumulates ? nullptr : &pbest[at]);
    }
  }
  for (int64_t k = 0; k < tasks; ++k) {
    const int64_t o = k / nblk, b = k % nblk, cols = cols_of(b);
    T* yo = y + o * row + b * kBlock;
    for (int64_t j = 0; j < cols; ++j) {
      const size_t at0 = static_cast<size_t>(k) * kBlock + j;
      if (accumulates) {
        A a = pacc[at0];
        for (int t = 1; t < nt; ++t) {
          const A v = pacc[(static_cast<size_t>(t) * tasks + k) * kBlock + j];
          a = op == ReduceOp::Sum ? a + v : a * v;
        }
        yo[j] = static_cast<T>(a);
      } else {
        T best = pbest[at0];
        for (int t = 1; t < nt; ++t)
          best =
              column_better(is_max, best, pbest[(static_cast<size_t>(t) * tasks + k) * kBlock + j]);
        yo[j] = best;
      }
    }
  }
}

// Whether v at a later index replaces b as the running arg max / min: strictly more extreme,
// or the first NaN (which then stays): the first index of the result, as the element loop's.
template <typename T>
inline bool arg_takes(bool is_max, T b, T v) {
  const bool more = is_max ? v > b : v < b;
  // bitwise, not short-circuit: no branch per element in the column sweep
  if constexpr (std::is_floating_point_v<T>) return (b == b) & ((v != v) | more);
  return more;
}

// argreduce down the columns for every type (float32 under AVX2 has col_argmaxmin_f32): the
// element loop walked each column alone, one strided element at a time (float64 4096 x 2048
// over dim 0: 25.7 ms, PyTorch 25.3). Tasks of (outer index, kBlock columns) sweep whole rows;
// with fewer tasks than threads the rows are split and the threads' results combined in row
// order, so ties still go to the first index.
template <typename T>
void column_argreduce(bool is_max, int kept_ndim, const int64_t* kept_sizes,
                      const int64_t* kept_strides, int64_t n, int64_t rs, const T* x, int64_t* y) {
  constexpr int64_t kBlock = 1024;
  const int64_t row = kept_sizes[kept_ndim - 1];
  int64_t outer = 1;
  for (int d = 0; d + 1 < kept_ndim; ++d) outer *= kept_sizes[d];
  const int64_t nblk = (row + kBlock - 1) / kBlock, tasks = outer * nblk;
  const bool par = outer * row * n >= kParallelGrain && !omp_in_parallel();
  const int nt = par ? omp_get_max_threads() : 1;
  auto cols_of = [&](int64_t b) { return std::min(kBlock, row - b * kBlock); };
  // rows [r0, r1) (r1 > r0) of block b of outer index o: best values and their row indices
  auto sweep = [&](int64_t o, int64_t b, int64_t r0, int64_t r1, T* best, int64_t* idx) {
    const T* base = x + offset_of(o * row, kept_ndim, kept_sizes, kept_strides) + b * kBlock;
    const int64_t cols = cols_of(b);
    for (int64_t j = 0; j < cols; ++j) best[j] = base[r0 * rs + j], idx[j] = r0;
    for (int64_t r = r0 + 1; r < r1; ++r) {
      const T* p = base + r * rs;
      for (int64_t j = 0; j < cols; ++j) {
        const bool take = arg_takes(is_max, best[j], p[j]);
        best[j] = take ? p[j] : best[j];
        idx[j] = take ? r : idx[j];
      }
    }
  };
  if (tasks >= nt || n < 2 * nt) {
#pragma omp parallel for schedule(static) if (par && tasks > 1)
    for (int64_t t = 0; t < tasks; ++t) {
      T best[kBlock];
      sweep(t / nblk, t % nblk, 0, n, best, y + (t / nblk) * row + (t % nblk) * kBlock);
    }
    return;
  }
  std::vector<T> pbest(static_cast<size_t>(nt * tasks * kBlock));
  std::vector<int64_t> pidx(pbest.size());
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), n_th = omp_get_num_threads();
    const int64_t r0 = n * t / n_th, r1 = n * (t + 1) / n_th;  // n >= 2 nt: r1 > r0
    for (int64_t k = 0; k < tasks; ++k) {
      const size_t at = (static_cast<size_t>(t) * tasks + k) * kBlock;
      sweep(k / nblk, k % nblk, r0, r1, &pbest[at], &pidx[at]);
    }
  }
  for (int64_t k = 0; k < tasks; ++k) {
    int64_t* yo = y + (k / nblk) * row + (k % nblk) * kBlock;
    for (int64_t j = 0; j < cols_of(k % nblk); ++j) {
      size_t win = static_cast<size_t>(k) * kBlock + j;
      for (int t = 1; t < nt; ++t) {
        const size_t at = (static_cast<size_t>(t) * tasks + k) * kBlock + j;
        if (arg_takes(is_max, pbest[win], pbest[at])) win = at;
      }
      yo[j] = pidx[win];
    }
  }
}

// Sum of a contiguous (O, K, I) float tensor over O and I (K kept; sum over dims (0, 2) of a 3-D
// tensor): each thread takes a share of the O slabs and adds every (slab, k) run into its own K
// double accumulators, reading memory in order; the threads' partials are added in thread
// order. reduce_one summed output by output, each reading O runs of I floats a slab apart (64 x
// 512 x 512: 64 runs of 2 KiB 1 MiB apart an output, 27-35 GB/s, 0.85-1.03x PyTorch).
void outer_inner_sum_f32(const float* x, int64_t O, int64_t K, int64_t I, float* y) {
  const int64_t total = O * K * I;
  const int nt = total >= kParallelGrain && !omp_in_parallel()
                     ? static_cast<int>(std::min<int64_t>(omp_get_max_threads(), O))
                     : 1;
  std::vector<double> part(static_cast<size_t>(nt * K), 0.0);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_get_thread_num(), n_th = omp_get_num_threads();
    double* acc = part.data() + static_cast<size_t>(t) * K;
    for (int64_t o = O * t / n_th, end = O * (t + 1) / n_th; o < end; ++o)
      for (int64_t k = 0; k < K; ++k) acc[k] += avx2::sum_f32(x + (o * K + k) * I, I);
  }
  for (int64_t k = 0; k < K; ++k) {
    double a = part[static_cast<size_t>(k)];
    for (int t = 1; t < nt; ++t) a += part[static_cast<size_t>(t) * K + k];
    y[k] = static_cast<float>(a);
  }
}

}  // namespace

template <typename T>
void reduce(ReduceOp op, int kept_ndim, const int64_t* kept_sizes, const int64_t* kept_strides,
            int red_ndim, const int64_t* red_sizes, const int64_t* red_strides, const T* x, T* y) {
  int64_t n_out = 1, n_red = 1;
  for (int d = 0; d < kept_ndim; ++d) n_out *= kept_sizes[d];
  for (int d = 0; d < red_ndim; ++d) n_red *= red_sizes[d];
  if (n_out == 0) return;
  const bool vec = active_isa() == Isa::Avx2;
  if constexpr (std::is_same_v<T, float>) {
    const bool vec_op = op == ReduceOp::Sum || op == ReduceOp::Max || op == ReduceOp::Min;
    if (vec && vec_op && red_ndim == 1 && red_strides[0] == 1 && n_red >= 1 &&
        n_red <= avx2::kShortRowForwardMax && n_out >= 8 &&
        rows_contiguous(kept_ndim, kept_sizes, kept_strides, n_red)) {
      short_row_reduce_f32(op, x, y, n_out, n_red);
      return;
    }
    if (vec && vec_op && n_red > 0 && red_ndim == 1 && kept_ndim >= 1 &&
        kept_strides[kept_ndim - 1] == 1 && red_strides[0] != 1 && kept_sizes[kept_ndim - 1] > 1) {
      column_reduce_f32(op, kept_ndim, kept_sizes, kept_strides, n_red, red_strides[0], x, y);
      return;
    }
    if (vec && op == ReduceOp::Sum && kept_ndim == 1 && red_ndim == 2 && red_strides[1] == 1 &&
        kept_strides[0] == red_sizes[1] && red_strides[0] == kept_sizes[0] * red_sizes[1] &&
        red_sizes[0] >= 2 && red_sizes[1] > 0) {
      outer_inner_sum_f32(x, red_sizes[0], kept_sizes[0], red_sizes[1], y);
      return;
    }
    if (vec && vec_op && n_red > 0 && red_ndim == 1 && red_strides[0] == 1 &&
        n_out < omp_get_max_threads() && n_out * n_red >= 4 * kParallelGrain &&
        !omp_in_parallel()) {
      std::vector<int64_t> offs(static_cast<size_t>(n_out));
      for (int64_t o = 0; o < n_out; ++o)
        offs[o] = offset_of(o, kept_ndim, kept_sizes, kept_strides);
      row_reduce_split_f32(op, n_out, offs.data(), red_sizes[0], x, y);
      return;
    }
  }
  if (red_ndim == 1 && red_strides[0] == 1 && n_red > 0 && n_out < omp_get_max_threads() &&
      n_out * n_red >= 4 * kParallelGrain && !omp_in_parallel()) {
    std::vector<int64_t> offs(static_cast<size_t>(n_out));
    for (int64_t o = 0; o < n_out; ++o) offs[o] = offset_of(o, kept_ndim, kept_sizes, kept_strides);
    row_reduce_split<T>(op, n_out, offs.data(), n_red, x, y, vec);
    return;
  }
  // Column reductions (kept dim contiguous, reduced dim strided) sweep whole rows, so memory is
  // read in order instead of one strided element at a time.
  if (red_ndim == 1 && n_red > 0 && kept_ndim >= 1 && kept_strides[kept_ndim - 1] == 1 &&
      red_strides[0] != 1 && kept_sizes[kept_ndim - 1] > 1) {
    column_reduce<T>(op, kept_ndim, kept_sizes, kept_strides, n_red, red_strides[0], x, y);
    return;
  }
#pragma omp parallel for if (n_out * n_red >= kParallelGrain && n_out > 1 && !omp_in_parallel()) \
    schedule(static)
  for (int64_t o = 0; o < n_out; ++o) {
    const T* base = x + offset_of(o, kept_ndim, kept_sizes, kept_strides);
    y[o] = reduce_one<T>(op, red_ndim, red_sizes, red_strides, base, vec);
  }
}

template <typename T>
void argreduce(bool is_max, int kept_ndim, const int64_t* kept_sizes, const int64_t* kept_strides,
               int64_t n, int64_t rs, const T* x, int64_t* y) {
  int64_t n_out = 1;
  for (int d = 0; d < kept_ndim; ++d) n_out *= kept_sizes[d];
  auto one = [&](int64_t o) {
    const T* p = x + offset_of(o, kept_ndim, kept_sizes, kept_strides);
    int64_t best = 0;
    T bv = p[0];
    for (int64_t i = 1; i < n; ++i) {
      T v = p[i * rs];
      if constexpr (std::is_floating_point_v<T>) {
        if (std::isnan(bv)) break;
        if (std::isnan(v)) {
          best = i;
          bv = v;
          break;
        }
      }
      if (is_max ? v > bv : v < bv) {
        best = i;
        bv = v;
      }
    }
    y[o] = best;
  };
  if constexpr (std::is_same_v<T, float>) {
    // consecutive rows of n <= 64 floats: eight at a time through 8 x 8 transposes (1M rows of
    // 16: 15.8 / 16.8 ms the element loop, 4.3 / 4.4 ms blocked; PyTorch 44)
    if (active_isa() == Isa::Avx2 && rs == 1 && n >= 1 && n <= avx2::kShortRowForwardMax &&
        n_out >= 8 && rows_contiguous(kept_ndim, kept_sizes, kept_strides, n)) {
      short_row_blocks(
          n_out, n, false,
          [&](int64_t r, int64_t nb, const avx2::ShortRowLanes&) {
            avx2::argreduce_blocks_f32(is_max, x + r * n, y + r, nb, n);
            return 0u;
          },
          one);
      return;
    }
    // a strided reduced dim under a contiguous kept last dim of at least 8: down the columns,
    // whole row runs at a time (4096 x 4096 over dim 0: 12-47 ms the element loop, which walked
    // each column alone)
    if (active_isa() == Isa::Avx2 && rs != 1 && kept_ndim >= 1 &&
        kept_strides[kept_ndim - 1] == 1 && kept_sizes[kept_ndim - 1] >= 8 && n > 1 &&
        n <= std::numeric_limits<int32_t>::max()) {
      const int64_t row = kept_sizes[kept_ndim - 1], outer = n_out / row;
      constexpr int64_t kBlock = 1024;
      const int64_t nblk = (row + kBlock - 1) / kBlock;
#pragma omp parallel for if (n_out * n >= kParallelGrain && !omp_in_parallel()) schedule(static)
      for (int64_t t = 0; t < outer * nblk; ++t) {
        const int64_t o = t / nblk, j0 = t % nblk * kBlock;
        const int64_t w = std::min(kBlock, row - j0);
        const float* base = x + offset_of(o * row, kept_ndim, kept_sizes, kept_strides) + j0;
        float best[kBlock];
        int32_t idx[kBlock];
        std::copy(base, base + w, best);  // row 0
        std::fill(idx, idx + w, 0);
        avx2::col_argmaxmin_f32(base + rs, rs, n - 1, w, best, idx, 1, is_max);
        int64_t* yo = y + o * row + j0;
        for (int64_t j = 0; j < w; ++j) yo[j] = idx[j];
      }
      return;
    }
    // longer contiguous runs: the max, then a vector scan for its first lane (4096 x 4096:
    // 8.2 ms the element loop, PyTorch 7.2)
    if (active_isa() == Isa::Avx2 && rs == 1 && n >= 8) {
#pragma omp parallel for if (n_out * n >= kParallelGrain && !omp_in_parallel()) schedule(static)
      for (int64_t o = 0; o < n_out; ++o)
        y[o] =
            avx2::argmaxmin_f32(x + offset_of(o, kept_ndim, kept_sizes, kept_strides), n, is_max);
      return;
    }
  }
  if (rs != 1 && kept_ndim >= 1 && kept_strides[kept_ndim - 1] == 1 &&
      kept_sizes[kept_ndim - 1] > 1 && n > 1) {
    column_argreduce<T>(is_max, kept_ndim, kept_sizes, kept_strides, n, rs, x, y);
    return;
  }
#pragma omp parallel for if (n_out * n >= kParallelGrain && !omp_in_parallel()) schedule(static)
  for (int64_t o = 0; o < n_out; ++o) one(o);
}

template <typename T>
double sum_squares(const T* x, int64_t n) {
  const int64_t blocks = (n + kSumSquaresBlock - 1) / kSumSquaresBlock;
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
  std::vector<double> part(static_cast<size_t>(blocks));
#pragma omp parallel for if (blocks > 1 && !omp_in_parallel()) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const T* p = x + b * kSumSquaresBlock;
    const int64_t m = std::min(kSumSquaresBlock, n - b * kSumSquaresBlock);
    double s = 0;
    if constexpr (std::is_same_v<T, float>) {
      if (vec) {
        part[b] = avx2::sum_squares_f32(p, m);
        continue;
      }
    }
    for (int64_t i = 0; i < m; ++i) s += static_cast<double>(p[i]) * static_cast<double>(p[i]);
    part[b] = s;
  }
  double total = 0;
  for (double s : part) total += s;
  return total;
}
template double sum_squares<float>(const float*, int64_t);
template double sum_squares<double>(const double*, int64_t);

#define SMYRF_INSTANTIATE_REDUCE(T)                                                           \
  template void reduce<T>(ReduceOp, int, const int64_t*, const int64_t*, int, const int64_t*, \
                          const int64_t*, const T*, T*);                                      \
  template void argreduce<T>(bool, int, const int64_t*, const int64_t*, int64_t, int64_t,     \
                             const T*, int64_t*);
SMYRF_INSTANTIATE_REDUCE(int32_t)
SMYRF_INSTANTIATE_REDUCE(int64_t)
SMYRF_INSTANTIATE_REDUCE(float)
SMYRF_INSTANTIATE_REDUCE(double)

}  // namespace smyrf::kernels::cpu
