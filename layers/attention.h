// Attention layers whose attention is dense or SMYRF, chosen at construction and overridable per
// call, so the same trained weights run either way (autograd/attention_ops.h has the ops).
//
//   Attention        multi-head attention on (B, N, E) sequences, torch.nn.MultiheadAttention
//                    style projections named q_proj, k_proj, v_proj, out_proj (Linear, weight
//                    (out, in)); batch first.
//   SelfAttention2d  the SAGAN/BigGAN self-attention block on (B, C, H, W) feature maps, with
//                    BigGAN's names theta, phi, g, o (1x1 convolutions without bias) and gamma.
//
// Masks follow the ops: bool, TRUE = REAL TOKEN.
//
// Randomness: each layer owns a Generator (seeded from the constructor's generator, or the
// default generator). Every SMYRF call without an explicit seed draws a fresh hash seed from it
// (fresh clusters per step, as the paper), followed by the attention-dropout seed when training;
// last_seed() reports the hash seed of the latest call so a recomputation (activation
// checkpointing, evaluation of the same clusters) can pass it back through AttentionCall::seed.
//
// Capture points (Module hooks, layers/module.h), both layers: forward "q", "k", "v" (the per-head
// inputs of the attention op, (B, H, N, d); SelfAttention2d has H = 1 and pooled keys/values)
// and "out" (its output); backward "grad_out" (the upstream gradient of "out").
#pragma once
#include <memory>
#include <optional>

#include "autograd/attention_ops.h"
#include "layers/conv.h"
#include "layers/linear.h"

namespace smyrf::layers {

enum class AttentionKind { Dense, Smyrf };

struct SmyrfConfig {
  int64_t n_hashes = 2;
  int64_t q_cluster_size = 32;  // Cq
  int64_t k_cluster_size = 32;  // Ck
  SmyrfDuplicates duplicates = SmyrfDuplicates::Multiset;
};

// Per-call settings; every field left unset keeps the layer's own.
struct AttentionCall {
  std::optional<AttentionKind> kind;  // dense or SMYRF for this call only
  std::optional<SmyrfConfig> smyrf;   // SMYRF settings for this call only
  Tensor key_padding_mask;            // (B, Nk) bool, true = real key
  Tensor query_padding_mask;          // (B, Nq) bool, true = real query
  bool causal = false;
  std::optional<uint64_t> seed;             // SMYRF hash seed (else drawn from the layer)
  SmyrfDiagnostics* diagnostics = nullptr;  // filled by SMYRF calls
};

// Multi-head attention: out = out_proj(concat_h attn(q_proj(x)_h, k_proj(kv)_h, v_proj(kv)_h)).
// x (B, Nq, E); kv (B, Nk, kdim) or undefined for self-attention; result (B, Nq, E).
// embed_dim must divide by num_heads (Error otherwise). Scale 1/sqrt(E / heads). dropout is the
// attention-probability dropout, active in training mode.
class Attention : public Module {
 public:
  Attention(int64_t embed_dim, int64_t num_heads, AttentionKind kind = AttentionKind::Dense,
            SmyrfConfig smyrf = {}, double dropout = 0.0, bool bias = true,
            Generator* gen = nullptr, DType dtype = kFloat32, int64_t kdim = -1);
  Tensor forward(const Tensor& x) override;  // self-attention with the layer's settings
  Tensor forward(const Tensor& x, const Tensor& kv, const AttentionCall& call = {});
  std::string name() const override { return "Attention"; }

  AttentionKind kind() const { return kind_; }
  void set_kind(AttentionKind kind) { kind_ = kind; }
  const SmyrfConfig& smyrf_config() const { return smyrf_; }
  void set_smyrf_config(const SmyrfConfig& c) { smyrf_ = c; }
  uint64_t last_seed() const { return last_seed_; }
  Generator& generator() { return rng_; }

  std::shared_ptr<Linear> q_proj, k_proj, v_proj, out_proj;
  int64_t embed_dim, num_heads, head_dim;

 private:
  AttentionKind kind_;
  SmyrfConfig smyrf_;
  double dropout_;
  Generator rng_;
  uint64_t last_seed_ = 0;
};

// SAGAN/BigGAN self-attention on x (B, C, H, W), C divisible by 8, H and W even:
//   theta = theta(x) (C/8 channels, the queries, Nq = H W)
//   phi   = maxpool2x2(phi(x)) (C/8, the keys), g = maxpool2x2(g(x)) (C/2, the values), Nk = Nq/4
//   out   = x + gamma * o(attn(theta, phi, g)),  o: C/2 -> C, gamma a learnable scalar from 0
// one head, scale 1 (BigGAN's convention). SMYRF needs ceil(Nq/Cq) == ceil(Nk/Ck); the default
// (n_hashes 2, Cq 128, Ck 32) pairs 8 clusters at 32x32. With spectral_norm the four
// convolutions are wrapped in SpectralNorm (names theta.weight_orig, ... as BigGAN's SNConv2d).
class SelfAttention2d : public Module {
 public:
  static SmyrfConfig default_smyrf() { return SmyrfConfig{2, 128, 32, SmyrfDuplicates::Multiset}; }
  explicit SelfAttention2d(int64_t channels, AttentionKind kind = AttentionKind::Dense,
                           SmyrfConfig smyrf = default_smyrf(), bool spectral_norm = false,
                           Generator* gen = nullptr, DType dtype = kFloat32);
  Tensor forward(const Tensor& x) override;
  Tensor forward(const Tensor& x, const AttentionCall& call);
  std::string name() const override { return "SelfAttention2d"; }

  AttentionKind kind() const { return kind_; }
  void set_kind(AttentionKind kind) { kind_ = kind; }
  uint64_t last_seed() const { return last_seed_; }

  std::shared_ptr<Module> theta, phi, g, o;  // Conv2d, or SpectralNorm(Conv2d)
  Tensor gamma;                              // 0-d
  int64_t channels;

 private:
  AttentionKind kind_;
  SmyrfConfig smyrf_;
  Generator rng_;
  uint64_t last_seed_ = 0;
};

}  // namespace smyrf::layers
