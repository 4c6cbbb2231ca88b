#include "models/biggan.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "layers/init.h"

namespace smyrf::models {
namespace {

constexpr const char* kOp = "biggan";
using layers::SpectralNorm;

struct Arch {
  std::vector<int64_t> g_in, g_out;  // multipliers of ch
  std::vector<int64_t> d_in, d_out;  // d_in[0] = 0 stands for the image channels
  std::vector<bool> d_down;
};

Arch arch_for(int64_t res) {
  switch (res) {
    case 32:
      return {{4, 4, 4}, {4, 4, 4}, {0, 4, 4, 4}, {4, 4, 4, 4}, {true, true, true, false}};
    case 64:
      return {{16, 16, 8, 4},
              {16, 8, 4, 2},
              {0, 1, 2, 4, 8},
              {1, 2, 4, 8, 16},
              {true, true, true, true, false}};
    case 128:
      return {{16, 16, 8, 4, 2},
              {16, 8, 4, 2, 1},
              {0, 1, 2, 4, 8, 16},
              {1, 2, 4, 8, 16, 16},
              {true, true, true, true, true, false}};
    case 256:
      return {{16, 16, 8, 8, 4, 2},
              {16, 8, 8, 4, 2, 1},
              {0, 1, 2, 4, 8, 8, 16},
              {1, 2, 4, 8, 8, 16, 16},
              {true, true, true, true, true, true, false}};
    default:
      throw Error(kOp, "no architecture for resolution " + std::to_string(res),
                  "use 32, 64, 128 or 256");
  }
}

std::shared_ptr<SpectralNorm> sn_conv(int64_t in, int64_t out, int64_t k, const BigGanConfig& c,
                                      Generator* gen) {
  auto conv = std::make_shared<layers::Conv2d>(in, out, k, 1, k / 2, 1, 1, true, gen);
  return std::make_shared<SpectralNorm>(conv, 1, c.sn_eps, gen);
}

std::shared_ptr<SpectralNorm> sn_linear(int64_t in, int64_t out, bool bias, const BigGanConfig& c,
                                        Generator* gen) {
  auto lin = std::make_shared<layers::Linear>(in, out, bias, gen);
  return std::make_shared<SpectralNorm>(lin, 1, c.sn_eps, gen);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A per-block seed from the call's seed, so two attention blocks never hash alike.
uint64_t block_seed(uint64_t seed, size_t i) {
  uint64_t x = seed + 0x9E3779B97F4A7C15ull * (i + 1);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

Tensor run_attention_block(layers::SelfAttention2d& a, const Tensor& h, uint64_t seed, size_t i,
                           const GanForward& call) {
  layers::AttentionCall ac;
  ac.seed = block_seed(seed, i);
  ac.kind = call.attention;
  return a.forward(h, ac);
}

std::vector<std::pair<std::string, std::shared_ptr<SpectralNorm>>> collect_sn(
    const layers::Module& m) {
  std::vector<std::pair<std::string, std::shared_ptr<SpectralNorm>>> out;
  for (auto& [name, mod] : m.named_modules())
    if (auto sn = std::dynamic_pointer_cast<SpectralNorm>(mod)) out.emplace_back(name, sn);
  return out;
}

}  // namespace

// ---------------------------------------------------------------- config

BigGanConfig BigGanConfig::cpu() { return BigGanConfig{}; }

BigGanConfig BigGanConfig::gpu() {
  BigGanConfig c;
  c.ch = 32;
  c.dim_z = 120;
  c.shared_dim = 128;
  c.n_hashes = 4;
  return c;
}

BigGanConfig BigGanConfig::preset(const std::string& name) {
  if (name == "cpu") return cpu();
  if (name == "gpu") return gpu();
  throw Error(kOp, "unknown preset '" + name + "'", "use cpu or gpu");
}

layers::AttentionKind BigGanConfig::attention_kind() const {
  if (attention == "dense") return layers::AttentionKind::Dense;
  if (attention == "smyrf") return layers::AttentionKind::Smyrf;
  throw Error(kOp, "unknown attention kind '" + attention + "'", "use dense or smyrf");
}

layers::SmyrfConfig BigGanConfig::smyrf_config() const {
  layers::SmyrfConfig s;
  s.n_hashes = n_hashes;
  s.q_cluster_size = q_cluster_size;
  s.k_cluster_size = k_cluster_size;
  return s;
}

int64_t BigGanConfig::g_blocks() const {
  return static_cast<int64_t>(arch_for(resolution).g_in.size());
}

int64_t BigGanConfig::z_chunk() const { return dim_z / (g_blocks() + 1); }

void BigGanConfig::validate() const {
  const Arch a = arch_for(resolution);
  const int64_t slots = g_blocks() + 1;
  SMYRF_CHECK_HINT(ch > 0 && shared_dim > 0 && n_classes > 0, kOp,
                   "ch, shared_dim and n_classes must be positive, got " << ch << ", " << shared_dim
                                                                         << ", " << n_classes,
                   "see BigGanConfig");
  SMYRF_CHECK_HINT(dim_z >= slots && dim_z % slots == 0, kOp,
                   "dim_z " << dim_z << " does not split into " << slots << " equal chunks",
                   "hierarchical z gives one chunk to the linear layer and one to each of the "
                       << slots - 1 << " blocks; use a multiple of " << slots);
  SMYRF_CHECK_HINT(image_channels == 1 || image_channels == 3, kOp,
                   "image_channels must be 1 or 3, got " << image_channels, "grayscale or RGB");
  SMYRF_CHECK_HINT(init == "ortho" || init == "N02", kOp, "unknown init '" << init << "'",
                   "use ortho or N02");
  (void)attention_kind();
  if (g_attention_res > 0) {
    bool found = false;
    for (size_t b = 0; b < a.g_out.size(); ++b)
      if ((8 << b) == g_attention_res) {
        found = true;
        SMYRF_CHECK_HINT(
            a.g_out[b] * ch % 8 == 0, kOp,
            "G attention at " << g_attention_res << " sees " << a.g_out[b] * ch << " channels",
            "attention needs a multiple of 8 channels; raise ch");
      }
    SMYRF_CHECK_HINT(found, kOp, "no G block outputs resolution " << g_attention_res,
                     "G blocks output 8, 16, ... up to " << resolution << "; 0 disables");
  }
  if (d_attention_res > 0) {
    bool found = false;
    int64_t r = resolution;
    for (size_t b = 0; b < a.d_out.size(); ++b) {
      if (a.d_down[b]) r /= 2;
      if (r == d_attention_res && !found) {
        found = true;
        SMYRF_CHECK_HINT(
            a.d_out[b] * ch % 8 == 0, kOp,
            "D attention at " << d_attention_res << " sees " << a.d_out[b] * ch << " channels",
            "attention needs a multiple of 8 channels; raise ch");
      }
    }
    SMYRF_CHECK_HINT(found, kOp, "no D block outputs resolution " << d_attention_res,
                     "D blocks output " << resolution / 2 << " down to 4; 0 disables");
  }
}

nlohmann::json BigGanConfig::to_json() const {
  return {{"resolution", resolution},
          {"ch", ch},
          {"dim_z", dim_z},
          {"shared_dim", shared_dim},
          {"n_classes", n_classes},
          {"image_channels", image_channels},
          {"g_attention_res", g_attention_res},
          {"d_attention_res", d_attention_res},
          {"attention", attention},
          {"n_hashes", n_hashes},
          {"q_cluster_size", q_cluster_size},
          {"k_cluster_size", k_cluster_size},
          {"init", init},
          {"bn_eps", bn_eps},
          {"bn_momentum", bn_momentum},
          {"sn_eps", sn_eps}};
}

BigGanConfig BigGanConfig::from_json(const nlohmann::json& j) {
  BigGanConfig c;
  auto get = [&](const char* k, auto& v) {
    if (j.contains(k)) j.at(k).get_to(v);
  };
  get("resolution", c.resolution);
  get("ch", c.ch);
  get("dim_z", c.dim_z);
  get("shared_dim", c.shared_dim);
  get("n_classes", c.n_classes);
  get("image_channels", c.image_channels);
  get("g_attention_res", c.g_attention_res);
  get("d_attention_res", c.d_attention_res);
  get("attention", c.attention);
  get("n_hashes", c.n_hashes);
  get("q_cluster_size", c.q_cluster_size);
  get("k_cluster_size", c.k_cluster_size);
  get("init", c.init);
  get("bn_eps", c.bn_eps);
  get("bn_momentum", c.bn_momentum);
  get("sn_eps", c.sn_eps);
  return c;
}

// ---------------------------------------------------------------- blocks

GBlock::GBlock(int64_t in, int64_t out, int64_t cond_dim, const BigGanConfig& c, Generator* gen) {
  // BigGAN-PyTorch's registration order: conv1, conv2, conv_sc, bn1, bn2
  conv1 = register_module("conv1", sn_conv(in, out, 3, c, gen));
  conv2 = register_module("conv2", sn_conv(out, out, 3, c, gen));
  conv_sc = register_module("conv_sc", sn_conv(in, out, 1, c, gen));  // upsampling: always learnt
  bn1 = register_module("bn1", std::make_shared<layers::ConditionalBatchNorm2d>(
                                   in, cond_dim, true, c.bn_eps, c.bn_momentum, gen));
  bn2 = register_module("bn2", std::make_shared<layers::ConditionalBatchNorm2d>(
                                   out, cond_dim, true, c.bn_eps, c.bn_momentum, gen));
}

Tensor GBlock::forward(const Tensor& x, const Tensor& y) {
  Tensor h = relu(bn1->forward(x, y));
  h = upsample_nearest2d(h, 2);
  const Tensor xs = upsample_nearest2d(x, 2);
  h = conv1->forward(h);
  h = relu(bn2->forward(h, y));
  h = conv2->forward(h);
  return h + conv_sc->forward(xs);
}

DBlock::DBlock(int64_t in, int64_t out, bool preact, bool down, const BigGanConfig& c,
               Generator* gen)
    : preactivation(preact), downsample(down) {
  conv1 = register_module("conv1", sn_conv(in, out, 3, c, gen));
  conv2 = register_module("conv2", sn_conv(out, out, 3, c, gen));
  if (in != out || down) conv_sc = register_module("conv_sc", sn_conv(in, out, 1, c, gen));
}

Tensor DBlock::forward(const Tensor& x) {
  Tensor h = preactivation ? relu(x) : x;
  h = conv1->forward(h);
  h = conv2->forward(relu(h));
  if (downsample) h = avg_pool2d(h, 2);
  Tensor s = x;
  // BigGAN: with pre-activation the 1x1 conv runs before pooling (cheaper at equal result up to
  // the bias), without it after pooling, on the raw image
  if (preactivation) {
    if (conv_sc) s = conv_sc->forward(s);
    if (downsample) s = avg_pool2d(s, 2);
  } else {
    if (downsample) s = avg_pool2d(s, 2);
    if (conv_sc) s = conv_sc->forward(s);
  }
  return h + s;
}

// ---------------------------------------------------------------- generator

BigGanGenerator::BigGanGenerator(const BigGanConfig& c, Generator* gen) : config_(c) {
  c.validate();
  const Arch a = arch_for(c.resolution);
  const int64_t nb = c.g_blocks(), chunk = c.z_chunk(), cond = c.shared_dim + chunk;
  shared = register_module("shared",
                           std::make_shared<layers::Embedding>(c.n_classes, c.shared_dim, gen));
  linear = register_module("linear", sn_linear(chunk, a.g_in[0] * c.ch * 16, true, c, gen));
  blocks = register_module("blocks", std::make_shared<ModuleList>());
  for (int64_t b = 0; b < nb; ++b) {
    auto list = blocks->add(std::make_shared<ModuleList>());
    gblocks_.push_back(
        list->add(std::make_shared<GBlock>(a.g_in[b] * c.ch, a.g_out[b] * c.ch, cond, c, gen)));
    std::shared_ptr<layers::SelfAttention2d> at;
    if ((8 << b) == c.g_attention_res) {
      at = list->add(std::make_shared<layers::SelfAttention2d>(
          a.g_out[b] * c.ch, c.attention_kind(), c.smyrf_config(), true, gen));
      attn_.push_back(at);
    }
    attn_after_.push_back(at);
  }
  output_layer = register_module("output_layer", std::make_shared<layers::Sequential>());
  const int64_t last = a.g_out.back() * c.ch;
  output_layer->add(std::make_shared<layers::BatchNorm2d>(last, c.bn_eps, c.bn_momentum));
  output_layer->add(std::make_shared<layers::Activation>(layers::Activation::Kind::Relu));
  output_layer->add(sn_conv(last, c.image_channels, 3, c, gen));
  biggan_init(*this, c.init, gen);
  attention_rng_.manual_seed((gen ? *gen : default_generator()).next_u64());
}

Tensor BigGanGenerator::forward(const Tensor& z, const Tensor& y, const GanForward& call) {
  const BigGanConfig& c = config_;
  SMYRF_CHECK_HINT(z.defined() && z.dim() == 2 && z.size(1) == c.dim_z, kOp,
                   "z must be (N, " << c.dim_z << "), got "
                                    << (z.defined() ? shape_str(z.shape()) : "undefined"),
                   "dim_z of the config");
  SMYRF_CHECK_HINT(
      y.defined() && y.dim() == 1 && y.size(0) == z.size(0) && y.dtype() == DType::Int64, kOp,
      "labels must be int64 (" << z.size(0) << "), got "
                               << (y.defined() ? shape_str(y.shape()) : "undefined"),
      "one class index per z row");
  const int64_t n = z.size(0), chunk = c.z_chunk();
  const uint64_t seed = call.attention_seed ? *call.attention_seed : attention_rng_.next_u64();
  std::vector<Tensor> zs = split(z, chunk, 1);
  const Tensor emb = shared->forward(y);
  const int64_t c0 = gblocks_.front()->conv1->weight_orig.size(1);
  Tensor h = linear->forward(zs[0]).reshape({n, c0, 4, 4});
  size_t ai = 0;
  for (size_t b = 0; b < gblocks_.size(); ++b) {
    h = gblocks_[b]->forward(h, cat({emb, zs[b + 1]}, 1));
    if (attn_after_[b]) h = run_attention_block(*attn_after_[b], h, seed, ai++, call);
  }
  return tanh(output_layer->forward(h));
}

std::vector<std::pair<std::string, std::shared_ptr<SpectralNorm>>>
BigGanGenerator::spectral_layers() const {
  return collect_sn(*this);
}

// ---------------------------------------------------------------- discriminator

BigGanDiscriminator::BigGanDiscriminator(const BigGanConfig& c, Generator* gen) : config_(c) {
  c.validate();
  const Arch a = arch_for(c.resolution);
  blocks = register_module("blocks", std::make_shared<ModuleList>());
  int64_t r = c.resolution;
  bool placed = false;
  for (size_t b = 0; b < a.d_out.size(); ++b) {
    const int64_t in = b == 0 ? c.image_channels : a.d_in[b] * c.ch, out = a.d_out[b] * c.ch;
    auto list = blocks->add(std::make_shared<ModuleList>());
    dblocks_.push_back(list->add(std::make_shared<DBlock>(in, out, b > 0, a.d_down[b], c, gen)));
    if (a.d_down[b]) r /= 2;
    std::shared_ptr<layers::SelfAttention2d> at;
    if (r == c.d_attention_res && !placed) {
      placed = true;
      at = list->add(std::make_shared<layers::SelfAttention2d>(out, c.attention_kind(),
                                                               c.smyrf_config(), true, gen));
      attn_.push_back(at);
    }
    attn_after_.push_back(at);
  }
  const int64_t last = a.d_out.back() * c.ch;
  linear = register_module("linear", sn_linear(last, 1, true, c, gen));
  auto emb = std::make_shared<layers::Embedding>(c.n_classes, last, gen);
  embed = register_module("embed", std::make_shared<SpectralNorm>(emb, 1, c.sn_eps, gen));
  biggan_init(*this, c.init, gen);
  attention_rng_.manual_seed((gen ? *gen : default_generator()).next_u64());
}

Tensor BigGanDiscriminator::forward(const Tensor& x, const Tensor& y, const GanForward& call) {
  const BigGanConfig& c = config_;
  SMYRF_CHECK_HINT(x.defined() && x.dim() == 4 && x.size(1) == c.image_channels &&
                       x.size(2) == c.resolution && x.size(3) == c.resolution,
                   kOp,
                   "images must be (N, " << c.image_channels << ", " << c.resolution << ", "
                                         << c.resolution << "), got "
                                         << (x.defined() ? shape_str(x.shape()) : "undefined"),
                   "image_channels and resolution of the config");
  SMYRF_CHECK_HINT(
      y.defined() && y.dim() == 1 && y.size(0) == x.size(0) && y.dtype() == DType::Int64, kOp,
      "labels must be int64 (" << x.size(0) << "), got "
                               << (y.defined() ? shape_str(y.shape()) : "undefined"),
      "one class index per image");
  const uint64_t seed = call.attention_seed ? *call.attention_seed : attention_rng_.next_u64();
  Tensor h = x;
  size_t ai = 0;
  for (size_t b = 0; b < dblocks_.size(); ++b) {
    h = dblocks_[b]->forward(h);
    if (attn_after_[b]) h = run_attention_block(*attn_after_[b], h, seed, ai++, call);
  }
  h = sum(relu(h), {2, 3});  // (N, C)
  const Tensor e = embed->forward(y);
  return linear->forward(h).reshape({x.size(0)}) + sum(e * h, {1});
}

std::vector<std::pair<std::string, std::shared_ptr<SpectralNorm>>>
BigGanDiscriminator::spectral_layers() const {
  return collect_sn(*this);
}

// ---------------------------------------------------------------- helpers

void biggan_init(layers::Module& model, const std::string& init, Generator* gen) {
  SMYRF_CHECK_HINT(init == "ortho" || init == "N02", kOp, "unknown init '" << init << "'",
                   "use ortho or N02");
  NoGradGuard no_grad;
  for (auto& [name, p] : model.named_parameters()) {
    if (!(ends_with(name, "weight_orig") || name == "shared.weight")) continue;
    if (init == "ortho")
      layers::init::orthogonal_(p, 1.0, gen);
    else
      layers::init::normal_(p, 0.0, 0.02, gen);
  }
}

Tensor sample_z(int64_t n, int64_t dim, double truncation, Generator* gen) {
  Tensor z = randn({n, dim}, {}, gen);
  if (truncation <= 0) return z;
  // Redraw the tail until every entry lies inside; each pass redraws a fresh block of normals
  // of the same size so the stream depends only on the generator, not on the thread count.
  float* p = z.data_ptr<float>();
  const int64_t total = n * dim;
  for (int pass = 0; pass < 1000; ++pass) {
    bool any = false;
    for (int64_t i = 0; i < total; ++i) any |= std::fabs(p[i]) > truncation;
    if (!any) break;
    const Tensor fresh = randn({n, dim}, {}, gen);
    const float* f = fresh.data_ptr<float>();
    for (int64_t i = 0; i < total; ++i)
      if (std::fabs(p[i]) > truncation) p[i] = f[i];
  }
  for (int64_t i = 0; i < total; ++i)  // a tiny truncation may not converge: clamp the rest
    p[i] = static_cast<float>(std::fmax(-truncation, std::fmin(truncation, p[i])));
  return z;
}

void ema_update(layers::Module& target, const layers::Module& source, double decay) {
  const NamedTensors src = source.state_dict();
  const NamedTensors dst = target.state_dict();
  SMYRF_CHECK_HINT(src.size() == dst.size(), "ema_update",
                   "source has " << src.size() << " state entries, target " << dst.size(),
                   "the EMA copy must be built from the same config");
  NoGradGuard no_grad;
  for (size_t i = 0; i < src.size(); ++i) {
    const auto& [name, s] = src[i];
    Tensor t = dst[i].second;  // a handle: writes reach the module
    SMYRF_CHECK_HINT(dst[i].first == name && t.shape() == s.shape(), "ema_update",
                     "entry " << i << " is '" << name << "' " << shape_str(s.shape())
                              << " in the source but '" << dst[i].first << "' "
                              << shape_str(t.shape()) << " in the target",
                     "the EMA copy must be built from the same config");
    if (decay <= 0 || !is_floating(s.dtype()) || ends_with(name, "weight_u") ||
        ends_with(name, "weight_v")) {
      t.copy_(s);
    } else {
      t.mul_(decay);
      t.add_(s, 1.0 - decay);
    }
  }
}

}  // namespace smyrf::models
