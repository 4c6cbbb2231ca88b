// `smyrf study grads`: how far SMYRF's gradients are from dense attention's, on synthetic inputs
// or on q, k, v and upstream gradients captured from a layer of a checkpoint
// (train/grad_study.h does the work).
#include <cstdio>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "train/grad_study.h"

namespace smyrf::apps {

void add_study_command(CLI::App& app) {
  auto* study = app.add_subcommand("study", "Measurement studies");
  study->require_subcommand(1);
  auto* cmd = study->add_subcommand(
      "grads", "Compare SMYRF and dense attention gradients (CSV, plots, report.md)");
  static train::StudyOptions o;
  cmd->add_option("--out", o.out, "output folder")->capture_default_str();
  cmd->add_option("--seed", o.seed, "seed of inputs and hashes (same seed, same numbers)")
      ->capture_default_str();
  cmd->add_option("--checkpoint", o.checkpoint,
                  "an `smyrf lm train` or `smyrf gan train` run folder (empty: synthetic inputs)");
  cmd->add_option("--layer", o.layer,
                  "attention layer to capture, e.g. transformer.h.0.attn, or for a GAN run "
                  "G.<path>, G_ema.<path> or D.<path> (empty: all)");
  cmd->add_option("--batch", o.batch, "sequences / images captured")->capture_default_str();
  cmd->add_option(
         "--train-steps", o.train_steps,
         "steps of the parameter-gradient comparison on a checkpoint (LM or GAN: G and D; 0: skip)")
      ->capture_default_str();
  cmd->add_option("--kinds", o.kinds, "synthetic inputs: gaussian, clustered")
      ->capture_default_str();
  cmd->add_option("--n", o.n, "synthetic sequence length")->capture_default_str();
  cmd->add_option("--d", o.d, "synthetic head size")->capture_default_str();
  cmd->add_option("--heads", o.heads, "synthetic heads")->capture_default_str();
  cmd->add_option("--lengths", o.lengths, "synthetic length sweep")->capture_default_str();
  cmd->add_option("--temperatures", o.temperatures,
                  "synthetic temperature sweep (<1 sharp, >1 flat attention)")
      ->capture_default_str();
  cmd->add_option("--n-hashes", o.n_hashes, "hash rounds of the grid and budgets")
      ->capture_default_str();
  cmd->add_option("--clusters", o.clusters, "query cluster sizes of the grid")
      ->capture_default_str();
  cmd->add_option("--budgets", o.budgets, "attention-memory budgets n_hashes*Ck/Nk")
      ->capture_default_str();
  cmd->add_option("--seeds", o.seed_counts, "numbers of hash seeds for bias and variance")
      ->capture_default_str();
  cmd->add_option("--device", o.device,
                  "where the attention ops run: cpu (float64) or cuda (float32 on the GPU, "
                  "metrics in float64 on the host)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_flag("--float32-inputs", o.float32_inputs,
                "round inputs to float32 on the CPU too (what a CUDA run measures)");
  cmd->add_flag("!--no-progress", o.progress, "no progress bar");
  cmd->callback([] {
    train::StudyResult r = train::run_grad_study(o);
    std::printf("%zu measurements; wrote", r.rows.size());
    for (const std::string& f : r.files) std::printf(" %s/%s", o.out.c_str(), f.c_str());
    std::printf("\n");
  });
}

}  // namespace smyrf::apps
