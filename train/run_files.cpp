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

}  // namespace smyrf::train
