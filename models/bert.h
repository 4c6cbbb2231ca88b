// BERT-style encoder trained by masked-language modelling. The trunk is the GPT's (same names
// under transformer.*, pre-LayerNorm blocks) with non-causal attention; the MLM head is the tied
// token embedding: logits = ln_f(h) @ wte.weight^T.
//
// Vocabulary: config.vocab_size = tokenizer vocabulary + 1; the last id is [MASK].
//
// Masking (mask_tokens): in every sequence exactly max(1, round(p * T)) positions are chosen
// uniformly without replacement (so no batch is ever without targets); each chosen position
// becomes [MASK] with probability 0.8, a uniformly random real token (never [MASK]) with 0.1, and
// stays unchanged with 0.1. Targets hold the original id at chosen positions and -100 (ignored by
// cross_entropy) elsewhere.
#pragma once
#include <utility>
#include <vector>

#include "models/transformer.h"

namespace smyrf::models {

struct MlmBatch {
  Tensor inputs;   // (B, T) int64 with masks applied
  Tensor targets;  // (B, T) int64: original ids at chosen positions, -100 elsewhere
};

// tokens (B, T) int64 in [0, mask_id); real tokens are [0, mask_id). p in (0, 1].
MlmBatch mask_tokens(const Tensor& tokens, int64_t mask_id, Generator& gen, double p = 0.15);

class BERT : public TransformerLM {
 public:
  explicit BERT(const ModelConfig& config, Generator* init_gen = nullptr)
      : TransformerLM(config, /*causal=*/false, init_gen) {}
  std::string name() const override { return "BERT"; }
  int64_t mask_id() const { return config().vocab_size - 1; }
};

}  // namespace smyrf::models
