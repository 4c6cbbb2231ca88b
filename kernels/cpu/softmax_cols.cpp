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

}  // namespace

template <typename T>
void softmax_cols(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  if (outer <= 0 || n <= 0 || inner <= 0) return;
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
  const ColBlocks B(outer, n, inner);
#pragma omp parallel if (B.parallel())
  {
    std::vector<float> scratch(vec ? static_cast<size_t>(6 * B.width) : 0);
    std::vector<double> m, s;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < B.count(); ++t) {
      const int64_t off = B.offset(t), w = B.cols(t);
      if constexpr (std::is_same_v<T, float>) {
        if (vec && avx2::softmax_cols_block_f32(x + off, y + off, n, inner, w, log, scratch.data()))
          continue;
      }
      softmax_block_ref(x + off, y + off, n, inner, w, log, m, s);
    }
  }
}

template <typename T>
void softmax_cols_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t n, int64_t inner,
                           bool log) {
  if (outer <= 0 || n <= 0 || inner <= 0) return;
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
  const ColBlocks B(outer, n, inner);
#pragma omp parallel if (B.parallel())
  {
    std::vector<float> scratch(vec ? static_cast<size_t>(6 * B.width) : 0);
    std::vector<double> s;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < B.count(); ++t) {
      const int64_t off = B.offset(t), w = B.cols(t);
      if constexpr (std::is_same_v<T, float>) {
        if (vec) {
          avx2::softmax_cols_block_backward_f32(y + off, dy + off, dx + off, n, inner, w, log,
                                                scratch.data());
          continue;
        }
      }
      softmax_block_backward_ref(y + off, dy + off, dx + off, n, inner, w, log, s);
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
