// The smyrf command-line program: one binary, one subcommand per job.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "apps/commands.h"
#include "core/threading.h"

int main(int argc, char** argv) {
  // GOMP_SPINCOUNT=300 unless the user chose a wait policy (core/threading.h). A/B on this 2-vCPU
  // host at load ~6 (bench gan-step --shapes cpu, 2 interleaved rounds, median ms per iteration):
  // libgomp's default spin 4673 / 5050, GOMP_SPINCOUNT=300 1586 / 1326, OMP_WAIT_POLICY=passive
  // 1716 / 1545; process CPU ms 3668 / 3032 -> 864 / 687. SMYRF_KEEP_OMP_SPIN=1 keeps the default.
  smyrf::reexec_with_short_omp_spin(argv);
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
