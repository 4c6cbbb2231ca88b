// Files of a training run folder, shared by the GAN and LM training loops.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace smyrf::train {

// dir/file as a string.
std::string run_path(const std::string& dir, const std::string& file);

// Keeps the JSON-lines log entries up to `step` (a resumed run rewrites what the interrupted one
// logged after its checkpoint; a torn last line from a crash is dropped), rewrites the file
// atomically, and returns the kept entries parsed. Errors are reported under `op`.
std::vector<nlohmann::json> trim_run_log(const std::string& path, int64_t step, const char* op);

}  // namespace smyrf::train
