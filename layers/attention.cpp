#include "layers/attention.h"

#include <cmath>

#include "layers/spectral_norm.h"

namespace smyrf::layers {

namespace {

// Fills the options shared by the dense and SMYRF calls of a layer.
void fill_common(AttentionOptions& o, const AttentionCall& call, double dropout, bool training,
                 Generator* gen, std::optional<double> scale) {
  o.scale = scale;
  o.key_padding_mask = call.key_padding_mask;
  o.query_padding_mask = call.query_padding_mask;
  o.causal = call.causal;
  o.dropout_p = dropout;
  o.training = training;
  o.generator = gen;
}

// One attention call of a layer: dense or SMYRF per the call's override, the SMYRF seed drawn from
// the layer's generator unless the call fixes it.
Tensor run_attention(const Tensor& q, const Tensor& k, const Tensor& v, AttentionKind kind,
                     const SmyrfConfig& smyrf, const AttentionCall& call, double dropout,
                     bool training, Generator& rng, std::optional<double> scale,
                     uint64_t* last_seed) {
  const AttentionKind use = call.kind ? *call.kind : kind;
  if (use == AttentionKind::Dense) {
    AttentionOptions o;
    fill_common(o, call, dropout, training, &rng, scale);
    return attention(q, k, v, o);
  }
  const SmyrfConfig& c = call.smyrf ? *call.smyrf : smyrf;
  SmyrfOptions o;
  fill_common(o, call, dropout, training, &rng, scale);
  o.n_hashes = c.n_hashes;
  o.q_cluster_size = c.q_cluster_size;
  o.k_cluster_size = c.k_cluster_size;
  o.duplicates = c.duplicates;
  // drawn here rather than inside the op so the layer can report it for recomputation
  o.seed = call.seed ? *call.seed : rng.next_u64();
  *last_seed = *o.seed;
  o.diagnostics = call.diagnostics;
  return smyrf_attention(q, k, v, o);
}

uint64_t seed_from(Generator* gen) { return (gen ? *gen : default_generator()).next_u64(); }

}  // namespace

Attention::Attention(int64_t embed_dim_, int64_t heads, AttentionKind kind, SmyrfConfig smyrf,
                     double dropout, bool bias, Generator* gen, DType dtype, int64_t kdim)
    : embed_dim(embed_dim_), num_heads(heads), kind_(kind), smyrf_(smyrf), dropout_(dropout) {
  SMYRF_CHECK_HINT(
      embed_dim_ > 0 && heads > 0 && embed_dim_ % heads == 0, "Attention",
      "embed_dim " << embed_dim_ << " must be a positive multiple of num_heads " << heads,
      "head_dim = embed_dim / num_heads");
  SMYRF_CHECK_HINT(dropout >= 0 && dropout < 1, "Attention",
                   "dropout must lie in [0, 1), got " << dropout, "use 0 to disable");
  head_dim = embed_dim_ / heads;
  if (kdim <= 0) kdim = embed_dim_;
  q_proj =
      register_module("q_proj", std::make_shared<Linear>(embed_dim_, embed_dim_, bias, gen, dtype));
  k_proj = register_module("k_proj", std::make_shared<Linear>(kdim, embed_dim_, bias, gen, dtype));
  v_proj = register_module("v_proj", std::make_shared<Linear>(kdim, embed_dim_, bias, gen, dtype));
  out_proj = register_module("out_proj",
                             std::make_shared<Linear>(embed_dim_, embed_dim_, bias, gen, dtype));
  rng_.manual_seed(seed_from(gen));
}

Tensor Attention::forward(const Tensor& x) { return forward(x, Tensor(), {}); }

Tensor Attention::forward(const Tensor& x, const Tensor& kv_in, const AttentionCall& call) {
  SMYRF_CHECK_HINT(x.defined() && x.dim() == 3 && x.size(2) == embed_dim, "Attention",
                   "x must be (batch, N, " << embed_dim << "), got "
                                           << (x.defined() ? shape_str(x.shape()) : "undefined"),
                   "batch first; the last dim is embed_dim");
  const Tensor kv = kv_in.defined() ? kv_in : x;
  SMYRF_CHECK_HINT(kv.dim() == 3 && kv.size(0) == x.size(0) && kv.size(2) == k_proj->in_features,
                   "Attention",
                   "kv must be (" << x.size(0) << ", Nk, " << k_proj->in_features << "), got "
                                  << shape_str(kv.shape()),
                   "same batch as x; last dim kdim");
  const int64_t B = x.size(0), nq = x.size(1), nk = kv.size(1);
  // (B, N, E) -> (B, heads, N, head_dim); the op copies to contiguous once
  auto split = [&](const Tensor& t, int64_t n) {
    return t.reshape({B, n, num_heads, head_dim}).permute({0, 2, 1, 3});
  };
  const Tensor q = split(q_proj->forward(x), nq);
  const Tensor k = split(k_proj->forward(kv), nk);
  const Tensor v = split(v_proj->forward(kv), nk);
  capture_forward("q", q);
  capture_forward("k", k);
  capture_forward("v", v);
  const Tensor a = run_attention(q, k, v, kind_, smyrf_, call, dropout_, is_training(), rng_,
                                 std::nullopt, &last_seed_);
  capture_forward("out", a);
  capture_backward("grad_out", a);
  return out_proj->forward(a.permute({0, 2, 1, 3}).reshape({B, nq, embed_dim}));
}

namespace {
std::shared_ptr<Module> pointwise(int64_t in, int64_t out, bool sn, Generator* gen, DType dtype) {
  auto conv = std::make_shared<Conv2d>(in, out, 1, 1, 0, 1, 1, /*bias=*/false, gen, dtype);
  if (!sn) return conv;
  return std::make_shared<SpectralNorm>(conv, 1, 1e-12, gen);
}
}  // namespace

SelfAttention2d::SelfAttention2d(int64_t ch, AttentionKind kind, SmyrfConfig smyrf,
                                 bool spectral_norm, Generator* gen, DType dtype)
    : channels(ch), kind_(kind), smyrf_(smyrf) {
  SMYRF_CHECK_HINT(ch >= 8 && ch % 8 == 0, "SelfAttention2d",
                   "channels must be a positive multiple of 8, got " << ch,
                   "queries and keys use channels/8, values channels/2");
  theta = register_module("theta", pointwise(ch, ch / 8, spectral_norm, gen, dtype));
  phi = register_module("phi", pointwise(ch, ch / 8, spectral_norm, gen, dtype));
  g = register_module("g", pointwise(ch, ch / 2, spectral_norm, gen, dtype));
  o = register_module("o", pointwise(ch / 2, ch, spectral_norm, gen, dtype));
  gamma = register_parameter("gamma", zeros({}, TensorOptions(dtype)).requires_grad_());
  rng_.manual_seed(seed_from(gen));
}

Tensor SelfAttention2d::forward(const Tensor& x) { return forward(x, {}); }

Tensor SelfAttention2d::forward(const Tensor& x, const AttentionCall& call) {
  SMYRF_CHECK_HINT(x.defined() && x.dim() == 4 && x.size(1) == channels, "SelfAttention2d",
                   "x must be (batch, " << channels << ", H, W), got "
                                        << (x.defined() ? shape_str(x.shape()) : "undefined"),
                   "NCHW layout");
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  SMYRF_CHECK_HINT(
      H % 2 == 0 && W % 2 == 0, "SelfAttention2d",
      "H and W must be even for the 2x2 pooling of keys and values, got " << shape_str(x.shape()),
      "the block expects Nk = H W / 4");
  const int64_t n = H * W, c8 = channels / 8, c2 = channels / 2;
  // (B, c, H, W) -> (B, 1, H W, c): tokens are pixels, one head
  auto tokens = [&](const Tensor& t, int64_t c, int64_t len) {
    return t.reshape({B, c, len}).transpose(1, 2).unsqueeze(1);
  };
  const Tensor q = tokens(theta->forward(x), c8, n);
  const Tensor k = tokens(max_pool2d(phi->forward(x), 2), c8, n / 4);
  const Tensor v = tokens(max_pool2d(g->forward(x), 2), c2, n / 4);
  capture_forward("q", q);
  capture_forward("k", k);
  capture_forward("v", v);
  const Tensor a = run_attention(q, k, v, kind_, smyrf_, call, 0.0, is_training(), rng_, 1.0,
                                 &last_seed_);  // (B, 1, n, c2)
  capture_forward("out", a);
  capture_backward("grad_out", a);
  const Tensor y = o->forward(a.squeeze(1).transpose(1, 2).reshape({B, c2, H, W}));
  return x + gamma * y;
}

}  // namespace smyrf::layers
