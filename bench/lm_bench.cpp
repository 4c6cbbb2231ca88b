// `smyrf bench lm-step`: one full training step (forward, loss, backward, AdamW update) of the
// default GPT (4 layers, d 256, 4 heads, byte vocabulary) and of a BERT of the same size, dense and
// SMYRF, at the contexts of the pretraining issue. Prints tokens/s (batch * context / median step
// time), the step's median and minimum milliseconds, its CPU time (user + system, all threads:
// a figure that stays meaningful on a loaded host where wall time does not), and the peak
// resident memory one step adds (weights, optimizer state and inputs excluded: they exist before
// the measured step).
//
// Timing runs under the malloc policy of `smyrf lm train` (train/alloc_policy.h: freed buffers are
// kept for reuse, as PyTorch's caching allocator does). Only the memory measurement, done first
// for every case, pins the mmap threshold (bench/memory_probe.h): timed that way, every step
// paid a page fault per 4 KiB of every activation (at gpt-1024-dense ~1 s of system time per
// step on one thread), which training does not.
//
// SMYRF settings are chosen at about a quarter or less of dense attention's score memory: causal
// (GPT) per query n_hashes * window + block / 2 keys on average against dense causal's N / 2;
// non-causal (BERT) n_hashes * Ck against N. The printed "attn_pairs_ratio" states it per case.
//
// --shapes filters cases by name, e.g. "gpt-256-dense,gpt-4096-smyrf".
#include <sys/resource.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "bench/memory_probe.h"
#include "bench/registry.h"
#include "core/random.h"
#include "kernels/cpu/host_memory.h"
#include "models/bert.h"
#include "models/gpt.h"
#include "train/alloc_policy.h"
#include "train/lm_train.h"
#include "train/optim.h"

namespace smyrf::bench {
namespace {

struct LmCase {
  std::string model;  // "gpt" or "bert"
  int64_t context, batch;
  std::string attention;  // "dense" or "smyrf"
  int64_t n_hashes = 2, cq = 32, ck = 32;

  std::string name() const { return model + "-" + std::to_string(context) + "-" + attention; }
  // Score pairs per query against dense attention's (see the header comment).
  double pairs_ratio() const {
    if (attention == "dense") return 1.0;
    if (model == "gpt") return (static_cast<double>(n_hashes * ck) + cq / 2.0) / (context / 2.0);
    return static_cast<double>(n_hashes * ck) / static_cast<double>(context);
  }
};

std::vector<LmCase> cases() {
  return {
      {"gpt", 256, 8, "dense"},
      {"gpt", 1024, 8, "dense"},
      {"gpt", 1024, 8, "smyrf", 2, 32, 48},
      {"gpt", 4096, 2, "dense"},
      {"gpt", 4096, 2, "smyrf", 2, 64, 128},
      {"bert", 1024, 8, "dense"},
      {"bert", 1024, 8, "smyrf", 2, 128, 128},
  };
}

// User + system time of the whole process (all threads), seconds.
double process_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec * 1e-6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

bool selected(const Options& opt, const LmCase& c) {
  if (opt.shapes.empty()) return true;
  std::stringstream ss(opt.shapes);
  std::string tok;
  while (std::getline(ss, tok, ','))
    if (tok == c.name()) return true;
  return false;
}

// One case's model, optimizer and inputs; step() is one training step.
struct LmStep {
  explicit LmStep(const LmCase& c) {
    models::ModelConfig mc;
    mc.kind = c.model;
    mc.vocab_size = c.model == "bert" ? 257 : 256;  // bytes (+ [MASK] for BERT)
    mc.context = c.context;
    mc.attention = c.attention;
    mc.n_hashes = c.n_hashes;
    mc.q_cluster_size = c.cq;
    mc.k_cluster_size = c.ck;
    Generator init(1);
    if (c.model == "gpt")
      model = std::make_unique<models::GPT>(mc, &init);
    else
      model = std::make_unique<models::BERT>(mc, &init);
    model->train();
    opt_w =
        std::make_unique<train::AdamW>(train::lm_param_groups(*model, 0.1),
                                       train::AdamW::Options{}.set_lr(1e-4).set_weight_decay(0.1));
    // Random byte windows; BERT predicts 15% of the positions (the rest are ignored, -100).
    Generator data(2);
    idx = randint(0, 256, {c.batch, c.context}, DType::Int64, &data);
    targets = randint(0, 256, {c.batch, c.context}, DType::Int64, &data);
    if (c.model == "bert") {
      const Tensor keep = rand({c.batch, c.context}, {}, &data) < 0.15;
      targets = where(keep, targets, full({c.batch, c.context}, -100.0, TensorOptions(kInt64)));
    }
  }
  void step() {
    opt_w->zero_grad();
    Tensor loss = models::TransformerLM::loss(model->forward(idx, {}), targets);
    loss.backward();
    opt_w->step();
  }
  std::unique_ptr<models::TransformerLM> model;
  std::unique_ptr<train::AdamW> opt_w;
  Tensor idx, targets;
};

// Peak resident memory one step adds, after one warm-up step. Runs with every buffer above
// 64 KiB mapped and unmapped on its own (pin_mmap_threshold), before any timing in this process
// has filled malloc's heap: freed heap chunks stay resident and would inflate the figure.
double measure_memory(const LmCase& c) {
  LmStep s(c);
  s.step();
  return peak_added_mib([&] { s.step(); });
}

void run_case(const Options& opt, const LmCase& c, double mib) {
  LmStep s(c);
  const int repeats = opt.repeats > 0 ? opt.repeats : 3;
  const int warmup = std::max(1, opt.warmup > 1 ? 1 : opt.warmup);
  for (int i = 0; i < warmup; ++i) s.step();
  const double cpu0 = process_cpu_seconds();
  const Timing t = measure([&] { s.step(); }, 0, repeats, 0.0);
  const double cpu_ms = 1000.0 * (process_cpu_seconds() - cpu0) / t.runs;
  const double tokens = static_cast<double>(c.batch * c.context);
  Record r("lm-step");
  r.set("shape", c.name())
      .set("model", c.model)
      .set("context", c.context)
      .set("batch", c.batch)
      .set("attention", c.attention);
  if (c.attention == "smyrf") r.set("n_hashes", c.n_hashes).set("cq", c.cq).set("ck", c.ck);
  r.set("attn_pairs_ratio", c.pairs_ratio())
      .set("threads", effective_threads(opt))
      .timing(t)
      .set("cpu_ms_per_step", cpu_ms)
      .set("tokens_per_s", tokens / (t.median_ms / 1000.0))
      .set("peak_step_mib", mib)
      .set("parameters", s.model->num_parameters());
  r.print(opt);
}

}  // namespace

SMYRF_BENCH_WORKLOAD("lm-step",
                     "GPT/BERT training step (fwd, loss, bwd, AdamW): tokens/s and step memory "
                     "at contexts 256..4096, dense and SMYRF") {
  std::vector<LmCase> chosen;
  for (const LmCase& c : cases())
    if (selected(opt, c)) chosen.push_back(c);
  // Memory first, for every case, while malloc's heap is still empty; then the timing under the
  // training loop's malloc policy.
  pin_mmap_threshold();
  std::vector<double> mib;
  for (const LmCase& c : chosen) mib.push_back(measure_memory(c));
  train::retain_freed_memory();
  kernels::cpu::set_host_cache_limit(kernels::cpu::host_cache_default_limit());
  for (size_t i = 0; i < chosen.size(); ++i) run_case(opt, chosen[i], mib[i]);
}

}  // namespace smyrf::bench
