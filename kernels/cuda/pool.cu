// Pooling and nearest upsampling kernels (see pool.h).
#include <cmath>

#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/pool.h"

namespace smyrf::kernels::cuda {
using detail::grid_for;
using detail::stream;
namespace {
constexpr int kThreads = 256;
using G = cpu::Pool2dGeometry;

// kernels/cpu/conv.cpp's window of output cell (p, q): rows [h0, h1), columns [w0, w1) clipped to
// the image, and the divisor (the unclipped window with count_include_pad, else the clipped one).
struct Window {
  int64_t h0, h1, w0, w1, divisor;
};
__device__ Window window(const G& g, int64_t p, int64_t q, bool count_include_pad) {
  const int64_t hs = p * g.stride_h - g.pad_h, ws = q * g.stride_w - g.pad_w;
  const int64_t he = min(hs + g.kh, g.H + g.pad_h), we = min(ws + g.kw, g.W + g.pad_w);
  Window w{max(hs, int64_t{0}), min(he, g.H), max(ws, int64_t{0}), min(we, g.W), 0};
  w.divisor = count_include_pad ? (he - hs) * (we - ws) : (w.h1 - w.h0) * (w.w1 - w.w0);
  return w;
}

// The output cells whose windows can cover input row h: p in [lo, hi) (before clipping to the
// image, a window starts at p * stride - pad and spans kernel rows).
__device__ void covering(int64_t h, int64_t k, int64_t s, int64_t pad, int64_t P, int64_t* lo,
                         int64_t* hi) {
  const int64_t a = h + pad - k + 1;  // first start position that still reaches h
  *lo = a <= 0 ? 0 : (a + s - 1) / s;
  *hi = min(P, (h + pad) / s + 1);
}

template <typename T>
__global__ void avg_forward_kernel(G g, const T* __restrict__ x, T* __restrict__ y, bool cip) {
  const int64_t total = g.planes * g.P * g.Q, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total; o += step) {
    const int64_t pl = o / (g.P * g.Q), p = (o / g.Q) % g.P, q = o % g.Q;
    const Window w = window(g, p, q, cip);
    const T* xp = x + pl * g.H * g.W;
    T s = 0;
    for (int64_t h = w.h0; h < w.h1; ++h)
      for (int64_t c = w.w0; c < w.w1; ++c) s += xp[h * g.W + c];
    y[o] = w.divisor > 0 ? s / static_cast<T>(w.divisor) : T(0);
  }
}

template <typename T>
__global__ void avg_backward_kernel(G g, const T* __restrict__ dy, T* __restrict__ dx, bool cip) {
  const int64_t total = g.planes * g.H * g.W, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += step) {
    const int64_t pl = i / (g.H * g.W), h = (i / g.W) % g.H, c = i % g.W;
    int64_t p0, p1, q0, q1;
    covering(h, g.kh, g.stride_h, g.pad_h, g.P, &p0, &p1);
    covering(c, g.kw, g.stride_w, g.pad_w, g.Q, &q0, &q1);
    const T* dyp = dy + pl * g.P * g.Q;
    T s = 0;
    for (int64_t p = p0; p < p1; ++p)
      for (int64_t q = q0; q < q1; ++q) {
        const Window w = window(g, p, q, cip);
        if (h < w.h0 || h >= w.h1 || c < w.w0 || c >= w.w1 || w.divisor <= 0) continue;
        s += dyp[p * g.Q + q] / static_cast<T>(w.divisor);
      }
    dx[i] = s;
  }
}

template <typename T>
__global__ void max_forward_kernel(G g, const T* __restrict__ x, T* __restrict__ y,
                                   int64_t* __restrict__ idx) {
  const int64_t total = g.planes * g.P * g.Q, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total; o += step) {
    const int64_t pl = o / (g.P * g.Q), p = (o / g.Q) % g.P, q = o % g.Q;
    const Window w = window(g, p, q, true);
    const T* xp = x + pl * g.H * g.W;
    T best = -INFINITY;
    int64_t arg = w.h0 * g.W + w.w0;
    bool nan = false;
    for (int64_t h = w.h0; h < w.h1 && !nan; ++h)
      for (int64_t c = w.w0; c < w.w1; ++c) {
        const T v = xp[h * g.W + c];
        if (v > best || v != v) {  // the first maximum; the first NaN wins and stops the scan
          best = v;
          arg = h * g.W + c;
          if (v != v) {
            nan = true;
            break;
          }
        }
      }
    y[o] = best;
    idx[o] = arg;
  }
}

template <typename T>
__global__ void max_backward_kernel(G g, const T* __restrict__ dy, const int64_t* __restrict__ idx,
                                    T* __restrict__ dx) {
  const int64_t total = g.planes * g.H * g.W, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += step) {
    const int64_t pl = i / (g.H * g.W), h = (i / g.W) % g.H, c = i % g.W, flat = h * g.W + c;
    int64_t p0, p1, q0, q1;
    covering(h, g.kh, g.stride_h, g.pad_h, g.P, &p0, &p1);
    covering(c, g.kw, g.stride_w, g.pad_w, g.Q, &q0, &q1);
    const T* dyp = dy + pl * g.P * g.Q;
    const int64_t* ip = idx + pl * g.P * g.Q;
    T s = 0;
    for (int64_t p = p0; p < p1; ++p)
      for (int64_t q = q0; q < q1; ++q)
        if (ip[p * g.Q + q] == flat) s += dyp[p * g.Q + q];
    dx[i] = s;
  }
}

template <typename T>
__global__ void upsample_forward_kernel(int64_t planes, int64_t H, int64_t W, int64_t fh,
                                        int64_t fw, const T* __restrict__ x, T* __restrict__ y) {
  const int64_t OH = H * fh, OW = W * fw, total = planes * OH * OW;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total; o += step) {
    const int64_t pl = o / (OH * OW), r = (o / OW) % OH, c = o % OW;
    y[o] = x[(pl * H + r / fh) * W + c / fw];
  }
}

template <typename T>
__global__ void upsample_backward_kernel(int64_t planes, int64_t H, int64_t W, int64_t fh,
                                         int64_t fw, const T* __restrict__ dy, T* __restrict__ dx) {
  const int64_t OW = W * fw, total = planes * H * W, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += step) {
    const int64_t pl = i / (H * W), h = (i / W) % H, c = i % W;
    const T* block = dy + (pl * H + h) * fh * OW + c * fw;
    T s = 0;  // the CPU loop's order: rows, then columns, from 0
    for (int64_t a = 0; a < fh; ++a)
      for (int64_t b = 0; b < fw; ++b) s += block[a * OW + b];
    dx[i] = s;
  }
}

// Launches kernel over n elements (grid-stride loops inside); nothing for n == 0.
template <typename Kernel, typename... Args>
void launch(int64_t n, Kernel kernel, Args... args) {
  if (n == 0) return;
  kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(args...);
  SMYRF_CUDA_CHECK_LAUNCH();
}
}  // namespace

template <typename T>
void avg_pool2d_forward(const G& g, const T* x, T* y, bool count_include_pad) {
  launch(g.planes * g.P * g.Q, avg_forward_kernel<T>, g, x, y, count_include_pad);
}
template <typename T>
void avg_pool2d_backward(const G& g, const T* dy, T* dx, bool count_include_pad) {
  launch(g.planes * g.H * g.W, avg_backward_kernel<T>, g, dy, dx, count_include_pad);
}
template <typename T>
void max_pool2d_forward(const G& g, const T* x, T* y, int64_t* indices) {
  launch(g.planes * g.P * g.Q, max_forward_kernel<T>, g, x, y, indices);
}
template <typename T>
void max_pool2d_backward(const G& g, const T* dy, const int64_t* indices, T* dx) {
  launch(g.planes * g.H * g.W, max_backward_kernel<T>, g, dy, indices, dx);
}
template <typename T>
void upsample_nearest2d_forward(int64_t planes, int64_t H, int64_t W, int64_t fh, int64_t fw,
                                const T* x, T* y) {
  launch(planes * H * fh * W * fw, upsample_forward_kernel<T>, planes, H, W, fh, fw, x, y);
}
template <typename T>
void upsample_nearest2d_backward(int64_t planes, int64_t H, int64_t W, int64_t fh, int64_t fw,
                                 const T* dy, T* dx) {
  launch(planes * H * W, upsample_backward_kernel<T>, planes, H, W, fh, fw, dy, dx);
}

#define SMYRF_POOL_INSTANTIATE(T)                                                           \
  template void avg_pool2d_forward<T>(const G&, const T*, T*, bool);                        \
  template void avg_pool2d_backward<T>(const G&, const T*, T*, bool);                       \
  template void max_pool2d_forward<T>(const G&, const T*, T*, int64_t*);                    \
  template void max_pool2d_backward<T>(const G&, const T*, const int64_t*, T*);             \
  template void upsample_nearest2d_forward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,  \
                                              const T*, T*);                                \
  template void upsample_nearest2d_backward<T>(int64_t, int64_t, int64_t, int64_t, int64_t, \
                                               const T*, T*);
SMYRF_POOL_INSTANTIATE(float)
SMYRF_POOL_INSTANTIATE(double)
#undef SMYRF_POOL_INSTANTIATE

}  // namespace smyrf::kernels::cuda
