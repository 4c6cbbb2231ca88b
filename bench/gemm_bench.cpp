// `smyrf bench gemm` and `smyrf bench gemm-batched`: throughput of kernels/cpu sgemm. The cases
// and the --shapes filter (any "MxNxK:TRANS" runs as given): bench/gemm_cases.h. bench/compare
// runs one case at a time this way, interleaved with the OpenBLAS and PyTorch baselines
// (bench/compare gemm-transposes uses it for TT and the transposes at 512 and 2048).
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bench/cuda_bench.h"
#include "bench/gemm_cases.h"
#include "bench/registry.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm.h"

namespace smyrf::bench {
namespace {

std::vector<float> random_buffer(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

void run_case(const Options& opt, const char* workload, const GemmCase& c) {
  if (opt.device == "cuda") {  // cuBLAS through core tensors on cuda:0
    run_cuda_gemm(opt, workload, c.batch, c.m, c.n, c.k, c.trans, shape_string(c).c_str());
    return;
  }
  using kernels::cpu::sgemm;
  using kernels::cpu::sgemm_batched;
  const bool ta = c.trans[0] == 'T', tb = c.trans[1] == 'T';
  const int64_t sa = c.m * c.k, sb = c.k * c.n, sc = c.m * c.n;
  std::vector<float> A = random_buffer(static_cast<size_t>(sa * c.batch), 1);
  std::vector<float> B = random_buffer(static_cast<size_t>(sb * c.batch), 2);
  std::vector<float> C(static_cast<size_t>(sc * c.batch), 0.0f);
  const int64_t lda = ta ? c.m : c.k, ldb = tb ? c.k : c.n, ldc = c.n;
  auto fn = [&] {
    if (c.batch == 1)
      sgemm(ta, tb, c.m, c.n, c.k, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), ldc);
    else
      sgemm_batched(ta, tb, c.batch, c.m, c.n, c.k, 1.0f, A.data(), lda, sa, B.data(), ldb, sb,
                    0.0f, C.data(), ldc, sc);
  };
  const Timing t = measure(fn, opt.warmup, opt.repeats);
  const int threads = effective_threads(opt);
  const double gflops = 2.0 * c.batch * c.m * c.n * c.k / (t.median_ms * 1e6);
  Record(workload)
      .set("shape", shape_string(c))
      .set("trans", c.trans)
      .set("isa", kernels::cpu::isa_name(kernels::cpu::active_isa()))
      .set("threads", threads)
      .timing(t)
      .set("gflops", gflops)
      .set("pct_peak", 100.0 * gflops / peak_gflops(threads))
      .print(opt);
}

}  // namespace

SMYRF_BENCH_WORKLOAD("gemm", "sgemm GFLOP/s: squares 128..2048, NT/TN at 1024, rectangles") {
  const GemmCase cases[] = {
      {1, 128, 128, 128, "NN"},    {1, 256, 256, 256, "NN"},    {1, 512, 512, 512, "NN"},
      {1, 1024, 1024, 1024, "NN"}, {1, 2048, 2048, 2048, "NN"}, {1, 1024, 1024, 1024, "NT"},
      {1, 1024, 1024, 1024, "TN"}, {1, 4096, 256, 256, "NN"},   {1, 256, 4096, 1024, "NN"},
      {1, 1000, 1000, 100, "NN"},  {1, 333, 777, 555, "NT"},
  };
  for (const GemmCase& c : cases)
    if (selected(opt.shapes, c)) run_case(opt, "gemm", c);
  for (const GemmCase& c : adhoc_cases(opt.shapes, false, {std::begin(cases), std::end(cases)}))
    run_case(opt, "gemm", c);
  if (opt.device == "cuda") {  // sizes where a GPU reaches its peak
    const GemmCase big[] = {{1, 4096, 4096, 4096, "NN"}, {1, 8192, 8192, 8192, "NN"}};
    for (const GemmCase& c : big)
      if (selected(opt.shapes, c)) run_case(opt, "gemm", c);
  }
}

// Clustered attention multiplies thousands of small blocks. Batches are sized so every case
// does about 1-4 GFLOP (and touches at most ~400 MB).
SMYRF_BENCH_WORKLOAD("gemm-batched", "batched sgemm GFLOP/s on 16..128 blocks (attention shapes)") {
  const GemmCase cases[] = {
      {4096, 64, 64, 64, "NN"},  {4096, 64, 64, 64, "NT"},   {131072, 16, 16, 16, "NN"},
      {16384, 32, 32, 32, "NN"}, {512, 128, 128, 128, "NN"},
  };
  for (const GemmCase& c : cases)
    if (selected(opt.shapes, c)) run_case(opt, "gemm-batched", c);
  for (const GemmCase& c : adhoc_cases(opt.shapes, true, {std::begin(cases), std::end(cases)}))
    run_case(opt, "gemm-batched", c);
}

}  // namespace smyrf::bench
