// SMYRF clustering on CUDA: XBOX+ hashes in double precision (as the CPU plan, so both sort the
// same way), a stable segmented radix sort per (bh, round) with padded tokens keyed +inf (last),
// and the chunk id of every token. The semantics are those of cpu::smyrf_make_plan (non-causal).
// Status: a previous form (one max-norm block a bh, one sort a side, one load at a time in the
// projection) ran on an NVIDIA H200 on 2026-11-29 (tests/cuda all passing; the plan of
// BH 8 x N 16384 x d 64 in bfloat16, 4 rounds, 0.61 ms, from 1.10 with thread-per-row hashing and
// a segmented sort). This form (sliced max-norm reduction, batched tile loads, one sort for both
// sides) ran on an NVIDIA H200 on 2026-11-30 (tests/cuda 42/42 passing; scripts/gpu-check): 0.47
// ms.
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

// For each of `rows` rows of x (d values of T: float, or bfloat16 bits; row = bh * n + token):
// the squared norm into norms[row] and the raw projections a_r[0:d] . x for every round r into
// proj[(bh * R + r) * n + token] (the layout of the sort keys), all in double, each summed over
// c = 0, 1, ..., d - 1 in order (as the CPU plan sums). One thread per row, kProjRows threads a
// block.
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
    // a fixed trip count, unrolled: many loads in flight per thread (a loop over e with one load
    // at a time took 82 us for 131072 rows of 64 on an H200)
#pragma unroll 16
    for (int i = 0; i < kProjCols; ++i) {
      const int e = threadIdx.x + i * kProjRows, r = e / kProjCols, c = e % kProjCols;
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

// Per bh, the largest squared norm over real tokens and their number, in two deterministic
// steps without atomics: kNormSlices blocks a bh reduce one slice of its tokens each (one block a
// bh left 8 blocks on the GPU: 28 us a side on an H200 at 16384 tokens), then one thread a bh
// reduces its slices in order.
constexpr int kNormSlices = 32;
__global__ void max_norm_slices_kernel(const double* norms, const uint8_t* mask, int64_t n,
                                       int64_t heads, double* slice_max, int32_t* slice_count) {
  const int64_t bh = blockIdx.y, slice = blockIdx.x;
  const int64_t lo = slice * n / kNormSlices, hi = (slice + 1) * n / kNormSlices;
  const uint8_t* m = mask ? mask + (bh / heads) * n : nullptr;
  double mx = 0;
  int64_t cnt = 0;
  for (int64_t t = lo + threadIdx.x; t < hi; t += blockDim.x) {
    if (m && !m[t]) continue;
    mx = fmax(mx, norms[bh * n + t]);
    ++cnt;
  }
  mx = detail::block_reduce(mx, detail::MaxOp{});
  cnt = detail::block_reduce(cnt, detail::SumOp{});
  if (threadIdx.x == 0) {
    slice_max[bh * kNormSlices + slice] = mx;
    slice_count[bh * kNormSlices + slice] = static_cast<int32_t>(cnt);
  }
}

__global__ void max_norm_kernel(const double* slice_max, const int32_t* slice_count, int64_t BH,
                                double* max_out, int32_t* real_out) {
  const int64_t bh = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (bh >= BH) return;
  double mx = 0;
  int32_t cnt = 0;
  for (int s = 0; s < kNormSlices; ++s) {
    mx = fmax(mx, slice_max[bh * kNormSlices + s]);
    cnt += slice_count[bh * kNormSlices + s];
  }
  max_out[bh] = mx;
  real_out[bh] = cnt;
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
        "[smyrf_attention] the clustered CUDA SMYRF kernels are the non-causal ones; hint: "
        "causal SMYRF runs over pair lists (smyrf_pairs_forward / smyrf_pairs_backward)");
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

  // norms and raw projections of both sides, then the per-bh largest norms the lifts need,
  // then the lifts and one sort of all the (bh, round) rows of both sides
  DeviceArray<double> qn(BH * nq), kn(BH * nk), mq(BH), mk(BH), slice_max(BH * kNormSlices);
  DeviceArray<int32_t> slice_count(BH * kNormSlices);
  const int64_t q_total = BH * R * nq;
  DeviceArray<double> keys(q_total + BH * R * nk);  // query rows, then key rows
  auto project = [&](const T* x, const uint8_t* mask, int64_t n, DeviceArray<double>& norms,
                     double* side_keys, DeviceArray<double>& max_norm, DeviceArray<int32_t>& real) {
    const int64_t rows = BH * n;
    if (rows > 0) {
      project_kernel<T>
          <<<static_cast<unsigned>((rows + kProjRows - 1) / kProjRows), kProjRows, 0, stream()>>>(
              x, dirs.data(), norms.data(), side_keys, rows, n, R, d);
      SMYRF_CUDA_CHECK_LAUNCH();
    }
    max_norm_slices_kernel<<<dim3(kNormSlices, static_cast<unsigned>(BH)), kThreads, 0, stream()>>>(
        norms.data(), mask, n, p.heads, slice_max.data(), slice_count.data());
    SMYRF_CUDA_CHECK_LAUNCH();
    max_norm_kernel<<<grid_for(BH, kThreads, 1 << 30), kThreads, 0, stream()>>>(
        slice_max.data(), slice_count.data(), BH, max_norm.data(), real.data());
    SMYRF_CUDA_CHECK_LAUNCH();
  };
  project(q, p.query_mask, nq, qn, keys.data(), mq, plan.q_real);
  project(k, p.key_mask, nk, kn, keys.data() + q_total, mk, plan.k_real);

  // queries are lifted in coordinate d + 1, keys in coordinate d (cpu::smyrf_make_plan)
  auto lift = [&](double* side_keys, const double* norms, const uint8_t* mask, int64_t n,
                  int64_t lift_col) {
    const int64_t total = BH * R * n;
    if (total == 0) return;
    lift_kernel<<<grid_for(total, kThreads, 1 << 30), kThreads, 0, stream()>>>(
        side_keys, norms, mq.data(), mk.data(), mask, dirs.data(), BH, R, n, d, p.heads, lift_col);
    SMYRF_CUDA_CHECK_LAUNCH();
  };
  lift(keys.data(), qn.data(), p.query_mask, nq, d + 1);
  lift(keys.data() + q_total, kn.data(), p.key_mask, nk, d);
  detail::stable_argsort_double_row_sets(keys.data(), BH * R, nq, BH * R, nk, plan.q_order.data(),
                                         plan.k_order.data());

  auto clusters = [&](int64_t n, int64_t chunk, const DeviceArray<int32_t>& order,
                      DeviceArray<int32_t>& cluster, const DeviceArray<int32_t>& real) {
    const int64_t total = BH * R * n;
    if (total == 0) return;
    cluster_kernel<<<grid_for(total, kThreads, 1 << 30), kThreads, 0, stream()>>>(
        order.data(), real.data(), cluster.data(), BH, R, n, chunk);
    SMYRF_CUDA_CHECK_LAUNCH();
  };
  clusters(nq, p.cq, plan.q_order, plan.q_cluster, plan.q_real);
  clusters(nk, p.ck, plan.k_order, plan.k_cluster, plan.k_real);
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
