// NamedTensors: an ordered list of (name, tensor) pairs, the currency of state dicts, optimizer
// state and safetensors files. A vector (not a map) because order is meaningful: it is the
// registration order PyTorch users see in state_dict().
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace smyrf {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

}  // namespace smyrf
