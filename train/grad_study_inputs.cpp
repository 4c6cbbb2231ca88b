// Inputs of the gradient study: synthetic heads and heads captured from checkpoints with hooks.
#include <cmath>
#include <filesystem>
#include <memory>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/random.h"
#include "layers/attention.h"
#include "models/bert.h"
#include "train/gan_train.h"
#include "train/grad_study.h"
#include "train/grad_study_internal.h"
#include "train/lm_train.h"
#include "train/run_files.h"

namespace smyrf::train {

namespace {
constexpr const char* kOp = "grad_study";
namespace fs = std::filesystem;

std::vector<double> normal(int64_t n, Generator& g) {
  return randn({n}, kFloat64, &g).to_vector<double>();
}
}  // namespace

namespace study_detail {
bool is_lm_run(const std::string& dir) { return fs::exists(run_path(dir, "tokenizer.json")); }

data::ImageDataset gan_training_images(const LoadedGan& l, const std::string& what,
                                       const std::string& hint) {
  const models::BigGanConfig& c = l.options.model;
  data::ImageDataset ds;
  const std::string where = l.options.data.empty() ? l.options.data_dir : l.options.data;
  try {
    ds = load_gan_data(l.options);
  } catch (const Error& e) {
    throw Error(kOp,
                what + " needs real batches from the run's training images '" + where +
                    "', which could not be read: " + e.what(),
                "restore the images at that path, or " + hint);
  }
  SMYRF_CHECK_HINT(ds.size() > 0 && ds.images.size(1) == c.image_channels &&
                       ds.images.size(2) == c.resolution && ds.images.size(3) == c.resolution,
                   kOp,
                   "the images in '" << where << "' are " << shape_str(ds.images.shape())
                                     << " but D takes (N, " << c.image_channels << ", "
                                     << c.resolution << ", " << c.resolution << ")",
                   "the run's training data must be unchanged");
  return ds;
}
}  // namespace study_detail

using study_detail::is_lm_run;

StudyInput synthetic_input(const std::string& kind, int64_t n, int64_t d, int64_t heads,
                           double temperature, uint64_t seed) {
  SMYRF_CHECK_HINT(kind == "gaussian" || kind == "clustered", kOp,
                   "unknown synthetic input '" << kind << "'", "use gaussian or clustered");
  SMYRF_CHECK_HINT(n > 0 && d > 0 && heads > 0 && temperature > 0, kOp,
                   "synthetic sizes must be positive: n " << n << ", d " << d << ", heads " << heads
                                                          << ", temperature " << temperature,
                   "e.g. n 256, d 32, heads 2, temperature 1");
  Generator g(seed * 0x9E3779B97F4A7C15ull + 11);
  const int64_t total = heads * n * d;
  std::vector<double> q = normal(total, g), k = normal(total, g);
  if (kind == "clustered") {
    constexpr int64_t kCentres = 8;
    const std::vector<double> c = normal(heads * kCentres * d, g);
    const std::vector<double> pick = rand({2 * heads * n}, kFloat64, &g).to_vector<double>();
    for (int64_t h = 0; h < heads; ++h) {
      // centres of norm 2 d^(1/4): scaled scores about 4 within a centre and about 0 across
      // centres, so the dense attention of a token concentrates on its own centre
      std::vector<double> norm(kCentres, 0);
      for (int64_t m = 0; m < kCentres; ++m)
        for (int64_t e = 0; e < d; ++e)
          norm[m] += c[(h * kCentres + m) * d + e] * c[(h * kCentres + m) * d + e];
      for (int side = 0; side < 2; ++side) {
        std::vector<double>& x = side == 0 ? q : k;
        for (int64_t i = 0; i < n; ++i) {
          const int64_t m = std::min<int64_t>(
              kCentres - 1, static_cast<int64_t>(pick[(side * heads + h) * n + i] * kCentres));
          const double s = 2.0 * std::pow(static_cast<double>(d), 0.25) / std::sqrt(norm[m]);
          for (int64_t e = 0; e < d; ++e) {
            double& v = x[(h * n + i) * d + e];
            v = c[(h * kCentres + m) * d + e] * s + 0.1 * v;
          }
        }
      }
    }
  }
  StudyInput in;
  in.source = kind;
  in.layer = "synthetic";
  in.q = from_vector(q, {1, heads, n, d});
  in.k = from_vector(k, {1, heads, n, d});
  in.v = from_vector(normal(total, g), {1, heads, n, d});
  in.dout = from_vector(normal(total, g), {1, heads, n, d});
  in.temperature = temperature;
  in.scale = 1.0 / (temperature * std::sqrt(static_cast<double>(d)));
  return in;
}

namespace {
bool is_attention(const layers::Module* m) {
  return dynamic_cast<const layers::Attention*>(m) ||
         dynamic_cast<const layers::SelfAttention2d*>(m);
}

void collect_attention(const layers::Module& m, const std::string& prefix,
                       std::vector<std::string>& names) {
  for (auto& [n, sub] : m.named_modules())
    if (is_attention(sub.get())) names.push_back(prefix + n);
}

std::vector<std::string> gan_attention_layers(const LoadedGan& l) {
  std::vector<std::string> names;
  collect_attention(*l.g, "G.", names);
  collect_attention(*l.g_ema, "G_ema.", names);
  collect_attention(*l.d, "D.", names);
  return names;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// Hooks on the attention layer `path` of root that copy q, k, v and grad_out into `got`
// (float64). `shown` is the user's name of the layer, `names` the valid names for the error.
void attach_capture(layers::Module& root, const std::string& path, const std::string& dir,
                    const std::string& shown, const std::vector<std::string>& names,
                    std::map<std::string, Tensor>& got) {
  bool found = false;
  for (auto& [n, sub] : root.named_modules()) found |= n == path;
  SMYRF_CHECK_HINT(found, kOp, "'" << dir << "' has no layer named '" << shown << "'",
                   "attention layers: " << joined(names));
  std::shared_ptr<layers::Module> m = layers::find_module(root, path);
  SMYRF_CHECK_HINT(is_attention(m.get()), kOp,
                   "'" << shown << "' is a " << m->name() << ", not an attention layer",
                   "attention layers: " << joined(names));
  auto hook = [&got](const std::string& point, const Tensor& t) {
    if (point != "out") got[point] = t.detach().to(kFloat64).contiguous().clone();
  };
  m->register_forward_hook(hook);
  m->register_backward_hook(hook);
}
}  // namespace

std::vector<std::string> attention_layers(const std::string& dir) {
  std::vector<std::string> names;
  if (is_lm_run(dir)) {
    LoadedLm l = load_lm(dir);
    collect_attention(*l.model, "", names);
  } else {
    names = gan_attention_layers(load_gan(dir));
  }
  return names;
}

StudyInput capture_input(const std::string& dir, const std::string& layer, int64_t batch,
                         uint64_t seed) {
  SMYRF_CHECK_HINT(batch > 0, kOp, "batch must be positive, got " << batch, "e.g. --batch 2");
  std::map<std::string, Tensor> got;
  StudyInput in;
  in.source = dir + ":" + layer;
  in.layer = layer;
  Generator g(seed * 31 + 7);
  if (is_lm_run(dir)) {
    LoadedLm l = load_lm(dir);
    std::vector<std::string> names;
    collect_attention(*l.model, "", names);
    attach_capture(*l.model, layer, dir, layer, names, got);
    const auto* att = dynamic_cast<layers::Attention*>(layers::find_module(*l.model, layer).get());
    SMYRF_CHECK(att != nullptr, kOp, "'" << layer << "' is not an Attention layer of the LM");
    LmData d = prepare_lm_data(l.options, run_path(dir, "tokenizer.json"), false);
    const int64_t ctx = l.model->config().context;
    const bool causal = l.model->causal();
    const std::vector<int32_t>& stream =
        d.streams.val.size() > static_cast<size_t>(ctx + 1) ? d.streams.val : d.streams.train;
    SMYRF_CHECK_HINT(stream.size() > static_cast<size_t>(ctx + 1), kOp,
                     "the run's text has fewer than " << ctx + 1 << " tokens",
                     "train on a larger corpus");
    std::vector<int64_t> x(batch * ctx), y(batch * ctx);
    const uint64_t span = stream.size() - ctx - 1;
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t s = static_cast<int64_t>(g.next_u64() % span);
      for (int64_t i = 0; i < ctx; ++i)
        x[b * ctx + i] = stream[s + i], y[b * ctx + i] = stream[s + i + 1];
    }
    Tensor xt = from_vector(x, {batch, ctx}), yt = from_vector(y, {batch, ctx});
    if (!causal) {
      models::MlmBatch mb = models::mask_tokens(xt, l.model->config().vocab_size - 1, g);
      xt = mb.inputs, yt = mb.targets;
    }
    models::ForwardOptions f;
    f.attention = layers::AttentionKind::Dense;  // the dense pass is the reference
    models::TransformerLM::loss(l.model->forward(xt, f), yt).backward();
    in.causal = causal;
    in.scale = 1.0 / std::sqrt(static_cast<double>(att->head_dim));
  } else {
    LoadedGan l = load_gan(dir);
    const std::vector<std::string> names = gan_attention_layers(l);
    const size_t dot = layer.find('.');
    const std::string net = dot == std::string::npos ? "" : layer.substr(0, dot);
    SMYRF_CHECK_HINT(net == "G" || net == "G_ema" || net == "D", kOp,
                     "'" << layer << "' names no network of the GAN run '" << dir
                         << "' (names start with G., G_ema. or D.)",
                     "attention layers: " << joined(names));
    layers::Module& root = net == "G"       ? static_cast<layers::Module&>(*l.g)
                           : net == "G_ema" ? static_cast<layers::Module&>(*l.g_ema)
                                            : static_cast<layers::Module&>(*l.d);
    attach_capture(root, layer.substr(dot + 1), dir, layer, names, got);
    const models::BigGanConfig& c = l.options.model;
    models::GanForward dense;
    dense.attention = layers::AttentionKind::Dense;  // the dense pass is the reference
    // the draws of the training step (gan_iteration): fake labels, then z
    const Tensor y_fake = randint(0, c.n_classes, {batch}, DType::Int64, &g);
    const Tensor z = randn({batch, c.dim_z}, {}, &g);
    Tensor loss;
    if (net == "D") {
      // the discriminator's hinge loss on cat(fake, real), as the D step computes it
      const data::ImageDataset ds = study_detail::gan_training_images(
          l, "capturing '" + layer + "'", "capture a G. or G_ema. layer");
      std::vector<int64_t> idx(batch);
      for (int64_t b = 0; b < batch; ++b)
        idx[b] = static_cast<int64_t>(g.next_u64() % static_cast<uint64_t>(ds.size()));
      const Tensor at = from_vector(idx, {batch});
      Tensor fake;
      {
        NoGradGuard ng;
        fake = l.g->forward(z, y_fake, dense);
      }
      const Tensor out = l.d->forward(cat({fake, index_select(ds.images, 0, at)}, 0),
                                      cat({y_fake, index_select(ds.labels, 0, at)}, 0), dense);
      loss = hinge_d_fake(out.narrow(0, 0, batch)) + hinge_d_real(out.narrow(0, batch, batch));
    } else {
      // the generator's hinge loss -mean(D(G(z, y), y)), D frozen as in the G step
      for (Tensor& p : l.d->parameters()) p.requires_grad_(false);
      models::BigGanGenerator& gen = net == "G" ? *l.g : *l.g_ema;
      loss = hinge_g(l.d->forward(gen.forward(z, y_fake, dense), y_fake, dense));
    }
    loss.backward();
    in.scale = 1.0;  // BigGAN's convention
  }
  for (const char* p : {"q", "k", "v", "grad_out"})
    SMYRF_CHECK_HINT(got.count(p) && got[p].defined(), kOp,
                     "layer '" << layer << "' did not report '" << p << "'",
                     "its attention output must take part in the loss");
  in.q = got["q"], in.k = got["k"], in.v = got["v"], in.dout = got["grad_out"];
  return in;
}

}  // namespace smyrf::train
