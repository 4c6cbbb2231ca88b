#include "train/run_files.h"

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"

namespace smyrf::train {

std::string run_path(const std::string& dir, const std::string& file) {
  return (std::filesystem::path(dir) / file).string();
}

std::vector<nlohmann::json> trim_run_log(const std::string& path, int64_t step, const char* op) {
  std::vector<nlohmann::json> kept;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.contains("step")) continue;
    if (j["step"].get<int64_t>() <= step) kept.push_back(j);
  }
  std::string text;
  for (auto& j : kept) text += j.dump() + "\n";
  write_file_atomic(path, text, op);
  return kept;
}

RunLog::RunLog(const std::string& path, bool resuming, int64_t step, const char* op) {
  if (resuming)
    entries_ = trim_run_log(path, step, op);
  else
    write_file_atomic(path, "", op);
  out_.open(path, std::ios::app);
}

void RunLog::write(const nlohmann::json& j) {
  entries_.push_back(j);
  out_ << j.dump() << "\n";
  out_.flush();
}

void save_run_checkpoint(const std::string& dir, const std::string& name,
                         const CheckpointTargets& targets, int64_t step,
                         const nlohmann::json& config, const data::DataLoader& loader) {
  const auto pos = loader.position();
  CheckpointInfo info;
  info.step = step;
  info.config = config;
  info.extra = {{"epoch", pos.epoch}, {"batch", pos.batch}};
  save_checkpoint(dir, name, targets, info);
}

int64_t resume_run_checkpoint(const std::string& dir, const std::string& name,
                              const CheckpointTargets& targets, data::DataLoader& loader) {
  CheckpointInfo info = load_checkpoint(dir, name, targets);
  loader.seek({info.extra.at("epoch").get<int64_t>(), info.extra.at("batch").get<int64_t>()});
  return info.step;
}

}  // namespace smyrf::train
