// im2col + GEMM convolution, pooling and nearest upsampling (see conv.h).
#include "kernels/cpu/conv.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/pool_avx2.h"
#include "kernels/cpu/reduce_avx2.h"
#include "kernels/cpu/winograd.h"

namespace smyrf::kernels::cpu {
namespace {

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  dgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// Threads for a loop over `items` independent images/planes: never more than the items, and one
// when already inside a parallel region (nested teams would oversubscribe the two cores).
int loop_threads(int64_t items) {
  if (omp_in_parallel()) return 1;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), items)));
}

// The kernel needs no column matrix when it reads every input pixel exactly once, in order.
bool is_pointwise(const Conv2dGeometry& g) {
  return g.R == 1 && g.S == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0;
}

// Output columns q whose input column q * stride + off lies inside [0, W): [lo, hi).
void valid_range(int64_t off, int64_t stride, int64_t W, int64_t Q, int64_t& lo, int64_t& hi) {
  hi = (W - 1 - off) < 0 ? 0 : std::min(Q, (W - 1 - off) / stride + 1);
  lo = off >= 0 ? 0 : std::min(hi, (-off + stride - 1) / stride);
}

// col (Cg*R*S, P*Q), rows ld apart, from one image-group x (Cg, H, W); rows ordered (c, r, s)
// like the weight.
// The valid column range per kernel offset is computed once, so the inner loop is a plain copy
// (a memcpy-able run when stride_w == 1) with no per-element bounds test.
template <typename T>
void im2col(const Conv2dGeometry& g, int64_t Cg, const T* x, T* col, int64_t ld) {
  const int64_t HW = g.H * g.W;
  for (int64_t c = 0; c < Cg; ++c) {
    const T* xc = x + c * HW;
    for (int64_t r = 0; r < g.R; ++r) {
      for (int64_t s = 0; s < g.S; ++s) {
        T* row = col + ((c * g.R + r) * g.S + s) * ld;
        const int64_t off_w = s * g.dil_w - g.pad_w;
        int64_t lo, hi;
        valid_range(off_w, g.stride_w, g.W, g.Q, lo, hi);
        for (int64_t p = 0; p < g.P; ++p) {
          T* out = row + p * g.Q;
          const int64_t ih = p * g.stride_h + r * g.dil_h - g.pad_h;
          if (ih < 0 || ih >= g.H) {
            std::fill(out, out + g.Q, T(0));
            continue;
          }
          const T* in = xc + ih * g.W + off_w;
          std::fill(out, out + lo, T(0));
          if (g.stride_w == 1) {
            std::copy(in + lo, in + hi, out + lo);
          } else {
            for (int64_t q = lo; q < hi; ++q) out[q] = in[q * g.stride_w];
          }
          std::fill(out + hi, out + g.Q, T(0));
        }
      }
    }
  }
}

// The adjoint of im2col: adds every column entry back to the pixel it was read from (dx must be
// zeroed by the caller).
template <typename T>
void col2im(const Conv2dGeometry& g, int64_t Cg, const T* col, int64_t ld, T* dx) {
  const int64_t HW = g.H * g.W;
  for (int64_t c = 0; c < Cg; ++c) {
    T* dxc = dx + c * HW;
    for (int64_t r = 0; r < g.R; ++r) {
      for (int64_t s = 0; s < g.S; ++s) {
        const T* row = col + ((c * g.R + r) * g.S + s) * ld;
        const int64_t off_w = s * g.dil_w - g.pad_w;
        int64_t lo, hi;
        valid_range(off_w, g.stride_w, g.W, g.Q, lo, hi);
        for (int64_t p = 0; p < g.P; ++p) {
          const int64_t ih = p * g.stride_h + r * g.dil_h - g.pad_h;
          if (ih < 0 || ih >= g.H) continue;
          const T* in = row + p * g.Q;
          T* out = dxc + ih * g.W + off_w;
          if (g.stride_w == 1) {
            for (int64_t q = lo; q < hi; ++q) out[q] += in[q];
          } else {
            for (int64_t q = lo; q < hi; ++q) out[q * g.stride_w] += in[q];
          }
        }
      }
    }
  }
}

// Images per GEMM. Small images give thin GEMMs (P*Q = 16 columns at 4x4) whose packing costs
// as much as their arithmetic, so several images' columns are placed side by side until a GEMM
// has about kTargetColumns columns, without leaving a thread idle.
constexpr int64_t kTargetColumns = 512;
int64_t images_per_gemm(const Conv2dGeometry& g, int nt) {
  const int64_t PQ = g.P * g.Q;
  if (PQ >= kTargetColumns / 2) return 1;
  const int64_t per_thread = (g.N + nt - 1) / nt;
  return std::max<int64_t>(1, std::min(per_thread, kTargetColumns / PQ));
}

// Work shared by the three passes: which images a chunk covers and the per-thread scratch.
struct ConvPlan {
  int64_t Cg, Kg, CRS, PQ, HW, nb, chunks;
  bool pointwise;
  int nt;
  ConvPlan(const Conv2dGeometry& g) {
    Cg = g.C / g.groups, Kg = g.K / g.groups, CRS = Cg * g.R * g.S, PQ = g.P * g.Q, HW = g.H * g.W;
    pointwise = is_pointwise(g);
    nt = loop_threads(g.N);
    nb = images_per_gemm(g, nt);
    chunks = (g.N + nb - 1) / nb;
    nt = static_cast<int>(std::min<int64_t>(nt, chunks));
  }
  // A single pointwise image is its own column matrix; everything else is gathered.
  bool needs_col() const { return !(pointwise && nb == 1); }
  size_t col_size() const { return needs_col() ? static_cast<size_t>(CRS * nb * PQ) : 0; }
  size_t out_size() const { return nb > 1 ? static_cast<size_t>(Kg * nb * PQ) : 0; }
};

// The column matrix of images [n0, n0 + cnt) of group grp, (CRS, cnt * PQ); returns it (or the
// image itself when no copy is needed).
template <typename T>
const T* gather_columns(const Conv2dGeometry& g, const ConvPlan& pl, const T* x, int64_t n0,
                        int64_t cnt, int64_t grp, T* col) {
  if (!pl.needs_col()) return x + (n0 * g.C + grp * pl.Cg) * pl.HW;
  for (int64_t i = 0; i < cnt; ++i)
    im2col(g, pl.Cg, x + ((n0 + i) * g.C + grp * pl.Cg) * pl.HW, col + i * pl.PQ, cnt * pl.PQ);
  return col;
}

}  // namespace

template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (conv2d_winograd_applies(g, ConvPass::Forward))
      return conv2d_winograd_forward(g, x, w, bias, y);
    if (conv2d_direct_applies(g, ConvPass::Forward)) return conv2d_direct_forward(g, x, w, bias, y);
  }
  const ConvPlan pl(g);
  // Allocated before the parallel region: an exception inside one would terminate.
  std::vector<T> cols(pl.nt * pl.col_size()), outs(pl.nt * pl.out_size());
#pragma omp parallel num_threads(pl.nt) if (pl.nt > 1)
  {
    const int tid = omp_get_thread_num();
    T* col = cols.data() + tid * pl.col_size();
    T* tmp = outs.data() + tid * pl.out_size();
#pragma omp for schedule(static)
    for (int64_t ch = 0; ch < pl.chunks; ++ch) {
      const int64_t n0 = ch * pl.nb, cnt = std::min(pl.nb, g.N - n0), ncol = cnt * pl.PQ;
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T* b = gather_columns(g, pl, x, n0, cnt, grp, col);
        // one image writes straight into y; several go through tmp and are scattered per image
        T* out = pl.nb > 1 ? tmp : y + (n0 * g.K + grp * pl.Kg) * pl.PQ;
        gemm(false, false, pl.Kg, ncol, pl.CRS, T(1), w + grp * pl.Kg * pl.CRS, pl.CRS, b, ncol,
             T(0), out, ncol);
        for (int64_t i = 0; i < cnt; ++i) {
          for (int64_t k = 0; k < pl.Kg; ++k) {
            T* dst = y + ((n0 + i) * g.K + grp * pl.Kg + k) * pl.PQ;
            const T bk = bias ? bias[grp * pl.Kg + k] : T(0);
            if (pl.nb > 1) {
              const T* src = tmp + k * ncol + i * pl.PQ;
              for (int64_t j = 0; j < pl.PQ; ++j) dst[j] = src[j] + bk;
            } else if (bias) {
              for (int64_t j = 0; j < pl.PQ; ++j) dst[j] += bk;
            }
          }
        }
      }
    }
  }
}

namespace {
// dy of images [n0, n0 + cnt) of group grp as one (Kg, cnt * PQ) matrix (a view when cnt == 1).
template <typename T>
const T* gather_dy(const Conv2dGeometry& g, const ConvPlan& pl, const T* dy, int64_t n0,
                   int64_t cnt, int64_t grp, T* tmp) {
  if (cnt == 1 && pl.nb == 1) return dy + (n0 * g.K + grp * pl.Kg) * pl.PQ;
  const int64_t ncol = cnt * pl.PQ;
  for (int64_t i = 0; i < cnt; ++i)
    for (int64_t k = 0; k < pl.Kg; ++k) {
      const T* src = dy + ((n0 + i) * g.K + grp * pl.Kg + k) * pl.PQ;
      std::copy(src, src + pl.PQ, tmp + k * ncol + i * pl.PQ);
    }
  return tmp;
}
}  // namespace

template <typename T>
void conv2d_backward_data(const Conv2dGeometry& g, const T* dy, const T* w, T* dx) {
  if constexpr (std::is_same_v<T, float>) {
    if (conv2d_winograd_applies(g, ConvPass::BackwardData))
      return conv2d_winograd_backward_data(g, dy, w, dx);
    if (conv2d_direct_applies(g, ConvPass::BackwardData))
      return conv2d_direct_backward_data(g, dy, w, dx);
  }
  const ConvPlan pl(g);
  std::vector<T> cols(pl.nt * pl.col_size()), outs(pl.nt * pl.out_size());
#pragma omp parallel num_threads(pl.nt) if (pl.nt > 1)
  {
    const int tid = omp_get_thread_num();
    T* col = cols.data() + tid * pl.col_size();
    T* tmp = outs.data() + tid * pl.out_size();
#pragma omp for schedule(static)
    for (int64_t ch = 0; ch < pl.chunks; ++ch) {
      const int64_t n0 = ch * pl.nb, cnt = std::min(pl.nb, g.N - n0), ncol = cnt * pl.PQ;
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T* dyg = gather_dy(g, pl, dy, n0, cnt, grp, tmp);
        const T* wg = w + grp * pl.Kg * pl.CRS;
        if (!pl.needs_col()) {
          gemm(true, false, pl.CRS, ncol, pl.Kg, T(1), wg, pl.CRS, dyg, ncol, T(0),
               dx + (n0 * g.C + grp * pl.Cg) * pl.HW, ncol);
          continue;
        }
        gemm(true, false, pl.CRS, ncol, pl.Kg, T(1), wg, pl.CRS, dyg, ncol, T(0), col, ncol);
        for (int64_t i = 0; i < cnt; ++i) {
          T* dxg = dx + ((n0 + i) * g.C + grp * pl.Cg) * pl.HW;
          std::fill(dxg, dxg + pl.Cg * pl.HW, T(0));
          col2im(g, pl.Cg, col + i * pl.PQ, ncol, dxg);
        }
      }
    }
  }
}

template <typename T>
void conv2d_backward_filter(const Conv2dGeometry& g, const T* x, const T* dy, T* dw, T* dbias) {
  if constexpr (std::is_same_v<T, float>) {
    if (conv2d_winograd_applies(g, ConvPass::BackwardFilter))
      return conv2d_winograd_backward_filter(g, x, dy, dw, dbias);
    if (conv2d_direct_applies(g, ConvPass::BackwardFilter))
      return conv2d_direct_backward_filter(g, x, dy, dw, dbias);
  }
  const ConvPlan pl(g);
  const int64_t KCRS = g.K * pl.CRS;
  std::vector<T> cols(pl.nt * pl.col_size()), outs(pl.nt * pl.out_size());
  // Each thread sums its images' products into its own copy of dw (thread 0 into dw itself),
  // and the copies are added at the end: no atomics, and a fixed order, so it is deterministic.
  std::vector<T> partial(static_cast<size_t>((pl.nt - 1) * KCRS));
#pragma omp parallel num_threads(pl.nt) if (pl.nt > 1)
  {
    const int tid = omp_get_thread_num();
    T* col = cols.data() + tid * pl.col_size();
    T* tmp = outs.data() + tid * pl.out_size();
    T* acc = tid == 0 ? dw : partial.data() + (tid - 1) * KCRS;
    std::fill(acc, acc + KCRS, T(0));
#pragma omp for schedule(static)
    for (int64_t ch = 0; ch < pl.chunks; ++ch) {
      const int64_t n0 = ch * pl.nb, cnt = std::min(pl.nb, g.N - n0), ncol = cnt * pl.PQ;
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T* b = gather_columns(g, pl, x, n0, cnt, grp, col);
        const T* dyg = gather_dy(g, pl, dy, n0, cnt, grp, tmp);
        gemm(false, true, pl.Kg, pl.CRS, ncol, T(1), dyg, ncol, b, ncol, T(1),
             acc + grp * pl.Kg * pl.CRS, pl.CRS);
      }
    }
  }
  for (int t = 1; t < pl.nt; ++t) {
    const T* src = partial.data() + (t - 1) * KCRS;
    for (int64_t i = 0; i < KCRS; ++i) dw[i] += src[i];
  }
  if (dbias) conv2d_backward_bias(g, dy, dbias);
}

template <typename T>
void conv2d_backward_bias(const Conv2dGeometry& g, const T* dy, T* dbias) {
  const int64_t PQ = g.P * g.Q;
  const int bt = loop_threads(g.K);
  // float32 planes through the AVX2 sum (four chains; the scalar loop's one dependent double add
  // an element made this 2% of a CPU BigGAN step)
  const bool vec = std::is_same_v<T, float> && active_isa() == Isa::Avx2;
#pragma omp parallel for num_threads(bt) if (bt > 1) schedule(static)
  for (int64_t k = 0; k < g.K; ++k) {
    double s = 0;  // double: sums over N*P*Q terms
    for (int64_t n = 0; n < g.N; ++n) {
      const T* row = dy + (n * g.K + k) * PQ;
      if constexpr (std::is_same_v<T, float>) {
        if (vec) {
          s += avx2::sum_f32(row, PQ);
          continue;
        }
      }
      for (int64_t i = 0; i < PQ; ++i) s += row[i];
    }
    dbias[k] = static_cast<T>(s);
  }
}

// ------------------------------------------------------------------------------------ pooling

namespace {
// Window of output cell (p, q): rows [h0, h1), cols [w0, w1) clipped to the image, and the
// divisor PyTorch uses (the unclipped window, which with ceil_mode=False is kh*kw exactly).
struct Window {
  int64_t h0, h1, w0, w1, divisor;
};
inline Window window(const Pool2dGeometry& g, int64_t p, int64_t q, bool count_include_pad) {
  const int64_t hs = p * g.stride_h - g.pad_h, ws = q * g.stride_w - g.pad_w;
  const int64_t he = std::min(hs + g.kh, g.H + g.pad_h), we = std::min(ws + g.kw, g.W + g.pad_w);
  const int64_t full = (he - hs) * (we - ws);
  Window w{std::max<int64_t>(hs, 0), std::min(he, g.H), std::max<int64_t>(ws, 0), std::min(we, g.W),
           0};
  w.divisor = count_include_pad ? full : (w.h1 - w.h0) * (w.w1 - w.w0);
  return w;
}
}  // namespace

namespace {
// BigGAN's D pools 2x2 with stride 2 and no padding: every window is full (divisor 4 either way)
// and needs no window arithmetic per output cell.
bool is_pool2x2(const Pool2dGeometry& g) {
  return g.kh == 2 && g.kw == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 &&
         g.pad_w == 0;
}
}  // namespace

template <typename T>
void avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, bool count_include_pad) {
  const int nt = loop_threads(g.planes);
  if (is_pool2x2(g)) {
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t pl = 0; pl < g.planes; ++pl) {
      const T* xp = x + pl * g.H * g.W;
      T* yp = y + pl * g.P * g.Q;
      for (int64_t p = 0; p < g.P; ++p) {
        const T* r0 = xp + 2 * p * g.W;
        const T* r1 = r0 + g.W;
        for (int64_t q = 0; q < g.Q; ++q)
          yp[p * g.Q + q] = (r0[2 * q] + r0[2 * q + 1] + r1[2 * q] + r1[2 * q + 1]) * T(0.25);
      }
    }
    return;
  }
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const T* xp = x + pl * g.H * g.W;
    T* yp = y + pl * g.P * g.Q;
    for (int64_t p = 0; p < g.P; ++p) {
      for (int64_t q = 0; q < g.Q; ++q) {
        const Window w = window(g, p, q, count_include_pad);
        T s = 0;
        for (int64_t h = w.h0; h < w.h1; ++h)
          for (int64_t c = w.w0; c < w.w1; ++c) s += xp[h * g.W + c];
        yp[p * g.Q + q] = w.divisor > 0 ? s / static_cast<T>(w.divisor) : T(0);
      }
    }
  }
}

template <typename T>
void avg_pool2d_backward(const Pool2dGeometry& g, const T* dy, T* dx, bool count_include_pad) {
  const int nt = loop_threads(g.planes);
  if (is_pool2x2(g)) {
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t pl = 0; pl < g.planes; ++pl) {
      T* dxp = dx + pl * g.H * g.W;
      const T* dyp = dy + pl * g.P * g.Q;
      if (g.H != 2 * g.P || g.W != 2 * g.Q)  // an odd last row or column gets no gradient
        std::fill(dxp, dxp + g.H * g.W, T(0));
      for (int64_t p = 0; p < g.P; ++p) {
        T* r0 = dxp + 2 * p * g.W;
        T* r1 = r0 + g.W;
        for (int64_t q = 0; q < g.Q; ++q) {
          const T v = dyp[p * g.Q + q] * T(0.25);
          r0[2 * q] = r0[2 * q + 1] = r1[2 * q] = r1[2 * q + 1] = v;
        }
      }
    }
    return;
  }
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    T* dxp = dx + pl * g.H * g.W;
    const T* dyp = dy + pl * g.P * g.Q;
    std::fill(dxp, dxp + g.H * g.W, T(0));
    for (int64_t p = 0; p < g.P; ++p) {
      for (int64_t q = 0; q < g.Q; ++q) {
        const Window w = window(g, p, q, count_include_pad);
        if (w.divisor <= 0) continue;
        const T v = dyp[p * g.Q + q] / static_cast<T>(w.divisor);
        for (int64_t h = w.h0; h < w.h1; ++h)
          for (int64_t c = w.w0; c < w.w1; ++c) dxp[h * g.W + c] += v;
      }
    }
  }
}

template <typename T>
void max_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, int64_t* indices) {
  const int nt = loop_threads(g.planes);
  if constexpr (std::is_same_v<T, float>) {
    if (is_pool2x2(g) && active_isa() == Isa::Avx2) {  // rows of 2 x 2 windows (pool_avx2.h)
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
      for (int64_t pl = 0; pl < g.planes; ++pl)
        for (int64_t p = 0; p < g.P; ++p)
          avx2::max_pool2x2_row_f32(x + pl * g.H * g.W + 2 * p * g.W, g.W, g.Q, 2 * p * g.W,
                                    y + (pl * g.P + p) * g.Q, indices + (pl * g.P + p) * g.Q);
      return;
    }
  }
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const T* xp = x + pl * g.H * g.W;
    T* yp = y + pl * g.P * g.Q;
    int64_t* ip = indices + pl * g.P * g.Q;
    for (int64_t p = 0; p < g.P; ++p) {
      for (int64_t q = 0; q < g.Q; ++q) {
        const Window w = window(g, p, q, true);
        T best = -std::numeric_limits<T>::infinity();
        int64_t arg = w.h0 * g.W + w.w0;
        for (int64_t h = w.h0; h < w.h1; ++h) {
          for (int64_t c = w.w0; c < w.w1; ++c) {
            const T v = xp[h * g.W + c];
            if (v > best || std::isnan(v)) {
              best = v;
              arg = h * g.W + c;
              if (std::isnan(v)) goto done;  // NaN propagates, as in PyTorch
            }
          }
        }
      done:
        yp[p * g.Q + q] = best;
        ip[p * g.Q + q] = arg;
      }
    }
  }
}

template <typename T>
void max_pool2d_backward(const Pool2dGeometry& g, const T* dy, const int64_t* indices, T* dx) {
  const int nt = loop_threads(g.planes);
  if constexpr (std::is_same_v<T, float>) {
    if (is_pool2x2(g) && active_isa() == Isa::Avx2) {  // every window written whole (pool_avx2.h)
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
      for (int64_t pl = 0; pl < g.planes; ++pl) {
        float* dxp = dx + pl * g.H * g.W;
        if (g.H != 2 * g.P || g.W != 2 * g.Q)  // an odd last row or column gets no gradient
          std::fill(dxp, dxp + g.H * g.W, 0.f);
        for (int64_t p = 0; p < g.P; ++p)
          avx2::max_pool2x2_row_backward_f32(dy + (pl * g.P + p) * g.Q,
                                             indices + (pl * g.P + p) * g.Q, g.W, g.Q, 2 * p * g.W,
                                             dxp + 2 * p * g.W);
      }
      return;
    }
  }
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    T* dxp = dx + pl * g.H * g.W;
    const T* dyp = dy + pl * g.P * g.Q;
    const int64_t* ip = indices + pl * g.P * g.Q;
    std::fill(dxp, dxp + g.H * g.W, T(0));
    for (int64_t i = 0; i < g.P * g.Q; ++i) dxp[ip[i]] += dyp[i];
  }
}

template <typename T>
void upsample_nearest2d_forward(int64_t planes, int64_t H, int64_t W, int64_t fh, int64_t fw,
                                const T* x, T* y) {
  const int64_t OW = W * fw;
  const int nt = loop_threads(planes);
  // 2 x 2 (BigGAN's upsampling) in AVX2 rows, eight values a step (pool_avx2.h): the
  // per-element std::fill of two floats made this 0.8% of a CPU BigGAN step, its backward 0.5%
  const bool vec2 = std::is_same_v<T, float> && fh == 2 && fw == 2 && active_isa() == Isa::Avx2;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const T* xp = x + pl * H * W;
    T* yp = y + pl * H * fh * OW;
    for (int64_t h = 0; h < H; ++h) {
      T* first = yp + h * fh * OW;
      if constexpr (std::is_same_v<T, float>) {
        if (vec2) {
          avx2::upsample2x_row_f32(xp + h * W, W, first, first + OW);
          continue;
        }
      }
      for (int64_t c = 0; c < W; ++c)
        std::fill(first + c * fw, first + (c + 1) * fw, xp[h * W + c]);
      for (int64_t i = 1; i < fh; ++i) std::copy(first, first + OW, first + i * OW);
    }
  }
}

template <typename T>
void upsample_nearest2d_backward(int64_t planes, int64_t H, int64_t W, int64_t fh, int64_t fw,
                                 const T* dy, T* dx) {
  const int64_t OW = W * fw;
  const int nt = loop_threads(planes);
  const bool vec2 = std::is_same_v<T, float> && fh == 2 && fw == 2 && active_isa() == Isa::Avx2;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const T* dyp = dy + pl * H * fh * OW;
    T* dxp = dx + pl * H * W;
    for (int64_t h = 0; h < H; ++h) {
      if constexpr (std::is_same_v<T, float>) {
        if (vec2) {  // the scalar sums' order, from +0 (pool_avx2.h)
          avx2::upsample2x_row_backward_f32(dyp + 2 * h * OW, dyp + (2 * h + 1) * OW, W,
                                            dxp + h * W);
          continue;
        }
      }
      for (int64_t c = 0; c < W; ++c) {
        T s = 0;
        for (int64_t i = 0; i < fh; ++i) {
          const T* row = dyp + (h * fh + i) * OW + c * fw;
          for (int64_t j = 0; j < fw; ++j) s += row[j];
        }
        dxp[h * W + c] = s;
      }
    }
  }
}

#define SMYRF_CONV_INSTANTIATE(T)                                                             \
  template void conv2d_forward<T>(const Conv2dGeometry&, const T*, const T*, const T*, T*);   \
  template void conv2d_backward_data<T>(const Conv2dGeometry&, const T*, const T*, T*);       \
  template void conv2d_backward_filter<T>(const Conv2dGeometry&, const T*, const T*, T*, T*); \
  template void conv2d_backward_bias<T>(const Conv2dGeometry&, const T*, T*);                 \
  template void avg_pool2d_forward<T>(const Pool2dGeometry&, const T*, T*, bool);             \
  template void avg_pool2d_backward<T>(const Pool2dGeometry&, const T*, T*, bool);            \
  template void max_pool2d_forward<T>(const Pool2dGeometry&, const T*, T*, int64_t*);         \
  template void max_pool2d_backward<T>(const Pool2dGeometry&, const T*, const int64_t*, T*);  \
  template void upsample_nearest2d_forward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,    \
                                              const T*, T*);                                  \
  template void upsample_nearest2d_backward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,   \
                                               const T*, T*);
SMYRF_CONV_INSTANTIATE(float)
SMYRF_CONV_INSTANTIATE(double)
#undef SMYRF_CONV_INSTANTIATE

}  // namespace smyrf::kernels::cpu
