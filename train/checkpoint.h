// Training checkpoints: everything needed to resume a run bit-identically.
//
//   <dir>/<name>.safetensors        model state_dict, PyTorch names and shapes (loads in torch)
//   <dir>/<name>.optim.safetensors  optimizer buffers (Optimizer::state()), when an optimizer is
//   given <dir>/<name>.json               sidecar: format version, step, learning rate, optimizer
//   kind,
//                                   generator states (seed, offset), the caller's config and extra
//                                   JSON (e.g. data-loader position), and the save id
//
// Every file is written atomically, the sidecar last, so the sidecar never names a missing or
// partial file. A crash between files can still leave new weights next to the old sidecar; each
// safetensors file therefore carries the save id of its sidecar in its metadata, and load refuses
// a mixture with an error instead of resuming from inconsistent state.
//
// load_checkpoint validates the sidecar and both files before touching anything, then restores
// the model (strict: every key, same shapes), the optimizer (buffers, step and lr) and the named
// generators, and returns the step, config and extra JSON. Errors are smyrf::Error with op
// "checkpoint" naming the file and what is wrong.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "layers/module.h"
#include "train/optim.h"

namespace smyrf::train {

// What a checkpoint saves from and restores into. The pointers are not owned.
struct CheckpointTargets {
  layers::Module* model = nullptr;  // required
  Optimizer* optimizer = nullptr;   // optional
  // e.g. {{"default", &default_generator()}, {"dropout", &dropout_gen}}; names must be unique
  std::vector<std::pair<std::string, Generator*>> generators;
};

struct CheckpointInfo {
  int64_t step = 0;
  nlohmann::json config = nlohmann::json::object();
  nlohmann::json extra = nlohmann::json::object();
};

void save_checkpoint(const std::string& dir, const std::string& name,
                     const CheckpointTargets& targets, const CheckpointInfo& info);
CheckpointInfo load_checkpoint(const std::string& dir, const std::string& name,
                               const CheckpointTargets& targets);

// True when <dir>/<name>.json exists (a checkpoint was completely saved at least once).
bool checkpoint_exists(const std::string& dir, const std::string& name);

}  // namespace smyrf::train
