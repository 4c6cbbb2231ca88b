// The gradient study one level up: the gradients of a model's parameters with every attention
// layer SMYRF against dense attention, on the same batch, over a short run from a checkpoint.
// The LM and GAN runs share the grouping of parameters, the gradient read-out and the rows; they
// differ only in their loss and how the run moves (train/grad_study.h).
#include <cmath>
#include <map>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/random.h"
#include "layers/attention.h"
#include "layers/spectral_norm.h"
#include "models/bert.h"
#include "train/gan_train.h"
#include "train/grad_study.h"
#include "train/grad_study_internal.h"
#include "train/lm_train.h"
#include "train/optim.h"
#include "train/run_files.h"

namespace smyrf::train {

namespace {
constexpr const char* kOp = "grad_study";

// The module behind a SpectralNorm wrapper (its name() says what the parameters do).
const layers::Module* unwrapped(const layers::Module* m) {
  if (auto* sn = dynamic_cast<const layers::SpectralNorm*>(m)) return sn->module().get();
  return m;
}

// A network's parameters with their group and whether they belong to an attention layer.
struct GroupedParams {
  std::string prefix;  // "G.", "D." or "" (LM): prepended to parameter names in the rows
  layers::NamedTensors params;
  std::vector<std::string> group;
  std::vector<bool> in_attention;
};

// Groups by the modules that own a parameter (its dotted path's prefixes):
//   inside an attention layer, by the child: queries (theta, q_proj) "attention q", keys (phi,
//   k_proj) "attention k", values (g, v_proj) "attention v", output (o, out_proj) "attention o",
//   the gain gamma "attention gain";
//   elsewhere, any owner that is a normalisation or an embedding (BatchNorm2d, the conditional
//   BN's gain and bias projections, LayerNorm, Embedding, also spectrally normalised) makes it
//   "norms/embeddings"; else its own module: Conv2d "convs", anything else "linear".
GroupedParams group_parameters(const layers::Module& root, const std::string& prefix) {
  std::map<std::string, const layers::Module*> modules;
  for (auto& [n, m] : root.named_modules()) modules[n] = m.get();
  static const std::map<std::string, std::string> kAttentionChild = {
      {"theta", "attention q"},  {"q_proj", "attention q"},   {"phi", "attention k"},
      {"k_proj", "attention k"}, {"g", "attention v"},        {"v_proj", "attention v"},
      {"o", "attention o"},      {"out_proj", "attention o"}, {"gamma", "attention gain"}};
  GroupedParams gp;
  gp.prefix = prefix;
  gp.params = root.named_parameters();
  for (auto& [name, p] : gp.params) {
    std::string group;
    bool norm = false;
    const layers::Module* owner = nullptr;
    // every proper prefix of the name that ends at a dot is an owning module, outermost first
    for (size_t dot = name.find('.'); dot != std::string::npos && group.empty();
         dot = name.find('.', dot + 1)) {
      auto it = modules.find(name.substr(0, dot));
      if (it == modules.end()) continue;
      const layers::Module* m = unwrapped(it->second);
      owner = m;
      const std::string kind = m->name();
      if (kind == "Attention" || kind == "SelfAttention2d") {
        const size_t end = name.find('.', dot + 1);
        const std::string child = name.substr(dot + 1, end - dot - 1);
        auto c = kAttentionChild.find(child);
        group = c != kAttentionChild.end() ? c->second : "attention other";
      }
      norm |= kind == "BatchNorm2d" || kind == "ConditionalBatchNorm2d" || kind == "LayerNorm" ||
              kind == "Embedding";
    }
    gp.in_attention.push_back(!group.empty());
    if (group.empty())
      group = norm                                    ? "norms/embeddings"
              : owner && owner->name() == "Conv2d"    ? "convs"
              : owner && owner->name() == "Embedding" ? "norms/embeddings"
                                                      : "linear";
    gp.group.push_back(group);
  }
  return gp;
}

// The gradients of the parameters as float64 (zeros where a parameter got none).
std::vector<std::vector<double>> gradients(const layers::NamedTensors& params) {
  std::vector<std::vector<double>> gs;
  for (auto& [n, p] : params)
    gs.push_back(p.grad().defined() ? p.grad().to(kFloat64).contiguous().to_vector<double>()
                                    : std::vector<double>(p.numel(), 0.0));
  return gs;
}

// Dot products of one SMYRF (a) and dense (b) gradient pair, summed over a group.
struct Sums {
  double ab = 0, aa = 0, bb = 0, dd = 0;
  void add(const Sums& o) { ab += o.ab, aa += o.aa, bb += o.bb, dd += o.dd; }
  double cosine() const { return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : (aa == bb ? 1 : 0); }
  double rel_error() const { return bb > 0 ? std::sqrt(dd / bb) : (dd > 0 ? INFINITY : 0); }
};

// Rows "cos_grad" and "err_grad" (stat "step<step>") of one comparison: sweep "params" for every
// group in a fixed order and "all parameters", sweep "params_layer" for every attention
// parameter on its own. `base` carries the run's fields (source, n, clusters, budget).
void compare_gradients(const GroupedParams& gp, const std::vector<std::vector<double>>& gs,
                       const std::vector<std::vector<double>>& gd, const StudyRow& base,
                       int64_t step, std::vector<StudyRow>& rows) {
  static const char* const kOrder[] = {"attention q", "attention k",    "attention v",
                                       "attention o", "attention gain", "attention other",
                                       "convs",       "linear",         "norms/embeddings"};
  auto emit = [&](const std::string& sweep, const std::string& layer, const Sums& s) {
    StudyRow r = base;
    r.sweep = sweep, r.layer = layer, r.stat = "step" + std::to_string(step);
    r.metric = "cos_grad", r.value = s.cosine();
    rows.push_back(r);
    r.metric = "err_grad", r.value = s.rel_error();
    rows.push_back(r);
  };
  std::map<std::string, Sums> groups;
  Sums all;
  std::vector<std::pair<std::string, Sums>> singles;
  for (size_t i = 0; i < gp.params.size(); ++i) {
    Sums s;
    for (size_t j = 0; j < gd[i].size(); ++j)
      s.ab += gs[i][j] * gd[i][j], s.aa += gs[i][j] * gs[i][j], s.bb += gd[i][j] * gd[i][j],
          s.dd += (gs[i][j] - gd[i][j]) * (gs[i][j] - gd[i][j]);
    groups[gp.group[i]].add(s);
    all.add(s);
    if (gp.in_attention[i]) singles.emplace_back(gp.prefix + gp.params[i].first, s);
  }
  const std::string net = gp.prefix.empty() ? "" : gp.prefix.substr(0, gp.prefix.size() - 1) + ": ";
  for (const char* g : kOrder)
    if (groups.count(g)) emit("params", net + g, groups[g]);
  emit("params", net + "all parameters", all);
  for (auto& [n, s] : singles) emit("params_layer", n, s);
}

// The fields of a network's rows: its SMYRF configuration, the query length of its (first)
// attention layer and the attention-memory budget n_hashes * Ck / Nk there.
StudyRow base_row(const std::string& dir, const StudyConfig& c, int64_t nq, int64_t nk) {
  StudyRow r;
  r.source = dir, r.n = nq, r.n_hashes = c.n_hashes;
  r.q_cluster = c.q_cluster, r.k_cluster = c.k_cluster;
  r.budget = nk > 0 ? static_cast<double>(c.n_hashes * std::min(c.k_cluster, nk)) / nk : 0;
  r.duplicates = c.duplicates == SmyrfDuplicates::Set ? "set" : "multiset";
  return r;
}

// Copies of the buffers of some modules, put back before the second pass of a comparison:
// spectral norm's power iteration and batch norm's running statistics move on every training
// forward, so without this the dense pass would see other normalised weights than the SMYRF pass.
struct BufferSnapshot {
  std::vector<Tensor> live, saved;
  explicit BufferSnapshot(std::initializer_list<const layers::Module*> ms) {
    for (const layers::Module* m : ms)
      for (auto& [n, t] : m->named_buffers()) live.push_back(t), saved.push_back(t.clone());
  }
  void restore() {
    NoGradGuard ng;
    for (size_t i = 0; i < live.size(); ++i) live[i].copy_(saved[i]);
  }
};
}  // namespace

std::vector<StudyRow> param_gradient_study(const std::string& dir, const StudyConfig& c,
                                           int64_t steps, int64_t batch, uint64_t seed) {
  LoadedLm l = load_lm(dir);
  auto& model = *l.model;
  model.train(false);  // no dropout: the two passes differ only in their attention
  LmData d = prepare_lm_data(l.options, run_path(dir, "tokenizer.json"), false);
  const int64_t ctx = model.config().context;
  const std::vector<int32_t>& stream = d.streams.train;
  SMYRF_CHECK_HINT(stream.size() > static_cast<size_t>(ctx + 1), kOp,
                   "the run's training text has fewer than " << ctx + 1 << " tokens",
                   "train on a larger corpus");
  const GroupedParams gp = group_parameters(model, "");
  std::vector<Tensor> ps;
  for (auto& [n, p] : gp.params) ps.push_back(p);
  SGD opt(ps, SGD::Options{0.1});
  Generator g(seed * 131 + 5);
  const StudyRow base = base_row(dir, c, ctx, ctx);
  std::vector<StudyRow> rows;
  for (int64_t step = 0; step < steps; ++step) {
    std::vector<int64_t> x(batch * ctx), y(batch * ctx);
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t s = static_cast<int64_t>(g.next_u64() % (stream.size() - ctx - 1));
      for (int64_t i = 0; i < ctx; ++i)
        x[b * ctx + i] = stream[s + i], y[b * ctx + i] = stream[s + i + 1];
    }
    Tensor xt = from_vector(x, {batch, ctx}), yt = from_vector(y, {batch, ctx});
    if (!model.causal()) {
      models::MlmBatch mb = models::mask_tokens(xt, model.config().vocab_size - 1, g);
      xt = mb.inputs, yt = mb.targets;
    }
    auto grads = [&](layers::AttentionKind kind) {
      models::ForwardOptions f;
      f.attention = kind;
      f.smyrf = layers::SmyrfConfig{c.n_hashes, c.q_cluster, c.k_cluster, c.duplicates};
      f.seed = seed * 7919 + static_cast<uint64_t>(step);
      opt.zero_grad();
      models::TransformerLM::loss(model.forward(xt, f), yt).backward();
      return gradients(gp.params);
    };
    const auto gs = grads(layers::AttentionKind::Smyrf);
    const auto gd = grads(layers::AttentionKind::Dense);  // left in .grad for the step
    compare_gradients(gp, gs, gd, base, step, rows);
    opt.step();  // SGD on the dense gradient: the run moves as dense training would
  }
  return rows;
}

std::vector<StudyRow> gan_param_gradient_study(const std::string& dir, int64_t steps, int64_t batch,
                                               uint64_t seed) {
  SMYRF_CHECK_HINT(
      batch > 0 && steps >= 0, kOp,
      "batch must be positive and steps non-negative, got batch " << batch << ", steps " << steps,
      "e.g. --batch 8 --train-steps 3");
  LoadedGan l = load_gan(dir);
  models::BigGanGenerator& G = *l.g;
  models::BigGanDiscriminator& D = *l.d;
  const GanTrainOptions& o = l.options;
  const models::BigGanConfig& mc = o.model;
  const data::ImageDataset ds = study_detail::gan_training_images(
      l, "the parameter-gradient study (its D steps)", "leave it out with --train-steps 0");
  const GroupedParams gg = group_parameters(G, "G."), gdp = group_parameters(D, "D.");
  // the run's optimizer settings, fresh moments
  AdamW opt_g(G.parameters(), gan_adam_options(o, o.g_lr));
  AdamW opt_d(D.parameters(), gan_adam_options(o, o.d_lr));
  StudyConfig c;
  const layers::SmyrfConfig sc = mc.smyrf_config();
  c.n_hashes = sc.n_hashes, c.q_cluster = sc.q_cluster_size, c.k_cluster = sc.k_cluster_size;
  c.duplicates = sc.duplicates;
  // SelfAttention2d: Nq = res^2 queries, Nk = Nq / 4 keys (2x2 max-pooled)
  auto lengths = [](int64_t res) { return std::pair<int64_t, int64_t>{res * res, res * res / 4}; };
  const auto [gq, gk] = lengths(mc.g_attention_res);
  const auto [dq, dk] = lengths(mc.d_attention_res);
  const StudyRow g_base = base_row(dir, c, gq, gk), d_base = base_row(dir, c, dq, dk);
  Generator g(seed * 131 + 5);
  std::vector<StudyRow> rows;
  for (int64_t step = 0; step < steps; ++step) {
    auto call = [&](layers::AttentionKind kind) {
      models::GanForward f;
      f.attention = kind;
      f.attention_seed = seed * 7919 + static_cast<uint64_t>(step);
      return f;
    };
    // ---- D: the discriminator's hinge loss on cat(G(z, y) without gradients, a real batch)
    const Tensor y_fake = randint(0, mc.n_classes, {batch}, DType::Int64, &g);
    const Tensor z = randn({batch, mc.dim_z}, {}, &g);
    std::vector<int64_t> idx(batch);
    for (int64_t b = 0; b < batch; ++b)
      idx[b] = static_cast<int64_t>(g.next_u64() % static_cast<uint64_t>(ds.size()));
    const Tensor at = from_vector(idx, {batch});
    const Tensor real = index_select(ds.images, 0, at), y_real = index_select(ds.labels, 0, at);
    BufferSnapshot before_d({&G, &D});
    auto d_grads = [&](layers::AttentionKind kind) {
      const models::GanForward f = call(kind);
      Tensor fake;
      {
        NoGradGuard ng;
        fake = G.forward(z, y_fake, f);
      }
      opt_d.zero_grad();
      const Tensor out = D.forward(cat({fake, real}, 0), cat({y_fake, y_real}, 0), f);
      (hinge_d_fake(out.narrow(0, 0, batch)) + hinge_d_real(out.narrow(0, batch, batch)))
          .backward();
      return gradients(gdp.params);
    };
    const auto ds_grads = d_grads(layers::AttentionKind::Smyrf);
    before_d.restore();
    const auto dd_grads = d_grads(layers::AttentionKind::Dense);  // left in .grad for the step
    compare_gradients(gdp, ds_grads, dd_grads, d_base, step, rows);
    opt_d.step();
    // ---- G: the generator's hinge loss -mean(D(G(z, y), y)), D frozen
    for (Tensor& p : D.parameters()) p.requires_grad_(false);
    const Tensor y_g = randint(0, mc.n_classes, {batch}, DType::Int64, &g);
    const Tensor z_g = randn({batch, mc.dim_z}, {}, &g);
    BufferSnapshot before_g({&G, &D});
    auto g_grads = [&](layers::AttentionKind kind) {
      const models::GanForward f = call(kind);
      opt_g.zero_grad();
      hinge_g(D.forward(G.forward(z_g, y_g, f), y_g, f)).backward();
      return gradients(gg.params);
    };
    const auto gs_grads = g_grads(layers::AttentionKind::Smyrf);
    before_g.restore();
    const auto gd_grads = g_grads(layers::AttentionKind::Dense);
    compare_gradients(gg, gs_grads, gd_grads, g_base, step, rows);
    opt_g.step();
    for (Tensor& p : D.parameters()) p.requires_grad_(true);
  }
  return rows;
}

}  // namespace smyrf::train
