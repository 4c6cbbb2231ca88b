// Batch normalisation kernels (see batch_norm.h).
#include "kernels/cuda/batch_norm.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/device_utils.cuh"

namespace smyrf::kernels::cuda {
using detail::grid_for;
using detail::stream;
namespace {
constexpr int kThreads = 256;

// One block per channel: the mean, then the biased variance around it (a second pass, as the
// CPU: no cancellation for channels with a large mean).
template <typename T>
__global__ void stats_kernel(const T* __restrict__ x, int64_t N, int64_t C, int64_t L,
                             T* __restrict__ mean, T* __restrict__ var) {
  const int64_t c = blockIdx.x;
  const double count = static_cast<double>(N * L);
  double s = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t l = threadIdx.x; l < L; l += blockDim.x) s += x[(n * C + c) * L + l];
  s = detail::block_reduce(s, detail::SumOp{});
  const double m = count > 0 ? s / count : 0.0;
  double v = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t l = threadIdx.x; l < L; l += blockDim.x) {
      const double d = static_cast<double>(x[(n * C + c) * L + l]) - m;
      v += d * d;
    }
  v = detail::block_reduce(v, detail::SumOp{});
  if (threadIdx.x == 0) {
    mean[c] = static_cast<T>(m);
    var[c] = static_cast<T>(count > 0 ? v / count : 0.0);
  }
}

template <typename T>
__global__ void finish_stats_kernel(const T* __restrict__ mean, const T* __restrict__ var,
                                    int64_t C, double eps, double momentum, double unbias,
                                    T* __restrict__ running_mean, T* __restrict__ running_var,
                                    T* __restrict__ rstd) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  const double v = var[c];
  rstd[c] = static_cast<T>(1.0 / sqrt(v + eps));
  if (!running_mean || !running_var) return;
  running_mean[c] = static_cast<T>((1 - momentum) * static_cast<double>(running_mean[c]) +
                                   momentum * static_cast<double>(mean[c]));
  running_var[c] =
      static_cast<T>((1 - momentum) * static_cast<double>(running_var[c]) + momentum * v * unbias);
}

template <typename T>
__global__ void apply_kernel(const T* __restrict__ x, int64_t N, int64_t C, int64_t L,
                             const T* __restrict__ mean, const T* __restrict__ rstd,
                             const T* __restrict__ w, const T* __restrict__ b, int64_t astride,
                             T* __restrict__ y) {
  const int64_t total = N * C * L, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += step) {
    const int64_t nc = i / L, n = nc / C, c = nc % C, a = n * astride + c;
    const T scale = rstd[c] * (w ? w[a] : T(1));
    const T shift = (b ? b[a] : T(0)) - mean[c] * scale;
    y[i] = x[i] * scale + shift;
  }
}

// One block per (n, c): s_dy = sum dy and s_dyx = sum dy * xhat over the plane, in double.
template <typename T>
__global__ void plane_sums_kernel(const T* __restrict__ dy, const T* __restrict__ x, int64_t C,
                                  int64_t L, const T* __restrict__ mean, const T* __restrict__ rstd,
                                  double* __restrict__ s_dy, double* __restrict__ s_dyx) {
  const int64_t nc = blockIdx.x, c = nc % C;
  const double m = mean[c], r = rstd[c];
  double a = 0, bsum = 0;
  for (int64_t l = threadIdx.x; l < L; l += blockDim.x) {
    const double g = dy[nc * L + l];
    a += g;
    bsum += g * ((static_cast<double>(x[nc * L + l]) - m) * r);
  }
  a = detail::block_reduce(a, detail::SumOp{});
  bsum = detail::block_reduce(bsum, detail::SumOp{});
  if (threadIdx.x == 0) s_dy[nc] = a, s_dyx[nc] = bsum;
}

// One thread per channel: the samples' sums in order, the affine gradients, and the two means
// the input gradient needs (mg, mgx; 0 outside training).
template <typename T>
__global__ void channel_sums_kernel(const double* __restrict__ s_dy,
                                    const double* __restrict__ s_dyx, int64_t N, int64_t C,
                                    int64_t L, const T* __restrict__ w, int64_t astride,
                                    bool training, T* __restrict__ dw, T* __restrict__ db,
                                    double* __restrict__ mg, double* __restrict__ mgx) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  double sum_g = 0, sum_gx = 0, cdw = 0, cdb = 0;
  for (int64_t n = 0; n < N; ++n) {
    const int64_t a = n * astride + c;
    const double wn = w ? static_cast<double>(w[a]) : 1.0;
    const double sd = s_dy[n * C + c], sx = s_dyx[n * C + c];
    sum_g += wn * sd;
    sum_gx += wn * sx;
    if (astride != 0) {
      if (dw) dw[a] = static_cast<T>(sx);
      if (db) db[a] = static_cast<T>(sd);
    } else {
      cdw += sx;
      cdb += sd;
    }
  }
  if (astride == 0) {
    if (dw) dw[c] = static_cast<T>(cdw);
    if (db) db[c] = static_cast<T>(cdb);
  }
  const double count = static_cast<double>(N * L);
  mg[c] = training && count > 0 ? sum_g / count : 0.0;
  mgx[c] = training && count > 0 ? sum_gx / count : 0.0;
}

template <typename T>
__global__ void dx_kernel(const T* __restrict__ dy, const T* __restrict__ x, int64_t N, int64_t C,
                          int64_t L, const T* __restrict__ mean, const T* __restrict__ rstd,
                          const T* __restrict__ w, int64_t astride, const double* __restrict__ mg,
                          const double* __restrict__ mgx, T* __restrict__ dx) {
  const int64_t total = N * C * L, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += step) {
    const int64_t nc = i / L, n = nc / C, c = nc % C;
    const double m = mean[c], r = rstd[c];
    const double wn = w ? static_cast<double>(w[n * astride + c]) : 1.0;
    const double xhat = (static_cast<double>(x[i]) - m) * r;
    dx[i] = static_cast<T>(r * (wn * static_cast<double>(dy[i]) - mg[c] - xhat * mgx[c]));
  }
}
}  // namespace

template <typename T>
void batch_norm_stats(const T* x, int64_t N, int64_t C, int64_t L, T* mean, T* var) {
  if (C == 0) return;
  stats_kernel<T><<<static_cast<unsigned>(C), kThreads, 0, stream()>>>(x, N, C, L, mean, var);
  SMYRF_CUDA_CHECK_LAUNCH();
}

template <typename T>
void batch_norm_finish_stats(const T* mean, const T* var, int64_t C, double eps, double momentum,
                             int64_t count, T* running_mean, T* running_var, T* rstd) {
  if (C == 0) return;
  const double unbias = count > 1 ? static_cast<double>(count) / static_cast<double>(count - 1) : 1;
  finish_stats_kernel<T><<<grid_for(C, kThreads), kThreads, 0, stream()>>>(
      mean, var, C, eps, momentum, unbias, running_mean, running_var, rstd);
  SMYRF_CUDA_CHECK_LAUNCH();
}

template <typename T>
void batch_norm_apply(const T* x, int64_t N, int64_t C, int64_t L, const T* mean, const T* rstd,
                      const T* w, const T* b, int64_t affine_stride_n, T* y) {
  const int64_t n = N * C * L;
  if (n == 0) return;
  apply_kernel<T><<<grid_for(n, kThreads), kThreads, 0, stream()>>>(x, N, C, L, mean, rstd, w, b,
                                                                    affine_stride_n, y);
  SMYRF_CUDA_CHECK_LAUNCH();
}

template <typename T>
void batch_norm_backward(const T* dy, const T* x, int64_t N, int64_t C, int64_t L, const T* mean,
                         const T* rstd, const T* w, int64_t affine_stride_n, bool training, T* dx,
                         T* dw, T* db) {
  if (N * C == 0) return;
  DeviceArray<double> s_dy(N * C), s_dyx(N * C), mg(C), mgx(C);
  plane_sums_kernel<T><<<static_cast<unsigned>(N * C), kThreads, 0, stream()>>>(
      dy, x, C, L, mean, rstd, s_dy.data(), s_dyx.data());
  SMYRF_CUDA_CHECK_LAUNCH();
  channel_sums_kernel<T><<<grid_for(C, kThreads), kThreads, 0, stream()>>>(
      s_dy.data(), s_dyx.data(), N, C, L, w, affine_stride_n, training, dw, db, mg.data(),
      mgx.data());
  SMYRF_CUDA_CHECK_LAUNCH();
  if (!dx || L == 0) return;
  dx_kernel<T><<<grid_for(N * C * L, kThreads), kThreads, 0, stream()>>>(
      dy, x, N, C, L, mean, rstd, w, affine_stride_n, mg.data(), mgx.data(), dx);
  SMYRF_CUDA_CHECK_LAUNCH();
}

#define SMYRF_BN_INSTANTIATE(T)                                                                  \
  template void batch_norm_stats<T>(const T*, int64_t, int64_t, int64_t, T*, T*);                \
  template void batch_norm_finish_stats<T>(const T*, const T*, int64_t, double, double, int64_t, \
                                           T*, T*, T*);                                          \
  template void batch_norm_apply<T>(const T*, int64_t, int64_t, int64_t, const T*, const T*,     \
                                    const T*, const T*, int64_t, T*);                            \
  template void batch_norm_backward<T>(const T*, const T*, int64_t, int64_t, int64_t, const T*,  \
                                       const T*, const T*, int64_t, bool, T*, T*, T*);
SMYRF_BN_INSTANTIATE(float)
SMYRF_BN_INSTANTIATE(double)
#undef SMYRF_BN_INSTANTIATE

}  // namespace smyrf::kernels::cuda
