// `smyrf bench attention --device cuda` (see cuda_bench.h). Status: the dense and SMYRF rows ran
// on an NVIDIA H200 on 2026-11-28 (scripts/gpu-check); the pipeline-depth rows and the
// "attention-phase" rows ran there on 2026-11-29 / 30.
//
// Rows ("attention", device "cuda", timer "cuda-event"): dense and SMYRF attention on (1, BH, N, d)
// CUDA tensors, BH in {8, 32}, d in {64, 128}, N in {1024, 4096, 16384, 65536} (dense above 1.2e12
// forward FLOPs only when --shapes names it), SMYRF with (n_hashes, cluster) in {(4, 64), (4,
// 256)} and causal SMYRF (4 rounds, block and window 64; float32, N up to 4096: written
// 2026-11-30, not yet run on a GPU); "fwd" (SMYRF includes hashing and sorting) and "fwd+bwd" (then
// backward from a fixed upstream gradient), in two dtypes:
//  - float32 (level "op"): the autograd ops smyrf::attention / smyrf::smyrf_attention, which run
//    the CUDA-core kernels;
//  - bfloat16 (level "raw-op"): the raw CUDA ops of core/ops_cuda_nn.h, which run the tensor-core
//    kernels (outputs, LSE and gradients allocated inside the timed call as autograd would; the
//    autograd ops cannot take bfloat16 yet because they allocate the LSE in q's dtype).
// Each run is timed with CUDA events on the current stream after a device synchronisation
// (median and min of the runs); peak_mib is the caching allocator's peak during one extra run
// minus what was allocated before it (inputs excluded; output, LSE, plan, workspaces and gradients
// included). gflops counts 4 N^2 d (dense) or 4 N C d R (SMYRF) forward FLOPs, 3.5x that for
// fwd+bwd (our convention; FlashAttention's is 2.5x for the backward, i.e. the same 3.5x total).
//
// Selection: --shapes (comma-separated "N", "BHxN" or "BHxNxD"); SMYRF_ATTN_DTYPES
// ("float32,bfloat16", the default, or either); SMYRF_ATTN_IMPLS (e.g. "dense,smyrf-4x256").
// bfloat16 extras: SMYRF_ATTN_STAGES ("2,1": every bfloat16 case under each pipeline depth of
// the tensor-core kernels, rows of depth 1 named "<impl>-s1"; default: the library's depth only);
// SMYRF_ATTN_PHASES=1 adds, after each SMYRF case, one "attention-phase" row per phase (plan,
// forward, backward, each timed alone on preallocated buffers).
// Budget: after SMYRF_ATTN_BUDGET_S seconds (default 90 without --shapes, none with it) the
// remaining cases print a "skipped" row (gpu-check sets it so that it fits its 8 minutes).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "autograd/attention_ops.h"
#include "autograd/grad_mode.h"
#include "bench/attention_bench_util.h"
#include "bench/cuda_bench.h"
#include "core/device.h"
#include "core/error.h"
#include "core/ops_cuda_nn.h"
#include "core/random.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/smyrf.h"

#if SMYRF_WITH_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/runtime.h"
#endif

namespace smyrf::bench {
namespace {

constexpr const char* kWhat = "bench attention";

#if SMYRF_WITH_CUDA
void check(cudaError_t e, const char* call, int line) {
  if (e != cudaSuccess)
    throw Error(kWhat,
                std::string(call) + " failed at " + __FILE__ + ":" + std::to_string(line) + ": " +
                    cudaGetErrorString(e),
                "check the driver and that no other process holds the GPU");
}
#define SMYRF_BENCH_CUDA(call) check((call), #call, __LINE__)
#endif

// fn timed with CUDA events on the current stream: the device is synchronised, the start event
// recorded, fn queued, the stop event recorded and waited for. warmup untimed runs first.
Timing measure_events(const std::function<void()>& fn, int warmup, int repeats) {
#if SMYRF_WITH_CUDA
  auto stream = static_cast<cudaStream_t>(kernels::cuda::current_stream());
  cudaEvent_t start = nullptr, stop = nullptr;
  SMYRF_BENCH_CUDA(cudaEventCreate(&start));
  SMYRF_BENCH_CUDA(cudaEventCreate(&stop));
  std::vector<double> ms;
  try {
    for (int i = 0; i < warmup; ++i) fn();
    for (int i = 0; i < repeats; ++i) {
      cuda_synchronize();
      SMYRF_BENCH_CUDA(cudaEventRecord(start, stream));
      fn();
      SMYRF_BENCH_CUDA(cudaEventRecord(stop, stream));
      SMYRF_BENCH_CUDA(cudaEventSynchronize(stop));
      float t = 0;
      SMYRF_BENCH_CUDA(cudaEventElapsedTime(&t, start, stop));
      ms.push_back(t);
    }
  } catch (...) {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    throw;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  Timing t;
  t.runs = static_cast<int>(ms.size());
  t.min_ms = ms.front();
  t.median_ms =
      ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
  return t;
#else
  (void)fn, (void)warmup, (void)repeats;
  throw Error(kWhat, "CUDA event timing needs a build with CUDA",
              "configure on a machine with nvcc (cmake -DSMYRF_CUDA=ON)");
#endif
}

// MiB the caching allocator's peak rises above what was allocated before one run of fn.
double peak_added_mib(const std::function<void()>& fn) {
  cuda_synchronize();
  const size_t before = cuda_memory_stats().allocated;
  cuda_reset_peak_memory();
  fn();
  cuda_synchronize();
  const size_t peak = cuda_memory_stats().peak_allocated;
  return peak > before ? static_cast<double>(peak - before) / (1024.0 * 1024.0) : 0.0;
}

struct Shape3 {
  int64_t bh = 0, n = 0, d = 0;  // 0 = any
};

std::vector<Shape3> parse_shapes(const std::string& s) {
  std::vector<Shape3> out;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    if (tok.empty()) continue;
    std::vector<int64_t> v;
    std::stringstream ts(tok);
    std::string part;
    while (std::getline(ts, part, 'x')) {
      try {
        v.push_back(std::stoll(part));
      } catch (const std::exception&) {
        throw Error(kWhat, "bad --shapes entry '" + tok + "'",
                    "use N, BHxN or BHxNxD, e.g. 8x16384x64");
      }
    }
    if (v.size() == 1)
      out.push_back({0, v[0], 0});
    else if (v.size() == 2)
      out.push_back({v[0], v[1], 0});
    else if (v.size() == 3)
      out.push_back({v[0], v[1], v[2]});
    else
      throw Error(kWhat, "bad --shapes entry '" + tok + "'",
                  "use N, BHxN or BHxNxD, e.g. 8x16384x64");
  }
  return out;
}

struct SmyrfCase {
  const char* name;
  int64_t n_hashes, cluster;
};
constexpr SmyrfCase kSmyrf[] = {{"smyrf-4x64", 4, 64}, {"smyrf-4x256", 4, 256}};

// The SMYRF parameters of a (1, BH, N, d) self-attention case with (nh, cl).
kernels::cpu::SmyrfParams smyrf_params(const Tensor& q, int64_t nh, int64_t cl) {
  const int64_t bh = q.size(1), n = q.size(2), d = q.size(3);
  kernels::cpu::SmyrfParams p;
  p.batch_heads = bh, p.heads = bh, p.nq = n, p.nk = n, p.d = d, p.dv = d;
  p.n_hashes = nh, p.cq = cl, p.ck = cl, p.seed = 1234;
  p.scale = 1.0 / std::sqrt(static_cast<double>(d));
  return p;
}

// Where one bfloat16 SMYRF fwd+bwd spends its time: the plan (hashing and sorting), the forward
// given the plan and the backward given plan, output and LSE, each timed alone on preallocated
// buffers (no allocation inside the timed calls). One "attention-phase" row per phase.
void print_smyrf_phases(const Options& opt, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& up, int64_t nh, int64_t cl, const std::string& impl,
                        int warmup, int repeats) {
  const kernels::cpu::SmyrfParams p = smyrf_params(q, nh, cl);
  const TensorOptions bf = TensorOptions(kBFloat16).set_device(q.device());
  const TensorOptions f32 = TensorOptions(kFloat32).set_device(q.device());
  const auto plan = cuda_ops::smyrf_make_plan(p, q, k);
  Tensor out = empty(q.shape(), bf), lse = empty({1, p.batch_heads, p.nq}, f32);
  Tensor dq = empty(q.shape(), bf), dk = empty(k.shape(), bf), dv = empty(v.shape(), bf);
  cuda_ops::smyrf_forward(p, *plan, q, k, v, out, lse);
  const std::pair<const char*, std::function<void()>> phases[] = {
      {"plan", [&] { cuda_ops::smyrf_make_plan(p, q, k); }},
      {"forward", [&] { cuda_ops::smyrf_forward(p, *plan, q, k, v, out, lse); }},
      {"backward", [&] { cuda_ops::smyrf_backward(p, *plan, q, k, v, out, lse, up, dq, dk, dv); }},
  };
  for (const auto& [phase, fn] : phases) {
    const Timing t = measure_events(fn, warmup, repeats);
    Record r("attention-phase");
    r.set("impl", impl).set("phase", phase);
    r.set("batch_heads", p.batch_heads).set("n", p.nq).set("d", p.d).set("n_hashes", nh);
    r.set("cluster", cl).set("device", "cuda").set("dtype", "bfloat16").set("timer", "cuda-event");
    r.timing(t);
    r.print(opt);
  }
}

// Pipeline depths of the tensor-core kernels to run the bfloat16 cases under: SMYRF_ATTN_STAGES
// ("2,1", "1", ...; default: the library's current depth only). Rows of depths other than 2 carry
// an impl suffix ("-s1") so that bench/compare keeps them apart.
std::vector<int> bf16_stages() {
  std::vector<int> out;
  const char* e = std::getenv("SMYRF_ATTN_STAGES");
  std::stringstream ss(e ? e : "");
  std::string tok;
  while (std::getline(ss, tok, ','))
    if (!tok.empty()) out.push_back(std::atoi(tok.c_str()));
  if (out.empty()) out.push_back(cuda_ops::attention_pipeline_stages());
  return out;
}

// One bfloat16 case through the raw CUDA ops: dense when nh == 0, else SMYRF (nh, cl).
// Returns the call to time: forward, or forward then backward; every output is allocated inside.
std::function<void()> bf16_call(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& up,
                                int64_t nh, int64_t cl, bool backward) {
  const int64_t bh = q.size(1), n = q.size(2), d = q.size(3);
  const TensorOptions bf = TensorOptions(kBFloat16).set_device(q.device());
  const TensorOptions f32 = TensorOptions(kFloat32).set_device(q.device());
  if (nh == 0) {
    kernels::cpu::AttentionParams p;
    p.batch_heads = bh, p.heads = bh, p.nq = n, p.nk = n, p.d = d, p.dv = d;
    p.scale = 1.0 / std::sqrt(static_cast<double>(d));
    return [=] {
      Tensor out = empty(q.shape(), bf), lse = empty({1, bh, n}, f32);
      cuda_ops::attention_forward(p, q, k, v, Tensor(), out, lse);
      if (!backward) return;
      Tensor dq = empty(q.shape(), bf), dk = empty(k.shape(), bf), dv = empty(v.shape(), bf);
      cuda_ops::attention_backward(p, q, k, v, Tensor(), out, lse, up, dq, dk, dv);
    };
  }
  const kernels::cpu::SmyrfParams p = smyrf_params(q, nh, cl);
  return [=] {
    const auto plan = cuda_ops::smyrf_make_plan(p, q, k);
    Tensor out = empty(q.shape(), bf), lse = empty({1, bh, n}, f32);
    cuda_ops::smyrf_forward(p, *plan, q, k, v, out, lse);
    if (!backward) return;
    Tensor dq = empty(q.shape(), bf), dk = empty(k.shape(), bf), dv = empty(v.shape(), bf);
    cuda_ops::smyrf_backward(p, *plan, q, k, v, out, lse, up, dq, dk, dv);
  };
}

}  // namespace

void run_cuda_attention(const Options& opt) {
  require_cuda_device(kWhat);
  const std::vector<Shape3> wanted = parse_shapes(opt.shapes);
  const bool filtered = !wanted.empty();
  auto named = [&](int64_t bh, int64_t n, int64_t d) {
    for (const Shape3& s : wanted)
      if (s.n == n && (s.bh == 0 || s.bh == bh) && (s.d == 0 || s.d == d)) return true;
    return false;
  };
  std::vector<int64_t> lengths = {1024, 4096, 16384, 65536};
  if (filtered) {
    lengths.clear();
    for (const Shape3& s : wanted)
      if (std::find(lengths.begin(), lengths.end(), s.n) == lengths.end()) lengths.push_back(s.n);
  }
  const int warmup = std::max(1, opt.warmup);
  const int repeats = opt.repeats > 0 ? opt.repeats : 5;
  const Device dev = Device::cuda(0);
  const std::vector<int> stage_list = bf16_stages();
  const int stages_before = cuda_ops::attention_pipeline_stages();
  const char* phases_env = std::getenv("SMYRF_ATTN_PHASES");
  const bool phases = phases_env && *phases_env && std::string(phases_env) != "0";
  const auto t0 = std::chrono::steady_clock::now();
  const char* budget_env = std::getenv("SMYRF_ATTN_BUDGET_S");
  const double budget_s = budget_env && *budget_env ? std::atof(budget_env) : filtered ? 1e30 : 90;
  const std::string budget_why =
      "time budget (" + std::to_string(budget_s < 1e9 ? static_cast<long>(budget_s) : -1L) +
      " s) spent; pass --shapes or raise SMYRF_ATTN_BUDGET_S";
  auto out_of_time = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > budget_s;
  };
  auto skipped = [&](const char* impl, const char* dtype, int64_t bh, int64_t n, int64_t d,
                     const std::string& why) {
    Record r("attention");
    r.set("impl", impl).set("batch_heads", bh).set("n", n).set("d", d).set("device", "cuda");
    r.set("dtype", dtype).set("skipped", why).print(opt);
  };
  for (int64_t bh : {8, 32})
    for (int64_t d : {64, 128})
      for (int64_t n : lengths) {
        if (filtered && !named(bh, n, d)) continue;
        for (const char* dtype : {"bfloat16", "float32"}) {
          if (!env_lists("SMYRF_ATTN_DTYPES", dtype)) continue;
          const bool bf = std::string(dtype) == "bfloat16";
          Generator gen(1);
          auto input = [&](bool grad) {
            Tensor t = randn({1, bh, n, d}, kFloat32, &gen).to(dev);
            if (bf) return t.to(kBFloat16);
            if (grad) t.requires_grad_();
            return t;
          };
          const Tensor q = input(true), k = input(true), v = input(true), up = input(false);
          auto measure_op = [&](const char* impl_base, int64_t nh, int64_t cl, double fwd_flops,
                                const std::function<Tensor()>& op) {
            for (int stages : bf ? stage_list : std::vector<int>{0}) {
              const std::string impl =
                  std::string(impl_base) + (bf && stages != 2 ? "-s" + std::to_string(stages) : "");
              if (bf) cuda_ops::set_attention_pipeline_stages(stages);
              for (bool backward : {false, true}) {
                if (out_of_time()) {
                  skipped(impl.c_str(), dtype, bh, n, d, budget_why);
                  continue;
                }
                const std::function<void()> fn =
                    bf ? bf16_call(q, k, v, up, nh, cl, backward)
                       : std::function<void()>([&, backward] {
                           run_attention_pass(op, backward, up, {&q, &k, &v});
                         });
                const Timing t = measure_events(fn, warmup, repeats);
                const double mib = peak_added_mib(fn);
                const double flops = backward ? 3.5 * fwd_flops : fwd_flops;
                Record r("attention");
                r.set("impl", impl).set("pass", backward ? "fwd+bwd" : "fwd");
                r.set("batch_heads", bh).set("n", n).set("d", d).set("n_hashes", nh);
                r.set("cluster", cl).set("device", "cuda").set("dtype", dtype);
                r.set("level", bf ? "raw-op" : "op").set("timer", "cuda-event");
                if (bf) r.set("stages", stages);
                r.timing(t);
                r.set("gflops", flops / (t.median_ms * 1e6));
                r.set("peak_mib", mib);
                r.print(opt);
              }
              if (bf && nh > 0 && phases && !out_of_time())
                print_smyrf_phases(opt, q, k, v, up, nh, cl, impl, warmup, repeats);
            }
            if (bf) cuda_ops::set_attention_pipeline_stages(stages_before);
          };
          // dense: 4 N^2 d FLOPs forward; the backward about 2.5 times that again
          const double dense_flops = 4.0 * bh * n * n * d;
          if (!env_lists("SMYRF_ATTN_IMPLS", "dense")) {
          } else if (filtered || dense_flops <= 1.2e12) {
            measure_op("dense", 0, 0, dense_flops, [&] { return attention(q, k, v); });
          } else {
            skipped("dense", dtype, bh, n, d, "above 1.2e12 forward FLOPs; pass --shapes");
          }
          for (const SmyrfCase& c : kSmyrf) {
            if (c.cluster > n || !env_lists("SMYRF_ATTN_IMPLS", c.name)) continue;
            SmyrfOptions o;
            o.n_hashes = c.n_hashes;
            o.q_cluster_size = o.k_cluster_size = c.cluster;
            o.seed = 1234;
            measure_op(c.name, c.n_hashes, c.cluster, 4.0 * bh * n * c.cluster * d * c.n_hashes,
                       [&] { return smyrf_attention(q, k, v, o); });
          }
          // Causal SMYRF (float32 only; its plan is built on the host from copies of q and k, so
          // the rows stop at N 4096): block 64, window 64, 4 rounds: about 4 * 64 + 32 pairs a
          // query
          if (!bf && n <= 4096 && env_lists("SMYRF_ATTN_IMPLS", "smyrf-causal-4x64")) {
            SmyrfOptions o;
            o.causal = true;
            o.n_hashes = 4;
            o.q_cluster_size = o.k_cluster_size = 64;
            o.seed = 1234;
            measure_op("smyrf-causal-4x64", 4, 64, 4.0 * bh * n * (4 * 64 + 32) * d,
                       [&] { return smyrf_attention(q, k, v, o); });
          }
        }
      }
}

}  // namespace smyrf::bench
