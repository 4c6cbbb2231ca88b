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
#include "kernels/cpu/host_memory.h"
#include "kernels/cpu/nd_loop.h"

namespace smyrf::kernels::cpu {
namespace {

// Column blocks of (outer, n, inner): blocks of kColsBlock columns, narrowed (to multiples of 8)
// when there would be fewer blocks than threads, so both threads get a share of one matrix.
// Blocks of up to this many floats (256 KiB, a quarter of the L2) are read a second time from
// cache when written right after their statistics.
constexpr int64_t kFusedBlockFloats = 1 << 16;
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
  // index of block t's first column among the outer * inner columns
  int64_t column(int64_t t) const { return (t / per_outer) * inner + (t % per_outer) * width; }
  int64_t cols(int64_t t) const { return std::min(width, inner - (t % per_outer) * width); }
  // Whole (n, inner) slabs or blocks that fit in the L2, at least one a thread: each task writes
  // its block right after its statistics, while it is still in cache; else the writes run as a
  // second phase along whole rows, split between the threads.
  bool fused_write() const {
    return (width == inner || n * width <= kFusedBlockFloats) && count() >= omp_get_max_threads();
  }
  bool parallel() const {
    return count() > 1 && outer * n * inner >= kParallelGrain && !omp_in_parallel();
  }
};

// block(off, w) for every block of B, the threads taking static shares
template <typename Block>
void for_blocks(const ColBlocks& B, Block block) {
#pragma omp parallel for schedule(static) if (B.parallel())
  for (int64_t t = 0; t < B.count(); ++t) block(B.offset(t), B.cols(t));
}

// softmax_row_ref per column of a block (in double), the columns side by side
template <typename T>
void softmax_block_ref(const T* x, T* y, int64_t n, int64_t inner, int64_t w, bool log) {
  std::vector<double> m(static_cast<size_t>(w), -std::numeric_limits<double>::infinity()),
      s(static_cast<size_t>(w), 0.0);
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
                                bool log) {
  std::vector<double> s(static_cast<size_t>(w), 0.0);
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

// The two phases over B's blocks. stats(off, w, cols, scratch) takes the statistics of the block
// at element offset off (w columns) into cols (w floats a statistic, kColState of them) and
// returns false when the reference must write it instead: ref(off, w). write(at, cols, rows, w)
// writes `rows` rows of w columns from element offset at. When B.fused_write() each block is
// written right after its statistics, which stay in the thread's scratch; else the statistics
// go to `shared` (kColState floats per column, outer * inner columns, column c's at shared + c
// and shared + outer * inner + c) and the writes run along whole rows, the threads' static
// shares of all outer * n rows (contiguous memory), skipping the blocks the reference wrote.
// (Fused blocks kept their statistics in `shared` too until 2026-11-29: on short columns, 2 x 8M
// floats, that was 32 MiB of c and f written back and read again per row.) With vec false every
// block takes the reference.
constexpr int64_t kColState = 2;
template <typename Stats, typename Ref, typename Write>
void run_blocks(const ColBlocks& B, bool vec, float* shared, Stats stats, Ref ref, Write write) {
  const bool fused = B.fused_write();
  const int64_t plane = B.outer * B.inner;
  std::vector<char> by_ref(static_cast<size_t>(B.count()), 1);
#pragma omp parallel if (B.parallel())
  {
    std::vector<float> scratch(vec ? static_cast<size_t>((3 + kColState) * B.width) : 0);
    float* local = scratch.data() + 3 * B.width;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < B.count(); ++t) {
      const int64_t off = B.offset(t), w = B.cols(t), col = B.column(t);
      float* cols = fused ? local : shared + col;
      if (vec && stats(off, w, cols, fused ? B.width : plane, scratch.data())) {
        by_ref[static_cast<size_t>(t)] = 0;
        if (fused) write(off, cols, B.width, B.n, w);
        continue;
      }
      ref(off, w);
    }
    if (vec && !fused) {
      // (the loop's implied barrier: every block's statistics are in)
      const int64_t th = omp_get_thread_num(), nth = omp_get_num_threads(), R = B.outer * B.n;
      for (int64_t g = R * th / nth, end = R * (th + 1) / nth; g < end;) {
        const int64_t o = g / B.n, r = g % B.n, rows = std::min(end - g, B.n - r);
        const char* skip = by_ref.data() + o * B.per_outer;
        const int64_t at = (o * B.n + r) * B.inner, col = o * B.inner;
        if (std::find(skip, skip + B.per_outer, 1) == skip + B.per_outer) {
          write(at, shared + col, plane, rows,
                B.inner);  // no block of this slab took the reference
        } else {
          for (int64_t b = 0; b < B.per_outer; ++b)
            if (!skip[b])
              write(at + b * B.width, shared + col + b * B.width, plane, rows, B.cols(b));
        }
        g += rows;
      }
    }
  }
}

}  // namespace

template <typename T>
void softmax_cols(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  if (outer <= 0 || n <= 0 || inner <= 0) return;
  constexpr bool kFloat = std::is_same_v<T, float>;
  const ColBlocks B(outer, n, inner);
  // per column: the shift c and factor f of the AVX2 path, every entry written by the
  // statistics before the writes read it (uninitialised huge-page scratch: zero-filled vectors
  // page-faulted 4 KiB at a time, ~250 ms of softmax over dim 0 of 2 x 8M floats)
  const bool vec = kFloat && active_isa() == Isa::Avx2;
  if constexpr (kFloat) {
    if (vec && n <= avx2::kShortColsMax)
      return for_blocks(B, [&](int64_t off, int64_t w) {
        if (!avx2::softmax_cols_short_f32(x + off, y + off, n, inner, w, log))
          softmax_block_ref(x + off, y + off, n, inner, w, log);
      });
  }
  ScratchBuffer<float> shared(vec && !B.fused_write() ? size_t(kColState * outer * inner) : 0);
  // a fused block's softmax keeps its exps in y (still in cache when it is scaled) instead of
  // taking them a second time: 64 x 512 x 512 over dim 1 9.0 -> 6.8 ms
  const bool keep_exps = B.fused_write() && !log;
  run_blocks(
      B, vec, shared.data(),
      [&](int64_t off, int64_t w, float* cf, int64_t stride, float* scratch) {
        if constexpr (kFloat)
          return avx2::softmax_cols_stats_f32(x + off, n, inner, w, log, scratch, cf, cf + stride,
                                              keep_exps ? y + off : nullptr);
        return false;
      },
      [&](int64_t off, int64_t w) { softmax_block_ref(x + off, y + off, n, inner, w, log); },
      [&](int64_t at, const float* cf, int64_t stride, int64_t rows, int64_t w) {
        if constexpr (kFloat) {
          if (keep_exps)
            avx2::softmax_cols_scale_f32(y + at, rows, inner, w, cf + stride);
          else
            avx2::softmax_cols_write_f32(x + at, y + at, rows, inner, w, log, cf, cf + stride);
        }
      });
}

template <typename T>
void softmax_cols_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t n, int64_t inner,
                           bool log) {
  if (outer <= 0 || n <= 0 || inner <= 0) return;
  constexpr bool kFloat = std::is_same_v<T, float>;
  const ColBlocks B(outer, n, inner);
  const bool vec = kFloat && active_isa() == Isa::Avx2;
  if constexpr (kFloat) {
    if (vec && n <= avx2::kShortColsBackwardMax)
      return for_blocks(B, [&](int64_t off, int64_t w) {
        avx2::softmax_cols_short_backward_f32(y + off, dy + off, dx + off, n, inner, w, log);
      });
  }
  ScratchBuffer<float> shared(vec && !B.fused_write() ? size_t(kColState * outer * inner) : 0);
  run_blocks(
      B, vec, shared.data(),
      [&](int64_t off, int64_t w, float* s, int64_t, float* scratch) {
        if constexpr (kFloat)
          avx2::softmax_cols_sums_backward_f32(y + off, dy + off, n, inner, w, log, scratch, s);
        return kFloat;
      },
      [&](int64_t off, int64_t w) {
        softmax_block_backward_ref(y + off, dy + off, dx + off, n, inner, w, log);
      },
      [&](int64_t at, const float* s, int64_t, int64_t rows, int64_t w) {
        if constexpr (kFloat)
          avx2::softmax_cols_write_backward_f32(y + at, dy + at, dx + at, rows, inner, w, log, s);
      });
}

template void softmax_cols<float>(const float*, float*, int64_t, int64_t, int64_t, bool);
template void softmax_cols<double>(const double*, double*, int64_t, int64_t, int64_t, bool);
template void softmax_cols_backward<float>(const float*, const float*, float*, int64_t, int64_t,
                                           int64_t, bool);
template void softmax_cols_backward<double>(const double*, const double*, double*, int64_t, int64_t,
                                            int64_t, bool);

}  // namespace smyrf::kernels::cpu
