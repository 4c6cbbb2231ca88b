// `smyrf bench smyrf-phases`: where the time of one SMYRF fwd+bwd goes, float32, d = 64.
//
// Per (BH, N, n_hashes, cluster) (default 8 x 8192, (4, 64); --shapes "BHxN", env
// SMYRF_PHASES_CONFIG="n_hashes,cluster"): the kernels called directly on preallocated buffers
// (plan = hash + sort, forward, backward; no page faults, no autograd) and the whole op through
// autograd (fwd+bwd, what `smyrf bench attention` times). The phases run interleaved, one of each
// per repetition, so that drifting machine load hits them alike; median and minimum ms each, and
// of the process CPU time (all threads; the steadier figure on a loaded machine).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "autograd/attention_ops.h"
#include "bench/attention_bench_util.h"
#include "bench/registry.h"
#include "core/random.h"
#include "kernels/cpu/smyrf.h"

namespace smyrf::bench {
namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// CPU time of the whole process (all threads): under a loaded machine this tracks the work done
// better than wall time (a descheduled thread costs wall time, not CPU time).
double cpu_ms() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

struct Phase {
  const char* name;
  std::vector<double> ms, cpu;
};

}  // namespace

SMYRF_BENCH_WORKLOAD("smyrf-phases",
                     "SMYRF fwd+bwd split into plan, forward, backward kernels and the autograd "
                     "op, interleaved; --shapes BHxN (default 8x8192), env "
                     "SMYRF_PHASES_CONFIG=n_hashes,cluster (default 4,64)") {
  int64_t bh = 8, n = 8192, nh = 4, cl = 64;
  const int64_t d = 64;
  if (!opt.shapes.empty()) {
    const size_t x = opt.shapes.find('x');
    if (x != std::string::npos) {
      bh = std::stoll(opt.shapes.substr(0, x));
      n = std::stoll(opt.shapes.substr(x + 1));
    } else {
      n = std::stoll(opt.shapes);
    }
  }
  if (const char* c = std::getenv("SMYRF_PHASES_CONFIG")) {
    const std::string s = c;
    const size_t comma = s.find(',');
    if (comma != std::string::npos) {
      nh = std::stoll(s.substr(0, comma));
      cl = std::stoll(s.substr(comma + 1));
    }
  }
  kernels::cpu::SmyrfParams p;
  p.batch_heads = bh;
  p.nq = p.nk = n;
  p.d = p.dv = d;
  p.n_hashes = nh;
  p.cq = p.ck = cl;
  p.scale = 1.0 / std::sqrt(static_cast<double>(d));
  p.seed = 1234;

  Generator gen(7);
  const Tensor q = randn({1, bh, n, d}, TensorOptions(kFloat32), &gen).requires_grad_();
  const Tensor k = randn({1, bh, n, d}, TensorOptions(kFloat32), &gen).requires_grad_();
  const Tensor v = randn({1, bh, n, d}, TensorOptions(kFloat32), &gen).requires_grad_();
  const Tensor up = randn({1, bh, n, d}, TensorOptions(kFloat32), &gen);
  const float* qp = q.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  const float* dop = up.data_ptr<float>();
  // Outputs as tensors (core storage: huge pages where the host allows), touched once up front.
  const Tensor outs = zeros({5, bh, n, d}, TensorOptions(kFloat32));
  float* out = outs.data_ptr<float>();
  float* dq = out + bh * n * d;
  float* dk = dq + bh * n * d;
  float* dv = dk + bh * n * d;
  float* lse = dv + bh * n * d;
  SmyrfOptions o;
  o.n_hashes = nh;
  o.q_cluster_size = o.k_cluster_size = cl;
  o.seed = 1234;

  Phase plan{"plan", {}, {}}, fwd{"forward", {}, {}}, bwd{"backward", {}, {}},
      op{"op-fwd+bwd", {}, {}};
  // SMYRF_PHASES_ONLY=plan|forward|backward|op: time that phase alone (for perf record).
  const char* only_env = std::getenv("SMYRF_PHASES_ONLY");
  const std::string only = only_env ? only_env : "";
  auto runs = [&](const char* name) { return only.empty() || only == name; };
  const int reps = opt.repeats > 0 ? opt.repeats : 7;
  for (int it = -std::max(opt.warmup, 1); it < reps; ++it) {
    const bool keep = it >= 0;
    static kernels::cpu::SmyrfPlan pl;
    const bool first = it == -std::max(opt.warmup, 1);
    double c0 = cpu_ms(), t0 = now_ms();
    if (first || runs("plan")) pl = kernels::cpu::smyrf_make_plan<float>(p, qp, kp);
    double c1 = cpu_ms(), t1 = now_ms();
    if (first || runs("forward")) kernels::cpu::smyrf_forward<float>(p, pl, qp, kp, vp, out, lse);
    double c2 = cpu_ms(), t2 = now_ms();
    if (runs("backward"))
      kernels::cpu::smyrf_backward<float>(p, pl, qp, kp, vp, out, lse, dop, dq, dk, dv);
    double c3 = cpu_ms(), t3 = now_ms();
    if (runs("op"))
      run_attention_pass([&] { return smyrf_attention(q, k, v, o); }, true, up, {&q, &k, &v});
    double c4 = cpu_ms(), t4 = now_ms();
    if (!keep) continue;
    plan.ms.push_back(t1 - t0);
    fwd.ms.push_back(t2 - t1);
    bwd.ms.push_back(t3 - t2);
    op.ms.push_back(t4 - t3);
    plan.cpu.push_back(c1 - c0);
    fwd.cpu.push_back(c2 - c1);
    bwd.cpu.push_back(c3 - c2);
    op.cpu.push_back(c4 - c3);
  }
  for (Phase* ph : {&plan, &fwd, &bwd, &op}) {
    std::vector<double> s = ph->ms;
    std::sort(s.begin(), s.end());
    Record r("smyrf-phases");
    r.set("phase", ph->name).set("batch_heads", bh).set("n", n).set("n_hashes", nh);
    r.set("cluster", cl);
    Timing t;
    t.median_ms = s[s.size() / 2];
    t.min_ms = s.front();
    t.runs = static_cast<int>(s.size());
    r.timing(t);
    std::vector<double> c = ph->cpu;
    std::sort(c.begin(), c.end());
    r.set("median_cpu_ms", c[c.size() / 2]).set("min_cpu_ms", c.front());
    r.print(opt);
  }
}

}  // namespace smyrf::bench
