// SMYRF clustering on CUDA: XBOX+ hashes in double precision (as the CPU plan, so both sort the
// same way), a stable segmented radix sort per (bh, round) with padded tokens keyed +inf (last),
// and the chunk id of every token. The semantics are those of cpu::smyrf_make_plan (non-causal).
// Status: ran on an NVIDIA H200 on 2026-11-28 (tests/cuda, all passing; scripts/gpu-check).
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

// Squared norm of every row of x (rows of d floats), in double.
__global__ void sq_norms_kernel(const float* x, double* out, int64_t rows, int64_t d) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= rows) return;
  double acc = 0;
  for (int64_t c = 0; c < d; ++c) {
    const double v = x[r * d + c];
    acc += v * v;
  }
  out[r] = acc;
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

// Hash of every (bh, r, token): a_r . [x, lift] with the lift in coordinate `lift_col` (d for keys,
// d + 1 for queries); padded tokens get +inf so the stable sort puts them last in index order.
__global__ void hash_kernel(const float* x, const double* norms, const double* mq, const double* mk,
                            const uint8_t* mask, const double* dirs, double* keys, int64_t BH,
                            int64_t R, int64_t n, int64_t d, int64_t heads, int64_t lift_col) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= BH * R * n) return;
  const int64_t t = e % n, r = (e / n) % R, bh = e / (n * R);
  if (mask && !mask[(bh / heads) * n + t]) {
    keys[e] = INFINITY;
    return;
  }
  const double* a = dirs + r * (d + 2);
  const float* row = x + (bh * n + t) * d;
  double h = 0;
  for (int64_t c = 0; c < d; ++c) h += a[c] * static_cast<double>(row[c]);
  const double m2 = mq[bh] + mk[bh];
  h += a[lift_col] * sqrt(fmax(0.0, m2 - norms[bh * n + t]));
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

SmyrfDevicePlan smyrf_make_plan(const cpu::SmyrfParams& p, const float* q, const float* k) {
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

  DeviceArray<double> qn(BH * nq), kn(BH * nk), mq(BH), mk(BH);
  if (nq > 0) {
    sq_norms_kernel<<<grid_for(BH * nq, kThreads, 1 << 30), kThreads, 0, stream()>>>(q, qn.data(),
                                                                                     BH * nq, d);
    SMYRF_CUDA_CHECK_LAUNCH();
  }
  if (nk > 0) {
    sq_norms_kernel<<<grid_for(BH * nk, kThreads, 1 << 30), kThreads, 0, stream()>>>(k, kn.data(),
                                                                                     BH * nk, d);
    SMYRF_CUDA_CHECK_LAUNCH();
  }
  max_norm_kernel<<<static_cast<unsigned>(BH), kThreads, 0, stream()>>>(
      qn.data(), p.query_mask, nq, p.heads, mq.data(), plan.q_real.data());
  SMYRF_CUDA_CHECK_LAUNCH();
  max_norm_kernel<<<static_cast<unsigned>(BH), kThreads, 0, stream()>>>(
      kn.data(), p.key_mask, nk, p.heads, mk.data(), plan.k_real.data());
  SMYRF_CUDA_CHECK_LAUNCH();

  auto side = [&](const float* x, const double* norms, const uint8_t* mask, int64_t n,
                  int64_t lift_col, int64_t chunk, DeviceArray<int32_t>& order,
                  DeviceArray<int32_t>& cluster, const DeviceArray<int32_t>& real) {
    const int64_t total = BH * R * n;
    if (total == 0) return;
    DeviceArray<double> keys(total);
    hash_kernel<<<grid_for(total, kThreads, 1 << 30), kThreads, 0, stream()>>>(
        x, norms, mq.data(), mk.data(), mask, dirs.data(), keys.data(), BH, R, n, d, p.heads,
        lift_col);
    SMYRF_CUDA_CHECK_LAUNCH();
    detail::stable_argsort_double_rows(keys.data(), BH * R, n, order.data());
    cluster_kernel<<<grid_for(total, kThreads, 1 << 30), kThreads, 0, stream()>>>(
        order.data(), real.data(), cluster.data(), BH, R, n, chunk);
    SMYRF_CUDA_CHECK_LAUNCH();
  };
  // queries are lifted in coordinate d + 1, keys in coordinate d (cpu::smyrf_make_plan)
  side(q, qn.data(), p.query_mask, nq, d + 1, p.cq, plan.q_order, plan.q_cluster, plan.q_real);
  side(k, kn.data(), p.key_mask, nk, d, p.ck, plan.k_order, plan.k_cluster, plan.k_real);
  return plan;
}

}  // namespace smyrf::kernels::cuda
