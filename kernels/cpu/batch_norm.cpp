// Batch normalisation kernels (see batch_norm.h). Sums run in double: a channel's statistics
// cover N*L values (32 * 1024 in BigGAN at 32x32), where float accumulation would drift.
#include "kernels/cpu/batch_norm.h"

#include <omp.h>

#include <algorithm>
#include <type_traits>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/reduce_avx2.h"

namespace smyrf::kernels::cpu {
namespace {
int loop_threads(int64_t items) {
  if (omp_in_parallel()) return 1;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), items)));
}

// Sum of p[0..L) and of (p[l] - m)^2 in double: float32 plane runs through the AVX2 reductions
// (four independent chains; the scalar loops' one dependent double add an element made the
// statistics 1.8% of a CPU BigGAN step).
template <typename T>
double plane_sum(const T* p, int64_t L, bool vec) {
  if constexpr (std::is_same_v<T, float>)
    if (vec) return avx2::sum_f32(p, L);
  double s = 0;
  for (int64_t l = 0; l < L; ++l) s += p[l];
  return s;
}
template <typename T>
double plane_sq_dev(const T* p, int64_t L, double m, bool vec) {
  if constexpr (std::is_same_v<T, float>)
    if (vec) return avx2::sum_sq_dev_f32(p, L, m);
  double v = 0;
  for (int64_t l = 0; l < L; ++l) {
    const double d = p[l] - m;
    v += d * d;
  }
  return v;
}
}  // namespace

template <typename T>
void batch_norm_stats(const T* x, int64_t N, int64_t C, int64_t L, T* mean, T* var) {
  const int nt = loop_threads(C);
  const double count = static_cast<double>(N * L);
  const bool vec = active_isa() == Isa::Avx2;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    double s = 0;
    for (int64_t n = 0; n < N; ++n) s += plane_sum(x + (n * C + c) * L, L, vec);
    const double m = count > 0 ? s / count : 0.0;
    // second pass around the mean: no cancellation for channels with a large mean
    double v = 0;
    for (int64_t n = 0; n < N; ++n) v += plane_sq_dev(x + (n * C + c) * L, L, m, vec);
    mean[c] = static_cast<T>(m);
    var[c] = static_cast<T>(count > 0 ? v / count : 0.0);
  }
}

template <typename T>
void batch_norm_apply(const T* x, int64_t N, int64_t C, int64_t L, const T* mean, const T* rstd,
                      const T* w, const T* b, int64_t affine_stride_n, T* y) {
  const int nt = loop_threads(N * C);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const int64_t n = nc / C, c = nc % C, a = n * affine_stride_n + c;
    const T scale = rstd[c] * (w ? w[a] : T(1));
    const T shift = (b ? b[a] : T(0)) - mean[c] * scale;
    const T* xp = x + nc * L;
    T* yp = y + nc * L;
    for (int64_t l = 0; l < L; ++l) yp[l] = xp[l] * scale + shift;
  }
}

template <typename T>
void batch_norm_backward(const T* dy, const T* x, int64_t N, int64_t C, int64_t L, const T* mean,
                         const T* rstd, const T* w, int64_t affine_stride_n, bool training, T* dx,
                         T* dw, T* db) {
  const int nt = loop_threads(C);
  const double count = static_cast<double>(N * L);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    const double m = mean[c], r = rstd[c];
    // g = dy * w is the gradient of xhat; its sums give the terms through the batch statistics
    double sum_g = 0, sum_gx = 0, cdw = 0, cdb = 0;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t a = n * affine_stride_n + c;
      const double wn = w ? static_cast<double>(w[a]) : 1.0;
      const T* dyp = dy + (n * C + c) * L;
      const T* xp = x + (n * C + c) * L;
      double s_dy = 0, s_dyx = 0;
      for (int64_t l = 0; l < L; ++l) {
        const double xhat = (xp[l] - m) * r;
        s_dy += dyp[l];
        s_dyx += dyp[l] * xhat;
      }
      sum_g += wn * s_dy;
      sum_gx += wn * s_dyx;
      if (affine_stride_n != 0) {
        if (dw) dw[a] = static_cast<T>(s_dyx);
        if (db) db[a] = static_cast<T>(s_dy);
      } else {
        cdw += s_dyx;
        cdb += s_dy;
      }
    }
    if (affine_stride_n == 0) {
      if (dw) dw[c] = static_cast<T>(cdw);
      if (db) db[c] = static_cast<T>(cdb);
    }
    if (!dx) continue;
    const double mg = training && count > 0 ? sum_g / count : 0.0;
    const double mgx = training && count > 0 ? sum_gx / count : 0.0;
    for (int64_t n = 0; n < N; ++n) {
      const double wn = w ? static_cast<double>(w[n * affine_stride_n + c]) : 1.0;
      const T* dyp = dy + (n * C + c) * L;
      const T* xp = x + (n * C + c) * L;
      T* dxp = dx + (n * C + c) * L;
      for (int64_t l = 0; l < L; ++l) {
        const double xhat = (xp[l] - m) * r;
        dxp[l] = static_cast<T>(r * (wn * dyp[l] - mg - xhat * mgx));
      }
    }
  }
}

#define SMYRF_BN_INSTANTIATE(T)                                                                 \
  template void batch_norm_stats<T>(const T*, int64_t, int64_t, int64_t, T*, T*);               \
  template void batch_norm_apply<T>(const T*, int64_t, int64_t, int64_t, const T*, const T*,    \
                                    const T*, const T*, int64_t, T*);                           \
  template void batch_norm_backward<T>(const T*, const T*, int64_t, int64_t, int64_t, const T*, \
                                       const T*, const T*, int64_t, bool, T*, T*, T*);
SMYRF_BN_INSTANTIATE(float)
SMYRF_BN_INSTANTIATE(double)
#undef SMYRF_BN_INSTANTIATE

}  // namespace smyrf::kernels::cpu
