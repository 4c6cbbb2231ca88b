#include "kernels/cpu/norm.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/nd_loop.h"
#include "kernels/cpu/norm_avx2.h"
#include "kernels/cpu/reduce_avx2.h"
#include "kernels/cpu/short_rows.h"
#include "kernels/cpu/short_rows_avx2.h"
#include "kernels/cpu/split_rows.h"
#include "kernels/cpu/streaming_store.h"
#include "kernels/cpu/thread_partials.h"

namespace smyrf::kernels::cpu {
namespace {
// Rows of n <= avx2::kShortRowForwardMax floats, in blocks of 8 (kernels/cpu/short_rows_avx2.h):
// each thread takes a contiguous share of the rows, the last (share % 8) through the row kernel.
void layernorm_short_rows(const float* x, const float* w, const float* b, float* y, float* mean,
                          float* rstd, int64_t rows, int64_t n, double eps, bool stream) {
#pragma omp parallel if (rows_parallel_ok(rows, n))
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
    const avx2::ShortRowLanes L(n);
    alignas(32) float wl[avx2::kShortRowMax * 8], bl[avx2::kShortRowMax * 8];
    if (w) avx2::lay_out_per_lane(L, w, wl);
    if (b) avx2::lay_out_per_lane(L, b, bl);
    int64_t r = r0;
    while (r + 8 <= r1) {
      const int64_t nb = std::min<int64_t>(avx2::kShortGroup, (r1 - r) / 8);
      avx2::layernorm_blocks_f32(x + r * n, w ? wl : nullptr, b ? bl : nullptr, y + r * n, mean + r,
                                 rstd + r, nb, L, static_cast<float>(eps), stream);
      r += 8 * nb;
    }
    for (; r < r1; ++r) {
      double mu, rs;
      avx2::layernorm_row_f32(x + r * n, w, b, y + r * n, n, eps, &mu, &rs, nullptr, stream);
      mean[r] = static_cast<float>(mu);
      rstd[r] = static_cast<float>(rs);
    }
    if (stream) streaming_store_fence();
  }
}

// A part's forward moments: count, mean and sum of squared deviations (n var).
struct PartMoments {
  double count, mean, m2;
};

// The moments of part [pb, pe) of row r (AVX2 row_moments_f32).
PartMoments part_moments(const float* x, int64_t r, int64_t n, int64_t pb, int64_t pe) {
  if (pe <= pb) return {0, 0, 0};
  double mu, var;
  avx2::row_moments_f32(x + r * n + pb, pe - pb, &mu, &var);
  return {static_cast<double>(pe - pb), mu, var * static_cast<double>(pe - pb)};
}

// The row's mean and m2 from its parts', as in Chan et al.'s parallel variance (mean = sum n_p
// mean_p / n, m2 = sum m2_p + n_p (mean_p - mean)^2), exact enough in double.
void combine_moments(const PartMoments* all, int parts, int64_t n, double* mean, double* m2) {
  double mu = 0, s = 0;
  for (int p = 0; p < parts; ++p) mu += all[p].count * all[p].mean;
  mu /= static_cast<double>(n);
  for (int p = 0; p < parts; ++p)
    s += all[p].m2 + all[p].count * (all[p].mean - mu) * (all[p].mean - mu);
  *mean = mu;
  *m2 = s;
}

// layernorm_rows with each row split between the threads (kernels/cpu/split_rows.h).
void layernorm_split_rows_f32(const float* x, const float* w, const float* b, float* y, float* mean,
                              float* rstd, int64_t rows, int64_t n, double eps, bool stream) {
  split_row_parts<PartMoments>(
      rows, n, [&](int64_t r, int64_t pb, int64_t pe) { return part_moments(x, r, n, pb, pe); },
      [&](int64_t r, int64_t pb, int64_t pe, const PartMoments* all, int parts) {
        double mu, m2;
        combine_moments(all, parts, n, &mu, &m2);
        const double rs = 1.0 / std::sqrt(m2 / static_cast<double>(n) + eps);
        if (pe > pb)
          avx2::layernorm_part_write_f32(x + r * n + pb, w ? w + pb : nullptr, b ? b + pb : nullptr,
                                         y + r * n + pb, pe - pb, mu, rs, stream);
        if (pb == 0) {
          mean[r] = static_cast<float>(mu);
          rstd[r] = static_cast<float>(rs);
        }
      },
      stream);
}

// A part's backward sums: sum(dy w) and sum(dy w xhat).
struct PartGradSums {
  double sg, sgx;
};

// layernorm_rows_backward with each row split between the threads: every thread owns its part's
// columns of dw / db over all rows (zeroed at the first row, accumulated in float row by row, in
// row order: fewer than two rows a thread, so a handful of terms), the row sums combine after
// the barrier.
void layernorm_split_rows_backward_f32(const float* dy, const float* x, const float* mean,
                                       const float* rstd, const float* w, float* dx, float* dw,
                                       float* db, int64_t rows, int64_t n, bool stream) {
  split_row_parts<PartGradSums>(
      rows, n,
      [&](int64_t r, int64_t pb, int64_t pe) {
        PartGradSums s{0, 0};
        if (pe <= pb) return s;
        if (r == 0) {
          if (dw) std::fill(dw + pb, dw + pe, 0.f);
          if (db) std::fill(db + pb, db + pe, 0.f);
        }
        avx2::layernorm_backward_part_sums_f32(dy + r * n + pb, x + r * n + pb, mean[r], rstd[r],
                                               w ? w + pb : nullptr, dw ? dw + pb : nullptr,
                                               db ? db + pb : nullptr, pe - pb, &s.sg, &s.sgx);
        return s;
      },
      [&](int64_t r, int64_t pb, int64_t pe, const PartGradSums* all, int parts) {
        double sg = 0, sgx = 0;
        for (int p = 0; p < parts; ++p) sg += all[p].sg, sgx += all[p].sgx;
        if (pe > pb)
          avx2::layernorm_backward_part_write_f32(dy + r * n + pb, x + r * n + pb, mean[r], rstd[r],
                                                  w ? w + pb : nullptr, dx + r * n + pb, pe - pb, n,
                                                  sg, sgx, stream);
      },
      stream);
}
}  // namespace

template <typename T>
void layernorm_rows(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows,
                    int64_t n, double eps) {
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
  // a large y goes out with streaming stores (kernels/cpu/streaming_store.h): x read plus y
  // written is then 8 bytes of traffic per element instead of 12
  const bool stream = vec && use_streaming_stores(rows * n * static_cast<int64_t>(sizeof(T)));
  if constexpr (std::is_same_v<T, float>) {
    if (vec && n <= avx2::kShortRowForwardMax && rows >= 8) {
      layernorm_short_rows(x, w, b, y, mean, rstd, rows, n, eps, stream);
      return;
    }
    if (vec && split_rows_wanted(rows, n))
      return layernorm_split_rows_f32(x, w, b, y, mean, rstd, rows, n, eps, stream);
  }
#pragma omp parallel if (rows_parallel_ok(rows, n))
  {
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * n;
      T* yr = y + r * n;
      double mu, rs;
      if constexpr (std::is_same_v<T, float>) {
        if (vec) {
          avx2::layernorm_row_f32(xr, w, b, yr, n, eps, &mu, &rs, r + 1 < rows ? xr + n : nullptr,
                                  stream);
          mean[r] = static_cast<T>(mu);
          rstd[r] = static_cast<T>(rs);
          continue;
        }
      }
      double s = 0;
      for (int64_t i = 0; i < n; ++i) s += xr[i];
      mu = s / n;
      double v = 0;
      for (int64_t i = 0; i < n; ++i) v += (xr[i] - mu) * (xr[i] - mu);
      rs = 1.0 / std::sqrt(v / n + eps);
      for (int64_t i = 0; i < n; ++i) {
        double h = (xr[i] - mu) * rs;
        if (w) h *= w[i];
        if (b) h += b[i];
        yr[i] = static_cast<T>(h);
      }
      mean[r] = static_cast<T>(mu);
      rstd[r] = static_cast<T>(rs);
    }
    if (stream) streaming_store_fence();
  }
}

// One row of the backward in double (the reference, and the kernel for double): adds dy xhat
// and dy into tw / tb when non-null.
template <typename T>
void backward_row_scalar(const T* gr, const T* xr, double mu, double rs, const T* w, T* dr,
                         double* tw, double* tb, int64_t n) {
  double sg = 0, sgx = 0;  // sum(g), sum(g * xhat) with g = dy * w
  for (int64_t i = 0; i < n; ++i) {
    double xh = (xr[i] - mu) * rs;
    double g = w ? static_cast<double>(gr[i]) * w[i] : gr[i];
    sg += g;
    sgx += g * xh;
    if (tw) tw[i] += gr[i] * xh;
    if (tb) tb[i] += gr[i];
  }
  for (int64_t i = 0; i < n; ++i) {
    double xh = (xr[i] - mu) * rs;
    double g = w ? static_cast<double>(gr[i]) * w[i] : gr[i];
    dr[i] = static_cast<T>(rs * (g - sg / n - xh * sgx / n));
  }
}

template <typename T>
void layernorm_rows_backward(const T* dy, const T* x, const T* mean, const T* rstd, const T* w,
                             T* dx, T* dw, T* db, int64_t rows, int64_t n) {
  const int nt = rows_parallel_ok(rows, n) ? omp_get_max_threads() : 1;
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
  // dx streams out when large: dy and x read plus dx written, 12 bytes per element instead of 16
  const bool stream = vec && use_streaming_stores(rows * n * static_cast<int64_t>(sizeof(T)));
  if constexpr (std::is_same_v<T, float>) {
    // Rows of kSplitRowMin floats or more, any number of them, are split between the threads,
    // which own dw / db by columns: the per-thread n-long partials below (zeroed double and
    // float rows, 24 bytes a column a thread) page-faulted on every call at these widths. One
    // row of 16M floats took 1.8-2.0 s (one thread), 2 x 4M 546 ms, 3 x 1M 134 ms, 16 x 1M 140-
    // 176 ms; split: 12.6, 5.5, 1.4 and 6.6 ms (64 x 262144 8.3 -> 7.0 ms; 3 interleaved
    // rounds, 2026-11-29). Splitting from 2^14 or 2^16 columns on made 1024 x 16384 and
    // 256 x 65536 10-80% slower (a barrier a row, and rows that fit the cache anyway).
    if (vec && split_rows_possible(n))
      return layernorm_split_rows_backward_f32(dy, x, mean, rstd, w, dx, dw, db, rows, n, stream);
  }
  // per-thread partial sums for dw/db, reduced in a fixed order so results are deterministic
  // (each thread's on cache lines of its own: kernels/cpu/thread_partials.h)
  ThreadPartials<double> pw(nt, dw ? n : 0), pb(nt, db ? n : 0);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_get_thread_num(), nthr = omp_get_num_threads();
    double* tw = pw.row(t);
    double* tb = pb.row(t);
    // each thread one contiguous block of rows (as schedule(static)), so that the AVX2 kernel
    // can take them two at a time
    const int64_t r0 = rows * t / nthr, r1 = rows * (t + 1) / nthr;
    if constexpr (std::is_same_v<T, float>) {
      if (vec) {
        // the row kernel adds into float partials, folded into the double ones every
        // kLnFoldRows rows (a float sum of a few terms loses nothing that matters; per-row
        // double read-modify-writes of dw / db were half the work of the row)
        constexpr int64_t kLnFoldRows = 16;
        std::vector<float> fw(dw ? n : 0), fb(db ? n : 0);
        int64_t pending = 0;
        auto fold = [&] {
          for (int64_t i = 0; i < static_cast<int64_t>(fw.size()); ++i) tw[i] += fw[i], fw[i] = 0.f;
          for (int64_t i = 0; i < static_cast<int64_t>(fb.size()); ++i) tb[i] += fb[i], fb[i] = 0.f;
          pending = 0;
        };
        int64_t r = r0;
        if (n <= avx2::kShortRowBackwardMax) {
          // blocks of 8 rows (kernels/cpu/short_rows_avx2.h), their dw / db partials per lane
          // of the block's layout, folded into the per-column sums after every group
          const avx2::ShortRowLanes L(n);
          alignas(32) float wl[avx2::kShortRowMax * 8];
          alignas(32) float lw[avx2::kShortRowMax * 8] = {}, lb[avx2::kShortRowMax * 8] = {};
          if (w) avx2::lay_out_per_lane(L, w, wl);
          while (r + 8 <= r1) {
            const int64_t nb = std::min<int64_t>(avx2::kShortGroup, (r1 - r) / 8);
            avx2::layernorm_blocks_backward_f32(dy + r * n, x + r * n, mean + r, rstd + r,
                                                w ? wl : nullptr, dx + r * n, dw ? lw : nullptr,
                                                db ? lb : nullptr, nb, L, stream);
            r += 8 * nb;
            for (int64_t f = 0; f < 8 * n; ++f) {
              if (dw) tw[L.col[f]] += lw[f], lw[f] = 0.f;
              if (db) tb[L.col[f]] += lb[f], lb[f] = 0.f;
            }
          }
        }
        // rows of 64 floats and more stream through one writer a thread (norm_avx2.h); narrower
        // ones keep plain stores (streamed / plain time: 33 1.24, 50 1.13, 64 0.99, 72 0.89)
        avx2::rows::LineWriter* out = stream && n >= 64 ? avx2::new_line_writer() : nullptr;
        while (r < r1) {
          // two rows per call: dw / db partials are read and written once for both
          const int k = r + 1 < r1 ? 2 : 1;
          const double mu[2] = {mean[r], k == 2 ? mean[r + 1] : 0.0};
          const double rs[2] = {rstd[r], k == 2 ? rstd[r + 1] : 0.0};
          const bool more = r + k < r1;
          avx2::layernorm_rows_backward_f32(dy + r * n, x + r * n, mu, rs, k, w, dx + r * n,
                                            dw ? fw.data() : nullptr, db ? fb.data() : nullptr, n,
                                            more ? dy + (r + k) * n : nullptr,
                                            more ? x + (r + k) * n : nullptr, out);
          r += k;
          if ((pending += k) >= kLnFoldRows) fold();
        }
        avx2::finish_line_writer(out);
        if (pending) fold();
        if (stream) streaming_store_fence();
      }
    }
    if (!vec)
      for (int64_t r = r0; r < r1; ++r)
        backward_row_scalar(dy + r * n, x + r * n, static_cast<double>(mean[r]),
                            static_cast<double>(rstd[r]), w, dx + r * n, tw, tb, n);
  }
  for (int64_t i = 0; i < n; ++i) {
    double sw = 0, sb = 0;
    for (int t = 0; t < nt; ++t) {
      if (dw) sw += pw.row(t)[i];
      if (db) sb += pb.row(t)[i];
    }
    if (dw) dw[i] = static_cast<T>(sw);
    if (db) db[i] = static_cast<T>(sb);
  }
}

template <typename T>
void var_cols(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, int64_t correction) {
  if (outer <= 0 || inner <= 0) return;
  const double scale = 1.0 / static_cast<double>(std::max<int64_t>(n - correction, 0));
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
  const int nt =
      outer * n * inner >= kParallelGrain && !omp_in_parallel() ? omp_get_max_threads() : 1;
  // blocks of up to kMax columns (their sums stay in L1), narrower when that gives the threads
  // more blocks than there are
  constexpr int64_t kMax = 512;
  int64_t width = kMax;
  while (width > 64 && outer * ((inner + width - 1) / width) < nt) width /= 2;
  const int64_t nblk = (inner + width - 1) / width, tasks = outer * nblk;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t o = t / nblk, j0 = t % nblk * width;
    const int64_t w = std::min(width, inner - j0);
    const T* base = x + o * n * inner + j0;
    // One sweep: the moments of the deviations from each column's first entry c (before
    // 2026-11-29 a sweep for the mean came first, and the deviations from it: two reads of x,
    // 4096 x 4096 over dim 0 ~3.9 ms). Accumulated in double, var = (s2 - s1^2 / n) / (n - k)
    // loses about (c - mean)^2 / var of its 53 bits to cancellation, and since c is one of the
    // n entries that ratio is at most n: 2^-53 n relative, far below float's rounding.
    double s1[kMax], s2[kMax];
    float c[kMax];
    for (int64_t j = 0; j < w; ++j) c[j] = static_cast<float>(base[j]);
    std::fill(s1, s1 + w, 0.0);
    std::fill(s2, s2 + w, 0.0);
    if constexpr (std::is_same_v<T, float>) {
      if (vec) avx2::col_dev_moments_f32(base, inner, n, w, c, s1, s2);
    }
    if (!vec) {
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < w; ++j) {
          // (double's c: a float shift would round a double column's first entry)
          const double d = static_cast<double>(base[r * inner + j]) - static_cast<double>(base[j]);
          s1[j] += d;
          s2[j] += d * d;
        }
    }
    T* yo = y + o * inner + j0;
    for (int64_t j = 0; j < w; ++j) {
      const double m2 = std::max(s2[j] - s1[j] * s1[j] / static_cast<double>(n), 0.0);
      // (a NaN or inf in the column makes s1 NaN or infinite; finite floats cannot)
      yo[j] = static_cast<T>(std::isfinite(s1[j]) ? m2 * scale
                                                  : std::numeric_limits<double>::quiet_NaN());
    }
  }
}

template <typename T>
void var_rows(const T* x, T* y, int64_t rows, int64_t n, int64_t correction) {
  const double scale = 1.0 / static_cast<double>(std::max<int64_t>(n - correction, 0));
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
  auto one_row = [&](int64_t r) {
    const T* xr = x + r * n;
    if constexpr (std::is_same_v<T, float>) {
      if (vec) {
        double mu, v;
        avx2::row_moments_f32(xr, n, &mu, &v);
        // (a NaN or inf row: the moments are NaN, or inf - inf)
        const double m2 = std::isfinite(mu) ? v * n : std::numeric_limits<double>::quiet_NaN();
        y[r] = static_cast<T>(m2 * scale);
        return;
      }
    }
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += xr[i];
    const double mu = s / n;
    double m2 = 0;
    for (int64_t i = 0; i < n; ++i) m2 += (xr[i] - mu) * (xr[i] - mu);
    y[r] = static_cast<T>(m2 * scale);
  };
  if constexpr (std::is_same_v<T, float>) {
    if (vec && n <= avx2::kShortRowForwardMax && rows >= 8) {  // eight rows a block
      short_row_blocks(
          rows, n, false,
          [&](int64_t r, int64_t nb, const avx2::ShortRowLanes&) {
            avx2::var_blocks_f32(x + r * n, y + r, nb, n, scale);
            return 0u;
          },
          one_row);
      return;
    }
    if (vec && split_rows_wanted(rows, n)) {  // few long rows: the parts' moments combined
      split_row_parts<PartMoments>(
          rows, n, [&](int64_t r, int64_t pb, int64_t pe) { return part_moments(x, r, n, pb, pe); },
          [&](int64_t r, int64_t pb, int64_t, const PartMoments* all, int parts) {
            if (pb != 0) return;  // the first part's thread writes the row's result
            double mu, m2;
            combine_moments(all, parts, n, &mu, &m2);
            // (a NaN or inf row: the moments are NaN, or inf - inf)
            y[r] = static_cast<T>(std::isfinite(mu) ? m2 * scale
                                                    : std::numeric_limits<double>::quiet_NaN());
          });
      return;
    }
  }
#pragma omp parallel for if (rows_parallel_ok(rows, n)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) one_row(r);
}

#define SMYRF_INSTANTIATE_NORM(T)                                                                \
  template void layernorm_rows<T>(const T*, const T*, const T*, T*, T*, T*, int64_t, int64_t,    \
                                  double);                                                       \
  template void var_rows<T>(const T*, T*, int64_t, int64_t, int64_t);                            \
  template void var_cols<T>(const T*, T*, int64_t, int64_t, int64_t, int64_t);                   \
  template void layernorm_rows_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, \
                                           T*, T*, int64_t, int64_t);
SMYRF_INSTANTIATE_NORM(float)
SMYRF_INSTANTIATE_NORM(double)

}  // namespace smyrf::kernels::cpu
