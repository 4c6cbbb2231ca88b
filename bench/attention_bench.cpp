// `smyrf bench attention`: dense attention against SMYRF clustered attention, float32.
//
// Timing rows ("attention", level "op"): through the autograd ops smyrf::attention and
// smyrf::smyrf_attention on (1, BH, N, 64) tensors, BH = batch*heads in {1, 8}, N in
// {1024, ..., 16384}; dense and SMYRF with (n_hashes, cluster) in {(2, 32), (4, 64), (8, 128)};
// "fwd" (the op under no_grad; SMYRF includes hashing and sorting) and "fwd+bwd" (the op, then
// backward). median_ms, and peak_mib: the peak resident memory the call adds (VmHWM after a
// clear_refs reset minus VmRSS before; inputs excluded, the op's outputs, plan and gradients
// included). Dense rows above 7e10 forward FLOPs are skipped unless --shapes names them.
// Fit rows ("attention-fit"): per (impl, pass, BH) the least-squares exponent of time and of
// memory in N over the measured N in 2048..16384.
// Approximation rows (N = 2048, BH = 4, kernels directly; only without --shapes): relative
// output error ||o - o_dense|| / ||o_dense|| and the cosine of the q/k/v gradients with the dense
// ones, on Gaussian inputs and on clustered inputs (tokens near a few shared centres).
//
// --shapes selects timing cases: comma-separated "N" (both BH) or "BHxN" ("8x1024,8x2048");
// --shapes approx prints only the approximation rows.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "autograd/attention_ops.h"
#include "autograd/grad_mode.h"
#include "bench/attention_bench_util.h"
#include "bench/cuda_bench.h"
#include "bench/memory_probe.h"
#include "bench/registry.h"
#include "core/random.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/smyrf.h"

namespace smyrf::bench {
namespace {

using kernels::cpu::AttentionParams;
using kernels::cpu::SmyrfParams;
using kernels::cpu::SmyrfPlan;

std::vector<float> gaussian(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> x(n);
  for (auto& e : x) e = dist(gen);
  return x;
}

// Tokens = one of `centres` shared centres (scaled so the softmax is peaked) plus small noise.
std::vector<float> clustered(int64_t bh, int64_t n, int64_t d, uint32_t seed,
                             const std::vector<float>& centres, int64_t nc) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> noise(0.f, 0.3f);
  std::uniform_int_distribution<int64_t> pick(0, nc - 1);
  std::vector<float> x(bh * n * d);
  for (int64_t t = 0; t < bh * n; ++t) {
    const int64_t c = pick(gen);
    for (int64_t e = 0; e < d; ++e) x[t * d + e] = centres[c * d + e] + noise(gen);
  }
  return x;
}

struct Config {
  const char* name;
  int64_t n_hashes, cluster;
};
constexpr Config kConfigs[] = {
    {"smyrf-2x32", 2, 32}, {"smyrf-4x64", 4, 64}, {"smyrf-8x128", 8, 128}};

AttentionParams dense_params(int64_t bh, int64_t n, int64_t d) {
  AttentionParams p;
  p.batch_heads = bh;
  p.heads = 1;
  p.nq = p.nk = n;
  p.d = p.dv = d;
  p.scale = 1.0 / std::sqrt(static_cast<double>(d));
  return p;
}

SmyrfParams smyrf_params(int64_t bh, int64_t n, int64_t d, const Config& c) {
  SmyrfParams p;
  p.batch_heads = bh;
  p.heads = 1;
  p.nq = p.nk = n;
  p.d = p.dv = d;
  p.n_hashes = c.n_hashes;
  p.cq = p.ck = c.cluster;
  p.scale = 1.0 / std::sqrt(static_cast<double>(d));
  p.seed = 1234;
  return p;
}

struct Buffers {
  std::vector<float> q, k, v, dout, out, lse, dq, dk, dv;
  Buffers(int64_t bh, int64_t n, int64_t d)
      : q(gaussian(bh * n * d, 1)),
        k(gaussian(bh * n * d, 2)),
        v(gaussian(bh * n * d, 3)),
        dout(gaussian(bh * n * d, 4)),
        out(bh * n * d),
        lse(bh * n),
        dq(bh * n * d),
        dk(bh * n * d),
        dv(bh * n * d) {}
};

// Least-squares slope of log y over log x: the exponent of y ~ x^e.
double fitted_exponent(const std::vector<std::pair<double, double>>& pts) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  const double n = static_cast<double>(pts.size());
  for (const auto& [x, y] : pts) {
    const double lx = std::log(x), ly = std::log(std::max(y, 1e-9));
    sx += lx, sy += ly, sxx += lx * lx, sxy += lx * ly;
  }
  const double den = n * sxx - sx * sx;
  return den == 0 ? 0 : (n * sxy - sx * sy) / den;
}

// --shapes for the timing rows: "N" (both batch*heads) or "BHxN" tokens, comma-separated.
struct ShapeFilter {
  std::vector<std::pair<int64_t, int64_t>> cases;  // (bh, n); bh 0 = both
  bool wants(int64_t bh, int64_t n) const {
    for (const auto& [b, m] : cases)
      if (m == n && (b == 0 || b == bh)) return true;
    return false;
  }
};

ShapeFilter parse_filter(const std::string& s) {
  ShapeFilter f;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    if (tok.empty()) continue;
    const size_t x = tok.find('x');
    if (x == std::string::npos)
      f.cases.emplace_back(0, std::stoll(tok));
    else
      f.cases.emplace_back(std::stoll(tok.substr(0, x)), std::stoll(tok.substr(x + 1)));
  }
  return f;
}

// Timing and memory through the autograd ops (autograd/attention_ops.h): "fwd" is the op under
// no_grad; "fwd+bwd" records the node and runs backward from a fixed upstream gradient, so the
// numbers include the op's allocations (output, lse, SMYRF plan, gradients).
void timing_rows(const Options& opt) {
  // Every buffer above 64 KiB is mmapped and unmapped on free, so RSS tracks live memory (glibc
  // otherwise raises its mmap threshold after the first large free and keeps the pages).
  pin_mmap_threshold();
  const int64_t d = 64;
  std::vector<int64_t> lengths = {1024, 2048, 4096, 8192, 16384};
  const bool filtered = !opt.shapes.empty();
  const ShapeFilter filter = parse_filter(opt.shapes);
  if (filtered) {
    lengths.clear();
    for (const auto& [b, m] : filter.cases)
      if (std::find(lengths.begin(), lengths.end(), m) == lengths.end()) lengths.push_back(m);
  }
  const int threads = effective_threads(opt);
  // (impl, pass, bh) -> (N, median ms, MiB) for the exponent fits
  std::map<std::tuple<std::string, std::string, int64_t>,
           std::vector<std::tuple<double, double, double>>>
      series;
  for (int64_t bh : {1, 8}) {
    for (int64_t n : lengths) {
      if (filtered && !filter.wants(bh, n)) continue;
      Generator gen(1);
      const Tensor q = randn({1, bh, n, d}, kFloat32, &gen).requires_grad_();
      const Tensor k = randn({1, bh, n, d}, kFloat32, &gen).requires_grad_();
      const Tensor v = randn({1, bh, n, d}, kFloat32, &gen).requires_grad_();
      const Tensor up = randn({1, bh, n, d}, kFloat32, &gen);
      auto emit = [&](const char* impl, const char* pass, int64_t nh, int64_t cl, double flops,
                      const Timing& t, double mib) {
        Record r("attention");
        r.set("impl", impl).set("pass", pass).set("batch_heads", bh).set("n", n).set("d", d);
        r.set("n_hashes", nh)
            .set("cluster", cl)
            .set("threads", threads)
            .set("isa", kernels::cpu::isa_name(kernels::cpu::active_isa()))
            .set("level", "op");
        r.timing(t);
        r.set("gflops", flops / (t.median_ms * 1e6));
        r.set("peak_mib", mib);
        r.print(opt);
        series[{impl, pass, bh}].emplace_back(static_cast<double>(n), t.median_ms, mib);
      };
      auto measure_op = [&](const char* impl, int64_t nh, int64_t cl, double fwd_flops,
                            const std::function<Tensor()>& op, int warm, int reps) {
        for (bool backward : {false, true}) {
          auto fn = [&] { run_attention_pass(op, backward, up, {&q, &k, &v}); };
          const Timing t = measure(fn, warm, reps);
          const double mib = peak_added_mib(fn);
          emit(impl, backward ? "fwd+bwd" : "fwd", nh, cl, backward ? 3.5 * fwd_flops : fwd_flops,
               t, mib);
        }
      };
      // Dense: 4 N^2 d FLOPs forward, 10 N^2 d more for the backward (recompute + 4 products).
      const double dense_fwd_flops = 4.0 * bh * n * n * d;
      const bool dense_ok = filtered || dense_fwd_flops <= 7e10;
      const int reps_big = dense_fwd_flops > 1e11 ? 1 : opt.repeats;
      const int warm_big = dense_fwd_flops > 1e11 ? 0 : opt.warmup;
      // SMYRF_ATTN_IMPLS (comma list, e.g. "smyrf-4x64"): only those rows, for profiling runs.
      auto impl_wanted = [](const char* name) { return env_lists("SMYRF_ATTN_IMPLS", name); };
      if (!impl_wanted("dense")) {
      } else if (dense_ok) {
        measure_op(
            "dense", 0, 0, dense_fwd_flops, [&] { return attention(q, k, v); }, warm_big, reps_big);
      } else {
        Record r("attention");
        r.set("impl", "dense")
            .set("batch_heads", bh)
            .set("n", n)
            .set("skipped", "too slow; pass --shapes");
        r.print(opt);
      }
      for (const Config& c : kConfigs) {
        if (!impl_wanted(c.name)) continue;
        SmyrfOptions o;
        o.n_hashes = c.n_hashes;
        o.q_cluster_size = o.k_cluster_size = c.cluster;
        o.seed = 1234;
        const double flops = 4.0 * bh * n * c.cluster * d * c.n_hashes;
        measure_op(
            c.name, c.n_hashes, c.cluster, flops, [&] { return smyrf_attention(q, k, v, o); },
            opt.warmup, opt.repeats);
      }
    }
  }
  // Exponents of time and memory in N over 2048..16384 (the points measured in that range).
  for (const auto& [key, pts] : series) {
    std::vector<std::pair<double, double>> tp, mp;
    double lo = 0, hi = 0;
    for (const auto& [n, ms, mib] : pts) {
      if (n < 2048 || n > 16384) continue;
      tp.emplace_back(n, ms);
      if (mib > 0) mp.emplace_back(n, mib);
      lo = lo == 0 ? n : std::min(lo, n);
      hi = std::max(hi, n);
    }
    if (tp.size() < 2) continue;
    Record r("attention-fit");
    r.set("impl", std::get<0>(key))
        .set("pass", std::get<1>(key))
        .set("batch_heads", std::get<2>(key));
    r.set("n_min", lo).set("n_max", hi).set("points", static_cast<int64_t>(tp.size()));
    r.set("time_exponent", fitted_exponent(tp));
    r.set("mem_exponent", mp.size() >= 2 ? fitted_exponent(mp) : 0.0);
    r.print(opt);
  }
}

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += double(a[i] - b[i]) * (a[i] - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(std::max(aa * bb, 1e-300));
}

void approximation_rows(const Options& opt) {
  const int64_t bh = 4, n = 2048, d = 64;
  const int64_t nc = 16;
  std::vector<float> centres = gaussian(nc * d, 77);
  for (auto& e : centres) e *= 1.5f;
  for (const char* inputs : {"gaussian", "clustered"}) {
    Buffers b(bh, n, d);
    if (std::string(inputs) == "clustered") {
      b.q = clustered(bh, n, d, 5, centres, nc);
      b.k = clustered(bh, n, d, 6, centres, nc);
    }
    const AttentionParams dp = dense_params(bh, n, d);
    std::vector<float> out(bh * n * d), lse(bh * n), dq(bh * n * d), dk(bh * n * d), dv(bh * n * d);
    kernels::cpu::attention_forward<float>(dp, b.q.data(), b.k.data(), b.v.data(), nullptr,
                                           out.data(), lse.data());
    kernels::cpu::attention_backward<float>(dp, b.q.data(), b.k.data(), b.v.data(), nullptr,
                                            out.data(), lse.data(), b.dout.data(), dq.data(),
                                            dk.data(), dv.data());
    for (const Config& c : kConfigs) {
      const SmyrfParams p = smyrf_params(bh, n, d, c);
      const SmyrfPlan plan = kernels::cpu::smyrf_make_plan<float>(p, b.q.data(), b.k.data());
      kernels::cpu::smyrf_forward<float>(p, plan, b.q.data(), b.k.data(), b.v.data(), b.out.data(),
                                         b.lse.data());
      kernels::cpu::smyrf_backward<float>(p, plan, b.q.data(), b.k.data(), b.v.data(), b.out.data(),
                                          b.lse.data(), b.dout.data(), b.dq.data(), b.dk.data(),
                                          b.dv.data());
      Record r("attention-approx");
      r.set("impl", c.name).set("inputs", inputs).set("batch_heads", bh).set("n", n).set("d", d);
      r.set("memory_pct", 100.0 * c.n_hashes * c.cluster / n);
      r.set("out_rel_err", rel_l2(b.out, out));
      r.set("dq_cos", cosine(b.dq, dq))
          .set("dk_cos", cosine(b.dk, dk))
          .set("dv_cos", cosine(b.dv, dv));
      r.print(opt);
    }
  }
}

}  // namespace

SMYRF_BENCH_WORKLOAD("attention",
                     "dense vs SMYRF attention kernels (float32): fwd and fwd+bwd median ms, and "
                     "SMYRF's approximation error; --shapes filters N") {
  if (opt.device == "cuda") {  // CUDA tensors, event timing: cuda_attention_bench.cpp
    run_cuda_attention(opt);
    return;
  }
  if (opt.shapes == "approx") {  // only the approximation table (bench/compare attention)
    approximation_rows(opt);
    return;
  }
  if (opt.shapes.empty()) approximation_rows(opt);
  timing_rows(opt);
}

}  // namespace smyrf::bench
