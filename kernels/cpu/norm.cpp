#include "kernels/cpu/norm.h"

#include <omp.h>

#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/nd_loop.h"
#include "kernels/cpu/norm_avx2.h"

namespace smyrf::kernels::cpu {
namespace {
inline bool parallel_ok(int64_t rows, int64_t n) {
  return rows > 1 && rows * n >= kParallelGrain && !omp_in_parallel();
}
inline bool use_avx2() { return active_isa() == Isa::Avx2; }
}  // namespace

template <typename T>
void softmax_rows(const T* x, T* y, int64_t rows, int64_t n, bool log) {
#pragma omp parallel for if (parallel_ok(rows, n)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    if constexpr (std::is_same_v<T, float>) {
      if (use_avx2()) {
        avx2::softmax_row_f32(xr, yr, n, log, r + 1 < rows ? xr + n : nullptr);
        continue;
      }
    }
    // NaN-propagating max: std::max would skip a NaN, and a row of NaN and -inf then took the
    // all -inf branch and came out as zeros instead of NaN
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < n; ++i) m = std::isnan(xr[i]) ? xr[i] : std::max<double>(m, xr[i]);
    if (std::isnan(m)) {
      for (int64_t i = 0; i < n; ++i) yr[i] = std::numeric_limits<T>::quiet_NaN();
      continue;
    }
    if (std::isinf(m) && m < 0) {  // every entry -inf
      for (int64_t i = 0; i < n; ++i) yr[i] = log ? xr[i] : T(0);
      continue;
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
}

template <typename T>
void softmax_rows_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t n, bool log) {
#pragma omp parallel for if (parallel_ok(rows, n)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* yr = y + r * n;
    const T* gr = dy + r * n;
    T* dr = dx + r * n;
    if constexpr (std::is_same_v<T, float>) {
      if (use_avx2()) {
        avx2::softmax_row_backward_f32(yr, gr, dr, n, log);
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
}

template <typename T>
void layernorm_rows(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows,
                    int64_t n, double eps) {
#pragma omp parallel for if (parallel_ok(rows, n)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    double mu, rs;
    if constexpr (std::is_same_v<T, float>) {
      if (use_avx2()) {
        avx2::layernorm_row_f32(xr, w, b, yr, n, eps, &mu, &rs, r + 1 < rows ? xr + n : nullptr);
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
}

template <typename T>
void layernorm_rows_backward(const T* dy, const T* x, const T* mean, const T* rstd, const T* w,
                             T* dx, T* dw, T* db, int64_t rows, int64_t n) {
  const int nt = parallel_ok(rows, n) ? omp_get_max_threads() : 1;
  // per-thread partial sums for dw/db, reduced in a fixed order so results are deterministic
  std::vector<double> pw(dw ? static_cast<size_t>(nt) * n : 0),
      pb(db ? static_cast<size_t>(nt) * n : 0);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_get_thread_num();
    double* tw = dw ? pw.data() + static_cast<size_t>(t) * n : nullptr;
    double* tb = db ? pb.data() + static_cast<size_t>(t) * n : nullptr;
    // AVX2: the row kernel adds into float partials, folded into the double ones every
    // kLnFoldRows rows (a float sum of a few terms loses nothing that matters; per-row double
    // read-modify-writes of dw / db were half the work of the row)
    constexpr int kLnFoldRows = 16;
    const bool vec = std::is_same_v<T, float> && use_avx2();
    std::vector<float> fw(vec && dw ? n : 0), fb(vec && db ? n : 0);
    int pending = 0;
    auto fold = [&] {
      for (int64_t i = 0; i < static_cast<int64_t>(fw.size()); ++i) tw[i] += fw[i], fw[i] = 0.f;
      for (int64_t i = 0; i < static_cast<int64_t>(fb.size()); ++i) tb[i] += fb[i], fb[i] = 0.f;
      pending = 0;
    };
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* gr = dy + r * n;
      const T* xr = x + r * n;
      T* dr = dx + r * n;
      const double mu = mean[r], rs = rstd[r];
      if constexpr (std::is_same_v<T, float>) {
        if (vec) {
          avx2::layernorm_row_backward_f32(
              gr, xr, mu, rs, w, dr, dw ? fw.data() : nullptr, db ? fb.data() : nullptr, n,
              r + 1 < rows ? gr + n : nullptr, r + 1 < rows ? xr + n : nullptr);
          if (++pending == kLnFoldRows) fold();
          continue;
        }
      }
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
    if (pending) fold();
  }
  for (int64_t i = 0; i < n; ++i) {
    double sw = 0, sb = 0;
    for (int t = 0; t < nt; ++t) {
      if (dw) sw += pw[static_cast<size_t>(t) * n + i];
      if (db) sb += pb[static_cast<size_t>(t) * n + i];
    }
    if (dw) dw[i] = static_cast<T>(sw);
    if (db) db[i] = static_cast<T>(sb);
  }
}

template <typename T>
void cross_entropy_rows(const T* logits, const int64_t* target, T* loss, T* lse, int64_t rows,
                        int64_t C, int64_t ignore_index, double eps) {
#pragma omp parallel for if (parallel_ok(rows, C)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = logits + r * C;
    double l, sum_x = 0;
    if constexpr (std::is_same_v<T, float>) {
      if (use_avx2())
        avx2::cross_entropy_row_f32(xr, C, &l, &sum_x, r + 1 < rows ? xr + C : nullptr);
    }
    if (!(std::is_same_v<T, float> && use_avx2())) {
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
      continue;
    }
    loss[r] = static_cast<T>((1.0 - eps) * (l - xr[t]) + eps * (l - sum_x / C));
  }
}

template <typename T>
void cross_entropy_rows_backward(const T* logits, const int64_t* target, const T* lse, const T* g,
                                 T* dlogits, int64_t rows, int64_t C, int64_t ignore_index,
                                 double eps) {
#pragma omp parallel for if (parallel_ok(rows, C)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = logits + r * C;
    T* dr = dlogits + r * C;
    const int64_t t = target[r];
    if (t == ignore_index) {
      for (int64_t c = 0; c < C; ++c) dr[c] = T(0);
      continue;
    }
    const double gr = g[r], l = lse[r], off = eps / C;
    if constexpr (std::is_same_v<T, float>) {
      if (use_avx2()) {
        avx2::cross_entropy_row_backward_f32(xr, dr, C, l, gr, off);
        const double p = std::exp(static_cast<double>(xr[t]) - l);
        dr[t] = static_cast<T>(gr * (p - off - (1.0 - eps)));
        continue;
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      double p = std::exp(static_cast<double>(xr[c]) - l);
      dr[c] = static_cast<T>(gr * (p - off - (c == t ? 1.0 - eps : 0.0)));
    }
  }
}

#define SMYRF_INSTANTIATE_NORM(T)                                                                  \
  template void softmax_rows<T>(const T*, T*, int64_t, int64_t, bool);                             \
  template void softmax_rows_backward<T>(const T*, const T*, T*, int64_t, int64_t, bool);          \
  template void layernorm_rows<T>(const T*, const T*, const T*, T*, T*, T*, int64_t, int64_t,      \
                                  double);                                                         \
  template void layernorm_rows_backward<T>(const T*, const T*, const T*, const T*, const T*, T*,   \
                                           T*, T*, int64_t, int64_t);                              \
  template void cross_entropy_rows<T>(const T*, const int64_t*, T*, T*, int64_t, int64_t, int64_t, \
                                      double);                                                     \
  template void cross_entropy_rows_backward<T>(const T*, const int64_t*, const T*, const T*, T*,   \
                                               int64_t, int64_t, int64_t, double);
SMYRF_INSTANTIATE_NORM(float)
SMYRF_INSTANTIATE_NORM(double)

}  // namespace smyrf::kernels::cpu
