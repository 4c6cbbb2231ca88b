// `smyrf bench gemm`, `gemm-batched` and `gemm-f64`: throughput of kernels/cpu sgemm / dgemm. The
// cases and the --shapes filter (any "MxNxK:TRANS" runs as given): bench/gemm_cases.h.
// bench/compare runs one case at a time this way, interleaved with the OpenBLAS and PyTorch
// baselines (bench/compare gemm-transposes uses it for TT and the transposes at 512 and 2048).
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/cuda_bench.h"
#include "bench/gemm_cases.h"
#include "bench/registry.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm.h"

namespace smyrf::bench {
namespace {

template <typename T>
std::vector<T> random_buffer(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<T> u(T(-0.5), T(0.5));
  std::vector<T> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

void gemm_call(bool ta, bool tb, int64_t batch, int64_t m, int64_t n, int64_t k, const float* A,
               int64_t lda, int64_t sa, const float* B, int64_t ldb, int64_t sb, float* C,
               int64_t ldc, int64_t sc) {
  if (batch == 1)
    kernels::cpu::sgemm(ta, tb, m, n, k, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
  else
    kernels::cpu::sgemm_batched(ta, tb, batch, m, n, k, 1.0f, A, lda, sa, B, ldb, sb, 0.0f, C, ldc,
                                sc);
}

void gemm_call(bool ta, bool tb, int64_t batch, int64_t m, int64_t n, int64_t k, const double* A,
               int64_t lda, int64_t sa, const double* B, int64_t ldb, int64_t sb, double* C,
               int64_t ldc, int64_t sc) {
  kernels::cpu::dgemm_batched(ta, tb, batch, m, n, k, 1.0, A, lda, sa, B, ldb, sb, 0.0, C, ldc, sc);
}

// T: float (sgemm) or double (dgemm, whose peak is half the float one: 4 lanes a vector)
template <typename T = float>
void run_case(const Options& opt, const char* workload, const GemmCase& c) {
  if (opt.device == "cuda") {  // cuBLAS through core tensors on cuda:0
    run_cuda_gemm(opt, workload, c.batch, c.m, c.n, c.k, c.trans, shape_string(c).c_str());
    return;
  }
  const bool ta = c.trans[0] == 'T', tb = c.trans[1] == 'T';
  const int64_t sa = c.m * c.k, sb = c.k * c.n, sc = c.m * c.n;
  std::vector<T> A = random_buffer<T>(static_cast<size_t>(sa * c.batch), 1);
  std::vector<T> B = random_buffer<T>(static_cast<size_t>(sb * c.batch), 2);
  std::vector<T> C(static_cast<size_t>(sc * c.batch), T(0));
  const int64_t lda = ta ? c.m : c.k, ldb = tb ? c.k : c.n, ldc = c.n;
  auto fn = [&] {
    gemm_call(ta, tb, c.batch, c.m, c.n, c.k, A.data(), lda, sa, B.data(), ldb, sb, C.data(), ldc,
              sc);
  };
  const Timing t = measure(fn, opt.warmup, opt.repeats);
  const int threads = effective_threads(opt);
  const double gflops = 2.0 * c.batch * c.m * c.n * c.k / (t.median_ms * 1e6);
  const double peak = peak_gflops(threads) * (sizeof(T) == 4 ? 1.0 : 0.5);
  Record(workload)
      .set("shape", shape_string(c))
      .set("trans", c.trans)
      .set("dtype", sizeof(T) == 4 ? "float32" : "float64")
      .set("isa", kernels::cpu::isa_name(kernels::cpu::active_isa()))
      .set("threads", threads)
      .timing(t)
      .set("gflops", gflops)
      .set("pct_peak", 100.0 * gflops / peak)
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

// float64 products: gradient checks, the gradient study's references, users' float64 matmuls.
SMYRF_BENCH_WORKLOAD("gemm-f64", "dgemm GFLOP/s: squares 128..2048, the transposes at 1024, odd") {
  if (opt.device == "cuda") throw std::runtime_error("gemm-f64: CPU only");
  const GemmCase cases[] = {
      {1, 128, 128, 128, "NN"},    {1, 256, 256, 256, "NN"},    {1, 512, 512, 512, "NN"},
      {1, 1024, 1024, 1024, "NN"}, {1, 2048, 2048, 2048, "NN"}, {1, 1024, 1024, 1024, "NT"},
      {1, 1024, 1024, 1024, "TN"}, {1, 1024, 1024, 1024, "TT"}, {1, 333, 777, 555, "NT"},
      {1, 4096, 64, 64, "NN"},
  };
  for (const GemmCase& c : cases)
    if (selected(opt.shapes, c)) run_case<double>(opt, "gemm-f64", c);
  for (const GemmCase& c : adhoc_cases(opt.shapes, false, {std::begin(cases), std::end(cases)}))
    run_case<double>(opt, "gemm-f64", c);
}

}  // namespace smyrf::bench
