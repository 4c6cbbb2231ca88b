// Shared pieces of the GPT- and BERT-style transformers: the model configuration and the
// pre-LayerNorm transformer block.
//
//   Block(x) = x + drop(attn(ln_1(x)))  then  x + drop(mlp(ln_2(x))),  mlp = c_proj(gelu(c_fc(x)))
//
// Every attention layer is a layers::Attention (dense or SMYRF by configuration, overridable per
// forward call through ForwardOptions), so the same trained weights evaluate either way.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "layers/attention.h"
#include "layers/linear.h"

namespace smyrf::models {

struct ModelConfig {
  std::string kind = "gpt";  // "gpt" (causal LM) or "bert" (masked LM)
  int64_t vocab_size = 256;  // BERT: the tokenizer's vocabulary + 1 ([MASK] is the last id)
  int64_t context = 256;     // maximum sequence length (learned position embeddings)
  int64_t layers = 4;
  int64_t d_model = 256;
  int64_t heads = 4;
  int64_t mlp_ratio = 4;  // hidden width of the MLP = mlp_ratio * d_model
  double dropout = 0.0;   // embedding and residual dropout
  double attn_dropout = 0.0;
  std::string attention = "dense";  // "dense" or "smyrf"
  int64_t n_hashes = 2;
  int64_t q_cluster_size = 32;  // causal SMYRF: query block length
  int64_t k_cluster_size = 32;  // causal SMYRF: window of past keys

  nlohmann::json to_json() const;
  // Missing keys keep their defaults; wrong types or invalid values throw smyrf::Error.
  static ModelConfig from_json(const nlohmann::json& j);
  // Throws smyrf::Error naming the bad field (sizes must be positive, d_model % heads == 0, ...).
  void validate() const;
  layers::AttentionKind attention_kind() const;
  layers::SmyrfConfig smyrf_config() const;
};

layers::AttentionKind parse_attention_kind(const std::string& s);  // "dense" | "smyrf", else Error

// Per-call overrides of the attention layers (evaluation with the other attention).
struct ForwardOptions {
  std::optional<layers::AttentionKind> attention;
  std::optional<layers::SmyrfConfig> smyrf;
  // Fixes the SMYRF hash seeds (layer i uses seed + i) instead of drawing them from the layers'
  // generators: evaluation then reproduces its clusters and leaves the training streams alone.
  std::optional<uint64_t> seed;
};

class MLP : public layers::Module {
 public:
  MLP(int64_t d_model, int64_t hidden, Generator* gen);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "MLP"; }
  std::shared_ptr<layers::Linear> c_fc, c_proj;
};

class Block : public layers::Module {
 public:
  Block(const ModelConfig& c, Generator* init_gen, Generator* dropout_gen);
  // x (B, T, d_model) -> (B, T, d_model). layer_seed: the fixed SMYRF seed for this layer, if any.
  Tensor forward(const Tensor& x, bool causal, const ForwardOptions& o,
                 std::optional<uint64_t> layer_seed);
  std::string name() const override { return "Block"; }
  std::shared_ptr<layers::LayerNorm> ln_1, ln_2;
  std::shared_ptr<layers::Attention> attn;
  std::shared_ptr<MLP> mlp;

 private:
  double dropout_;
  Generator* dropout_gen_;
};

// The shared trunk: token and position embeddings, blocks and the final LayerNorm, registered as
// wte, wpe, h.<i>, ln_f (so the owner naming it "transformer" gives GPT-2's names).
class Transformer : public layers::Module {
 public:
  Transformer(const ModelConfig& c, Generator* init_gen, Generator* dropout_gen);
  // idx (B, T) int64 ids in [0, vocab), T <= context -> hidden states (B, T, d_model).
  Tensor forward(const Tensor& idx, bool causal, const ForwardOptions& o);
  std::string name() const override { return "Transformer"; }
  std::shared_ptr<layers::Embedding> wte, wpe;
  std::vector<std::shared_ptr<Block>> h;
  std::shared_ptr<layers::LayerNorm> ln_f;

 private:
  ModelConfig config_;
  Generator* dropout_gen_;
};

// The common body of GPT and BERT: the trunk named "transformer", the output tied to the token
// embedding (logits = h @ wte.weight^T) and the model's dropout stream. `causal` picks GPT or BERT.
class TransformerLM : public layers::Module {
 public:
  // Throws smyrf::Error for an invalid config (ModelConfig::validate). init_gen (or the default
  // generator) draws the GPT-2 initialisation and seeds the dropout and attention streams.
  TransformerLM(const ModelConfig& config, bool causal, Generator* init_gen);
  // idx (B, T) int64 ids, T <= context -> logits (B, T, vocab_size).
  Tensor forward(const Tensor& idx, const ForwardOptions& o);
  Tensor forward(const Tensor& idx) override { return forward(idx, ForwardOptions{}); }
  // Mean cross-entropy in nats over the targets that are not -100: logits (B, T, V), targets
  // (B, T) int64.
  static Tensor loss(const Tensor& logits, const Tensor& targets);

  const ModelConfig& config() const { return config_; }
  bool causal() const { return causal_; }
  // ("dropout", ...) and ("attn.<i>", ...) per layer: every RNG stream a training run consumes,
  // which a checkpoint must save for an exact resume.
  std::vector<std::pair<std::string, Generator*>> generators();

  std::shared_ptr<Transformer> transformer;

 private:
  ModelConfig config_;
  bool causal_;
  Generator dropout_gen_;
};

// Builds a GPT (kind "gpt") or BERT (kind "bert") from its configuration.
std::unique_ptr<TransformerLM> make_model(const ModelConfig& config, Generator* init_gen = nullptr);

// GPT-2 initialisation: every Linear and Embedding weight N(0, 0.02), biases 0, LayerNorms 1/0,
// and the residual projections (attn.out_proj, mlp.c_proj) N(0, 0.02 / sqrt(2 * layers)).
void init_gpt2(Transformer& t, int64_t layers, Generator* gen);

}  // namespace smyrf::models
