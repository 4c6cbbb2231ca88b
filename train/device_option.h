// The --device option of the training commands: "cpu", or "cuda" for the first GPU.
#pragma once
#include <string>

#include "core/device.h"

namespace smyrf::train {

// The device `name` names, checked to be usable: an Error naming `op` for another name, or for
// cuda where this binary has no CUDA or no GPU (with the hint to use the CPU).
Device device_option(const std::string& name, const char* op);

}  // namespace smyrf::train
