#include "models/transformer.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "layers/init.h"

namespace smyrf::models {

using json = nlohmann::json;

layers::AttentionKind parse_attention_kind(const std::string& s) {
  if (s == "dense") return layers::AttentionKind::Dense;
  if (s == "smyrf") return layers::AttentionKind::Smyrf;
  SMYRF_CHECK_HINT(false, "ModelConfig", "unknown attention '" << s << "'", "use dense or smyrf");
  return layers::AttentionKind::Dense;
}

json ModelConfig::to_json() const {
  return json{{"kind", kind},
              {"vocab_size", vocab_size},
              {"context", context},
              {"layers", layers},
              {"d_model", d_model},
              {"heads", heads},
              {"mlp_ratio", mlp_ratio},
              {"dropout", dropout},
              {"attn_dropout", attn_dropout},
              {"attention", attention},
              {"n_hashes", n_hashes},
              {"q_cluster_size", q_cluster_size},
              {"k_cluster_size", k_cluster_size}};
}

ModelConfig ModelConfig::from_json(const json& j) {
  SMYRF_CHECK(j.is_object(), "ModelConfig", "expected a JSON object, got " << j.dump());
  ModelConfig c;
  try {
    // value() keeps the default for a missing key and throws for a wrong type
    c.kind = j.value("kind", c.kind);
    c.vocab_size = j.value("vocab_size", c.vocab_size);
    c.context = j.value("context", c.context);
    c.layers = j.value("layers", c.layers);
    c.d_model = j.value("d_model", c.d_model);
    c.heads = j.value("heads", c.heads);
    c.mlp_ratio = j.value("mlp_ratio", c.mlp_ratio);
    c.dropout = j.value("dropout", c.dropout);
    c.attn_dropout = j.value("attn_dropout", c.attn_dropout);
    c.attention = j.value("attention", c.attention);
    c.n_hashes = j.value("n_hashes", c.n_hashes);
    c.q_cluster_size = j.value("q_cluster_size", c.q_cluster_size);
    c.k_cluster_size = j.value("k_cluster_size", c.k_cluster_size);
  } catch (const json::exception& e) {
    SMYRF_CHECK(false, "ModelConfig", "bad field in " << j.dump() << ": " << e.what());
  }
  c.validate();
  return c;
}

void ModelConfig::validate() const {
  SMYRF_CHECK_HINT(kind == "gpt" || kind == "bert", "ModelConfig", "unknown kind '" << kind << "'",
                   "use gpt or bert");
  SMYRF_CHECK(
      vocab_size > 0 && context > 0 && layers > 0 && d_model > 0 && heads > 0 && mlp_ratio > 0,
      "ModelConfig",
      "sizes must be positive: vocab " << vocab_size << ", context " << context << ", layers "
                                       << layers << ", d_model " << d_model << ", heads " << heads);
  SMYRF_CHECK_HINT(d_model % heads == 0, "ModelConfig",
                   "d_model " << d_model << " is not a multiple of heads " << heads,
                   "head size = d_model / heads");
  SMYRF_CHECK(dropout >= 0 && dropout < 1 && attn_dropout >= 0 && attn_dropout < 1, "ModelConfig",
              "dropout must lie in [0, 1), got " << dropout << ", " << attn_dropout);
  parse_attention_kind(attention);
  SMYRF_CHECK(n_hashes > 0 && q_cluster_size > 0 && k_cluster_size > 0, "ModelConfig",
              "SMYRF n_hashes and cluster sizes must be positive, got "
                  << n_hashes << ", " << q_cluster_size << ", " << k_cluster_size);
}

layers::AttentionKind ModelConfig::attention_kind() const {
  return parse_attention_kind(attention);
}

layers::SmyrfConfig ModelConfig::smyrf_config() const {
  layers::SmyrfConfig s;
  s.n_hashes = n_hashes;
  s.q_cluster_size = q_cluster_size;
  s.k_cluster_size = k_cluster_size;
  return s;
}

MLP::MLP(int64_t d, int64_t hidden, Generator* gen) {
  c_fc = register_module("c_fc", std::make_shared<layers::Linear>(d, hidden, true, gen));
  c_proj = register_module("c_proj", std::make_shared<layers::Linear>(hidden, d, true, gen));
}

Tensor MLP::forward(const Tensor& x) { return c_proj->forward(gelu(c_fc->forward(x))); }

Block::Block(const ModelConfig& c, Generator* init_gen, Generator* dropout_gen)
    : dropout_(c.dropout), dropout_gen_(dropout_gen) {
  ln_1 = register_module("ln_1", std::make_shared<layers::LayerNorm>(Shape{c.d_model}));
  attn = register_module("attn", std::make_shared<layers::Attention>(
                                     c.d_model, c.heads, c.attention_kind(), c.smyrf_config(),
                                     c.attn_dropout, true, init_gen));
  ln_2 = register_module("ln_2", std::make_shared<layers::LayerNorm>(Shape{c.d_model}));
  mlp = register_module("mlp", std::make_shared<MLP>(c.d_model, c.mlp_ratio * c.d_model, init_gen));
}

Tensor Block::forward(const Tensor& x, bool causal, const ForwardOptions& o,
                      std::optional<uint64_t> layer_seed) {
  layers::AttentionCall call;
  call.causal = causal;
  call.kind = o.attention;
  call.smyrf = o.smyrf;
  call.seed = layer_seed;
  Tensor a = attn->forward(ln_1->forward(x), Tensor(), call);
  Tensor y = x + dropout(a, dropout_, is_training(), dropout_gen_);
  Tensor m = mlp->forward(ln_2->forward(y));
  return y + dropout(m, dropout_, is_training(), dropout_gen_);
}

Transformer::Transformer(const ModelConfig& c, Generator* init_gen, Generator* dropout_gen)
    : config_(c), dropout_gen_(dropout_gen) {
  c.validate();
  wte = register_module("wte",
                        std::make_shared<layers::Embedding>(c.vocab_size, c.d_model, init_gen));
  wpe = register_module("wpe", std::make_shared<layers::Embedding>(c.context, c.d_model, init_gen));
  // torch.nn.ModuleList naming: h.0, h.1, ...
  auto list = register_module("h", std::make_shared<layers::Sequential>());
  for (int64_t i = 0; i < c.layers; ++i) {
    h.push_back(std::make_shared<Block>(c, init_gen, dropout_gen));
    list->add(h.back());
  }
  ln_f = register_module("ln_f", std::make_shared<layers::LayerNorm>(Shape{c.d_model}));
}

Tensor Transformer::forward(const Tensor& idx, bool causal, const ForwardOptions& o) {
  SMYRF_CHECK_HINT(idx.defined() && idx.dim() == 2 && idx.dtype() == DType::Int64, "Transformer",
                   "idx must be (batch, T) int64, got "
                       << (idx.defined() ? shape_str(idx.shape()) + " " + dtype_name(idx.dtype())
                                         : std::string("undefined")),
                   "token ids from a tokenizer");
  const int64_t T = idx.size(1);
  SMYRF_CHECK_HINT(T >= 1 && T <= config_.context, "Transformer",
                   "sequence length " << T << " exceeds the context " << config_.context,
                   "crop the input to the last `context` tokens");
  Tensor pos = arange(T, TensorOptions(DType::Int64).set_device(idx.device()));
  Tensor x = wte->forward(idx) + wpe->forward(pos);  // (B, T, D) + (T, D)
  x = dropout(x, config_.dropout, is_training(), dropout_gen_);
  for (size_t i = 0; i < h.size(); ++i) {
    std::optional<uint64_t> s;
    if (o.seed) s = *o.seed + i;
    x = h[i]->forward(x, causal, o, s);
  }
  return ln_f->forward(x);
}

void init_gpt2(Transformer& t, int64_t layers, Generator* gen) {
  NoGradGuard ng;
  const double proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(layers));
  for (auto& [name, p] : t.named_parameters()) {
    const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    const bool is_norm = name.find("ln_") != std::string::npos;
    if (is_norm) {
      p.fill_(is_bias ? 0.0 : 1.0);
    } else if (is_bias) {
      p.zero_();
    } else {
      const bool residual = name.find("attn.out_proj.weight") != std::string::npos ||
                            name.find("mlp.c_proj.weight") != std::string::npos;
      layers::init::normal_(p, 0.0, residual ? proj_std : 0.02, gen);
    }
  }
}

}  // namespace smyrf::models
