// Sampling from a causal language model: temperature, top-k and nucleus (top-p) filtering.
#pragma once
#include <cstdint>
#include <vector>

#include "core/random.h"
#include "models/transformer.h"

namespace smyrf::train {

struct SampleOptions {
  double temperature = 1.0;  // <= 0 or top_k == 1: greedy (argmax)
  int64_t top_k = 0;         // keep the k most likely tokens; 0 = all
  double top_p = 1.0;        // keep the smallest set of most likely tokens with mass >= top_p
  models::ForwardOptions forward;
};

// Appends n_new tokens to `prompt` (non-empty) and returns prompt + new tokens. The model sees the
// last `context` tokens each step; it runs in eval mode without gradients (mode restored).
// Uniform draws come from gen. Throws smyrf::Error for an empty prompt, a non-causal model,
// top_p outside (0, 1] or negative top_k.
std::vector<int32_t> sample_tokens(models::TransformerLM& model, std::vector<int32_t> prompt,
                                   int64_t n_new, const SampleOptions& options, Generator& gen);

// The id the filters and temperature choose given one row of logits and a uniform u in [0, 1).
int32_t pick_token(const std::vector<float>& logits, const SampleOptions& options, double u);

}  // namespace smyrf::train
