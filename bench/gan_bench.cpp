// `smyrf bench gan-step`: one full SMYRF-BigGAN training iteration, exactly as `smyrf gan train`
// runs it (train::gan_iteration, the loop's own step function): d_steps D steps (G forward without
// gradients, D forward on cat(fake, real), hinge loss, backward, Adam(0, 0.999) on D), one G step
// (G and D forward, D's weights frozen, backward, Adam on G), the spectral-norm power iteration of
// every SN layer in each training forward, and the EMA update of G_ema (past ema_start, so the
// decaying update is what is timed). Not included: data loading (the real batches are random
// images in [-1, 1] made once), logging, grids and checkpoints.
//
// Cases (batch 32 unless --shapes names others):
//   cpu          biggan.md's CPU configuration: 32x32x1, ch 8 (widths 32), dim_z 64, 2 D steps,
//                SMYRF attention (2 hashes, Cq 128 / Ck 32) in G at 32x32 and D at 16x16
//   cpu-dense    its dense-attention twin
//   ch32-attn16  the issue's BigGAN-style 32x32 pair: ch 32 (widths 128), dim_z 120, shared 128,
//                3 image channels (CIFAR-like), dense attention at 16x16 in G and D, 1 D step
// Prints images/s (batch / median iteration seconds, the unit of `gan train` and of the issue),
// median and minimum ms, the median process CPU ms per iteration (cpu_ms), and the parameter counts
// of G and D (bench/reference/biggan_torch.py prints the same for its PyTorch twin).
#include <time.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "bench/registry.h"
#include "core/random.h"
#include "models/biggan.h"
#include "train/alloc_policy.h"
#include "train/gan_train.h"
#include "train/optim.h"

namespace smyrf::bench {
namespace {

struct GanCase {
  std::string name;
  train::GanTrainOptions options;
};

std::vector<GanCase> cases() {
  std::vector<GanCase> out;
  train::GanTrainOptions cpu;
  cpu.model = models::BigGanConfig::cpu();
  cpu.batch = 32;
  cpu.d_steps = 2;
  out.push_back({"cpu", cpu});
  train::GanTrainOptions dense = cpu;
  dense.model.attention = "dense";
  out.push_back({"cpu-dense", dense});
  train::GanTrainOptions issue;
  issue.model = models::BigGanConfig::gpu();  // ch 32, dim_z 120, shared 128
  issue.model.attention = "dense";
  issue.model.g_attention_res = 16;
  issue.model.d_attention_res = 16;
  issue.model.image_channels = 3;
  issue.batch = 32;
  issue.d_steps = 1;
  out.push_back({"ch32-attn16", issue});
  return out;
}

double process_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

bool selected(const Options& opt, const std::string& name) {
  if (opt.shapes.empty()) return true;
  std::stringstream ss(opt.shapes);
  std::string tok;
  while (std::getline(ss, tok, ','))
    if (tok == name) return true;
  return false;
}

void run_case(const Options& opt, const GanCase& c) {
  const train::GanTrainOptions& o = c.options;
  const models::BigGanConfig& m = o.model;
  Generator init(1);
  models::BigGanGenerator G(m, &init);
  models::BigGanDiscriminator D(m, &init);
  models::BigGanGenerator G_ema(m, &init);
  models::ema_update(G_ema, G, 0.0);
  G_ema.eval();
  auto adam = [&](double lr) {
    return train::AdamW::Options{}
        .set_lr(lr)
        .set_betas(o.beta1, o.beta2)
        .set_eps(o.adam_eps)
        .set_weight_decay(0)
        .set_decoupled(false);
  };
  train::AdamW opt_g(G.parameters(), adam(o.g_lr));
  train::AdamW opt_d(D.parameters(), adam(o.d_lr));
  Generator noise(2), data(3);
  // Two real batches, alternated: D never sees the same batch twice in a row.
  std::vector<std::vector<Tensor>> real;
  for (int i = 0; i < 2; ++i)
    real.push_back(
        {rand({o.batch, m.image_channels, m.resolution, m.resolution}, {}, &data) * 2.0 - 1.0,
         randint(0, m.n_classes, {o.batch}, DType::Int64, &data)});
  size_t next = 0;
  const train::GanIteration it{
      G, D, &G_ema, opt_g, opt_d, noise, [&] {
                                 return real[next++ % real.size()]; }};
  int64_t step = o.ema_start;  // time the decaying EMA, not the initial copy
  auto iteration = [&] { (void)train::gan_iteration(it, o, ++step); };
  const int repeats = opt.repeats > 0 ? opt.repeats : 3;
  for (int i = 0; i < std::max(1, opt.warmup > 1 ? 1 : opt.warmup); ++i) iteration();
  // Wall time, and the process CPU time of each iteration: on a shared host an iteration longer
  // than a scheduler slice is preempted, which inflates wall time but not CPU time; with one
  // thread CPU time is the load-independent measure (with more it also counts idle spinning).
  std::vector<double> wall, cpu;
  for (int i = 0; i < repeats; ++i) {
    const double c0 = process_cpu_ms();
    const auto t0 = std::chrono::steady_clock::now();
    iteration();
    wall.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    cpu.push_back(process_cpu_ms() - c0);
  }
  Timing t;
  t.median_ms = median(wall);
  t.min_ms = *std::min_element(wall.begin(), wall.end());
  t.runs = repeats;
  Record r("gan-step");
  r.set("shape", c.name)
      .set("attention", m.attention)
      .set("resolution", m.resolution)
      .set("ch", m.ch)
      .set("image_channels", m.image_channels)
      .set("g_attention_res", m.g_attention_res)
      .set("d_attention_res", m.d_attention_res)
      .set("batch", o.batch)
      .set("d_steps", o.d_steps)
      .set("includes", "D steps + G step + Adam + SN power iterations + EMA")
      .set("threads", effective_threads(opt))
      .timing(t)
      .set("images_per_s", static_cast<double>(o.batch) / (t.median_ms / 1000.0))
      .set("cpu_ms", median(cpu))
      .set("g_parameters", G.num_parameters())
      .set("d_parameters", D.num_parameters());
  r.print(opt);
}

}  // namespace

SMYRF_BENCH_WORKLOAD("gan-step",
                     "one BigGAN training iteration (D steps, G step, Adam, SN, EMA) as gan train "
                     "runs it: images/s for the CPU configuration (SMYRF and dense) and the "
                     "issue's ch-32 pair") {
  train::retain_freed_memory();  // as gan train runs (train/alloc_policy.h)
  for (const GanCase& c : cases())
    if (selected(opt, c.name)) run_case(opt, c);
}

}  // namespace smyrf::bench
