// `smyrf bench gemm` and `smyrf bench gemm-batched`: throughput of kernels/cpu sgemm.
//
// --shapes filters the cases: comma-separated tokens, each a shape as printed ("512x512x512",
// "4096x64x64x64"), optionally with ":TRANS" ("1024x1024x1024:NT"), or one number N meaning
// the square NxNxN. bench/compare runs one case at a time this way, interleaved with the
// OpenBLAS and PyTorch baselines. A full "MxNxK:TRANS" (or "BxMxNxK:TRANS" for gemm-batched)
// that matches no listed case is run as given, so any shape and transpose can be measured
// (bench/compare gemm-transposes uses this for TT and the transposes at 512 and 2048).
#include <cstdint>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/cuda_bench.h"
#include "bench/registry.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm.h"

namespace smyrf::bench {
namespace {

struct GemmCase {
  int64_t batch;  // 1 for a single product
  int64_t m, n, k;
  const char* trans;  // "NN", "NT", "TN", "TT"
};

std::string shape_string(const GemmCase& c) {
  std::ostringstream os;
  if (c.batch > 1) os << c.batch << "x";
  os << c.m << "x" << c.n << "x" << c.k;
  return os.str();
}

bool selected(const Options& opt, const GemmCase& c) {
  if (opt.shapes.empty()) return true;
  const std::string shape = shape_string(c);
  std::stringstream ss(opt.shapes);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    std::string want_trans;
    if (auto colon = tok.find(':'); colon != std::string::npos) {
      want_trans = tok.substr(colon + 1);
      tok = tok.substr(0, colon);
    }
    if (!want_trans.empty() && want_trans != c.trans) continue;
    if (tok == shape) return true;
    if (c.batch == 1 && c.m == c.n && c.n == c.k && tok == std::to_string(c.m)) return true;
  }
  return false;
}

std::vector<float> random_buffer(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// Tokens of --shapes that name a full shape with a transpose ("MxNxK:TT", or with a leading
// batch for gemm-batched) and match none of `listed`: the extra cases to run as given.
std::vector<GemmCase> adhoc_cases(const Options& opt, bool batched,
                                  const std::vector<GemmCase>& listed) {
  static std::vector<std::string> trans_names;  // GemmCase keeps a const char*
  std::vector<GemmCase> out;
  std::stringstream ss(opt.shapes);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    const auto colon = tok.find(':');
    if (colon == std::string::npos) continue;
    const std::string trans = tok.substr(colon + 1);
    if (trans != "NN" && trans != "NT" && trans != "TN" && trans != "TT") continue;
    long long d[4] = {0, 0, 0, 0};
    char tail = 0;
    const std::string dims = tok.substr(0, colon);
    const int n =
        batched
            ? std::sscanf(dims.c_str(), "%lldx%lldx%lldx%lld%c", &d[0], &d[1], &d[2], &d[3], &tail)
            : std::sscanf(dims.c_str(), "%lldx%lldx%lld%c", &d[1], &d[2], &d[3], &tail);
    if (n != (batched ? 4 : 3) || d[1] <= 0 || d[2] <= 0 || d[3] <= 0) continue;
    GemmCase c{batched ? d[0] : 1, d[1], d[2], d[3], nullptr};
    if (c.batch <= 0 || (batched && c.batch == 1)) continue;
    bool known = false;
    for (const GemmCase& l : listed)
      known = known || (shape_string(l) == shape_string(c) && trans == l.trans);
    if (known) continue;
    trans_names.push_back(trans);
    c.trans = trans_names.back().c_str();
    out.push_back(c);
  }
  return out;
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
    if (selected(opt, c)) run_case(opt, "gemm", c);
  for (const GemmCase& c : adhoc_cases(opt, false, {std::begin(cases), std::end(cases)}))
    run_case(opt, "gemm", c);
  if (opt.device == "cuda") {  // sizes where a GPU reaches its peak
    const GemmCase big[] = {{1, 4096, 4096, 4096, "NN"}, {1, 8192, 8192, 8192, "NN"}};
    for (const GemmCase& c : big)
      if (selected(opt, c)) run_case(opt, "gemm", c);
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
    if (selected(opt, c)) run_case(opt, "gemm-batched", c);
  for (const GemmCase& c : adhoc_cases(opt, true, {std::begin(cases), std::end(cases)}))
    run_case(opt, "gemm-batched", c);
}

}  // namespace smyrf::bench
