// Reductions and row kernels (see reduce.h and norm.h). Status: ran on an NVIDIA H200
// on 2026-11-28 (tests/cuda, all passing).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/allocator.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/norm.h"
#include "kernels/cuda/reduce.h"

namespace smyrf::kernels::cuda {
namespace {
using namespace detail;

constexpr int kThreads = 256;
// Below this many reduced elements per output, one thread per output beats a block per output
// (a block would leave most of its threads idle).
constexpr int64_t kBlockReduceMin = 128;

template <typename A>
__device__ A reduce_identity(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
      return A(0);
    case ReduceOp::Prod:
      return A(1);
    case ReduceOp::Max:
      if constexpr (std::is_floating_point_v<A>)
        return -INFINITY;
      else
        return INT64_MIN;
    case ReduceOp::Min:
      if constexpr (std::is_floating_point_v<A>)
        return INFINITY;
      else
        return INT64_MAX;
  }
  return A(0);
}

template <typename A>
__device__ A reduce_combine(ReduceOp op, A a, A b) {
  switch (op) {
    case ReduceOp::Sum:
      return a + b;
    case ReduceOp::Prod:
      return a * b;
    case ReduceOp::Max:
      return MaxOp{}(a, b);
    case ReduceOp::Min:
      return MinOp{}(a, b);
  }
  return a;
}

template <typename T>
__global__ void reduce_block_kernel(ReduceOp op, Strided<1> kept, Strided<1> red, const T* x,
                                    T* y) {
  using A = acc_t<T>;
  for (int64_t o = blockIdx.x; o < kept.numel; o += gridDim.x) {
    int64_t base[1];
    offsets_of(kept, o, base);
    A acc = reduce_identity<A>(op);
    for (int64_t r = threadIdx.x; r < red.numel; r += blockDim.x) {
      int64_t off[1];
      offsets_of(red, r, off);
      acc = reduce_combine(op, acc, static_cast<A>(x[base[0] + off[0]]));
    }
    acc = block_reduce(acc, [op](A a, A b) { return reduce_combine(op, a, b); });
    if (threadIdx.x == 0) y[o] = static_cast<T>(acc);
  }
}

// Split reduction, pass 1: block b reduces part b % splits of output b / splits's reduced range
// (a fixed partition, so the summation order depends only on the shape) into partial[b].
template <typename T>
__global__ void reduce_split_kernel(ReduceOp op, Strided<1> kept, Strided<1> red, int64_t splits,
                                    int64_t part_len, const T* x, acc_t<T>* partial) {
  using A = acc_t<T>;
  const int64_t o = blockIdx.x / splits, part = blockIdx.x % splits;
  int64_t base[1];
  offsets_of(kept, o, base);
  const int64_t r0 = part * part_len;
  const int64_t r1 = r0 + part_len < red.numel ? r0 + part_len : red.numel;
  A acc = reduce_identity<A>(op);
  for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x) {
    int64_t off[1];
    offsets_of(red, r, off);
    acc = reduce_combine(op, acc, static_cast<A>(x[base[0] + off[0]]));
  }
  acc = block_reduce(acc, [op](A a, A b) { return reduce_combine(op, a, b); });
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// Pass 2: output o combines its `splits` partials in order.
template <typename T>
__global__ void reduce_split_final(ReduceOp op, int64_t outputs, int64_t splits,
                                   const acc_t<T>* partial, T* y) {
  using A = acc_t<T>;
  const int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (o >= outputs) return;
  A acc = reduce_identity<A>(op);
  for (int64_t k = 0; k < splits; ++k) acc = reduce_combine(op, acc, partial[o * splits + k]);
  y[o] = static_cast<T>(acc);
}

template <typename T>
__global__ void reduce_thread_kernel(ReduceOp op, Strided<1> kept, Strided<1> red, const T* x,
                                     T* y) {
  using A = acc_t<T>;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < kept.numel;
       o += step) {
    int64_t base[1];
    offsets_of(kept, o, base);
    A acc = reduce_identity<A>(op);
    for (int64_t r = 0; r < red.numel; ++r) {
      int64_t off[1];
      offsets_of(red, r, off);
      acc = reduce_combine(op, acc, static_cast<A>(x[base[0] + off[0]]));
    }
    y[o] = static_cast<T>(acc);
  }
}

// a better than b for argmax/argmin: NaN first, then the extremum, ties to the lower index;
// index -1 marks "no element yet".
template <typename T>
__device__ bool arg_better(bool is_max, T av, int64_t ai, T bv, int64_t bi) {
  if (bi < 0) return ai >= 0;
  if (ai < 0) return false;
  const bool an = is_nan(av), bn = is_nan(bv);
  if (an || bn) return an && bn ? ai < bi : an;
  if (av == bv) return ai < bi;
  return is_max ? av > bv : av < bv;
}

template <typename T>
__global__ void argreduce_kernel(bool is_max, Strided<1> kept, int64_t n, int64_t rs, const T* x,
                                 int64_t* y) {
  __shared__ T sv[32];
  __shared__ int64_t si[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  for (int64_t o = blockIdx.x; o < kept.numel; o += gridDim.x) {
    int64_t base[1];
    offsets_of(kept, o, base);
    T v{};
    int64_t i = -1;
    for (int64_t r = threadIdx.x; r < n; r += blockDim.x) {
      const T xv = x[base[0] + r * rs];
      if (arg_better(is_max, xv, r, v, i)) v = xv, i = r;
    }
    for (int off = 16; off > 0; off >>= 1) {
      const T ov = __shfl_down_sync(0xffffffffu, v, off);
      const int64_t oi = __shfl_down_sync(0xffffffffu, i, off);
      if (arg_better(is_max, ov, oi, v, i)) v = ov, i = oi;
    }
    __syncthreads();
    if (lane == 0) sv[warp] = v, si[warp] = i;
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int w = 1; w < nwarps; ++w)
        if (arg_better(is_max, sv[w], si[w], v, i)) v = sv[w], i = si[w];
      y[o] = i;
    }
  }
}

// ---------------------------------------------------------------- row kernels
// G threads per row: 32 (one warp, shuffles only) or kThreads (the block).
template <int G, typename A, typename F>
__device__ A group_reduce(A v, F f) {
  if constexpr (G == 32) {
    for (int o = 16; o > 0; o >>= 1) v = f(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
  } else {
    return block_reduce(v, f);
  }
}

// Calls body(row, lane) for every row handled by this group; uniform per group, so the group
// reductions inside body are safe.
template <int G, typename Body>
__device__ void for_rows(int64_t rows, Body body) {
  constexpr int R = kThreads / G;
  const int lane = threadIdx.x % G;
  for (int64_t row = blockIdx.x * static_cast<int64_t>(R) + threadIdx.x / G; row < rows;
       row += static_cast<int64_t>(gridDim.x) * R)
    body(row, lane);
}

template <typename T, int G>
__global__ void softmax_kernel(const T* x, T* y, int64_t rows, int64_t n, bool log) {
  for_rows<G>(rows, [&](int64_t row, int lane) {
    const T* xr = x + row * n;
    T* yr = y + row * n;
    T m = -INFINITY;
    for (int64_t i = lane; i < n; i += G) m = MaxOp{}(m, xr[i]);
    m = group_reduce<G>(m, MaxOp{});
    if (is_nan(m)) {
      for (int64_t i = lane; i < n; i += G) yr[i] = m;
      return;
    }
    if (std::isinf(m) && m < 0) {  // every entry -inf: 0 (softmax) / -inf (log_softmax), not NaN
      for (int64_t i = lane; i < n; i += G) yr[i] = log ? xr[i] : T(0);
      return;
    }
    double s = 0;
    for (int64_t i = lane; i < n; i += G) s += std::exp(xr[i] - m);
    s = group_reduce<G>(s, SumOp{});
    if (log) {
      const double lse = static_cast<double>(m) + std::log(s);
      for (int64_t i = lane; i < n; i += G) yr[i] = static_cast<T>(xr[i] - lse);
    } else {
      const T inv = static_cast<T>(1.0 / s);
      for (int64_t i = lane; i < n; i += G) yr[i] = std::exp(xr[i] - m) * inv;
    }
  });
}

template <typename T, int G>
__global__ void softmax_backward_kernel(const T* y, const T* dy, T* dx, int64_t rows, int64_t n,
                                        bool log) {
  for_rows<G>(rows, [&](int64_t row, int lane) {
    const T *yr = y + row * n, *gr = dy + row * n;
    T* dr = dx + row * n;
    double s = 0;
    for (int64_t i = lane; i < n; i += G)
      s += log ? static_cast<double>(gr[i]) : static_cast<double>(gr[i]) * yr[i];
    s = group_reduce<G>(s, SumOp{});
    const T st = static_cast<T>(s);
    for (int64_t i = lane; i < n; i += G)
      dr[i] = log ? gr[i] - std::exp(yr[i]) * st : yr[i] * (gr[i] - st);
  });
}

template <typename T, int G>
__global__ void layernorm_kernel(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd,
                                 int64_t rows, int64_t n, double eps) {
  for_rows<G>(rows, [&](int64_t row, int lane) {
    const T* xr = x + row * n;
    T* yr = y + row * n;
    double s = 0;
    for (int64_t i = lane; i < n; i += G) s += xr[i];
    const double mu = group_reduce<G>(s, SumOp{}) / n;
    double v = 0;  // two passes (the row is in L1/L2 by now): no cancellation of E[x^2] - E[x]^2
    for (int64_t i = lane; i < n; i += G) v += (xr[i] - mu) * (xr[i] - mu);
    const double rs = 1.0 / std::sqrt(group_reduce<G>(v, SumOp{}) / n + eps);
    for (int64_t i = lane; i < n; i += G) {
      double h = (xr[i] - mu) * rs;
      if (w) h *= w[i];
      if (b) h += b[i];
      yr[i] = static_cast<T>(h);
    }
    if (lane == 0) mean[row] = static_cast<T>(mu), rstd[row] = static_cast<T>(rs);
  });
}

template <typename T, int G>
__global__ void layernorm_backward_dx_kernel(const T* dy, const T* x, const T* mean, const T* rstd,
                                             const T* w, T* dx, int64_t rows, int64_t n) {
  for_rows<G>(rows, [&](int64_t row, int lane) {
    const T *gr = dy + row * n, *xr = x + row * n;
    T* dr = dx + row * n;
    const double mu = mean[row], rs = rstd[row];
    double sg = 0, sgx = 0;
    for (int64_t i = lane; i < n; i += G) {
      const double g = w ? static_cast<double>(gr[i]) * w[i] : static_cast<double>(gr[i]);
      sg += g;
      sgx += g * (xr[i] - mu) * rs;
    }
    sg = group_reduce<G>(sg, SumOp{});
    sgx = group_reduce<G>(sgx, SumOp{});
    for (int64_t i = lane; i < n; i += G) {
      const double xh = (xr[i] - mu) * rs;
      const double g = w ? static_cast<double>(gr[i]) * w[i] : static_cast<double>(gr[i]);
      dr[i] = static_cast<T>(rs * (g - sg / n - xh * sgx / n));
    }
  });
}

// dw/db partials: block (32, 8) covers 32 columns of one chunk of rows; partial sums are combined
// over threadIdx.y in a fixed order and written per chunk (no atomics: deterministic).
template <typename T>
__global__ void layernorm_backward_dwdb_partial(const T* dy, const T* x, const T* mean,
                                                const T* rstd, int64_t rows, int64_t n,
                                                int64_t chunk_rows, double* pw, double* pb) {
  __shared__ double sw[8][33], sb[8][33];
  const int64_t c = blockIdx.x * 32 + threadIdx.x;
  const int64_t r0 = blockIdx.y * chunk_rows, r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
  double aw = 0, ab = 0;
  if (c < n)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) {
      const double g = dy[r * n + c];
      aw += g * (x[r * n + c] - static_cast<double>(mean[r])) * static_cast<double>(rstd[r]);
      ab += g;
    }
  sw[threadIdx.y][threadIdx.x] = aw;
  sb[threadIdx.y][threadIdx.x] = ab;
  __syncthreads();
  if (threadIdx.y == 0 && c < n) {
    for (int k = 1; k < 8; ++k) aw += sw[k][threadIdx.x], ab += sb[k][threadIdx.x];
    pw[blockIdx.y * n + c] = aw;
    pb[blockIdx.y * n + c] = ab;
  }
}

template <typename T>
__global__ void layernorm_backward_dwdb_final(const double* pw, const double* pb, int64_t chunks,
                                              int64_t n, T* dw, T* db) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= n) return;
  double aw = 0, ab = 0;
  for (int64_t k = 0; k < chunks; ++k) aw += pw[k * n + c], ab += pb[k * n + c];
  if (dw) dw[c] = static_cast<T>(aw);
  if (db) db[c] = static_cast<T>(ab);
}

template <typename T, int G>
__global__ void cross_entropy_kernel(const T* logits, const int64_t* target, T* loss, T* lse,
                                     int64_t rows, int64_t C, int64_t ignore_index, double eps) {
  for_rows<G>(rows, [&](int64_t row, int lane) {
    const T* xr = logits + row * C;
    T m = -INFINITY;
    double sx = 0;
    for (int64_t c = lane; c < C; c += G) m = MaxOp{}(m, xr[c]), sx += xr[c];
    m = group_reduce<G>(m, MaxOp{});
    sx = group_reduce<G>(sx, SumOp{});
    double s = 0;
    for (int64_t c = lane; c < C; c += G) s += std::exp(static_cast<double>(xr[c]) - m);
    const double l = static_cast<double>(m) + std::log(group_reduce<G>(s, SumOp{}));
    if (lane == 0) {
      lse[row] = static_cast<T>(l);
      const int64_t t = target[row];
      // the smoothing term only when smoothing is on: with eps = 0 and a -inf logit, sx is -inf
      // and 0 * inf would make the loss NaN (the CPU kernel does the same)
      double v = (1.0 - eps) * (l - xr[t]);
      if (eps != 0) v += eps * (l - sx / C);
      loss[row] = t == ignore_index ? T(0) : static_cast<T>(v);
    }
  });
}

template <typename T>
__global__ void cross_entropy_backward_kernel(const T* logits, const int64_t* target, const T* lse,
                                              const T* g, T* d, int64_t rows, int64_t C,
                                              int64_t ignore_index, double eps) {
  const int64_t total = rows * C, step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += step) {
    const int64_t r = i / C, c = i - r * C, t = target[r];
    if (t == ignore_index) {
      d[i] = T(0);
      continue;
    }
    const double p = std::exp(static_cast<double>(logits[i]) - static_cast<double>(lse[r]));
    d[i] = static_cast<T>(static_cast<double>(g[r]) * (p - eps / C - (c == t ? 1.0 - eps : 0.0)));
  }
}

// Warp per row for short rows (8 rows per block), block per row for long ones.
template <typename Launch>
void launch_rows(int64_t rows, int64_t n, Launch launch) {
  if (rows == 0) return;
  if (n <= 1024)
    launch(std::integral_constant<int, 32>{}, grid_for(rows, kThreads / 32));
  else
    launch(std::integral_constant<int, kThreads>{}, grid_for(rows, 1));
  SMYRF_CUDA_CHECK_LAUNCH();
}
}  // namespace

// ---------------------------------------------------------------- reductions as row / column
// kernels logsumexp of each row: a row whose max is +inf or -inf gives that max, a NaN gives NaN
// (kernels/cpu/softmax.h logsumexp_rows); the sum of exps in double.
template <typename T, int G>
__global__ void logsumexp_kernel(const T* x, T* y, int64_t rows, int64_t n) {
  for_rows<G>(rows, [&](int64_t row, int lane) {
    const T* xr = x + row * n;
    T m = -INFINITY;
    for (int64_t i = lane; i < n; i += G) m = MaxOp{}(m, xr[i]);
    m = group_reduce<G>(m, MaxOp{});
    if (is_nan(m) || std::isinf(m)) {  // uniform over the group: no reduction below is skipped
      if (lane == 0) y[row] = m;       // by part of it
      return;
    }
    double s = 0;
    for (int64_t i = lane; i < n; i += G) s += std::exp(static_cast<double>(xr[i]) - m);
    s = group_reduce<G>(s, SumOp{});
    if (lane == 0) y[row] = static_cast<T>(static_cast<double>(m) + std::log(s));
  });
}

// var of each row about its mean, two sweeps in double: sum / (n - correction), a divisor <= 0
// giving inf (NaN for a zero sum); inf or NaN in a row gives NaN (kernels/cpu/norm.h var_rows).
template <typename T, int G>
__global__ void var_kernel(const T* x, T* y, int64_t rows, int64_t n, int64_t correction) {
  for_rows<G>(rows, [&](int64_t row, int lane) {
    const T* xr = x + row * n;
    double s = 0;
    for (int64_t i = lane; i < n; i += G) s += static_cast<double>(xr[i]);
    const double mean = group_reduce<G>(s, SumOp{}) / static_cast<double>(n);
    double q = 0;
    for (int64_t i = lane; i < n; i += G) {
      const double d = static_cast<double>(xr[i]) - mean;
      q += d * d;
    }
    q = group_reduce<G>(q, SumOp{});
    const int64_t div = n - correction > 0 ? n - correction : 0;
    if (lane == 0) y[row] = static_cast<T>(q / static_cast<double>(div));
  });
}

// softmax / log_softmax down the columns of a contiguous (outer, n, inner) buffer, a thread per
// column (neighbouring threads read neighbouring columns: coalesced), with softmax_kernel's
// semantics and arithmetic per column. Replaces moving the dim last and back (two transposed
// copies of x and of y) for softmax over a dim that is not the last.
template <typename T>
__global__ void softmax_cols_kernel(const T* x, T* y, int64_t outer, int64_t n, int64_t inner,
                                    bool log) {
  const int64_t cols = outer * inner;
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < cols;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = c / inner, at = o * n * inner + (c - o * inner);
    const T* xc = x + at;
    T* yc = y + at;
    T m = -INFINITY;
    for (int64_t r = 0; r < n; ++r) m = MaxOp{}(m, xc[r * inner]);
    if (is_nan(m)) {
      for (int64_t r = 0; r < n; ++r) yc[r * inner] = m;
      continue;
    }
    if (std::isinf(m) && m < 0) {  // every entry -inf: 0 (softmax) / -inf (log_softmax)
      for (int64_t r = 0; r < n; ++r) yc[r * inner] = log ? xc[r * inner] : T(0);
      continue;
    }
    double s = 0;
    for (int64_t r = 0; r < n; ++r) s += std::exp(xc[r * inner] - m);
    if (log) {
      const double lse = static_cast<double>(m) + std::log(s);
      for (int64_t r = 0; r < n; ++r) yc[r * inner] = static_cast<T>(xc[r * inner] - lse);
    } else {
      const T inv = static_cast<T>(1.0 / s);
      for (int64_t r = 0; r < n; ++r) yc[r * inner] = std::exp(xc[r * inner] - m) * inv;
    }
  }
}

template <typename T>
__global__ void softmax_cols_backward_kernel(const T* y, const T* dy, T* dx, int64_t outer,
                                             int64_t n, int64_t inner, bool log) {
  const int64_t cols = outer * inner;
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < cols;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = c / inner, at = o * n * inner + (c - o * inner);
    const T *yc = y + at, *gc = dy + at;
    T* dc = dx + at;
    double s = 0;
    for (int64_t r = 0; r < n; ++r)
      s += log ? static_cast<double>(gc[r * inner])
               : static_cast<double>(gc[r * inner]) * yc[r * inner];
    const T st = static_cast<T>(s);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t i = r * inner;
      dc[i] = log ? gc[i] - std::exp(yc[i]) * st : yc[i] * (gc[i] - st);
    }
  }
}

template <typename T>
void reduce(ReduceOp op, int kept_ndim, const int64_t* kept_sizes, const int64_t* kept_strides,
            int red_ndim, const int64_t* red_sizes, const int64_t* red_strides, const T* x, T* y) {
  const Strided<1> kept = make_strided<1>(kept_ndim, kept_sizes, {kept_strides});
  const Strided<1> red = make_strided<1>(red_ndim, red_sizes, {red_strides});
  if (kept.numel == 0) return;
  // Few outputs over long ranges (a full sum: one output): one block per output left the GPU
  // idle (16M floats summed at 2.7 GB/s on an H200). Each output's range is cut into parts of at
  // least kSplitMin elements, about 1024 blocks in all, reduced into partials and then combined.
  constexpr int64_t kSplitMin = 16384, kSplitBlocks = 1024;
  if (red.numel >= 2 * kSplitMin && kept.numel < kSplitBlocks / 4) {
    int64_t splits = std::min<int64_t>(kSplitBlocks / kept.numel, red.numel / kSplitMin);
    const int64_t part_len = (red.numel + splits - 1) / splits;
    splits = (red.numel + part_len - 1) / part_len;
    using A = acc_t<T>;
    const size_t bytes = static_cast<size_t>(kept.numel * splits) * sizeof(A);
    A* partial = static_cast<A*>(cached_alloc(bytes, current_device(), current_stream()));
    try {
      reduce_split_kernel<T><<<static_cast<unsigned>(kept.numel * splits), kThreads, 0, stream()>>>(
          op, kept, red, splits, part_len, x, partial);
      SMYRF_CUDA_CHECK_LAUNCH();
      reduce_split_final<T><<<grid_for(kept.numel, kThreads), kThreads, 0, stream()>>>(
          op, kept.numel, splits, partial, y);
      SMYRF_CUDA_CHECK_LAUNCH();
    } catch (...) {
      cached_free(partial);
      throw;
    }
    cached_free(partial);
    return;
  }
  if (red.numel >= kBlockReduceMin)
    reduce_block_kernel<T><<<grid_for(kept.numel, 1), kThreads, 0, stream()>>>(op, kept, red, x, y);
  else
    reduce_thread_kernel<T>
        <<<grid_for(kept.numel, kThreads), kThreads, 0, stream()>>>(op, kept, red, x, y);
  SMYRF_CUDA_CHECK_LAUNCH();
}

template <typename T>
void argreduce(bool is_max, int kept_ndim, const int64_t* kept_sizes, const int64_t* kept_strides,
               int64_t n, int64_t red_stride, const T* x, int64_t* y) {
  const Strided<1> kept = make_strided<1>(kept_ndim, kept_sizes, {kept_strides});
  if (kept.numel == 0) return;
  const int threads = n >= kBlockReduceMin ? kThreads : 32;
  argreduce_kernel<T>
      <<<grid_for(kept.numel, 1), threads, 0, stream()>>>(is_max, kept, n, red_stride, x, y);
  SMYRF_CUDA_CHECK_LAUNCH();
}

template <typename T>
void softmax_rows(const T* x, T* y, int64_t rows, int64_t n, bool log) {
  launch_rows(rows, n, [&](auto g, unsigned grid) {
    softmax_kernel<T, decltype(g)::value><<<grid, kThreads, 0, stream()>>>(x, y, rows, n, log);
  });
}

template <typename T>
void softmax_rows_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t n, bool log) {
  launch_rows(rows, n, [&](auto g, unsigned grid) {
    softmax_backward_kernel<T, decltype(g)::value>
        <<<grid, kThreads, 0, stream()>>>(y, dy, dx, rows, n, log);
  });
}

template <typename T>
void layernorm_rows(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows,
                    int64_t n, double eps) {
  launch_rows(rows, n, [&](auto g, unsigned grid) {
    layernorm_kernel<T, decltype(g)::value>
        <<<grid, kThreads, 0, stream()>>>(x, w, b, y, mean, rstd, rows, n, eps);
  });
}

template <typename T>
void layernorm_rows_backward(const T* dy, const T* x, const T* mean, const T* rstd, const T* w,
                             T* dx, T* dw, T* db, int64_t rows, int64_t n) {
  launch_rows(rows, n, [&](auto g, unsigned grid) {
    layernorm_backward_dx_kernel<T, decltype(g)::value>
        <<<grid, kThreads, 0, stream()>>>(dy, x, mean, rstd, w, dx, rows, n);
  });
  if (!dw && !db) return;
  // Enough chunks to fill the GPU for long, thin inputs (many rows, few columns), a chunk count
  // that depends only on the shape so the summation order is reproducible.
  const int64_t chunk_rows =
      rows <= 64 ? (rows > 0 ? rows : 1) : std::max<int64_t>(64, (rows + 255) / 256);
  const int64_t chunks = rows == 0 ? 1 : (rows + chunk_rows - 1) / chunk_rows;
  const size_t bytes = static_cast<size_t>(chunks * n) * sizeof(double);
  const int dev = current_device();
  // stream-ordered scratch: freed right after the launches, reused only by later work on this
  // stream
  double* pw = static_cast<double*>(cached_alloc(bytes, dev, current_stream()));
  double* pb = static_cast<double*>(cached_alloc(bytes, dev, current_stream()));
  try {
    if (rows == 0) {
      memset_zero_async(pw, bytes);
      memset_zero_async(pb, bytes);
    } else {
      dim3 grid(static_cast<unsigned>((n + 31) / 32), static_cast<unsigned>(chunks));
      layernorm_backward_dwdb_partial<T>
          <<<grid, dim3(32, 8), 0, stream()>>>(dy, x, mean, rstd, rows, n, chunk_rows, pw, pb);
      SMYRF_CUDA_CHECK_LAUNCH();
    }
    layernorm_backward_dwdb_final<T>
        <<<grid_for(n, kThreads, 1 << 30), kThreads, 0, stream()>>>(pw, pb, chunks, n, dw, db);
    SMYRF_CUDA_CHECK_LAUNCH();
  } catch (...) {
    cached_free(pw);
    cached_free(pb);
    throw;
  }
  cached_free(pw);
  cached_free(pb);
}

template <typename T>
void logsumexp_rows(const T* x, T* y, int64_t rows, int64_t n) {
  launch_rows(rows, n, [&](auto g, unsigned grid) {
    logsumexp_kernel<T, decltype(g)::value><<<grid, kThreads, 0, stream()>>>(x, y, rows, n);
  });
}

template <typename T>
void var_rows(const T* x, T* y, int64_t rows, int64_t n, int64_t correction) {
  launch_rows(rows, n, [&](auto g, unsigned grid) {
    var_kernel<T, decltype(g)::value><<<grid, kThreads, 0, stream()>>>(x, y, rows, n, correction);
  });
}

template <typename T>
void softmax_cols(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  if (outer * inner == 0) return;
  softmax_cols_kernel<T>
      <<<grid_for(outer * inner, kThreads), kThreads, 0, stream()>>>(x, y, outer, n, inner, log);
  SMYRF_CUDA_CHECK_LAUNCH();
}

template <typename T>
void softmax_cols_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t n, int64_t inner,
                           bool log) {
  if (outer * inner == 0) return;
  softmax_cols_backward_kernel<T><<<grid_for(outer * inner, kThreads), kThreads, 0, stream()>>>(
      y, dy, dx, outer, n, inner, log);
  SMYRF_CUDA_CHECK_LAUNCH();
}

template <typename T>
void cross_entropy_rows(const T* logits, const int64_t* target, T* loss, T* lse, int64_t rows,
                        int64_t C, int64_t ignore_index, double eps) {
  launch_rows(rows, C, [&](auto g, unsigned grid) {
    cross_entropy_kernel<T, decltype(g)::value>
        <<<grid, kThreads, 0, stream()>>>(logits, target, loss, lse, rows, C, ignore_index, eps);
  });
}

template <typename T>
void cross_entropy_rows_backward(const T* logits, const int64_t* target, const T* lse, const T* g,
                                 T* d, int64_t rows, int64_t C, int64_t ignore_index, double eps) {
  if (rows * C == 0) return;
  cross_entropy_backward_kernel<T><<<grid_for(rows * C, kThreads), kThreads, 0, stream()>>>(
      logits, target, lse, g, d, rows, C, ignore_index, eps);
  SMYRF_CUDA_CHECK_LAUNCH();
}

#define SMYRF_RED(T)                                                                          \
  template void reduce<T>(ReduceOp, int, const int64_t*, const int64_t*, int, const int64_t*, \
                          const int64_t*, const T*, T*);                                      \
  template void argreduce<T>(bool, int, const int64_t*, const int64_t*, int64_t, int64_t,     \
                             const T*, int64_t*);
SMYRF_RED(int32_t)
SMYRF_RED(int64_t)
SMYRF_RED(float)
SMYRF_RED(double)
#define SMYRF_ROWS(T)                                                                              \
  template void softmax_rows<T>(const T*, T*, int64_t, int64_t, bool);                             \
  template void softmax_rows_backward<T>(const T*, const T*, T*, int64_t, int64_t, bool);          \
  template void layernorm_rows<T>(const T*, const T*, const T*, T*, T*, T*, int64_t, int64_t,      \
                                  double);                                                         \
  template void layernorm_rows_backward<T>(const T*, const T*, const T*, const T*, const T*, T*,   \
                                           T*, T*, int64_t, int64_t);                              \
  template void cross_entropy_rows<T>(const T*, const int64_t*, T*, T*, int64_t, int64_t, int64_t, \
                                      double);                                                     \
  template void cross_entropy_rows_backward<T>(const T*, const int64_t*, const T*, const T*, T*,   \
                                               int64_t, int64_t, int64_t, double);                 \
  template void logsumexp_rows<T>(const T*, T*, int64_t, int64_t);                                 \
  template void var_rows<T>(const T*, T*, int64_t, int64_t, int64_t);                              \
  template void softmax_cols<T>(const T*, T*, int64_t, int64_t, int64_t, bool);                    \
  template void softmax_cols_backward<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, bool);
SMYRF_ROWS(float)
SMYRF_ROWS(double)

}  // namespace smyrf::kernels::cuda
