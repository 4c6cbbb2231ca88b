// Files of a training run folder, shared by the GAN and LM training loops.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <fstream>
#include <nlohmann/json.hpp>

#include "data/loader.h"
#include "train/checkpoint.h"

namespace smyrf::train {

// dir/file as a string.
std::string run_path(const std::string& dir, const std::string& file);

// Keeps the JSON-lines log entries up to `step` (a resumed run rewrites what the interrupted one
// logged after its checkpoint; a torn last line from a crash is dropped), rewrites the file
// atomically, and returns the kept entries parsed. Errors are reported under `op`.
std::vector<nlohmann::json> trim_run_log(const std::string& path, int64_t step, const char* op);

// A run's JSON-lines log: a resumed run keeps the entries up to `step` (trim_run_log), a new one
// starts an empty file; write() appends one line and flushes; entries() are all of them, parsed.
class RunLog {
 public:
  RunLog(const std::string& path, bool resuming, int64_t step, const char* op);
  void write(const nlohmann::json& j);
  const std::vector<nlohmann::json>& entries() const { return entries_; }

 private:
  std::vector<nlohmann::json> entries_;
  std::ofstream out_;
};

// A training loop's checkpoint `name` in `dir` with the data-loader position in its sidecar
// ("epoch", "batch"): save writes it (atomically, train/checkpoint.h); resume restores the targets
// and the loader and returns the step.
void save_run_checkpoint(const std::string& dir, const std::string& name,
                         const CheckpointTargets& targets, int64_t step,
                         const nlohmann::json& config, const data::DataLoader& loader);
int64_t resume_run_checkpoint(const std::string& dir, const std::string& name,
                              const CheckpointTargets& targets, data::DataLoader& loader);

}  // namespace smyrf::train
