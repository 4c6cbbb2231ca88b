// Dense and SMYRF attention on CUDA: host entry points that launch the tile kernels of
// attention_tiles.cuh (see kernels/cuda/attention.h). The SMYRF plan is built in smyrf_plan.cu.
// Status: compiled only; not yet run on a GPU.
#include <sstream>
#include <stdexcept>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_tiles.cuh"
#include "kernels/cuda/runtime.h"

namespace smyrf::kernels::cuda {
using detail::grid_for;
using detail::stream;
namespace {

void check_heads(const char* op, int64_t d, int64_t dv) {
  if (d > kAttentionMaxHead || dv > kAttentionMaxHead) {
    std::ostringstream os;
    os << "[" << op << "] head sizes d=" << d << " dv=" << dv << " exceed " << kAttentionMaxHead
       << " on CUDA; hint: split the heads further or run on the CPU";
    throw std::invalid_argument(os.str());
  }
}

void set_dropout(attn::Problem& P, double p, uint64_t seed) {
  P.dropout = p > 0.0;
  P.drop_threshold = cpu::attention_dropout_threshold(p);
  P.drop_scale = static_cast<float>(1.0 / (1.0 - p));
  P.drop_seed = seed;
}

// The fields both parameter structs share (sizes, scale, dropout).
template <typename Params>
attn::Problem common_problem(const Params& p) {
  attn::Problem P;
  P.nq = p.nq;
  P.nk = p.nk;
  P.d = static_cast<int>(p.d);
  P.dv = static_cast<int>(p.dv);
  P.heads = p.heads;
  P.scale = static_cast<float>(p.scale);
  set_dropout(P, p.dropout_p, p.dropout_seed);
  return P;
}

attn::Problem dense_problem(const cpu::AttentionParams& p, const float* bias) {
  cpu::attention_check(p);
  check_heads("attention", p.d, p.dv);
  attn::Problem P = common_problem(p);
  P.causal = p.causal;
  P.key_mask = p.key_mask;
  P.query_mask = p.query_mask;
  P.bias = bias;
  P.bias_bh_stride = p.bias_bh_stride;
  return P;
}

attn::Problem smyrf_problem(const cpu::SmyrfParams& p, const SmyrfDevicePlan& plan) {
  cpu::smyrf_check(p);
  check_heads("smyrf_attention", p.d, p.dv);
  smyrf_require_non_causal(p);
  if (plan.batch_heads != p.batch_heads || plan.rounds != p.n_hashes || plan.nq != p.nq ||
      plan.nk != p.nk)
    throw std::invalid_argument(
        "[smyrf_attention] the device plan does not match the parameters; hint: build it with "
        "smyrf_make_plan from the same SmyrfParams");
  attn::Problem P = common_problem(p);
  P.q_order = plan.q_order.data();
  P.k_order = plan.k_order.data();
  P.q_cluster = plan.q_cluster.data();
  P.k_cluster = plan.k_cluster.data();
  P.q_real = plan.q_real.data();
  P.k_real = plan.k_real.data();
  P.rounds = plan.rounds;
  P.cq = p.cq;
  P.ck = p.ck;
  P.set_semantics = p.duplicates == cpu::SmyrfDuplicates::Set;
  return P;
}

unsigned tiles(int64_t n) { return static_cast<unsigned>((n + attn::kRows - 1) / attn::kRows); }

// D_i = dout_i . out_i for all BH * Nq rows.
DeviceArray<float> row_dots(const float* dout, const float* out, int64_t rows, int64_t dv) {
  DeviceArray<float> D(rows);
  if (rows > 0) {
    attn::row_dot_kernel<<<grid_for(rows, 256, 1 << 30), 256, 0, stream()>>>(
        dout, out, D.data(), rows, static_cast<int>(dv));
    SMYRF_CUDA_CHECK_LAUNCH();
  }
  return D;
}

}  // namespace

void attention_forward(const cpu::AttentionParams& p, const float* q, const float* k,
                       const float* v, const float* bias, float* out, float* lse) {
  const attn::Problem P = dense_problem(p, bias);
  if (p.batch_heads == 0 || p.nq == 0) return;
  const dim3 grid(tiles(p.nq), 1, static_cast<unsigned>(p.batch_heads));
  attn::forward_kernel<<<grid, attn::kRows, 0, stream()>>>(P, q, k, v, out, lse);
  SMYRF_CUDA_CHECK_LAUNCH();
}

void attention_backward(const cpu::AttentionParams& p, const float* q, const float* k,
                        const float* v, const float* bias, const float* out, const float* lse,
                        const float* dout, float* dq, float* dk, float* dv) {
  const attn::Problem P = dense_problem(p, bias);
  if (p.batch_heads == 0) return;
  const DeviceArray<float> D = row_dots(dout, out, p.batch_heads * p.nq, p.dv);
  if (p.nq > 0) {
    const dim3 grid(tiles(p.nq), 1, static_cast<unsigned>(p.batch_heads));
    attn::dq_kernel<<<grid, attn::kRows, 0, stream()>>>(P, q, k, v, lse, D.data(), dout, dq, false);
    SMYRF_CUDA_CHECK_LAUNCH();
  }
  if (p.nk > 0) {
    const dim3 grid(tiles(p.nk), 1, static_cast<unsigned>(p.batch_heads));
    attn::dkv_kernel<<<grid, attn::kRows, 0, stream()>>>(P, q, k, v, lse, D.data(), dout, dk, dv,
                                                         false);
    SMYRF_CUDA_CHECK_LAUNCH();
  }
}

void smyrf_forward(const cpu::SmyrfParams& p, const SmyrfDevicePlan& plan, const float* q,
                   const float* k, const float* v, float* out, float* lse) {
  attn::Problem P = smyrf_problem(p, plan);
  const int64_t rows = p.batch_heads * p.nq;
  if (rows == 0) return;
  // the running merge starts empty: out 0, lse -inf (padded queries keep these)
  memset_zero_async(out, static_cast<size_t>(rows * p.dv) * sizeof(float));
  attn::fill_kernel<<<grid_for(rows, 256, 1 << 30), 256, 0, stream()>>>(lse, rows, -INFINITY);
  SMYRF_CUDA_CHECK_LAUNCH();
  if (plan.n_chunks == 0) return;
  const dim3 grid(tiles(p.cq), static_cast<unsigned>(plan.n_chunks),
                  static_cast<unsigned>(p.batch_heads));
  for (int64_t r = 0; r < plan.rounds; ++r) {  // rounds in order: each merges into the last
    P.round = r;
    attn::forward_kernel<<<grid, attn::kRows, 0, stream()>>>(P, q, k, v, out, lse);
    SMYRF_CUDA_CHECK_LAUNCH();
  }
}

void smyrf_backward(const cpu::SmyrfParams& p, const SmyrfDevicePlan& plan, const float* q,
                    const float* k, const float* v, const float* out, const float* lse,
                    const float* dout, float* dq, float* dk, float* dv) {
  attn::Problem P = smyrf_problem(p, plan);
  if (p.batch_heads == 0) return;
  memset_zero_async(dq, static_cast<size_t>(p.batch_heads * p.nq * p.d) * sizeof(float));
  memset_zero_async(dk, static_cast<size_t>(p.batch_heads * p.nk * p.d) * sizeof(float));
  memset_zero_async(dv, static_cast<size_t>(p.batch_heads * p.nk * p.dv) * sizeof(float));
  if (plan.n_chunks == 0) return;
  const DeviceArray<float> D = row_dots(dout, out, p.batch_heads * p.nq, p.dv);
  const dim3 qgrid(tiles(p.cq), static_cast<unsigned>(plan.n_chunks),
                   static_cast<unsigned>(p.batch_heads));
  const dim3 kgrid(tiles(p.ck), static_cast<unsigned>(plan.n_chunks),
                   static_cast<unsigned>(p.batch_heads));
  for (int64_t r = 0; r < plan.rounds; ++r) {
    P.round = r;
    attn::dq_kernel<<<qgrid, attn::kRows, 0, stream()>>>(P, q, k, v, lse, D.data(), dout, dq, true);
    SMYRF_CUDA_CHECK_LAUNCH();
    attn::dkv_kernel<<<kgrid, attn::kRows, 0, stream()>>>(P, q, k, v, lse, D.data(), dout, dk, dv,
                                                          true);
    SMYRF_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace smyrf::kernels::cuda
