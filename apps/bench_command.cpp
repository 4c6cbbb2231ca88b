#include <omp.h>

#include <cstdio>
#include <string>

#include "apps/commands.h"
#include "bench/registry.h"

namespace smyrf::apps {

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Run a benchmark workload (one line per measurement)");
  static std::string workload;
  static bench::Options opt;
  cmd->add_option("workload", workload, "workload name; 'list' shows them all")->required();
  cmd->add_flag("--json", opt.json, "print one JSON object per line");
  cmd->add_option("--device", opt.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--threads", opt.threads, "threads (default: all OpenMP threads)");
  cmd->add_option("--repeats", opt.repeats, "timed runs per measurement (default: adaptive)");
  cmd->add_option("--warmup", opt.warmup, "untimed runs before measuring");
  cmd->add_option("--shapes", opt.shapes, "workload-specific shape filter, e.g. 512,1024");
  cmd->callback([] {
    auto& all = bench::workloads();
    if (workload == "list") {
      for (auto& [name, w] : all) std::printf("%-16s %s\n", name.c_str(), w.help.c_str());
      return;
    }
    auto it = all.find(workload);
    if (it == all.end()) {
      std::string names;
      for (auto& [name, w] : all) names += " " + name;
      throw CLI::ValidationError("workload", "unknown workload '" + workload + "'; available:" + names);
    }
    if (opt.threads > 0) omp_set_num_threads(opt.threads);
    it->second.fn(opt);
  });
}

}  // namespace smyrf::apps
