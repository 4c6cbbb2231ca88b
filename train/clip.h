// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace smyrf::train {

// The L2 norm of all gradients taken together (parameters without a gradient are skipped). When
// it exceeds max_norm, every gradient is scaled in place by max_norm / (norm + 1e-6). Returns the
// norm before clipping (NaN or inf when a gradient holds one; then nothing is scaled). Gradients
// must be float32 or float64, on the CPU or a CUDA device (each one's sum of squares is taken
// where it lives; the same norm for any thread count). max_norm <= 0 only measures.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm);

}  // namespace smyrf::train
