// BigGAN (Brock, Donahue, Simonyan 2019) generator and projection discriminator, with the
// self-attention block computed densely or by SMYRF (docs/biggan.md, "The model").
//
// Generator, for resolution R = 4 * 2^B (B up-blocks; widths from the architecture table below):
//   z (N, dim_z) is split into B + 1 chunks of dim_z / (B + 1) (hierarchical z): chunk 0 goes
//   through `linear` to (N, 4*4*in[0]) viewed as (N, in[0], 4, 4); block b is conditioned on
//   cat(shared(y), chunk b + 1) (N, shared_dim + chunk), which every conditional BN of the block
//   turns into a per-sample gain and bias. Up-block: cBN, ReLU, nearest 2x upsample, 3x3 conv,
//   cBN, ReLU, 3x3 conv, plus a 1x1 conv of the upsampled input. Self-attention follows the
//   block whose output resolution is g_attention_res. Then BN, ReLU, 3x3 conv to the image
//   channels, tanh: images (N, image_channels, R, R) in (-1, 1).
// Discriminator:
//   down-blocks (the first without pre-activation ReLU; 3x3 conv, ReLU, 3x3 conv, 2x2 average
//   pool, plus a 1x1 conv shortcut; the last block does not pool), self-attention after the block
//   whose output resolution is d_attention_res, ReLU, global sum pooling to h (N, C), then
//   score = linear(h) + <embed(y), h> (projection), (N).
// Spectral norm (one power iteration per training forward, no update in eval) wraps every conv,
// linear and the projection embedding of both networks (not G's shared embedding, as BigGAN).
//
// Architecture table (channel multipliers of ch; "img" = image_channels):
//   R     G in / out                              D in / out                            D pools
//   32    4,4,4 / 4,4,4                           img,4,4,4 / 4,4,4,4                    T,T,T,F
//   64    16,16,8,4 / 16,8,4,2                    img,1,2,4,8 / 1,2,4,8,16               T,T,T,T,F
//   128   16,16,8,4,2 / 16,8,4,2,1                img,1,2,4,8,16 / 1,2,4,8,16,16         T*5,F
//   256   16,16,8,8,4,2 / 16,8,8,4,2,1            img,1,2,4,8,8,16 / 1,2,4,8,8,16,16     T*6,F
//
// State-dict names follow BigGAN-PyTorch with torch.nn.utils.spectral_norm: G "shared.weight",
// "linear.weight_orig", "blocks.0.0.conv1.weight_orig", "blocks.0.0.bn1.gain.weight_orig",
// "blocks.0.0.bn1.bn.running_mean", "blocks.2.1.gamma" (attention after block 2),
// "output_layer.0.weight" (BN), "output_layer.2.weight_orig"; D "blocks.0.0.conv1.weight_orig",
// "blocks.0.1.theta.weight_orig", "linear.weight_orig", "embed.weight_orig". Each spectrally
// normalised layer also has weight_u and weight_v buffers.
//
// Randomness: construction draws from the given generator (or the default one). Each model owns
// an attention Generator from which every training forward draws the SMYRF hash seed (fresh
// clusters per call, as the paper) unless the call fixes it; attention_generator() exposes it for
// checkpoints, so a resumed run hashes exactly like an uninterrupted one. Dense attention draws
// the same seeds and ignores them, so SMYRF and dense twins keep identical random streams.
//
// Errors: smyrf::Error (op "biggan") for a resolution without an architecture, dim_z that the
// hierarchical split does not divide, an attention resolution no block produces, attention
// widths that are not multiples of 8, and inputs of the wrong shape.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "layers/attention.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/norm.h"
#include "layers/spectral_norm.h"

namespace smyrf::models {

struct BigGanConfig {
  int64_t resolution = 32;  // 32, 64, 128 or 256
  int64_t ch = 8;           // base width (widths are multiples of it, table above)
  int64_t dim_z = 64;       // divisible by the number of G blocks + 1
  int64_t shared_dim = 64;  // the shared class embedding
  int64_t n_classes = 10;
  int64_t image_channels = 1;       // 1 (grayscale) or 3
  int64_t g_attention_res = 32;     // 0 = no attention in G
  int64_t d_attention_res = 16;     // 0 = no attention in D
  std::string attention = "smyrf";  // "dense" or "smyrf", every attention block of G and D
  int64_t n_hashes = 2;
  int64_t q_cluster_size = 128;  // Cq
  int64_t k_cluster_size = 32;   // Ck
  std::string init = "ortho";    // "ortho" or "N02" (normal, std 0.02)
  double bn_eps = 1e-5, bn_momentum = 0.1;
  double sn_eps = 1e-6;  // BigGAN-PyTorch's default

  // The CPU configuration of biggan.md (the defaults above) and the one-GPU configuration
  // (ch 32, widths up to 128, dim_z 120, shared 128, SMYRF with 4 hashes).
  static BigGanConfig cpu();
  static BigGanConfig gpu();
  // "cpu" or "gpu"; throws otherwise.
  static BigGanConfig preset(const std::string& name);

  layers::AttentionKind attention_kind() const;
  layers::SmyrfConfig smyrf_config() const;
  int64_t g_blocks() const;  // number of G up-blocks (log2(resolution / 4))
  int64_t z_chunk() const;   // dim_z / (g_blocks() + 1)
  void validate() const;     // throws on an inconsistent config

  nlohmann::json to_json() const;
  static BigGanConfig from_json(const nlohmann::json& j);  // missing keys keep defaults
};

// Per-call options of both networks.
struct GanForward {
  std::optional<uint64_t> attention_seed;          // SMYRF hash seed (else drawn from the model)
  std::optional<layers::AttentionKind> attention;  // override dense/SMYRF for this call
};

// A list of modules named "0", "1", ... (torch.nn.ModuleList), for BigGAN's nested block names.
class ModuleList : public layers::Module {
 public:
  template <typename M>
  std::shared_ptr<M> add(std::shared_ptr<M> m) {
    return register_module(std::to_string(size_++), std::move(m));
  }
  std::string name() const override { return "ModuleList"; }

 private:
  int64_t size_ = 0;
};

class GBlock : public layers::Module {
 public:
  GBlock(int64_t in, int64_t out, int64_t cond_dim, const BigGanConfig& c, Generator* gen);
  // x (N, in, H, W), y (N, cond_dim) -> (N, out, 2H, 2W)
  Tensor forward(const Tensor& x, const Tensor& y);
  std::string name() const override { return "GBlock"; }
  std::shared_ptr<layers::SpectralNorm> conv1, conv2, conv_sc;
  std::shared_ptr<layers::ConditionalBatchNorm2d> bn1, bn2;
};

class DBlock : public layers::Module {
 public:
  DBlock(int64_t in, int64_t out, bool preactivation, bool downsample, const BigGanConfig& c,
         Generator* gen);
  // x (N, in, H, W) -> (N, out, H/2, W/2) when downsampling, else (N, out, H, W)
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "DBlock"; }
  std::shared_ptr<layers::SpectralNorm> conv1, conv2, conv_sc;  // conv_sc null when identity
  bool preactivation, downsample;
};

class BigGanGenerator : public layers::Module {
 public:
  explicit BigGanGenerator(const BigGanConfig& config, Generator* gen = nullptr);
  // z (N, dim_z) float32, y (N) int64 labels in [0, n_classes) -> images (N, C, R, R) in (-1, 1).
  Tensor forward(const Tensor& z, const Tensor& y, const GanForward& call = {});
  std::string name() const override { return "BigGanGenerator"; }
  const BigGanConfig& config() const { return config_; }
  Generator& attention_generator() { return attention_rng_; }
  std::vector<std::shared_ptr<layers::SelfAttention2d>> attention_blocks() const { return attn_; }
  // The SpectralNorm layers by state-dict prefix, in registration order (for health logging).
  std::vector<std::pair<std::string, std::shared_ptr<layers::SpectralNorm>>> spectral_layers()
      const;

  std::shared_ptr<layers::Embedding> shared;
  std::shared_ptr<layers::SpectralNorm> linear;
  std::shared_ptr<ModuleList> blocks;
  std::shared_ptr<layers::Sequential> output_layer;  // BN, ReLU, conv

 private:
  BigGanConfig config_;
  std::vector<std::shared_ptr<GBlock>> gblocks_;
  std::vector<std::shared_ptr<layers::SelfAttention2d>> attn_;        // null where a block has none
  std::vector<std::shared_ptr<layers::SelfAttention2d>> attn_after_;  // per block, may be null
  Generator attention_rng_;
};

class BigGanDiscriminator : public layers::Module {
 public:
  explicit BigGanDiscriminator(const BigGanConfig& config, Generator* gen = nullptr);
  // x (N, C, R, R), y (N) int64 -> scores (N).
  Tensor forward(const Tensor& x, const Tensor& y, const GanForward& call = {});
  std::string name() const override { return "BigGanDiscriminator"; }
  const BigGanConfig& config() const { return config_; }
  Generator& attention_generator() { return attention_rng_; }
  std::vector<std::shared_ptr<layers::SelfAttention2d>> attention_blocks() const { return attn_; }
  std::vector<std::pair<std::string, std::shared_ptr<layers::SpectralNorm>>> spectral_layers()
      const;

  std::shared_ptr<ModuleList> blocks;
  std::shared_ptr<layers::SpectralNorm> linear, embed;

 private:
  BigGanConfig config_;
  std::vector<std::shared_ptr<DBlock>> dblocks_;
  std::vector<std::shared_ptr<layers::SelfAttention2d>> attn_;
  std::vector<std::shared_ptr<layers::SelfAttention2d>> attn_after_;
  Generator attention_rng_;
};

// BigGAN's initialisation of every spectrally normalised weight (weight_orig) and G's shared
// embedding: orthogonal ("ortho") or N(0, 0.02) ("N02"). Biases keep PyTorch's defaults and the
// attention gains stay 0. The constructors call it; exposed for re-initialisation.
void biggan_init(layers::Module& model, const std::string& init, Generator* gen);

// Standard normal z (n, dim) whose entries with |z| > truncation are redrawn until inside
// (the truncation trick); truncation <= 0 means plain N(0, 1).
Tensor sample_z(int64_t n, int64_t dim, double truncation, Generator* gen);

// target = decay * target + (1 - decay) * source over every floating-point entry of the state
// dict (parameters and BN running statistics); integer buffers (num_batches_tracked) and the
// spectral-norm vectors (weight_u, weight_v, which must stay unit vectors) are copied. decay 0
// copies everything. The two modules must have identical state-dict keys and shapes.
void ema_update(layers::Module& target, const layers::Module& source, double decay);

}  // namespace smyrf::models
