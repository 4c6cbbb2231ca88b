#include "kernels/cpu/softmax.h"

#include <omp.h>

#include <cmath>
#include <limits>
#include <type_traits>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/line_writer.h"
#include "kernels/cpu/nd_loop.h"
#include "kernels/cpu/short_rows.h"
#include "kernels/cpu/short_rows_avx2.h"
#include "kernels/cpu/softmax_avx2.h"
#include "kernels/cpu/split_rows.h"
#include "kernels/cpu/streaming_store.h"

namespace smyrf::kernels::cpu {
namespace {
// One row of softmax / log_softmax, in double (the reference for every type and ISA).
template <typename T>
void softmax_row_ref(const T* xr, T* yr, int64_t n, bool log) {
  // NaN-propagating max: std::max would skip a NaN, and a row of NaN and -inf then took the
  // all -inf branch and came out as zeros instead of NaN
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) m = std::isnan(xr[i]) ? xr[i] : std::max<double>(m, xr[i]);
  if (std::isnan(m)) {
    for (int64_t i = 0; i < n; ++i) yr[i] = std::numeric_limits<T>::quiet_NaN();
    return;
  }
  if (std::isinf(m) && m < 0) {  // every entry -inf
    for (int64_t i = 0; i < n; ++i) yr[i] = log ? xr[i] : T(0);
    return;
  }
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(xr[i]) - m);
  if (log) {
    double lse = m + std::log(s);
    for (int64_t i = 0; i < n; ++i) yr[i] = static_cast<T>(xr[i] - lse);
  } else {
    double inv = 1.0 / s;
    for (int64_t i = 0; i < n; ++i) yr[i] = static_cast<T>(std::exp(xr[i] - m) * inv);
  }
}

// A part's softmax statistics (softmax_part_stats_f32).
struct PartStats {
  float m;
  double s;
  bool ok;
};

// Part [b, e) of row r of x (possibly empty).
PartStats part_stats(const float* x, int64_t r, int64_t n, int64_t b, int64_t e) {
  PartStats st{-std::numeric_limits<float>::infinity(), 0.0, true};
  if (e > b) st.ok = avx2::softmax_part_stats_f32(x + r * n + b, e - b, &st.m, &st.s);
  return st;
}

// The row's statistics from its parts': false when a part held a NaN or +inf; else M, the
// largest part m (-inf when every entry is), and S = sum s_p exp(m_p - M) (0 then).
bool combine_stats(const PartStats* all, int parts, float* M, double* S) {
  bool ok = true;
  float mx = -std::numeric_limits<float>::infinity();
  for (int p = 0; p < parts; ++p) {
    ok = ok && all[p].ok;
    mx = all[p].m > mx ? all[p].m : mx;
  }
  double s = 0;
  if (ok && !std::isinf(mx))
    for (int p = 0; p < parts; ++p)
      if (all[p].s > 0) s += all[p].s * std::exp(static_cast<double>(all[p].m) - mx);
  *M = mx;
  *S = s;
  return ok;
}

void softmax_split_rows_f32(const float* x, float* y, int64_t rows, int64_t n, bool log) {
  split_row_parts<PartStats>(
      rows, n, [&](int64_t r, int64_t b, int64_t e) { return part_stats(x, r, n, b, e); },
      [&](int64_t r, int64_t b, int64_t e, const PartStats* all, int parts) {
        float M;
        double S;
        const bool ok = combine_stats(all, parts, &M, &S);
        if (e <= b) return;
        float* yp = y + r * n + b;
        if (!ok) return avx2::fill_row_f32(yp, e - b, std::numeric_limits<float>::quiet_NaN());
        if (std::isinf(M))  // every entry -inf: softmax 0, log_softmax x (-inf)
          return avx2::fill_row_f32(yp, e - b, log ? M : 0.f);
        avx2::softmax_part_write_f32(x + r * n + b, yp, e - b, log, M, S);
      });
}

void softmax_split_rows_backward_f32(const float* y, const float* dy, float* dx, int64_t rows,
                                     int64_t n, bool log, bool stream) {
  split_row_parts<double>(
      rows, n,
      [&](int64_t r, int64_t b, int64_t e) {
        return e > b
                   ? avx2::softmax_backward_part_sum_f32(y + r * n + b, dy + r * n + b, e - b, log)
                   : 0.0;
      },
      [&](int64_t r, int64_t b, int64_t e, const double* all, int parts) {
        double s = 0;
        for (int p = 0; p < parts; ++p) s += all[p];
        if (e > b)
          avx2::softmax_backward_part_write_f32(y + r * n + b, dy + r * n + b, dx + r * n + b,
                                                e - b, log, s, stream);
      },
      stream);
}

// Whether rows of n floats take short_row_blocks under the op's cap (short_rows_avx2.h has
// the caps and their measurements).
bool short_rows(bool vec, int64_t rows, int64_t n, int64_t cap) {
  return vec && n >= 1 && rows >= 8 && n <= cap;
}
}  // namespace

template <typename T>
void softmax_rows(const T* x, T* y, int64_t rows, int64_t n, bool log) {
  if (rows <= 0 || n <= 0) return;  // (the AVX2 fallback reads x[0] unconditionally)
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
  // the block kernels and the rows of softmax_rows_f32's streamed path stream their output
  // (softmax_avx2.h, `stream`)
  const bool stream = vec && use_streaming_stores(rows * n * static_cast<int64_t>(sizeof(T)));
  // rows up to 128K floats (log_softmax: 1M) go through the row pipeline (softmax_avx2.h:
  // softmax_rows_f32)
  const bool piped = vec && n <= (log ? avx2::kLogSoftmaxPipedMax : avx2::kSoftmaxPipedMax);
  if constexpr (std::is_same_v<T, float>) {
    if (short_rows(vec, rows, n, avx2::kShortRowForwardMax)) {
      // a declined block's rows (a non-finite max) and the last rows % 8 go row by row, with
      // plain stores, as every longer row
      short_row_blocks(
          rows, n, stream,
          [&](int64_t r, int64_t nb, const avx2::ShortRowLanes& L) {
            return avx2::softmax_blocks_f32(x + r * n, y + r * n, nb, L, log, stream);
          },
          [&](int64_t r) { avx2::softmax_row_f32(x + r * n, y + r * n, n, log, nullptr); });
      return;
    }
  }
  if constexpr (std::is_same_v<T, float>) {
    if (vec && split_rows_wanted(rows, n)) return softmax_split_rows_f32(x, y, rows, n, log);
  }
  const int64_t ahead = avx2::prefetch_rows_ahead(n);
#pragma omp parallel if (rows_parallel_ok(rows, n))
  {
    if (piped) {  // this thread's block of the static schedule, as one call
      const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
      if constexpr (std::is_same_v<T, float>) {
        avx2::softmax_rows_f32(x + r0 * n, y + r0 * n, r1 - r0, n, log, stream);
        if (stream) streaming_store_fence();
      }
    } else {
#pragma omp for schedule(static) nowait
      for (int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * n;
        T* yr = y + r * n;
        if constexpr (std::is_same_v<T, float>) {
          if (vec) {
            avx2::softmax_row_f32(xr, yr, n, log, r + ahead < rows ? xr + ahead * n : nullptr);
            continue;
          }
        }
        softmax_row_ref(xr, yr, n, log);
      }
    }
  }
}

template <typename T>
void softmax_rows_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t n, bool log) {
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
  const bool stream = vec && use_streaming_stores(rows * n * static_cast<int64_t>(sizeof(T)));
  if constexpr (std::is_same_v<T, float>) {
    // blocks of 8 rows: the block kernel (short rows), or rows of 33-127 floats with n % 8 != 0
    // summed by row and written a block at a time (short_rows_avx2.h)
    const bool short_blocks = short_rows(vec, rows, n, avx2::kShortRowBackwardMax);
    if (short_blocks || (short_rows(vec, rows, n, avx2::kShortRowBackwardWriteMax) && n % 8 != 0)) {
      const auto block_kernel =
          short_blocks ? avx2::softmax_blocks_backward_f32 : avx2::softmax_blocks_backward_rows_f32;
      short_row_blocks(
          rows, n, stream,
          [&](int64_t r, int64_t nb, const avx2::ShortRowLanes& L) {
            block_kernel(y + r * n, dy + r * n, dx + r * n, nb, L, log, stream);
            return 0u;
          },
          [&](int64_t r) {
            avx2::softmax_row_backward_f32(y + r * n, dy + r * n, dx + r * n, n, log, stream);
          });
      return;
    }
    if (vec && split_rows_wanted(rows, n))
      return softmax_split_rows_backward_f32(y, dy, dx, rows, n, log, stream);
  }
#pragma omp parallel if (rows_parallel_ok(rows, n))
  {
    // this thread's rows (one contiguous block: schedule(static)) stream through one writer
    // (kernels/cpu/line_writer.h), whole lines only: against rows::stream_lines' per-row
    // streaming (2 threads, 16M floats, 6 alternated rounds, time ratio) 128 0.78, 150 0.92, 201
    // 0.90, 255 0.99, 256 0.99, 1001 0.98, 1024 1.03
    avx2::rows::LineWriter* out = stream && n >= 16 ? avx2::new_line_writer() : nullptr;
#pragma omp for schedule(static) nowait
    for (int64_t r = 0; r < rows; ++r) {
      const T* yr = y + r * n;
      const T* gr = dy + r * n;
      T* dr = dx + r * n;
      if constexpr (std::is_same_v<T, float>) {
        if (vec) {
          avx2::softmax_row_backward_f32(yr, gr, dr, n, log, stream, out);
          continue;
        }
      }
      double s = 0;
      if (log) {
        for (int64_t i = 0; i < n; ++i) s += gr[i];
        for (int64_t i = 0; i < n; ++i)
          dr[i] = static_cast<T>(gr[i] - std::exp(static_cast<double>(yr[i])) * s);
      } else {
        for (int64_t i = 0; i < n; ++i) s += static_cast<double>(gr[i]) * yr[i];
        for (int64_t i = 0; i < n; ++i) dr[i] = static_cast<T>(yr[i] * (gr[i] - s));
      }
    }
    avx2::finish_line_writer(out);
    if (stream) streaming_store_fence();
  }
}

template <typename T>
void logsumexp_rows(const T* x, T* y, int64_t rows, int64_t n) {
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
  // one row in double, with the edge semantics: the reference, and the rows the fast paths
  // leave NaN (a non-finite max, or a NaN)
  auto ref_row = [&](int64_t r) {
    const T* xr = x + r * n;
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < n; ++i) m = std::isnan(xr[i]) ? xr[i] : std::max<double>(m, xr[i]);
    if (std::isnan(m) || std::isinf(m)) {
      y[r] = static_cast<T>(m);
      return;
    }
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(xr[i]) - m);
    y[r] = static_cast<T>(m + std::log(s));
  };
  auto one_row = [&](int64_t r) {
    if constexpr (std::is_same_v<T, float>) {
      if (vec) {
        double l;
        avx2::cross_entropy_row_f32(x + r * n, n, &l, nullptr, nullptr);
        if (!std::isnan(l)) {
          y[r] = static_cast<T>(l);
          return;
        }
      }
    }
    ref_row(r);
  };
  if constexpr (std::is_same_v<T, float>) {
    if (short_rows(vec, rows, n, avx2::kShortRowCrossEntropyMax)) {
      row_blocks(
          rows, n, false,
          [&](int64_t r, int64_t nb) {
            const unsigned declined =
                avx2::cross_entropy_blocks_f32(x + r * n, nullptr, nb, n, 0, 0.0, nullptr, y + r);
            // a NaN row's lse is NaN already; the reference decides the rest of the edge rows
            return declined;
          },
          ref_row);
      return;
    }
  }
  if constexpr (std::is_same_v<T, float>) {
    if (vec && split_rows_wanted(rows, n)) {  // few long rows: the parts' sums combined
      split_row_parts<PartStats>(
          rows, n, [&](int64_t r, int64_t b, int64_t e) { return part_stats(x, r, n, b, e); },
          [&](int64_t r, int64_t b, int64_t, const PartStats* all, int parts) {
            if (b != 0) return;  // the first part's thread writes the row's result
            float M;
            double S;
            if (!combine_stats(all, parts, &M, &S))
              return ref_row(r);  // a NaN or +inf in the row: the reference decides
            y[r] = std::isinf(M) ? M : static_cast<T>(M + std::log(S));  // -inf: all -inf
          });
      return;
    }
  }
#pragma omp parallel for if (rows_parallel_ok(rows, n)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) one_row(r);
}

template <typename T>
void cross_entropy_rows(const T* logits, const int64_t* target, T* loss, T* lse, int64_t rows,
                        int64_t C, int64_t ignore_index, double eps) {
  const int64_t ahead = avx2::prefetch_rows_ahead(C);
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
  auto one_row = [&](int64_t r) {
    const T* xr = logits + r * C;
    double l, sum_x = 0;
    if constexpr (std::is_same_v<T, float>) {
      if (vec)  // the plain sum only feeds label smoothing
        avx2::cross_entropy_row_f32(xr, C, &l, eps != 0 ? &sum_x : nullptr,
                                    r + ahead < rows ? xr + ahead * C : nullptr);
    }
    if (!vec) {
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t c = 0; c < C; ++c) {
        m = std::max<double>(m, xr[c]);
        sum_x += xr[c];
      }
      double s = 0;
      for (int64_t c = 0; c < C; ++c) s += std::exp(static_cast<double>(xr[c]) - m);
      l = m + std::log(s);
    }
    lse[r] = static_cast<T>(l);
    const int64_t t = target[r];
    if (t == ignore_index) {
      loss[r] = T(0);
      return;
    }
    // without smoothing the mean term is left out, not multiplied by 0: a -inf logit (a masked
    // class) makes sum_x -inf, and 0 * inf turned a finite loss into NaN
    double v = (1.0 - eps) * (l - xr[t]);
    if (eps != 0) v += eps * (l - sum_x / C);
    loss[r] = static_cast<T>(v);
  };
  if constexpr (std::is_same_v<T, float>) {
    if (short_rows(vec, rows, C, avx2::kShortRowCrossEntropyMax)) {
      row_blocks(
          rows, C, false,
          [&](int64_t r, int64_t nb) {
            return avx2::cross_entropy_blocks_f32(logits + r * C, target + r, nb, C, ignore_index,
                                                  eps, loss + r, lse + r);
          },
          one_row);
      return;
    }
  }
#pragma omp parallel for if (rows_parallel_ok(rows, C)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) one_row(r);
}

template <typename T>
void cross_entropy_rows_backward(const T* logits, const int64_t* target, const T* lse, const T* g,
                                 T* dlogits, int64_t rows, int64_t C, int64_t ignore_index,
                                 double eps) {
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
  // large outputs stream (softmax_avx2.h, `stream`)
  const bool stream = vec && use_streaming_stores(rows * C * static_cast<int64_t>(sizeof(T)));
  auto one_row = [&](int64_t r, avx2::rows::LineWriter* out) {
    const T* xr = logits + r * C;
    T* dr = dlogits + r * C;
    const int64_t t = target[r];
    const double gr = g[r];
    const double l = lse[r], off = eps / C;
    if constexpr (std::is_same_v<T, float>) {
      if (vec) {
        if (t == ignore_index) {
          avx2::fill_row_f32(dr, C, 0.f, out);
          return;
        }
        // the target's entry in double: p - (1 - eps) cancels when p is near 1
        const double p = std::exp(static_cast<double>(xr[t]) - l);
        avx2::cross_entropy_row_backward_f32(xr, dr, C, l, gr, off, t,
                                             static_cast<float>(gr * (p - off - (1.0 - eps))), out);
        return;
      }
    }
    if (t == ignore_index) {
      for (int64_t c = 0; c < C; ++c) dr[c] = T(0);
      return;
    }
    for (int64_t c = 0; c < C; ++c) {
      double p = std::exp(static_cast<double>(xr[c]) - l);
      dr[c] = static_cast<T>(gr * (p - off - (c == t ? 1.0 - eps : 0.0)));
    }
  };
  if constexpr (std::is_same_v<T, float>) {
    if (short_rows(vec, rows, C, avx2::kShortRowCrossEntropyBackwardMax)) {
      short_row_blocks(
          rows, C, stream,
          [&](int64_t r, int64_t nb, const avx2::ShortRowLanes& L) {
            avx2::cross_entropy_blocks_backward_f32(logits + r * C, target + r, lse + r, g + r,
                                                    dlogits + r * C, nb, L, ignore_index, eps,
                                                    stream);
            return 0u;
          },
          [&](int64_t r) { one_row(r, nullptr); });
      return;
    }
  }
  // each thread's rows of 128 classes and more stream through one writer
  // (kernels/cpu/line_writer.h), whole lines only; they were written with plain stores, which
  // narrower rows keep (2 threads, 16M floats, 6 alternated rounds, time ratio: 65 1.14, 66 1.12,
  // 72 0.97, 97 1.05, 100 0.94, 128 0.80, 150 0.94, 201 1.01, 255 0.99, 256 0.81, 1001 0.80,
  // 1024 0.82)
  const bool lines = stream && C >= 128;
#pragma omp parallel if (rows_parallel_ok(rows, C))
  {
    avx2::rows::LineWriter* out = lines ? avx2::new_line_writer() : nullptr;
#pragma omp for schedule(static) nowait
    for (int64_t r = 0; r < rows; ++r) one_row(r, out);
    avx2::finish_line_writer(out);
    if (lines) streaming_store_fence();
  }
}

#define SMYRF_INSTANTIATE_SOFTMAX(T)                                                               \
  template void softmax_rows<T>(const T*, T*, int64_t, int64_t, bool);                             \
  template void logsumexp_rows<T>(const T*, T*, int64_t, int64_t);                                 \
  template void softmax_rows_backward<T>(const T*, const T*, T*, int64_t, int64_t, bool);          \
  template void cross_entropy_rows<T>(const T*, const int64_t*, T*, T*, int64_t, int64_t, int64_t, \
                                      double);                                                     \
  template void cross_entropy_rows_backward<T>(const T*, const int64_t*, const T*, const T*, T*,   \
                                               int64_t, int64_t, int64_t, double);
SMYRF_INSTANTIATE_SOFTMAX(float)
SMYRF_INSTANTIATE_SOFTMAX(double)

}  // namespace smyrf::kernels::cpu
