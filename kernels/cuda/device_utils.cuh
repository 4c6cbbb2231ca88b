// Internal to the .cu files: strided index spaces, launch helpers and block reductions.
// Status: ran on an NVIDIA H200 on 2026-11-29 (tests/cuda, all passing; scripts/gpu-check),
// pointwise_kernel's unrolled contiguous path included. The 32-bit dividers of the strided index
// spaces (Strided::small), added after that run, ran on an NVIDIA H200 on 2026-11-30 (tests/cuda
// 42/42 passing; scripts/gpu-check) (a row-broadcast add 29% -> 40% of a device copy at 16M-128M
// floats); their arithmetic is also checked on the CPU (tests/kernels/test_int_divider.cpp).
// The unrolled strided path (splits_strided, load_at / store_at) was written on 2026-11-30
// without a GPU: compiled for sm_90, not yet run.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/check.h"
#include "kernels/cuda/int_divider.h"

namespace smyrf::kernels::cuda::detail {

constexpr int kMaxDims = 16;  // as kernels/cpu/nd_loop.h: core's IterPlan never has more

// An n-d index space with per-operand element strides, passed to kernels by value (a few hundred
// bytes of kernel parameters). `contiguous` marks the common case where every operand is one
// dense run: then element i sits at offset i for every operand and no division is needed.
template <int N>
struct Strided {
  int ndim = 0;
  int64_t numel = 1;
  bool contiguous = true;
  bool small = false;  // numel < 2^31: flat indices split with the 32-bit dividers below
  int64_t sizes[kMaxDims];
  int64_t st[N][kMaxDims];
  IntDivider div[kMaxDims];  // div[d] divides by sizes[d] (set when small)
};

template <int N>
Strided<N> make_strided(int ndim, const int64_t* sizes, const int64_t* const (&strides)[N]) {
  if (ndim > kMaxDims) throw std::runtime_error("[cuda] more than 16 non-mergeable dims");
  Strided<N> s;
  s.ndim = ndim;
  for (int d = 0; d < ndim; ++d) {
    s.sizes[d] = sizes[d];
    s.numel *= sizes[d];
    for (int k = 0; k < N; ++k) s.st[k][d] = strides[k][d];
  }
  s.contiguous = ndim == 0 || (ndim == 1 && [&] {
                   for (int k = 0; k < N; ++k)
                     if (strides[k][0] != 1) return false;
                   return true;
                 }());
  // (numel > 0: every size is at least 1)
  s.small = s.numel > 0 && s.numel < (int64_t{1} << 31);
  if (s.small)
    for (int d = 0; d < ndim; ++d) s.div[d] = IntDivider(static_cast<uint32_t>(sizes[d]));
  return s;
}

template <int N>
__device__ __forceinline__ void offsets_of(const Strided<N>& s, int64_t i, int64_t (&off)[N]) {
  if (s.contiguous) {
    for (int k = 0; k < N; ++k) off[k] = i;
    return;
  }
  for (int k = 0; k < N; ++k) off[k] = 0;
  if (s.small) {  // a multiply-high and a shift per dim instead of a 64-bit division
    uint32_t r = static_cast<uint32_t>(i);
    for (int d = s.ndim - 1; d >= 0; --d) {
      const uint32_t q = s.div[d].div(r), idx = r - q * s.div[d].divisor;
      r = q;
      for (int k = 0; k < N; ++k) off[k] += static_cast<int64_t>(idx) * s.st[k][d];
    }
    return;
  }
  for (int d = s.ndim - 1; d >= 0; --d) {
    const int64_t sz = s.sizes[d];
    const int64_t q = i / sz, idx = i - q * sz;
    i = q;
    for (int k = 0; k < N; ++k) off[k] += idx * s.st[k][d];
  }
}

// Elements a thread keeps in flight on the contiguous path of pointwise_kernel.
constexpr int kPointwiseUnroll = 4;

// Functors that split an element at per-operand offsets into load_at(off) and store_at(off, in)
// (kSplitStrided) let strided index spaces keep several elements in flight too.
template <typename F, typename = void>
struct splits_strided : std::false_type {};
template <typename F>
struct splits_strided<F, std::void_t<decltype(F::kSplitStrided)>>
    : std::bool_constant<F::kSplitStrided> {};

// Grid-stride loop over the index space; f(off) does one element. Contiguous operands take
// kPointwiseUnroll elements a step (each a grid stride apart, so every load stays coalesced)
// through f.load(i) for all of them, then f.store(i, in): the loads are issued before the first
// store, which a one-element loop cannot do when the output may alias an input (the compiler
// must keep each store before the next element's loads). Strided index spaces do the same
// through f.load_at(off) / f.store_at(off, in) where the functor splits (kSplitStrided): a
// row-broadcast add with one element in flight a thread ran at 40% of a device copy on the H200.
// The remainder, and functors that do not split, take the one-element loop.
template <int N, typename F>
__global__ void pointwise_kernel(Strided<N> s, F f) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  constexpr int U = kPointwiseUnroll;
  if (s.contiguous) {
    for (; i + (U - 1) * step < s.numel; i += U * step) {
      typename F::In in[U];
#pragma unroll
      for (int u = 0; u < U; ++u) in[u] = f.load(i + u * step);
#pragma unroll
      for (int u = 0; u < U; ++u) f.store(i + u * step, in[u]);
    }
  } else if constexpr (splits_strided<F>::value) {
    for (; i + (U - 1) * step < s.numel; i += U * step) {
      int64_t off[U][N];
      typename F::In in[U];
#pragma unroll
      for (int u = 0; u < U; ++u) offsets_of(s, i + u * step, off[u]);
#pragma unroll
      for (int u = 0; u < U; ++u) in[u] = f.load_at(off[u]);
#pragma unroll
      for (int u = 0; u < U; ++u) f.store_at(off[u], in[u]);
    }
  }
  for (; i < s.numel; i += step) {
    int64_t off[N];
    offsets_of(s, i, off);
    f(off);
  }
}

// The rows path of strided index spaces: one block-row of threads per outer index (every dim but
// the innermost), the outer index split once per block and row (a few 64-bit divisions), the
// inner offsets base + j * stride with no division at all, kPointwiseUnroll elements a thread in
// flight (a block of kRowsThreads covers kRowsThreads * kPointwiseUnroll inner elements a step).
// For broadcasts along rows and the like, where the per-element split of the flat index was the
// cost (the strided path: a row-broadcast add at 40% of a device copy on the H200, 2026-11-30).
// Off unless the innermost dim has at least pointwise_rows_min_inner() elements (elementwise.h,
// set_pointwise_rows_min_inner; 0: off, the default). Written 2026-11-30 without a GPU: compiled
// for sm_90, not yet run (tests/cuda/test_cuda_ops.cpp runs it against the CPU at min inner 1).
constexpr int kRowsThreads = 256;

template <int N, typename F>
__global__ void pointwise_rows_kernel(Strided<N> s, F f) {
  constexpr int U = kPointwiseUnroll;
  const int last = s.ndim - 1;
  const int64_t inner = s.sizes[last], outer = s.numel / inner;
  const int64_t chunk = static_cast<int64_t>(blockDim.x) * U;
  int64_t ist[N];
#pragma unroll
  for (int k = 0; k < N; ++k) ist[k] = s.st[k][last];
  for (int64_t o = blockIdx.y; o < outer; o += gridDim.y) {
    int64_t base[N];
#pragma unroll
    for (int k = 0; k < N; ++k) base[k] = 0;
    int64_t r = o;
    for (int d = last - 1; d >= 0; --d) {
      const int64_t sz = s.sizes[d], q = r / sz, idx = r - q * sz;
      r = q;
#pragma unroll
      for (int k = 0; k < N; ++k) base[k] += idx * s.st[k][d];
    }
    for (int64_t j0 = blockIdx.x * chunk; j0 < inner;
         j0 += static_cast<int64_t>(gridDim.x) * chunk) {
      const int64_t j = j0 + threadIdx.x;
      if constexpr (splits_strided<F>::value) {
        if (j0 + chunk <= inner) {  // a whole step: every load before any store
          int64_t off[U][N];
          typename F::In in[U];
#pragma unroll
          for (int u = 0; u < U; ++u)
#pragma unroll
            for (int k = 0; k < N; ++k) off[u][k] = base[k] + (j + u * blockDim.x) * ist[k];
#pragma unroll
          for (int u = 0; u < U; ++u) in[u] = f.load_at(off[u]);
#pragma unroll
          for (int u = 0; u < U; ++u) f.store_at(off[u], in[u]);
          continue;
        }
      }
      for (int u = 0; u < U; ++u) {
        const int64_t ju = j + u * blockDim.x;
        if (ju >= inner) break;
        int64_t off[N];
#pragma unroll
        for (int k = 0; k < N; ++k) off[k] = base[k] + ju * ist[k];
        f(off);
      }
    }
  }
}

// The least innermost-dim length that takes the rows path (0: never); elementwise.cu.
int64_t pointwise_rows_min_inner();

template <int N, typename F>
void launch_pointwise(const Strided<N>& s, const F& f) {
  if (s.numel == 0) return;
  const int64_t min_inner = pointwise_rows_min_inner();
  if (!s.contiguous && s.ndim >= 2 && min_inner > 0 && s.sizes[s.ndim - 1] >= min_inner) {
    const int64_t inner = s.sizes[s.ndim - 1], outer = s.numel / inner;
    const int64_t chunk = int64_t{kRowsThreads} * kPointwiseUnroll;
    const dim3 grid(static_cast<unsigned>(std::min<int64_t>((inner + chunk - 1) / chunk, 1 << 16)),
                    static_cast<unsigned>(std::min<int64_t>(outer, 65535)));
    pointwise_rows_kernel<N, F><<<grid, kRowsThreads, 0, stream()>>>(s, f);
    SMYRF_CUDA_CHECK_LAUNCH();
    return;
  }
  constexpr int kThreads = 256;
  // unrolled paths: a grid a quarter the size, so that each thread takes whole unrolled steps
  const bool unrolled = s.contiguous || splits_strided<F>::value;
  const int64_t work = unrolled ? (s.numel + kPointwiseUnroll - 1) / kPointwiseUnroll : s.numel;
  pointwise_kernel<N, F><<<grid_for(work, kThreads), kThreads, 0, stream()>>>(s, f);
  SMYRF_CUDA_CHECK_LAUNCH();
}

// Accumulator type of sums: double for floating inputs (as the CPU reference), int64 for integers.
template <typename T>
using acc_t = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

template <typename T>
__device__ __forceinline__ bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return v != v;
  return false;
}

// Reduces v over the block with the associative op f (a fixed tree: deterministic run to run).
// All threads get the result. blockDim.x must be a multiple of 32 and at most 1024.
template <typename T, typename F>
__device__ T block_reduce(T v, F f) {
  __shared__ T warp_vals[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1) v = f(v, __shfl_down_sync(0xffffffffu, v, o));
  __syncthreads();  // warp_vals may still be read by a previous call
  if (lane == 0) warp_vals[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < nwarps ? warp_vals[lane] : warp_vals[0];
    // lanes past nwarps repeat warp 0's value; f must tolerate that, so they are masked below
    for (int o = 16; o > 0; o >>= 1) {
      T other = __shfl_down_sync(0xffffffffu, v, o);
      if (lane + o < nwarps) v = f(v, other);
    }
    if (lane == 0) warp_vals[0] = v;
  }
  __syncthreads();
  return warp_vals[0];
}

struct SumOp {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};
// NaN-propagating max/min (as the CPU kernels)
struct MaxOp {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return is_nan(a) ? a : (is_nan(b) ? b : (a > b ? a : b));
  }
};
struct MinOp {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return is_nan(a) ? a : (is_nan(b) ? b : (a < b ? a : b));
  }
};

}  // namespace smyrf::kernels::cuda::detail
