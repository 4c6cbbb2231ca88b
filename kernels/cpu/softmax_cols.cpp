// softmax_cols (kernels/cpu/softmax_cols.h): the column blocks, their threads, and the double
// reference every type and ISA shares with softmax_rows (per column, the same formulas).
#include "kernels/cpu/softmax_cols.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/nd_loop.h"

namespace smyrf::kernels::cpu {
namespace {

// Column blocks of (outer, n, inner): blocks of kColsBlock columns, narrowed (to multiples of 8)
// when there would be fewer blocks than threads, so both threads get a share of one matrix.
struct ColBlocks {
  int64_t outer, n, inner, width, per_outer;
  ColBlocks(int64_t outer_, int64_t n_, int64_t inner_) : outer(outer_), n(n_), inner(inner_) {
    const int64_t threads = std::max(1, omp_get_max_threads());
    width = std::min(inner, avx2::kColsBlock);
    const int64_t want = (threads + outer - 1) / outer;  // blocks per outer index
    if ((inner + width - 1) / width < want)
      width = std::max<int64_t>(8, ((inner + want - 1) / want + 7) / 8 * 8);
    per_outer = (inner + width - 1) / width;
  }
  int64_t count() const { return outer * per_outer; }
  int64_t offset(int64_t t) const { return (t / per_outer) * n * inner + (t % per_outer) * width; }
  int64_t cols(int64_t t) const { return std::min(width, inner - (t % per_outer) * width); }
  // Whole (n, inner) slabs a task, at least one a thread: each task writes its slab right after
  // its statistics, while the slab is still in cache; else the writes run as a second phase
  // along whole rows, split between the threads.
  bool fused_write() const { return width == inner && count() >= omp_get_max_threads(); }
  bool parallel() const {
    return count() > 1 && outer * n * inner >= kParallelGrain && !omp_in_parallel();
  }
};

// softmax_row_ref per column of a block (in double), the columns side by side
template <typename T>
void softmax_block_ref(const T* x, T* y, int64_t n, int64_t inner, int64_t w, bool log,
                       std::vector<double>& m, std::vector<double>& s) {
  m.assign(static_cast<size_t>(w), -std::numeric_limits<double>::infinity());
  s.assign(static_cast<size_t>(w), 0.0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < w; ++j) {
      const double v = x[r * inner + j];
      // NaN-propagating max, as the rows'
      m[j] = std::isnan(v) ? v : std::max<double>(m[j], v);
    }
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < w; ++j) s[j] += std::exp(static_cast<double>(x[r * inner + j]) - m[j]);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < w; ++j) {
      const T v = x[r * inner + j];
      T& out = y[r * inner + j];
      if (std::isnan(m[j]))
        out = std::numeric_limits<T>::quiet_NaN();
      else if (std::isinf(m[j]) && m[j] < 0)  // every entry -inf
        out = log ? v : T(0);
      else if (log)
        out = static_cast<T>(v - (m[j] + std::log(s[j])));
      else
        out = static_cast<T>(std::exp(v - m[j]) * (1.0 / s[j]));
    }
}

template <typename T>
void softmax_block_backward_ref(const T* y, const T* dy, T* dx, int64_t n, int64_t inner, int64_t w,
                                bool log, std::vector<double>& s) {
  s.assign(static_cast<size_t>(w), 0.0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < w; ++j) {
      const int64_t i = r * inner + j;
      s[j] += log ? static_cast<double>(dy[i]) : static_cast<double>(dy[i]) * y[i];
    }
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < w; ++j) {
      const int64_t i = r * inner + j;
      dx[i] = static_cast<T>(log ? dy[i] - std::exp(static_cast<double>(y[i])) * s[j]
                                 : y[i] * (dy[i] - s[j]));
    }
}

// Phase two: rows [r0, r1) of all outer * n rows, along whole rows (the threads' static shares
// of the rows are contiguous memory). write(o, r, rows, j0, w): rows of outer index o from row r
// for columns [j0, j0 + w); blocks whose statistics failed (skip(o, b)) are left alone.
template <typename Write, typename Skip>
void write_rows(const ColBlocks& B, int64_t r0, int64_t r1, Skip skip, Write write) {
  for (int64_t g = r0; g < r1;) {
    const int64_t o = g / B.n, r = g % B.n, rows = std::min(r1 - g, B.n - r);
    bool any_skipped = false;
    for (int64_t b = 0; b < B.per_outer; ++b) any_skipped = any_skipped || skip(o, b);
    if (!any_skipped) {
      write(o, r, rows, 0, B.inner);
    } else {
      for (int64_t b = 0; b < B.per_outer; ++b)
        if (!skip(o, b)) write(o, r, rows, b * B.width, B.cols(o * B.per_outer + b));
    }
    g += rows;
  }
}

}  // namespace

template <typename T>
void softmax_cols(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  if (outer <= 0 || n <= 0 || inner <= 0) return;
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
  const ColBlocks B(outer, n, inner);
  const bool fused = B.fused_write();
  // per column: the shift c and factor f (AVX2); per block: whether the reference wrote it
  std::vector<float> c(vec ? static_cast<size_t>(outer * inner) : 0), f(c.size());
  std::vector<char> by_ref(static_cast<size_t>(B.count()), 1);
#pragma omp parallel if (B.parallel())
  {
    std::vector<float> scratch(vec ? static_cast<size_t>(4 * B.width) : 0);
    std::vector<double> m, s;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < B.count(); ++t) {
      const int64_t off = B.offset(t), w = B.cols(t);
      const int64_t col = (t / B.per_outer) * inner + (t % B.per_outer) * B.width;
      if constexpr (std::is_same_v<T, float>) {
        if (vec && avx2::softmax_cols_stats_f32(x + off, n, inner, w, log, scratch.data(),
                                                c.data() + col, f.data() + col)) {
          by_ref[static_cast<size_t>(t)] = 0;
          if (fused)
            avx2::softmax_cols_write_f32(x + off, y + off, n, inner, w, log, c.data() + col,
                                         f.data() + col);
          continue;
        }
      }
      softmax_block_ref(x + off, y + off, n, inner, w, log, m, s);
    }
    if constexpr (std::is_same_v<T, float>) {
      if (vec && !fused) {
        // (the loop's implied barrier: every block's statistics are in)
        const int th = omp_get_thread_num(), nth = omp_get_num_threads();
        const int64_t R = outer * n;
        write_rows(
            B, R * th / nth, R * (th + 1) / nth,
            [&](int64_t o, int64_t b) { return by_ref[static_cast<size_t>(o * B.per_outer + b)]; },
            [&](int64_t o, int64_t r, int64_t rows, int64_t j0, int64_t w) {
              const int64_t at = (o * n + r) * inner + j0, col = o * inner + j0;
              avx2::softmax_cols_write_f32(x + at, y + at, rows, inner, w, log, c.data() + col,
                                           f.data() + col);
            });
      }
    }
  }
}

template <typename T>
void softmax_cols_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t n, int64_t inner,
                           bool log) {
  if (outer <= 0 || n <= 0 || inner <= 0) return;
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
  const ColBlocks B(outer, n, inner);
  const bool fused = B.fused_write();
  std::vector<float> sums(vec ? static_cast<size_t>(outer * inner) : 0);
#pragma omp parallel if (B.parallel())
  {
    std::vector<float> scratch(vec ? static_cast<size_t>(4 * B.width) : 0);
    std::vector<double> s;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < B.count(); ++t) {
      const int64_t off = B.offset(t), w = B.cols(t);
      const int64_t col = (t / B.per_outer) * inner + (t % B.per_outer) * B.width;
      if constexpr (std::is_same_v<T, float>) {
        if (vec) {
          avx2::softmax_cols_sums_backward_f32(y + off, dy + off, n, inner, w, log, scratch.data(),
                                               sums.data() + col);
          if (fused)
            avx2::softmax_cols_write_backward_f32(y + off, dy + off, dx + off, n, inner, w, log,
                                                  sums.data() + col);
          continue;
        }
      }
      softmax_block_backward_ref(y + off, dy + off, dx + off, n, inner, w, log, s);
    }
    if constexpr (std::is_same_v<T, float>) {
      if (vec && !fused) {
        const int th = omp_get_thread_num(), nth = omp_get_num_threads();
        const int64_t R = outer * n;
        write_rows(
            B, R * th / nth, R * (th + 1) / nth, [](int64_t, int64_t) { return false; },
            [&](int64_t o, int64_t r, int64_t rows, int64_t j0, int64_t w) {
              const int64_t at = (o * n + r) * inner + j0;
              avx2::softmax_cols_write_backward_f32(y + at, dy + at, dx + at, rows, inner, w, log,
                                                    sums.data() + o * inner + j0);
            });
      }
    }
  }
}

template void softmax_cols<float>(const float*, float*, int64_t, int64_t, int64_t, bool);
template void softmax_cols<double>(const double*, double*, int64_t, int64_t, int64_t, bool);
template void softmax_cols_backward<float>(const float*, const float*, float*, int64_t, int64_t,
                                           int64_t, bool);
template void softmax_cols_backward<double>(const double*, const double*, double*, int64_t, int64_t,
                                            int64_t, bool);

}  // namespace smyrf::kernels::cpu
