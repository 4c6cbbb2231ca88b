// Dense and SMYRF attention on CUDA: host entry points that launch the tile kernels of
// attention_tiles.cuh (see kernels/cuda/attention.h). The SMYRF plan is built in smyrf_plan.cu.
// The float32 entry points launch the CUDA-core kernels of attention_tiles.cuh, the bfloat16
// ones the tensor-core kernels of attention_mma.cuh.
// Status: ran on an NVIDIA H200 on 2026-11-29 (tests/cuda, all passing; scripts/gpu-check),
// every runtime-dims bfloat16 instantiation (head width 64 / 128, pipeline depth 1 / 2)
// included. The exact instantiations (pick_width) and the vectorised D and bfloat16 rounding
// launches, added after that run, ran on an NVIDIA H200 on 2026-11-30 (tests/cuda 42/42 passing;
// scripts/gpu-check). The stored-dS dq path of smyrf_backward_bf16 (set_smyrf_stored_ds: the dk/dv
// kernel's ds_t output, gather_sorted_rows_kernel, the cuBLAS bfloat16 batched product,
// scatter_add_sorted_rows_kernel) was written on 2026-11-30 (session 24) without a GPU:
// compiled for sm_90, not yet run; off by default.
#include <atomic>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_mma.cuh"
#include "kernels/cuda/attention_tiles.cuh"
#include "kernels/cuda/blas.h"
#include "kernels/cuda/env_setting.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/smyrf_stored_ds.h"

namespace smyrf::kernels::cuda {
using detail::grid_for;
using detail::stream;
void check_attention_heads(const char* op, int64_t d, int64_t dv) {
  if (d > kAttentionMaxHead || dv > kAttentionMaxHead) {
    std::ostringstream os;
    os << "[" << op << "] head sizes d=" << d << " dv=" << dv << " exceed " << kAttentionMaxHead
       << " on CUDA; hint: split the heads further or run on the CPU";
    throw std::invalid_argument(os.str());
  }
}

namespace {

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
  check_attention_heads("attention", p.d, p.dv);
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
  check_attention_heads("smyrf_attention", p.d, p.dv);
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

// --- bfloat16 helpers ---

bool aligned16(const void* p) { return p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 == 0; }

attn::MmaDims mma_dims(int64_t d, int64_t dv, bool qk_aligned, bool v_aligned) {
  attn::MmaDims L;
  L.d = static_cast<int>(d);
  L.dv = static_cast<int>(dv);
  L.dpad = (L.d + 15) / 16 * 16;
  L.dvpad = (L.dv + 15) / 16 * 16;
  L.sd = L.dpad + 8;  // skew: conflict-free fragment and ldmatrix reads
  L.sv = L.dvpad + 8;
  L.vec_qk = L.d % 8 == 0 && qk_aligned;
  L.vec_v = L.dv % 8 == 0 && v_aligned;
  return L;
}

enum class MmaKernel { Forward, Dq, Dkv };

// Dynamic shared memory of each kernel (bfloat16 tiles; see attention_mma.cuh for the layout):
// the owned rows once, the other side's tiles once per pipeline stage.
size_t mma_smem(MmaKernel kind, const attn::MmaDims& L, int stages) {
  size_t elems = 0;
  switch (kind) {
    case MmaKernel::Forward:
      elems = attn::kMmaRows * L.sd + stages * attn::kMmaKeys * (L.sd + L.sv);
      break;
    case MmaKernel::Dq:
      elems = attn::kMmaRows * (L.sd + L.sv) + stages * attn::kMmaKeys * (L.sd + L.sv);
      break;
    case MmaKernel::Dkv:
      elems = attn::kMmaRows * (L.sd + L.sv) + stages * attn::kMmaQueries * (L.sd + L.sv);
      break;
  }
  return elems * sizeof(attn::bf16_t);
}

// Above 48 KiB a kernel must opt in to its dynamic shared memory (up to 227 KiB on sm_90).
template <typename Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
  SMYRF_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
}

// The instantiation of a kernel template for these head sizes and the pipeline: MaxHead 64 when
// both padded heads fit in 64 columns (half the accumulator registers), else 128; the exact
// (compile-time dims) form when both heads are exactly that width with 16-byte rows.
template <template <int, int, bool> class Pick, int H>
auto pick_width(const attn::MmaDims& L, int stages) {
  const bool exact = L.d == H && L.dv == H && L.vec_qk && L.vec_v;
  if (exact) return stages == 1 ? Pick<H, 1, true>::kernel() : Pick<H, 2, true>::kernel();
  return stages == 1 ? Pick<H, 1, false>::kernel() : Pick<H, 2, false>::kernel();
}
template <template <int, int, bool> class Pick>
auto pick_kernel(const attn::MmaDims& L, int stages) {
  const bool narrow = L.dpad <= 64 && L.dvpad <= 64;
  return narrow ? pick_width<Pick, 64>(L, stages) : pick_width<Pick, 128>(L, stages);
}
template <int H, int S, bool E>
struct ForwardKernel {
  static auto kernel() { return &attn::mma_forward_kernel<H, S, E>; }
};
template <int H, int S, bool E>
struct DqKernel {
  static auto kernel() { return &attn::mma_dq_kernel<H, S, E>; }
};
template <int H, int S, bool E>
struct DkvKernel {
  static auto kernel() { return &attn::mma_dkv_kernel<H, S, E>; }
};

// The pipeline depth of the bfloat16 kernels: set_attention_pipeline_stages, else
// SMYRF_CUDA_ATTN_STAGES read once, else 2.
std::atomic<int> g_stages{0};

int stages_from_env() {
  const char* e = std::getenv("SMYRF_CUDA_ATTN_STAGES");
  if (e == nullptr || *e == '\0') return 2;
  const std::string v(e);
  if (v == "1" || v == "2") return v[0] - '0';
  throw std::invalid_argument("[attention] SMYRF_CUDA_ATTN_STAGES='" + v +
                              "' is not a pipeline depth; hint: use 1 or 2 (or unset it)");
}

unsigned mma_tiles(int64_t n) {
  return static_cast<unsigned>((n + attn::kMmaRows - 1) / attn::kMmaRows);
}

void to_bf16(const float* x, uint16_t* y, int64_t n) {
  if (n <= 0) return;
  const bool by4 = n % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(y) % 8 == 0;
  if (by4)
    attn::f32_to_bf16_x4_kernel<<<grid_for(n / 4, 256, 1 << 30), 256, 0, stream()>>>(
        reinterpret_cast<const float4*>(x), reinterpret_cast<uint2*>(y), n / 4);
  else
    attn::f32_to_bf16_kernel<<<grid_for(n, 256, 1 << 30), 256, 0, stream()>>>(x, y, n);
  SMYRF_CUDA_CHECK_LAUNCH();
}

DeviceArray<float> row_dots_bf16(const uint16_t* dout, const uint16_t* out, int64_t rows,
                                 int64_t dv) {
  DeviceArray<float> D(rows);
  if (rows > 0) {
    if (dv % 8 == 0 && aligned16(dout) && aligned16(out))
      attn::row_dot_bf16_vec_kernel<<<grid_for(rows * attn::kDotLanes, 256, 1 << 30), 256, 0,
                                      stream()>>>(dout, out, D.data(), rows, static_cast<int>(dv));
    else
      attn::row_dot_bf16_kernel<<<grid_for(rows, 256, 1 << 30), 256, 0, stream()>>>(
          dout, out, D.data(), rows, static_cast<int>(dv));
    SMYRF_CUDA_CHECK_LAUNCH();
  }
  return D;
}

DeviceArray<float> zeroed(int64_t n) {
  DeviceArray<float> a(n);
  if (n > 0) memset_zero_async(a.data(), static_cast<size_t>(n) * sizeof(float));
  return a;
}

// --- the stored-dS dq path of smyrf_backward_bf16 (see attention.h, set_smyrf_stored_ds) ---

std::atomic<int> g_stored_ds{-1};  // -1: not yet read from the environment

bool stored_ds_from_env() {
  const char* e = std::getenv("SMYRF_CUDA_SMYRF_DQ");
  if (e == nullptr || *e == '\0') return false;
  const std::string v(e);
  if (v == "stored") return true;
  if (v == "recompute") return false;
  throw std::invalid_argument("[smyrf_attention] SMYRF_CUDA_SMYRF_DQ='" + v +
                              "' is not a dq mode; hint: use stored or recompute (or unset it)");
}

// rows[e] = x at its token (0 for padding slots): a round's rows of x in cluster order.
__global__ void gather_sorted_rows_kernel(SortedRows s, const uint16_t* __restrict__ x,
                                          uint16_t* __restrict__ rows, int64_t total) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= total) return;
  const int64_t at = s.token_element(e);
  rows[e] = at >= 0 ? x[at] : uint16_t{0};
}

// y at its token += rows[e] (padding slots skipped): each token once a round, so no races.
__global__ void scatter_add_sorted_rows_kernel(SortedRows s, const float* __restrict__ rows,
                                               float* __restrict__ y, int64_t total) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= total) return;
  const int64_t at = s.token_element(e);
  if (at >= 0) y[at] += rows[e];
}

}  // namespace

bool set_smyrf_stored_ds(bool stored) {
  const bool prev = smyrf_stored_ds();
  g_stored_ds.store(stored ? 1 : 0);
  return prev;
}

bool smyrf_stored_ds() {
  return detail::setting_or_env(g_stored_ds, -1, [] { return stored_ds_from_env() ? 1 : 0; }) == 1;
}

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

// --- bfloat16: tensor-core kernels ---

void set_attention_pipeline_stages(int stages) {
  if (stages != 1 && stages != 2)
    throw std::invalid_argument("[attention] pipeline stages " + std::to_string(stages) +
                                " unsupported; hint: 1 (one synchronously loaded buffer) or 2 "
                                "(cp.async double buffering)");
  g_stages.store(stages);
}

int attention_pipeline_stages() { return detail::setting_or_env(g_stages, 0, stages_from_env); }

void attention_forward_bf16(const cpu::AttentionParams& p, const uint16_t* q, const uint16_t* k,
                            const uint16_t* v, const float* bias, uint16_t* out, float* lse) {
  const attn::Problem P = dense_problem(p, bias);
  if (p.batch_heads == 0 || p.nq == 0) return;
  const attn::MmaDims L = mma_dims(p.d, p.dv, aligned16(q) && aligned16(k), aligned16(v));
  const int stages = attention_pipeline_stages();
  const size_t smem = mma_smem(MmaKernel::Forward, L, stages);
  const auto kernel = pick_kernel<ForwardKernel>(L, stages);
  allow_smem(kernel, smem);
  const dim3 grid(mma_tiles(p.nq), 1, static_cast<unsigned>(p.batch_heads));
  kernel<<<grid, attn::kMmaThreads, smem, stream()>>>(P, L, q, k, v, out, nullptr, lse);
  SMYRF_CUDA_CHECK_LAUNCH();
}

void attention_backward_bf16(const cpu::AttentionParams& p, const uint16_t* q, const uint16_t* k,
                             const uint16_t* v, const float* bias, const uint16_t* out,
                             const float* lse, const uint16_t* dout, uint16_t* dq, uint16_t* dk,
                             uint16_t* dv) {
  const attn::Problem P = dense_problem(p, bias);
  if (p.batch_heads == 0) return;
  const attn::MmaDims L =
      mma_dims(p.d, p.dv, aligned16(q) && aligned16(k), aligned16(v) && aligned16(dout));
  const DeviceArray<float> D = row_dots_bf16(dout, out, p.batch_heads * p.nq, p.dv);
  const int stages = attention_pipeline_stages();
  if (p.nq > 0) {
    const size_t smem = mma_smem(MmaKernel::Dq, L, stages);
    const auto kernel = pick_kernel<DqKernel>(L, stages);
    allow_smem(kernel, smem);
    const dim3 grid(mma_tiles(p.nq), 1, static_cast<unsigned>(p.batch_heads));
    kernel<<<grid, attn::kMmaThreads, smem, stream()>>>(P, L, q, k, v, lse, D.data(), dout, dq,
                                                        nullptr);
    SMYRF_CUDA_CHECK_LAUNCH();
  }
  if (p.nk > 0) {
    const size_t smem = mma_smem(MmaKernel::Dkv, L, stages);
    const auto kernel = pick_kernel<DkvKernel>(L, stages);
    allow_smem(kernel, smem);
    const dim3 grid(mma_tiles(p.nk), 1, static_cast<unsigned>(p.batch_heads));
    kernel<<<grid, attn::kMmaThreads, smem, stream()>>>(P, L, q, k, v, lse, D.data(), dout, dk, dv,
                                                        nullptr, nullptr, nullptr);
    SMYRF_CUDA_CHECK_LAUNCH();
  }
}

void smyrf_forward_bf16(const cpu::SmyrfParams& p, const SmyrfDevicePlan& plan, const uint16_t* q,
                        const uint16_t* k, const uint16_t* v, uint16_t* out, float* lse) {
  attn::Problem P = smyrf_problem(p, plan);
  const int64_t rows = p.batch_heads * p.nq;
  if (rows == 0) return;
  // the running merge in float32 (out 0, lse -inf: padded queries keep these), rounded once
  DeviceArray<float> out32 = zeroed(rows * p.dv);
  attn::fill_kernel<<<grid_for(rows, 256, 1 << 30), 256, 0, stream()>>>(lse, rows, -INFINITY);
  SMYRF_CUDA_CHECK_LAUNCH();
  if (plan.n_chunks > 0) {
    const attn::MmaDims L = mma_dims(p.d, p.dv, aligned16(q) && aligned16(k), aligned16(v));
    const int stages = attention_pipeline_stages();
    const size_t smem = mma_smem(MmaKernel::Forward, L, stages);
    const auto kernel = pick_kernel<ForwardKernel>(L, stages);
    allow_smem(kernel, smem);
    const dim3 grid(mma_tiles(p.cq), static_cast<unsigned>(plan.n_chunks),
                    static_cast<unsigned>(p.batch_heads));
    for (int64_t r = 0; r < plan.rounds; ++r) {  // rounds in order: each merges into the last
      P.round = r;
      kernel<<<grid, attn::kMmaThreads, smem, stream()>>>(P, L, q, k, v, nullptr, out32.data(),
                                                          lse);
      SMYRF_CUDA_CHECK_LAUNCH();
    }
  }
  to_bf16(out32.data(), out, rows * p.dv);
}

void smyrf_backward_bf16(const cpu::SmyrfParams& p, const SmyrfDevicePlan& plan, const uint16_t* q,
                         const uint16_t* k, const uint16_t* v, const uint16_t* out,
                         const float* lse, const uint16_t* dout, uint16_t* dq, uint16_t* dk,
                         uint16_t* dv) {
  attn::Problem P = smyrf_problem(p, plan);
  if (p.batch_heads == 0) return;
  const int64_t nq_d = p.batch_heads * p.nq * p.d, nk_d = p.batch_heads * p.nk * p.d,
                nk_dv = p.batch_heads * p.nk * p.dv;
  // per-round sums in float32 workspaces, in round order (deterministic), rounded once
  DeviceArray<float> dq32 = zeroed(nq_d), dk32 = zeroed(nk_d), dv32 = zeroed(nk_dv);
  if (plan.n_chunks > 0) {
    const attn::MmaDims L =
        mma_dims(p.d, p.dv, aligned16(q) && aligned16(k), aligned16(v) && aligned16(dout));
    const DeviceArray<float> D = row_dots_bf16(dout, out, p.batch_heads * p.nq, p.dv);
    const int stages = attention_pipeline_stages();
    const size_t smem_q = mma_smem(MmaKernel::Dq, L, stages),
                 smem_k = mma_smem(MmaKernel::Dkv, L, stages);
    const auto dq_kernel = pick_kernel<DqKernel>(L, stages);
    const auto dkv_kernel = pick_kernel<DkvKernel>(L, stages);
    allow_smem(dq_kernel, smem_q);
    allow_smem(dkv_kernel, smem_k);
    const dim3 qgrid(mma_tiles(p.cq), static_cast<unsigned>(plan.n_chunks),
                     static_cast<unsigned>(p.batch_heads));
    const dim3 kgrid(mma_tiles(p.ck), static_cast<unsigned>(plan.n_chunks),
                     static_cast<unsigned>(p.batch_heads));
    // The stored-dS path's workspaces: each round's dS^T per cluster (ck x cq, zeroed once: the
    // pairs past the lists are never written and must read as 0), K in cluster order, and
    // dQ in cluster order (float32)
    const bool stored = smyrf_stored_ds();
    const int64_t clusters = p.batch_heads * plan.n_chunks;
    DeviceArray<uint16_t> ds_t, k_sorted;
    DeviceArray<float> dq_sorted;
    if (stored) {
      ds_t = DeviceArray<uint16_t>(clusters * p.ck * p.cq);
      k_sorted = DeviceArray<uint16_t>(clusters * p.ck * p.d);
      dq_sorted = DeviceArray<float>(clusters * p.cq * p.d);
      memset_zero_async(ds_t.data(), static_cast<size_t>(ds_t.size()) * sizeof(uint16_t));
    }
    for (int64_t r = 0; r < plan.rounds; ++r) {
      P.round = r;
      if (!stored) {
        dq_kernel<<<qgrid, attn::kMmaThreads, smem_q, stream()>>>(P, L, q, k, v, lse, D.data(),
                                                                  dout, nullptr, dq32.data());
        SMYRF_CUDA_CHECK_LAUNCH();
      }
      dkv_kernel<<<kgrid, attn::kMmaThreads, smem_k, stream()>>>(
          P, L, q, k, v, lse, D.data(), dout, nullptr, nullptr, dk32.data(), dv32.data(),
          stored ? ds_t.data() : nullptr);
      SMYRF_CUDA_CHECK_LAUNCH();
      if (!stored) continue;
      const int64_t k_total = clusters * p.ck * p.d, q_total = clusters * p.cq * p.d;
      const SortedRows ks{plan.k_order.data(),  plan.k_real.data(),   p.nk, plan.rounds, r,
                          plan.n_chunks * p.ck, static_cast<int>(p.d)};
      gather_sorted_rows_kernel<<<grid_for(k_total, 256, 1 << 30), 256, 0, stream()>>>(
          ks, k, k_sorted.data(), k_total);
      SMYRF_CUDA_CHECK_LAUNCH();
      // per cluster: dQ (cq x d) = scale (dS^T)^T (cq x ck) K (ck x d)
      const StoredDsProduct g = stored_ds_product(clusters, p.cq, p.ck, p.d, p.scale);
      bf16_gemm_batched_f32(g.trans_a, g.trans_b, g.batch, g.M, g.N, g.K, g.alpha, ds_t.data(),
                            g.lda, g.stride_a, k_sorted.data(), g.ldb, g.stride_b, 0.0f,
                            dq_sorted.data(), g.ldc, g.stride_c);
      const SortedRows qs{plan.q_order.data(),  plan.q_real.data(),   p.nq, plan.rounds, r,
                          plan.n_chunks * p.cq, static_cast<int>(p.d)};
      scatter_add_sorted_rows_kernel<<<grid_for(q_total, 256, 1 << 30), 256, 0, stream()>>>(
          qs, dq_sorted.data(), dq32.data(), q_total);
      SMYRF_CUDA_CHECK_LAUNCH();
    }
  }
  to_bf16(dq32.data(), dq, nq_d);
  to_bf16(dk32.data(), dk, nk_d);
  to_bf16(dv32.data(), dv, nk_dv);
}

}  // namespace smyrf::kernels::cuda
