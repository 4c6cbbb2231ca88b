// Shared helpers of the AVX2 float32 row kernels (softmax_avx2.cpp, norm_avx2.cpp): row sums
// folded into double every kFlush elements, masked tail loads, and the software prefetch of the
// next row. Header-only, internal to kernels/cpu.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <limits>

#include "kernels/cpu/vec_math_avx2.h"

namespace smyrf::kernels::cpu::avx2::rows {

// Sums over a row are accumulated in float lanes and folded into double every kFlush elements,
// so long rows keep double-like accuracy at float speed.
constexpr int64_t kFlush = 1024;

inline __m256 neg_inf() { return _mm256_set1_ps(-std::numeric_limits<float>::infinity()); }

// Software prefetch of the row this thread handles next, one 64-byte line per step(), issued
// from the passes that work on a row already in cache (exp-sum, variance, write). Without it the
// row's passes alternate between waiting on memory (first read) and computing with memory idle;
// with it the next row streams in while this one computes. Rows up to 16 KiB go to L1, longer
// ones to L2 (they would evict the current row from L1). A null row prefetches nothing.
struct RowPrefetch {
  const char* p;
  const char* end;
  bool l1;
  RowPrefetch(const float* row, int64_t n)
      : p(reinterpret_cast<const char*>(row)),
        end(row ? reinterpret_cast<const char*>(row + n) : nullptr),
        l1(n <= 4096) {}
  inline void step() {
    if (p < end) {
      if (l1)
        _mm_prefetch(p, _MM_HINT_T0);
      else
        _mm_prefetch(p, _MM_HINT_T1);
      p += 64;
    }
  }
};

// The part [begin, end) of a row of n floats at y that a row kernel writes with streaming stores:
// the whole 64-byte lines inside the row, none for rows under min_floats. The rest (the head
// before the first line boundary, the tail after the last) takes plain stores, so no line is
// written partly by streaming stores and partly by plain ones: a line shared by two consecutive
// rows, streamed in part by one and stored plainly by the other, made the write-combining
// buffers flush partial lines (softmax backward on rows of 33 floats 8 GB/s, 100: 26, 1000: 50,
// against 49 / 73 / 78 with plain stores; layer norm likewise; 16M floats, 2 threads).
//   Where streaming starts to pay depends on the kernel (alternated runs, 16M floats, 2 threads,
// streamed / plain time): softmax backward 33 floats 1.6, 48 0.76, 76 1.06, 100 0.98, 150 0.83,
// 200 0.74, 1000 0.89 (kSoftmaxStreamRowMin); layer norm forward / backward 76 1.73 / 1.74, 100
// 1.62 / 1.43, 150 1.40 / 1.24, 200 0.99 / 0.67, 500 0.86 / 0.79, 1000 0.84 / 0.78
// (kNormStreamRowMin).
constexpr int64_t kSoftmaxStreamRowMin = 48;
constexpr int64_t kNormStreamRowMin = 192;
struct StreamSpan {
  int64_t begin = 0, end = 0;
};
inline StreamSpan stream_lines(const float* y, int64_t n, int64_t min_floats) {
  if (n < min_floats || n < 16) return {};
  const int64_t head =
      static_cast<int64_t>((64 - reinterpret_cast<uintptr_t>(y) % 64) % 64) / int64_t{4};
  return {head, head + (n - head) / 16 * 16};
}

// Streams the output of consecutive rows (one thread's share, in order, each starting where the
// one before ended) as whole 64-byte lines only, the lines that two rows share included: a row's
// tail after its last line boundary waits in buf_, and the next row's head completes the line.
// stream_lines' rows stream the lines inside each row and store the shared ones plainly, per row
// by its own alignment; for rows of 76-333 floats that was slower than no streaming at all
// (layer norm 1.4-1.7x, softmax 1.2-1.6x). The first row's head (its line may hold another
// thread's row) and the last row's tail take plain stores, the tail at finish(), which the caller
// calls before its streaming_store_fence(). Rows of at least 16 floats; f(i, tail) as write_row's
// in softmax_avx2.cpp (i need not be a multiple of 8).
class LineWriter {
 public:
  template <typename F>
  inline void row(float* y, int64_t n, F f) {
    const int64_t head =
        static_cast<int64_t>((64 - reinterpret_cast<uintptr_t>(y) % 64) % 64) / int64_t{4};
    int64_t i = 0;
    if (head > 0) {
      if (line_ == y + head - 16 && filled_ == 16 - head) {  // the line the previous row began
        _mm256_storeu_ps(buf_ + filled_, f(0, false));
        if (head > 8) _mm256_storeu_ps(buf_ + filled_ + 8, f(8, false));
        _mm256_stream_ps(line_, _mm256_load_ps(buf_));
        _mm256_stream_ps(line_ + 8, _mm256_load_ps(buf_ + 8));
        line_ = nullptr;
      } else {
        finish();
        if (head >= 8) _mm256_storeu_ps(y, f(0, false));
        if (head % 8 != 0) {
          const int64_t k = head / 8 * 8;
          _mm256_maskstore_ps(y + k, tail_mask(head - k), f(k, false));
        }
      }
      i = head;
    }
    for (; i + 16 <= n; i += 16) {
      _mm256_stream_ps(y + i, f(i, false));
      _mm256_stream_ps(y + i + 8, f(i + 8, false));
    }
    if (i < n) {
      _mm256_store_ps(buf_, f(i, i + 8 > n));
      if (i + 8 < n) _mm256_store_ps(buf_ + 8, f(i + 8, i + 16 > n));
      line_ = y + i;
      filled_ = n - i;
    }
  }
  // The pending tail, with plain stores.
  inline void finish() {
    if (!line_) return;
    int64_t k = 0;
    if (filled_ >= 8) _mm256_storeu_ps(line_, _mm256_load_ps(buf_)), k = 8;
    if (k < filled_)
      _mm256_maskstore_ps(line_ + k, tail_mask(filled_ - k), _mm256_load_ps(buf_ + k));
    line_ = nullptr;
  }

 private:
  alignas(64) float buf_[32];  // the line (16 floats) and room for a whole vector past it
  float* line_ = nullptr;      // the line buf_ stands for, or null
  int64_t filled_ = 0;         // its floats known so far
};

// Masked tail load with `pad` in the lanes past the end.
inline __m256 load_tail(const float* p, int64_t k, __m256 pad) {
  const __m256i m = tail_mask(k);
  return _mm256_blendv_ps(pad, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}

// sum over the row of f(i, 8 lanes at i); f gets `pad` lanes past the end, and must map them to 0.
template <typename F>
inline double row_sum(int64_t n, F f) {
  double total = 0;
  for (int64_t b = 0; b < n; b += kFlush) {
    const int64_t e = b + kFlush < n ? b + kFlush : n;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int64_t i = b;
    for (; i + 16 <= e; i += 16) {
      a0 = _mm256_add_ps(a0, f(i, false));
      a1 = _mm256_add_ps(a1, f(i + 8, false));
    }
    for (; i + 8 <= e; i += 8) a0 = _mm256_add_ps(a0, f(i, false));
    if (i < e) a1 = _mm256_add_ps(a1, f(i, true));
    total += hsum_pd(add_widened(_mm256_setzero_pd(), _mm256_add_ps(a0, a1)));
  }
  return total;
}

}  // namespace smyrf::kernels::cpu::avx2::rows
