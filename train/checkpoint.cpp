#include "train/checkpoint.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <set>

#include "core/atomic_file.h"
#include "core/safetensors.h"

namespace smyrf::train {
namespace {

using json = nlohmann::json;
constexpr const char* kOp = "checkpoint";
constexpr const char* kFormat = "smyrf-checkpoint";
constexpr int kVersion = 1;

std::string join(const std::string& dir, const std::string& file) {
  return dir.empty() ? file : (dir.back() == '/' ? dir + file : dir + "/" + file);
}

// Random per save: ties the three files of one save together (see the header).
std::string new_save_id() {
  std::random_device rd;
  const uint64_t t =
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  const uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ t;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(r));
  return buf;
}

const char* optimizer_kind(const Optimizer* o) {
  if (!o) return "none";
  if (dynamic_cast<const SGD*>(o)) return "SGD";
  if (dynamic_cast<const AdamW*>(o)) return "AdamW";
  return "other";
}

void check_targets(const CheckpointTargets& t) {
  SMYRF_CHECK_HINT(t.model != nullptr, kOp, "no model given", "set CheckpointTargets::model");
  std::set<std::string> names;
  for (auto& [n, g] : t.generators) {
    SMYRF_CHECK(g != nullptr, kOp, "generator '" << n << "' is null");
    SMYRF_CHECK(names.insert(n).second, kOp, "generator name '" << n << "' appears twice");
  }
}

// Loads a safetensors file of this save, refusing one written by another save.
NamedTensors load_part(const std::string& path, const std::string& id, const std::string& sidecar) {
  SafetensorsContents c = load_safetensors(path);
  auto it = c.metadata.find("checkpoint_id");
  const std::string got = it == c.metadata.end() ? "<none>" : it->second;
  SMYRF_CHECK_HINT(
      got == id, kOp,
      "'" << path << "' belongs to save " << got << " but '" << sidecar << "' expects save " << id,
      "a save was interrupted between files; resume from another checkpoint");
  return std::move(c.tensors);
}

}  // namespace

bool checkpoint_exists(const std::string& dir, const std::string& name) {
  struct stat st;
  return ::stat(join(dir, name + ".json").c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

void save_checkpoint(const std::string& dir, const std::string& name,
                     const CheckpointTargets& targets, const CheckpointInfo& info) {
  check_targets(targets);
  const std::string id = new_save_id();
  const SafetensorsMetadata meta = {
      {"format", "pt"}, {"checkpoint_id", id}, {"step", std::to_string(info.step)}};

  json side;
  side["format"] = kFormat;
  side["version"] = kVersion;
  side["checkpoint_id"] = id;
  side["step"] = info.step;
  side["weights"] = name + ".safetensors";
  save_safetensors(join(dir, name + ".safetensors"), targets.model->state_dict(), meta);
  if (targets.optimizer) {
    save_safetensors(join(dir, name + ".optim.safetensors"), targets.optimizer->state(), meta);
    side["optimizer"] = {{"kind", optimizer_kind(targets.optimizer)},
                         {"file", name + ".optim.safetensors"},
                         {"lr", targets.optimizer->lr()}};
  } else {
    side["optimizer"] = nullptr;
  }
  json gens = json::object();
  for (auto& [n, g] : targets.generators) gens[n] = {{"seed", g->seed()}, {"offset", g->offset()}};
  side["generators"] = gens;
  side["config"] = info.config;
  side["extra"] = info.extra;
  // Last: only now does the checkpoint exist for a reader.
  write_file_atomic(join(dir, name + ".json"), side.dump(2) + "\n", kOp);
}

CheckpointInfo load_checkpoint(const std::string& dir, const std::string& name,
                               const CheckpointTargets& targets) {
  check_targets(targets);
  const std::string sidecar = join(dir, name + ".json");
  struct stat st;
  SMYRF_CHECK_HINT(::stat(sidecar.c_str(), &st) == 0, kOp,
                   "sidecar '" << sidecar << "' does not exist",
                   "no complete checkpoint named '" << name << "' in '" << dir << "'");
  json side;
  try {
    side = json::parse(read_file(sidecar, kOp));
  } catch (const json::exception& e) {
    throw Error(kOp, "sidecar '" + sidecar + "' is not valid JSON: " + e.what(),
                "the file is corrupt");
  }
  // Validate the whole sidecar and read every file before restoring anything, so a failed load
  // leaves model, optimizer and generators as they were.
  auto need = [&](const char* key) -> const json& {
    SMYRF_CHECK_HINT(side.is_object() && side.contains(key), kOp,
                     "sidecar '" << sidecar << "' lacks \"" << key << "\"",
                     "the file is corrupt or not a smyrf checkpoint");
    return side[key];
  };
  try {
    SMYRF_CHECK_HINT(need("format") == kFormat && need("version") == kVersion, kOp,
                     "sidecar '" << sidecar << "' has format " << need("format").dump()
                                 << " version " << need("version").dump() << ", expected "
                                 << kFormat << " version " << kVersion,
                     "written by an incompatible version");
    const std::string id = need("checkpoint_id").get<std::string>();
    CheckpointInfo info;
    info.step = need("step").get<int64_t>();
    info.config = need("config");
    info.extra = need("extra");
    NamedTensors weights = load_part(join(dir, need("weights").get<std::string>()), id, sidecar);

    const json& opt = need("optimizer");
    NamedTensors opt_state;
    if (targets.optimizer) {
      SMYRF_CHECK_HINT(
          !opt.is_null(), kOp, "sidecar '" << sidecar << "' has no optimizer state",
          "the checkpoint was saved without an optimizer; load with optimizer = nullptr");
      const std::string kind = opt.at("kind").get<std::string>();
      SMYRF_CHECK_HINT(kind == optimizer_kind(targets.optimizer), kOp,
                       "checkpoint holds " << kind << " state but the optimizer is "
                                           << optimizer_kind(targets.optimizer),
                       "build the same optimizer as the saved run");
      opt_state = load_part(join(dir, opt.at("file").get<std::string>()), id, sidecar);
    }
    const json& gens = need("generators");
    std::vector<std::pair<uint64_t, uint64_t>> gen_states;
    for (auto& [n, g] : targets.generators) {
      SMYRF_CHECK_HINT(gens.contains(n), kOp,
                       "sidecar '" << sidecar << "' has no state for generator '" << n << "'",
                       "the saving run did not register this generator");
      gen_states.emplace_back(gens[n].at("seed").get<uint64_t>(),
                              gens[n].at("offset").get<uint64_t>());
    }

    targets.model->load_state_dict(weights, /*strict=*/true);
    if (targets.optimizer) {
      targets.optimizer->load_state(opt_state);
      targets.optimizer->set_lr(opt.at("lr").get<double>());
    }
    for (size_t i = 0; i < targets.generators.size(); ++i)
      targets.generators[i].second->set_state(gen_states[i].first, gen_states[i].second);
    return info;
  } catch (const json::exception& e) {
    throw Error(kOp, "sidecar '" + sidecar + "' has a malformed field: " + e.what(),
                "the file is corrupt");
  }
}

}  // namespace smyrf::train
