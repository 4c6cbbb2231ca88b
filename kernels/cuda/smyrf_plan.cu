// SMYRF clustering on CUDA: XBOX+ hashes in double precision (as the CPU plan, so both sort the
// same way), a stable segmented radix sort per (bh, round) with padded tokens keyed +inf (last),
// and the chunk id of every token. The semantics are those of cpu::smyrf_make_plan (non-causal).
// Status: ran on an NVIDIA H200 on 2026-11-29 in this form (tests/cuda, all passing;
// scripts/gpu-check): the plan of BH 8 x N 16384 x d 64 in bfloat16, 4 rounds, took 0.61 ms
// (1.10 ms with the previous thread-per-row hashing and segmented sort).
#include <cmath>
#include <vector>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/index.h"
#include "kernels/cuda/runtime.h"

namespace smyrf::kernels::cuda {
using detail::grid_for;
using detail::stream;
namespace {
constexpr int kThreads = 256;

// Rows of the projection kernel's block: one token per thread, its row staged with the block's
// other rows through a shared tile kProjCols columns at a time (coalesced reads: a thread reading
// its own row straight from global memory touched 32 lines per warp load, and R + 1 such passes
// took 148 us a side for the hashes and 36 us for the norms at 131072 tokens of 64 on an H200).
constexpr int kProjRows = 64, kProjCols = 64;

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(uint16_t bits) {
  return __uint_as_float(static_cast<uint32_t>(bits) << 16);  // bfloat16 -> float32, exact
}

// For each of `rows` rows of x (d values of T: float, or bfloat16 bits): the squared norm into
// norms[row] and the raw projections a_r[0:d] . x for every round r into
// proj[(row / n) * R * n + r * n + row % n] (the (bh, r, t) layout of the sort keys), all in
// double, each summed over c = 0, 1, ..., d - 1 in order (as the CPU plan sums).
template <typename T>
__global__ void project_kernel(const T* __restrict__ x, const double* __restrict__ dirs,
                               double* __restrict__ norms, double* __restrict__ proj, int64_t rows,
                               int64_t n, int64_t R, int64_t d) {
  __shared__ float tile[kProjRows][kProjCols + 1];  // +1: a thread per row reads conflict-free
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kProjRows;
  const int64_t row = row0 + threadIdx.x;
  const bool mine = row < rows;
  const int64_t bh = row / n, tok = row % n;
  double norm = 0;
  for (int64_t c0 = 0; c0 < d; c0 += kProjCols) {
    const int cols = static_cast<int>(min(static_cast<int64_t>(kProjCols), d - c0));
    __syncthreads();  // the previous chunk is read
    for (int e = threadIdx.x; e < kProjRows * kProjCols; e += blockDim.x) {
      const int r = e / kProjCols, c = e % kProjCols;
      if (c < cols && row0 + r < rows) tile[r][c] = to_float(x[(row0 + r) * d + c0 + c]);
    }
    __syncthreads();
    if (!mine) continue;
    for (int c = 0; c < cols; ++c) {
      const double v = tile[threadIdx.x][c];
      norm += v * v;
    }
    for (int64_t r = 0; r < R; ++r) {
      const double* a = dirs + r * (d + 2) + c0;
      double* out = proj + (bh * R + r) * n + tok;
      double h = c0 == 0 ? 0.0 : *out;  // the running sum of the earlier chunks
      for (int c = 0; c < cols; ++c) h += a[c] * static_cast<double>(tile[threadIdx.x][c]);
      *out = h;
    }
  }
  if (mine) norms[row] = norm;
}

// Per bh: the largest squared norm over real tokens and the number of real tokens.
__global__ void max_norm_kernel(const double* norms, const uint8_t* mask, int64_t n, int64_t heads,
                                double* max_out, int32_t* real_out) {
  const int64_t bh = blockIdx.x;
  const uint8_t* m = mask ? mask + (bh / heads) * n : nullptr;
  double mx = 0;
  int64_t cnt = 0;
  for (int64_t t = threadIdx.x; t < n; t += blockDim.x) {
    if (m && !m[t]) continue;
    mx = fmax(mx, norms[bh * n + t]);
    ++cnt;
  }
  mx = detail::block_reduce(mx, detail::MaxOp{});
  cnt = detail::block_reduce(cnt, detail::SumOp{});
  if (threadIdx.x == 0) {
    max_out[bh] = mx;
    real_out[bh] = static_cast<int32_t>(cnt);
  }
}

// Hash of every (bh, r, token): the projection a_r . x plus the lift a_r[lift_col] times
// sqrt(M - |x|^2) (lift_col d for keys, d + 1 for queries); padded tokens get +inf so the stable
// sort puts them last in index order.
__global__ void lift_kernel(double* keys, const double* norms, const double* mq, const double* mk,
                            const uint8_t* mask, const double* dirs, int64_t BH, int64_t R,
                            int64_t n, int64_t d, int64_t heads, int64_t lift_col) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= BH * R * n) return;
  const int64_t t = e % n, r = (e / n) % R, bh = e / (n * R);
  if (mask && !mask[(bh / heads) * n + t]) {
    keys[e] = INFINITY;
    return;
  }
  double h = keys[e];
  const double m2 = mq[bh] + mk[bh];
  h += dirs[r * (d + 2) + lift_col] * sqrt(fmax(0.0, m2 - norms[bh * n + t]));
  keys[e] = h == 0.0 ? 0.0 : h;  // -0.0 and +0.0 compare equal on the CPU: one key for both
}

// cluster[order[pos]] = pos / chunk for real positions, -1 for padding.
__global__ void cluster_kernel(const int32_t* order, const int32_t* real, int32_t* cluster,
                               int64_t BH, int64_t R, int64_t n, int64_t chunk) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= BH * R * n) return;
  const int64_t pos = e % n, row = e / n, bh = row / R;
  cluster[row * n + order[e]] = pos < real[bh] ? static_cast<int32_t>(pos / chunk) : -1;
}

}  // namespace

void smyrf_require_non_causal(const cpu::SmyrfParams& p) {
  if (p.causal)
    throw std::invalid_argument(
        "[smyrf_attention] the CUDA SMYRF kernels are the clustered (non-causal) ones; hint: "
        "smyrf_attention() runs causal SMYRF through the CPU kernels for CUDA tensors");
}

namespace {
// The plan from q and k of element type T (float, or bfloat16 bits: the hashes read the values,
// so a bfloat16 plan equals the float32 plan of the rounded inputs).
template <typename T>
SmyrfDevicePlan make_plan(const cpu::SmyrfParams& p, const T* q, const T* k) {
  cpu::smyrf_check(p);
  smyrf_require_non_causal(p);
  const int64_t BH = p.batch_heads, R = p.n_hashes, nq = p.nq, nk = p.nk, d = p.d;
  SmyrfDevicePlan plan;
  plan.batch_heads = BH;
  plan.rounds = R;
  plan.nq = nq;
  plan.nk = nk;
  plan.n_chunks = (nq + p.cq - 1) / p.cq;
  plan.q_order = DeviceArray<int32_t>(BH * R * nq);
  plan.k_order = DeviceArray<int32_t>(BH * R * nk);
  plan.q_cluster = DeviceArray<int32_t>(BH * R * nq);
  plan.k_cluster = DeviceArray<int32_t>(BH * R * nk);
  plan.q_real = DeviceArray<int32_t>(BH);
  plan.k_real = DeviceArray<int32_t>(BH);
  if (BH == 0) return plan;

  // hash directions: the CPU's Philox draws, uploaded once
  std::vector<double> dirs_host(static_cast<size_t>(R * (d + 2)));
  for (int64_t r = 0; r < R; ++r) {
    const std::vector<double> a = cpu::smyrf_hash_direction(p.seed, r, d);
    std::copy(a.begin(), a.end(), dirs_host.begin() + r * (d + 2));
  }
  DeviceArray<double> dirs(R * (d + 2));
  memcpy_any(dirs.data(), true, dirs_host.data(), false, dirs_host.size() * sizeof(double));

  // norms and raw projections of both sides, then the per-bh largest norms the lifts need
  DeviceArray<double> qn(BH * nq), kn(BH * nk), mq(BH), mk(BH);
  DeviceArray<double> qkeys(BH * R * nq), kkeys(BH * R * nk);
  auto project = [&](const T* x, int64_t n, DeviceArray<double>& norms, DeviceArray<double>& keys) {
    const int64_t rows = BH * n;
    if (rows == 0) return;
    project_kernel<T>
        <<<static_cast<unsigned>((rows + kProjRows - 1) / kProjRows), kProjRows, 0, stream()>>>(
            x, dirs.data(), norms.data(), keys.data(), rows, n, R, d);
    SMYRF_CUDA_CHECK_LAUNCH();
  };
  project(q, nq, qn, qkeys);
  project(k, nk, kn, kkeys);
  max_norm_kernel<<<static_cast<unsigned>(BH), kThreads, 0, stream()>>>(
      qn.data(), p.query_mask, nq, p.heads, mq.data(), plan.q_real.data());
  SMYRF_CUDA_CHECK_LAUNCH();
  max_norm_kernel<<<static_cast<unsigned>(BH), kThreads, 0, stream()>>>(
      kn.data(), p.key_mask, nk, p.heads, mk.data(), plan.k_real.data());
  SMYRF_CUDA_CHECK_LAUNCH();

  auto side = [&](DeviceArray<double>& keys, const double* norms, const uint8_t* mask, int64_t n,
                  int64_t lift_col, int64_t chunk, DeviceArray<int32_t>& order,
                  DeviceArray<int32_t>& cluster, const DeviceArray<int32_t>& real) {
    const int64_t total = BH * R * n;
    if (total == 0) return;
    lift_kernel<<<grid_for(total, kThreads, 1 << 30), kThreads, 0, stream()>>>(
        keys.data(), norms, mq.data(), mk.data(), mask, dirs.data(), BH, R, n, d, p.heads,
        lift_col);
    SMYRF_CUDA_CHECK_LAUNCH();
    detail::stable_argsort_double_rows(keys.data(), BH * R, n, order.data());
    cluster_kernel<<<grid_for(total, kThreads, 1 << 30), kThreads, 0, stream()>>>(
        order.data(), real.data(), cluster.data(), BH, R, n, chunk);
    SMYRF_CUDA_CHECK_LAUNCH();
  };
  // queries are lifted in coordinate d + 1, keys in coordinate d (cpu::smyrf_make_plan)
  side(qkeys, qn.data(), p.query_mask, nq, d + 1, p.cq, plan.q_order, plan.q_cluster, plan.q_real);
  side(kkeys, kn.data(), p.key_mask, nk, d, p.ck, plan.k_order, plan.k_cluster, plan.k_real);
  return plan;
}
}  // namespace

SmyrfDevicePlan smyrf_make_plan(const cpu::SmyrfParams& p, const float* q, const float* k) {
  return make_plan(p, q, k);
}

SmyrfDevicePlan smyrf_make_plan_bf16(const cpu::SmyrfParams& p, const uint16_t* q,
                                     const uint16_t* k) {
  return make_plan(p, q, k);
}

}  // namespace smyrf::kernels::cuda
