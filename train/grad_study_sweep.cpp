// The sweeps of the gradient study and the run that collects them (the parameter-level
// comparison itself is in grad_study_params.cpp).
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "autograd/grad_mode.h"
#include "layers/attention.h"
#include "models/bert.h"
#include "train/device_option.h"
#include "train/grad_study.h"
#include "train/grad_study_internal.h"
#include "train/lm_train.h"
#include "train/optim.h"
#include "train/run_files.h"

namespace smyrf::train {

namespace {
constexpr const char* kOp = "grad_study";
namespace fs = std::filesystem;

const char* dup_name(SmyrfDuplicates d) { return d == SmyrfDuplicates::Set ? "set" : "multiset"; }

// The rows of one measurement: every metric of every head.
void append_rows(std::vector<StudyRow>& rows, const std::string& sweep, const StudyInput& in,
                 const StudyConfig& c, const std::vector<HeadMetrics>& ms) {
  const int64_t nq = in.q.size(2), nk = in.k.size(2);
  StudyRow base;
  base.sweep = sweep, base.source = in.source, base.layer = in.layer;
  base.n = nq, base.d = in.q.size(3), base.n_hashes = c.n_hashes;
  base.q_cluster = c.q_cluster, base.k_cluster = c.k_cluster, base.n_seeds = c.n_seeds;
  base.budget = static_cast<double>(c.n_hashes * std::min(c.k_cluster, nk)) / nk;
  base.temperature = in.temperature, base.duplicates = dup_name(c.duplicates);
  for (const HeadMetrics& m : ms) {
    auto add = [&](const std::string& metric, const std::string& stat, double v) {
      StudyRow r = base;
      r.batch = m.batch, r.head = m.head, r.metric = metric, r.stat = stat, r.value = v;
      rows.push_back(std::move(r));
    };
    auto add_dist = [&](const std::string& metric, const Dist& d) {
      add(metric, "mean", d.mean), add(metric, "p10", d.p10), add(metric, "p50", d.p50),
          add(metric, "p90", d.p90);
    };
    for (auto& [k, d] : m.token) add_dist(k, d);
    for (auto& [k, v] : m.whole) add(k, "whole", v);
    add_dist("coverage", m.coverage);
    add("corr_coverage_err_dq", "value", m.corr_coverage_err_dq);
    add("keys_no_grad", "value", m.keys_no_grad);
    for (size_t r = 0; r < m.mult_hist.size(); ++r)
      add("mult_hist", std::to_string(r), m.mult_hist[r]);
    add("bias_err", "value", m.bias_err);
    add("bias_cos", "value", m.bias_cos);
    add("variance", "value", m.variance);
  }
}

// A configuration of key cluster size ck for the input's lengths (query clusters scaled so the
// chunk counts pair), or none when it does not fit.
bool make_config(const StudyInput& in, int64_t n_hashes, int64_t ck, StudyConfig& c) {
  const int64_t nq = in.q.size(2), nk = in.k.size(2);
  if (ck < 1 || ck > nk || n_hashes < 1) return false;
  const int64_t cq = in.causal ? ck : std::max<int64_t>(1, ck * nq / nk);
  if (!in.causal && (nq + cq - 1) / cq != (nk + ck - 1) / ck) return false;
  c.n_hashes = n_hashes, c.q_cluster = cq, c.k_cluster = ck;
  return true;
}

struct Job {
  std::string label;
  std::function<void(std::vector<StudyRow>&)> run;
};

// The sweeps on one input: grid, equal budgets, duplicates, seeds (and, when a base is given,
// nothing else: length and temperature sweeps regenerate inputs and are added by the caller).
void input_jobs(std::vector<Job>& jobs, const std::shared_ptr<StudyInput>& in,
                const StudyOptions& o, uint64_t seed) {
  const int64_t nq = in->q.size(2), nk = in->k.size(2);
  auto job = [&](const std::string& sweep, StudyConfig c) {
    c.seed = seed ^ (jobs.size() * 0x9E3779B97F4A7C15ull);
    c.device = o.device == "cuda" ? Device::cuda(0) : Device::cpu();
    jobs.push_back({sweep + " " + in->source, [in, c, sweep](std::vector<StudyRow>& rows) {
                      append_rows(rows, sweep, *in, c, measure(*in, c));
                    }});
  };
  for (int64_t h : o.n_hashes)
    for (int64_t cq : o.clusters) {
      StudyConfig c;
      if (make_config(*in, h, std::max<int64_t>(1, cq * nk / nq), c)) job("grid", c);
    }
  for (double b : o.budgets)
    for (int64_t h : o.n_hashes) {
      StudyConfig c;
      const int64_t ck = static_cast<int64_t>(std::llround(b * nk / h));
      if (ck >= 4 && make_config(*in, h, ck, c)) job("budget", c);
    }
  // the reference configuration of the remaining sweeps: memory 25% with 2 hashes when possible
  StudyConfig ref;
  if (!make_config(*in, 2, std::max<int64_t>(4, nk / 8), ref)) make_config(*in, 1, nk, ref);
  for (int64_t h : o.n_hashes)
    for (SmyrfDuplicates dup : {SmyrfDuplicates::Multiset, SmyrfDuplicates::Set}) {
      StudyConfig c = ref;
      if (h < 2 || !make_config(*in, h, ref.k_cluster, c)) continue;
      c.duplicates = dup;
      job("duplicates", c);
    }
  for (int64_t s : o.seed_counts) {
    StudyConfig c = ref;
    c.n_seeds = s;
    job("seeds", c);
  }
}

// The input as the study measures it: rounded to float32 for CUDA runs (what the device sees)
// and when float32_inputs asks for it.
std::shared_ptr<StudyInput> prepared(StudyInput in, const StudyOptions& o) {
  if (o.device == "cuda" || o.float32_inputs)
    for (Tensor* t : {&in.q, &in.k, &in.v, &in.dout}) *t = t->to(kFloat32).to(kFloat64);
  return std::make_shared<StudyInput>(std::move(in));
}

std::string format_duration(double s) {
  char buf[32];
  const long t = std::lround(std::max(0.0, s));
  std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}
}  // namespace

StudyResult run_grad_study(const StudyOptions& o) {
  const Device device = device_option(o.device, kOp);  // the study's attention ops
  std::vector<Job> jobs;
  std::vector<std::shared_ptr<StudyInput>> inputs;
  if (o.checkpoint.empty()) {
    uint64_t s = o.seed;
    for (const std::string& kind : o.kinds) {
      auto base = prepared(synthetic_input(kind, o.n, o.d, o.heads, 1.0, ++s), o);
      input_jobs(jobs, base, o, s * 1000003);
      for (int64_t n : o.lengths) {
        auto in = prepared(synthetic_input(kind, n, o.d, o.heads, 1.0, ++s), o);
        StudyConfig c;
        if (!make_config(*in, 2, std::max<int64_t>(4, n / 8), c)) continue;
        c.seed = s;
        c.device = device;
        jobs.push_back({"length " + kind, [in, c](std::vector<StudyRow>& rows) {
                          append_rows(rows, "length", *in, c, measure(*in, c));
                        }});
      }
      for (double t : o.temperatures) {
        auto in = prepared(synthetic_input(kind, o.n, o.d, o.heads, t, ++s), o);
        StudyConfig c;
        make_config(*in, 2, std::max<int64_t>(4, o.n / 8), c);
        c.seed = s;
        c.device = device;
        jobs.push_back({"temperature " + kind, [in, c](std::vector<StudyRow>& rows) {
                          append_rows(rows, "temperature", *in, c, measure(*in, c));
                        }});
      }
    }
  } else {
    std::vector<std::string> layers =
        o.layer.empty() ? attention_layers(o.checkpoint) : std::vector<std::string>{o.layer};
    SMYRF_CHECK_HINT(!layers.empty(), kOp, "'" << o.checkpoint << "' has no attention layer",
                     "train a model with attention");
    uint64_t s = o.seed;
    for (const std::string& l : layers) {
      auto in = prepared(capture_input(o.checkpoint, l, o.batch, o.seed), o);
      input_jobs(jobs, in, o, ++s * 1000003);
    }
    if (o.train_steps > 0) {
      const std::string ck = o.checkpoint;
      const int64_t steps = o.train_steps, batch = o.batch;
      const uint64_t seed = o.seed;
      jobs.push_back({"params", [ck, steps, batch, seed](std::vector<StudyRow>& rows) {
                        std::vector<StudyRow> got;
                        if (study_detail::is_lm_run(ck)) {
                          LoadedLm l = load_lm(ck);
                          StudyConfig c;
                          const auto sc = l.model->config().smyrf_config();
                          c.n_hashes = sc.n_hashes, c.q_cluster = sc.q_cluster_size,
                          c.k_cluster = sc.k_cluster_size;
                          got = param_gradient_study(ck, c, steps, batch, seed);
                        } else {
                          got = gan_param_gradient_study(ck, steps, batch, seed);
                        }
                        rows.insert(rows.end(), got.begin(), got.end());
                      }});
    }
  }
  StudyResult res;
  const bool tty = isatty(2);
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < jobs.size(); ++i) {
    jobs[i].run(res.rows);
    if (o.progress && (tty || (i + 1) % 10 == 0 || i + 1 == jobs.size())) {
      const double el =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const int width = 24, filled = static_cast<int>(width * (i + 1) / jobs.size());
      std::fprintf(stderr, "%s[%s%s] %zu/%zu  %-28s left %s   %s", tty ? "\r" : "",
                   std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                   i + 1, jobs.size(), jobs[i].label.substr(0, 28).c_str(),
                   format_duration(el / (i + 1) * (jobs.size() - i - 1)).c_str(), tty ? "" : "\n");
    }
  }
  if (o.progress && tty) std::fprintf(stderr, "\n");
  fs::create_directories(o.out);
  write_csv(run_path(o.out, "measurements.csv"), res.rows);
  res.files.push_back("measurements.csv");
  for (auto& f : write_report(o.out, res.rows, o)) res.files.push_back(f);
  return res;
}

}  // namespace smyrf::train
