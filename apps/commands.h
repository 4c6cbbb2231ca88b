// Subcommands of the smyrf program. Each add_*_command registers itself on the CLI11 app and
// runs its job from the parse callback; errors are reported by main().
#pragma once
#include <CLI/CLI.hpp>

namespace smyrf::apps {

void add_info_command(CLI::App& app);        // build and machine facts
void add_demo_command(CLI::App& app);        // a short training run that shows a falling loss
void add_bench_command(CLI::App& app);       // benchmark workloads (bench/registry.h)
void add_classifier_command(CLI::App& app);  // FCD classifier: train, calibrate (eval-real)
void add_lm_command(CLI::App& app);          // pretrain, sample and evaluate transformers
void add_gan_command(CLI::App& app);         // train and sample SMYRF-BigGAN
void add_study_command(CLI::App& app);  // gradient study: SMYRF against dense (train/grad_study.h)

// The exit status set by the command that ran (0 unless it reported failure).
int exit_code();
void set_exit_code(int code);

}  // namespace smyrf::apps
