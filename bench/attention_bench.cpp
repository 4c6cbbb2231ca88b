// `smyrf bench attention`: dense fused attention against SMYRF clustered attention, float32, on
// the kernels of kernels/cpu directly (no tensors), plus an approximation table.
//
// Timing rows: batch*heads in {1, 8}, d = 64, N in {1024, ..., 16384}; dense and SMYRF with
// (n_hashes, cluster) in {(2, 32), (4, 64), (8, 128)}; "fwd" (SMYRF includes hashing and sorting)
// and "fwd+bwd". Dense rows whose work exceeds a budget are skipped unless --shapes names N.
// Approximation rows (N = 2048, BH = 4): relative output error ||o - o_dense|| / ||o_dense|| and
// the cosine of the q/k/v gradients with the dense ones, on Gaussian inputs and on clustered
// inputs (tokens near a few shared centres, where SMYRF's clusters are meaningful).
//
// --shapes filters N: a comma-separated list of sequence lengths ("1024,4096").
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/registry.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/smyrf.h"

namespace smyrf::bench {
namespace {

using kernels::cpu::AttentionParams;
using kernels::cpu::SmyrfParams;
using kernels::cpu::SmyrfPlan;

std::vector<int64_t> parse_lengths(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ','))
    if (!tok.empty()) out.push_back(std::stoll(tok));
  return out;
}

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

void timing_rows(const Options& opt) {
  const int64_t d = 64;
  std::vector<int64_t> lengths = {1024, 2048, 4096, 8192, 16384};
  const bool filtered = !opt.shapes.empty();
  if (filtered) lengths = parse_lengths(opt.shapes);
  const int threads = effective_threads(opt);
  for (int64_t bh : {1, 8}) {
    for (int64_t n : lengths) {
      Buffers b(bh, n, d);
      auto emit = [&](const char* impl, const char* pass, int64_t nh, int64_t cl, double flops,
                      const Timing& t) {
        Record r("attention");
        r.set("impl", impl).set("pass", pass).set("batch_heads", bh).set("n", n).set("d", d);
        r.set("n_hashes", nh)
            .set("cluster", cl)
            .set("threads", threads)
            .set("isa", kernels::cpu::isa_name(kernels::cpu::active_isa()));
        r.timing(t);
        r.set("gflops", flops / (t.median_ms * 1e6));
        r.print(opt);
      };
      // Dense: 4 N^2 d FLOPs forward, 10 N^2 d more for the backward (recompute + 4 products).
      const double dense_fwd_flops = 4.0 * bh * n * n * d;
      const bool dense_ok = filtered || dense_fwd_flops <= 4.0 * 8 * 4096.0 * 4096 * 64;
      const int reps_big = dense_fwd_flops > 1e11 ? 1 : opt.repeats;
      const int warm_big = dense_fwd_flops > 1e11 ? 0 : opt.warmup;
      if (dense_ok) {
        const AttentionParams p = dense_params(bh, n, d);
        auto fwd = [&] {
          kernels::cpu::attention_forward<float>(p, b.q.data(), b.k.data(), b.v.data(), nullptr,
                                                 b.out.data(), b.lse.data());
        };
        emit("dense", "fwd", 0, 0, dense_fwd_flops, measure(fwd, warm_big, reps_big));
        auto fb = [&] {
          fwd();
          kernels::cpu::attention_backward<float>(p, b.q.data(), b.k.data(), b.v.data(), nullptr,
                                                  b.out.data(), b.lse.data(), b.dout.data(),
                                                  b.dq.data(), b.dk.data(), b.dv.data());
        };
        emit("dense", "fwd+bwd", 0, 0, 3.5 * dense_fwd_flops, measure(fb, warm_big, reps_big));
      } else {
        Record r("attention");
        r.set("impl", "dense")
            .set("batch_heads", bh)
            .set("n", n)
            .set("skipped", "too slow; pass --shapes");
        r.print(opt);
      }
      for (const Config& c : kConfigs) {
        const SmyrfParams p = smyrf_params(bh, n, d, c);
        const double flops = 4.0 * bh * n * c.cluster * d * c.n_hashes;
        SmyrfPlan plan;
        auto fwd = [&] {
          plan = kernels::cpu::smyrf_make_plan<float>(p, b.q.data(), b.k.data());
          kernels::cpu::smyrf_forward<float>(p, plan, b.q.data(), b.k.data(), b.v.data(),
                                             b.out.data(), b.lse.data());
        };
        emit(c.name, "fwd", c.n_hashes, c.cluster, flops, measure(fwd, opt.warmup, opt.repeats));
        auto fb = [&] {
          fwd();
          kernels::cpu::smyrf_backward<float>(p, plan, b.q.data(), b.k.data(), b.v.data(),
                                              b.out.data(), b.lse.data(), b.dout.data(),
                                              b.dq.data(), b.dk.data(), b.dv.data());
        };
        emit(c.name, "fwd+bwd", c.n_hashes, c.cluster, 3.5 * flops,
             measure(fb, opt.warmup, opt.repeats));
      }
    }
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
  approximation_rows(opt);
  timing_rows(opt);
}

}  // namespace smyrf::bench
