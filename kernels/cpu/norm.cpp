#include "kernels/cpu/norm.h"

#include <omp.h>

#include <cmath>
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

#define SMYRF_INSTANTIATE_NORM(T)                                                                \
  template void layernorm_rows<T>(const T*, const T*, const T*, T*, T*, T*, int64_t, int64_t,    \
                                  double);                                                       \
  template void layernorm_rows_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, \
                                           T*, T*, int64_t, int64_t);
SMYRF_INSTANTIATE_NORM(float)
SMYRF_INSTANTIATE_NORM(double)

}  // namespace smyrf::kernels::cpu
