// Benchmark workloads behind `smyrf bench <workload>`.
//
// A workload registers itself with SMYRF_BENCH_WORKLOAD(name, help) { ... } in any bench/*.cpp;
// the bench library is linked whole into the CLI, so registration cannot be dropped by the linker.
// Every measurement is printed as one JSON line (with --json) or as a readable table row.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace smyrf::bench {

struct Options {
  bool json = false;           // one JSON object per line instead of a table
  std::string device = "cpu";  // "cpu" or "cuda"
  int warmup = 2;              // untimed runs before measuring
  int repeats = 0;             // timed runs; 0 lets the workload choose
  int threads = 0;             // 0 = the OpenMP default
  std::string shapes;          // optional workload-specific shape filter, e.g. "512,1024"
};

struct Timing {
  double median_ms = 0;
  double min_ms = 0;
  int runs = 0;
};

// Runs fn warmup times, then repeats times (or until min_seconds have passed, at least 3 runs),
// and returns the median and the minimum wall time.
Timing measure(const std::function<void()>& fn, int warmup, int repeats, double min_seconds = 0.3);

// One measurement: fields are printed in insertion order. Values are numbers or strings.
class Record {
 public:
  explicit Record(const std::string& workload);
  Record& set(const std::string& key, const std::string& value);
  Record& set(const std::string& key, const char* value);
  Record& set(const std::string& key, double value);
  Record& set(const std::string& key, int64_t value);
  Record& set(const std::string& key, int value) { return set(key, static_cast<int64_t>(value)); }
  Record& timing(const Timing& t);
  void print(const Options& opt) const;

 private:
  std::vector<std::pair<std::string, std::string>> fields_;  // value already JSON-encoded
};

using WorkloadFn = std::function<void(const Options&)>;

struct Workload {
  std::string help;
  WorkloadFn fn;
};

std::map<std::string, Workload>& workloads();

struct Registrar {
  Registrar(const char* name, const char* help, WorkloadFn fn);
};

// Peak throughput of this machine used for "percent of peak" (GFLOP/s, fp32, all threads).
// SMYRF_PEAK_GFLOPS overrides the estimate.
double peak_gflops(int threads);

int effective_threads(const Options& opt);

// The entries of a comma-separated list (--shapes values, environment filters), in order; an
// empty list has none.
std::vector<std::string> list_entries(const std::string& list);

}  // namespace smyrf::bench

#define SMYRF_BENCH_CONCAT2(a, b) a##b
#define SMYRF_BENCH_CONCAT(a, b) SMYRF_BENCH_CONCAT2(a, b)
#define SMYRF_BENCH_WORKLOAD(name, help)                                                     \
  static void SMYRF_BENCH_CONCAT(smyrf_bench_fn_, __LINE__)(const ::smyrf::bench::Options&); \
  static ::smyrf::bench::Registrar SMYRF_BENCH_CONCAT(smyrf_bench_reg_, __LINE__)(           \
      name, help, SMYRF_BENCH_CONCAT(smyrf_bench_fn_, __LINE__));                            \
  static void SMYRF_BENCH_CONCAT(smyrf_bench_fn_, __LINE__)(const ::smyrf::bench::Options& opt)
