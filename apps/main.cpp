// The smyrf command-line program: one binary, one subcommand per job.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "apps/commands.h"
#include "core/threading.h"

int main(int argc, char** argv) {
  // GOMP_SPINCOUNT by the load found at start-up (3000 on a quiet machine, 300 beside busy
  // processes) unless the user chose a wait policy (core/threading.h, with the measurements).
  // SMYRF_KEEP_OMP_SPIN=1 keeps libgomp's default.
  smyrf::reexec_with_omp_spin_for_load(argv);
  CLI::App app{"smyrf: a deep-learning framework with SMYRF clustered attention"};
  app.require_subcommand(1);
  smyrf::apps::add_info_command(app);
  smyrf::apps::add_demo_command(app);
  smyrf::apps::add_bench_command(app);
  smyrf::apps::add_classifier_command(app);
  smyrf::apps::add_lm_command(app);
  smyrf::apps::add_gan_command(app);
  smyrf::apps::add_study_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "smyrf: %s\n", e.what());
    return 1;
  }
  return smyrf::apps::exit_code();
}
