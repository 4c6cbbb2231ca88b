#include "bench/registry.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <nlohmann/json.hpp>

namespace smyrf::bench {

Timing measure(const std::function<void()>& fn, int warmup, int repeats, double min_seconds) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  double total = 0;
  const int max_runs = repeats > 0 ? repeats : 1000;
  while (static_cast<int>(ms.size()) < max_runs) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    auto t1 = std::chrono::steady_clock::now();
    double m = std::chrono::duration<double, std::milli>(t1 - t0).count();
    ms.push_back(m);
    total += m;
    if (repeats <= 0 && ms.size() >= 3 && total >= min_seconds * 1e3) break;
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  Timing t;
  t.runs = static_cast<int>(sorted.size());
  t.min_ms = sorted.front();
  t.median_ms = sorted[sorted.size() / 2];
  if (sorted.size() % 2 == 0)
    t.median_ms = 0.5 * (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]);
  return t;
}

Record::Record(const std::string& workload) { set("workload", workload); }

Record& Record::set(const std::string& key, const std::string& value) {
  fields_.emplace_back(key, nlohmann::json(value).dump());
  return *this;
}
Record& Record::set(const std::string& key, const char* value) {
  return set(key, std::string(value));
}
Record& Record::set(const std::string& key, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", value);
  fields_.emplace_back(key, buf);
  return *this;
}
Record& Record::set(const std::string& key, int64_t value) {
  fields_.emplace_back(key, std::to_string(value));
  return *this;
}
Record& Record::timing(const Timing& t) {
  set("median_ms", t.median_ms);
  set("min_ms", t.min_ms);
  return set("runs", static_cast<int64_t>(t.runs));
}

void Record::print(const Options& opt) const {
  std::ostringstream os;
  if (opt.json) {
    os << "{";
    for (size_t i = 0; i < fields_.size(); ++i)
      os << (i ? ", " : "") << nlohmann::json(fields_[i].first).dump() << ": " << fields_[i].second;
    os << "}";
  } else {
    for (size_t i = 0; i < fields_.size(); ++i) {
      std::string v = fields_[i].second;
      if (!v.empty() && v.front() == '"') v = v.substr(1, v.size() - 2);
      os << (i ? "  " : "") << fields_[i].first << "=" << v;
    }
  }
  std::printf("%s\n", os.str().c_str());
  std::fflush(stdout);
}

std::map<std::string, Workload>& workloads() {
  static std::map<std::string, Workload> w;
  return w;
}

Registrar::Registrar(const char* name, const char* help, WorkloadFn fn) {
  workloads()[name] = Workload{help, std::move(fn)};
}

double peak_gflops(int threads) {
  if (const char* env = std::getenv("SMYRF_PEAK_GFLOPS")) return std::atof(env);
  // The peak issue #3 names for our 2-core AMD Zen targets: 2.5 GHz x 16 fp32 FLOP/cycle (its
  // 256-bit FMAs run as two 128-bit halves) = 40 GFLOP/s per core. CPUs with two full 256-bit FMA
  // pipes do 32 FLOP/cycle (the 2-vCPU Xeon we measure on: ~82 GFLOP/s per core), so their
  // percentages exceed 100%; SMYRF_PEAK_GFLOPS sets the machine's own figure.
  return 40.0 * threads;
}

std::vector<std::string> list_entries(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  std::string tok;
  while (std::getline(ss, tok, ',')) out.push_back(tok);
  return out;
}

int effective_threads(const Options& opt) {
  return opt.threads > 0 ? opt.threads : omp_get_max_threads();
}

}  // namespace smyrf::bench
