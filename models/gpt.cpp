#include "models/gpt.h"

#include "models/bert.h"

namespace smyrf::models {

TransformerLM::TransformerLM(const ModelConfig& config, bool causal, Generator* init_gen)
    : config_(config), causal_(causal) {
  // The dropout stream is seeded from the init stream so one seed fixes the whole run.
  dropout_gen_.manual_seed((init_gen ? *init_gen : default_generator()).next_u64());
  transformer = register_module("transformer",
                                std::make_shared<Transformer>(config, init_gen, &dropout_gen_));
  init_gpt2(*transformer, config.layers, init_gen);
}

Tensor TransformerLM::forward(const Tensor& idx, const ForwardOptions& o) {
  Tensor h = transformer->forward(idx, causal_, o);
  // logits = h wte^T: linear folds (B, T) into one GEMM's rows (matmul ran one per batch entry)
  return linear(h, transformer->wte->weight);
}

Tensor TransformerLM::loss(const Tensor& logits, const Tensor& targets) {
  const int64_t V = logits.size(-1);
  return cross_entropy(logits.reshape({-1, V}), targets.reshape({-1}), -100);
}

std::vector<std::pair<std::string, Generator*>> TransformerLM::generators() {
  std::vector<std::pair<std::string, Generator*>> g{{"dropout", &dropout_gen_}};
  for (size_t i = 0; i < transformer->h.size(); ++i)
    g.emplace_back("attn." + std::to_string(i), &transformer->h[i]->attn->generator());
  return g;
}

std::unique_ptr<TransformerLM> make_model(const ModelConfig& config, Generator* init_gen) {
  config.validate();
  if (config.kind == "bert") return std::make_unique<BERT>(config, init_gen);
  return std::make_unique<GPT>(config, init_gen);
}

}  // namespace smyrf::models
