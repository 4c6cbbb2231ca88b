#include "train/gan_train.h"
#include "train/run_files.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "autograd/grad_mode.h"
#include "core/atomic_file.h"
#include "data/loader.h"
#include "data/png.h"
#include "train/alloc_policy.h"
#include "train/checkpoint.h"
#include "train/classifier_train.h"
#include "train/device_option.h"
#include "train/plot.h"

namespace smyrf::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using models::BigGanDiscriminator;
using models::BigGanGenerator;
constexpr const char* kOp = "gan_train";
constexpr const char* kCkpt = "ckpt";

std::string path_in(const std::string& dir, const std::string& file) { return run_path(dir, file); }

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const long t = std::lround(s);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

// G, D and G_ema under one state dict, so one atomic checkpoint holds all three.
class GanState : public layers::Module {
 public:
  GanState(const models::BigGanConfig& c, Generator* init) {
    G = register_module("G", std::make_shared<BigGanGenerator>(c, init));
    D = register_module("D", std::make_shared<BigGanDiscriminator>(c, init));
    // G_ema's own initial draws are irrelevant: it starts as a copy of G
    Generator scratch(0);
    G_ema = register_module("G_ema", std::make_shared<BigGanGenerator>(c, &scratch));
    models::ema_update(*G_ema, *G, 0.0);
    G_ema->eval();
  }
  std::string name() const override { return "GanState"; }
  std::shared_ptr<BigGanGenerator> G, G_ema;
  std::shared_ptr<BigGanDiscriminator> D;
};

// Both Adam states behind the one optimizer slot of a checkpoint ("G." and "D." prefixes).
class PairOptimizer : public Optimizer {
 public:
  PairOptimizer(Optimizer& g, Optimizer& d) : Optimizer({}, 0), g_(g), d_(d) {}
  void step() override { throw Error(kOp, "PairOptimizer only carries state", "step G and D"); }
  layers::NamedTensors state() const override {
    layers::NamedTensors out;
    for (auto& [n, t] : g_.state()) out.emplace_back("G." + n, t);
    for (auto& [n, t] : d_.state()) out.emplace_back("D." + n, t);
    return out;
  }
  void load_state(const layers::NamedTensors& state) override {
    layers::NamedTensors g, d;
    for (auto& [n, t] : state) {
      if (n.rfind("G.", 0) == 0)
        g.emplace_back(n.substr(2), t);
      else if (n.rfind("D.", 0) == 0)
        d.emplace_back(n.substr(2), t);
      else
        throw Error(kOp, "optimizer state entry '" + n + "' is neither G's nor D's",
                    "the checkpoint was not written by gan train");
    }
    g_.load_state(g);
    d_.load_state(d);
  }

 private:
  Optimizer& g_;
  Optimizer& d_;
};

data::ImageDataset load_data(const GanTrainOptions& o) {
  const models::BigGanConfig& c = o.model;
  data::ImageDataset ds;
  if (!o.data.empty()) {
    ds = data::load_image_folder(o.data, c.resolution, c.image_channels);
  } else {
    SMYRF_CHECK_HINT(c.resolution == 32 && c.image_channels == 1, kOp,
                     "Fashion-MNIST is 1x32x32 (padded) but the model is "
                         << c.image_channels << "x" << c.resolution << "x" << c.resolution,
                     "use resolution 32 with 1 channel, or --data <image folder>");
    ds = data::load_fashion_mnist(o.data_dir, "train", 32);
  }
  if (o.max_images > 0 && o.max_images < ds.size()) {
    ds.images = ds.images.narrow(0, 0, o.max_images).contiguous();
    ds.labels = ds.labels.narrow(0, 0, o.max_images).contiguous();
  }
  return ds;
}

void check_data(const data::ImageDataset& ds, const GanTrainOptions& o) {
  const models::BigGanConfig& c = o.model;
  SMYRF_CHECK_HINT(ds.images.defined() && ds.images.dim() == 4 &&
                       ds.images.size(1) == c.image_channels && ds.images.size(2) == c.resolution &&
                       ds.images.size(3) == c.resolution,
                   kOp,
                   "images are " << (ds.images.defined() ? shape_str(ds.images.shape()) : "missing")
                                 << " but the model makes (N, " << c.image_channels << ", "
                                 << c.resolution << ", " << c.resolution << ")",
                   "set the resolution and channels to the data's");
  SMYRF_CHECK_HINT(ds.num_classes == c.n_classes, kOp,
                   "the data has " << ds.num_classes << " classes but the model " << c.n_classes,
                   "n_classes follows the data on a fresh run; a resumed run needs the same data");
  SMYRF_CHECK_HINT(ds.size() >= o.batch, kOp,
                   "only " << ds.size() << " images for batches of " << o.batch,
                   "lower --batch or add images");
}

double mean_of(const Tensor& t) { return t.defined() ? mean(t.detach()).item<double>() : 0.0; }

std::vector<double> gammas(const std::vector<std::shared_ptr<layers::SelfAttention2d>>& blocks) {
  std::vector<double> out;
  for (auto& b : blocks) out.push_back(b->gamma.item<double>());
  return out;
}

// The first, a middle and the last spectrally normalised layer of a network: enough to see the
// top singular values drift without logging dozens of numbers per step.
template <typename Net>
void add_sigmas(json& out, const std::string& prefix, const Net& net) {
  auto layers = net.spectral_layers();
  if (layers.empty()) return;
  for (size_t i : {size_t{0}, layers.size() / 2, layers.size() - 1})
    out[prefix + layers[i].first] = layers[i].second->last_sigma();
}

// FCD/KID of G_ema during training against the Fashion-MNIST test set (see eval_every).
class PeriodicEval {
 public:
  explicit PeriodicEval(const GanTrainOptions& o) : o_(o) {
    classifier_ = load_frozen_classifier(o.classifier);
    const data::ImageDataset test = data::load_fashion_mnist(o.data_dir, "test", 32);
    reference_ = classify_images(*classifier_.model, test.images);
    reference_stats_ = fit_gaussian(reference_.features);
  }

  json evaluate(models::BigGanGenerator& g_ema, int64_t step) {
    SampleMetricsOptions mo;
    mo.kid_subsets = 10;
    mo.kid_subset_size = std::min<int64_t>(1000, o_.eval_per_class * o_.model.n_classes);
    mo.kid_seed = o_.seed;
    const GanEvalResult r = evaluate_gan(g_ema, *classifier_.model, reference_, reference_stats_,
                                         o_.eval_per_class, 0.0, o_.seed + 7, mo);
    return {{"step", step},
            {"fcd", r.metrics.fcd},
            {"kid_mean", r.metrics.kid.mean},
            {"kid_std", r.metrics.kid.std},
            {"accuracy", r.metrics.accuracy},
            {"images", r.images},
            {"classifier", classifier_.info.version},
            {"seconds", r.seconds}};
  }

 private:
  const GanTrainOptions& o_;
  FrozenClassifier classifier_;
  ClassifierOutputs reference_;
  GaussianStats reference_stats_;
};

// FCD against the step, from every line of the evaluation log.
void plot_eval_curve(const std::vector<json>& evals, const std::string& png) {
  PlotSeries fcd{{}, {}, {44, 160, 44}};
  for (const json& j : evals) {
    fcd.x.push_back(j.at("step").get<double>());
    fcd.y.push_back(j.at("fcd").get<double>());
  }
  save_plot(png, {fcd});
}

}  // namespace

// ---------------------------------------------------------------- options

json GanTrainOptions::to_json() const {
  return {{"model", model.to_json()},
          {"data", data},
          {"data_dir", data_dir},
          {"max_images", max_images},
          {"batch", batch},
          {"d_steps", d_steps},
          {"steps", steps},
          {"g_lr", g_lr},
          {"d_lr", d_lr},
          {"beta1", beta1},
          {"beta2", beta2},
          {"adam_eps", adam_eps},
          {"ema_decay", ema_decay},
          {"ema_start", ema_start},
          {"sample_every", sample_every},
          {"ckpt_every", ckpt_every},
          {"samples_per_class", samples_per_class},
          {"eval_every", eval_every},
          {"eval_per_class", eval_per_class},
          {"classifier", classifier},
          {"sample_truncation", sample_truncation},
          {"seed", seed},
          {"out", out}};
}

GanTrainOptions GanTrainOptions::from_json(const json& j) {
  GanTrainOptions o;
  auto get = [&](const char* k, auto& v) {
    if (j.contains(k)) j.at(k).get_to(v);
  };
  if (j.contains("model")) o.model = models::BigGanConfig::from_json(j.at("model"));
  get("data", o.data);
  get("data_dir", o.data_dir);
  get("max_images", o.max_images);
  get("batch", o.batch);
  get("d_steps", o.d_steps);
  get("steps", o.steps);
  get("g_lr", o.g_lr);
  get("d_lr", o.d_lr);
  get("beta1", o.beta1);
  get("beta2", o.beta2);
  get("adam_eps", o.adam_eps);
  get("ema_decay", o.ema_decay);
  get("ema_start", o.ema_start);
  get("sample_every", o.sample_every);
  get("ckpt_every", o.ckpt_every);
  get("samples_per_class", o.samples_per_class);
  get("eval_every", o.eval_every);
  get("eval_per_class", o.eval_per_class);
  get("classifier", o.classifier);
  get("sample_truncation", o.sample_truncation);
  get("seed", o.seed);
  get("out", o.out);
  return o;
}

// ---------------------------------------------------------------- losses

Tensor hinge_d_real(const Tensor& d_real) { return mean(relu(1.0 - d_real)); }
Tensor hinge_d_fake(const Tensor& d_fake) { return mean(relu(1.0 + d_fake)); }
Tensor hinge_g(const Tensor& d_fake) { return -mean(d_fake); }

// ---------------------------------------------------------------- sampling

GanSamples sample_gan(BigGanGenerator& g, int64_t n, int64_t label, double truncation,
                      uint64_t seed) {
  const models::BigGanConfig& c = g.config();
  SMYRF_CHECK_HINT(n > 0, "gan_sample", "count must be positive, got " << n, "ask for 1 or more");
  SMYRF_CHECK_HINT(label < c.n_classes, "gan_sample",
                   "class " << label << " but the model has " << c.n_classes << " classes",
                   "classes are 0.." << c.n_classes - 1 << " (or -1 for all)");
  const bool was_training = g.is_training();
  g.eval();
  NoGradGuard no_grad;
  const Device dev = g.device();
  Generator gen(seed);
  std::vector<int64_t> ys(n);
  for (int64_t i = 0; i < n; ++i) ys[i] = label >= 0 ? label : i % c.n_classes;
  std::vector<Tensor> parts;
  for (int64_t s = 0; s < n; s += 100) {
    const int64_t b = std::min<int64_t>(100, n - s);
    const Tensor z = models::sample_z(b, c.dim_z, truncation, &gen);
    const Tensor y =
        from_vector<int64_t>(std::vector<int64_t>(ys.begin() + s, ys.begin() + s + b), {b});
    models::GanForward f;
    f.attention_seed = gen.next_u64();
    parts.push_back(g.forward(z.to(dev), y.to(dev), f).to(Device::cpu()));  // images on the CPU
  }
  g.train(was_training);
  return {parts.size() == 1 ? parts[0] : cat(parts, 0), from_vector<int64_t>(ys, {n})};
}

GanEvalResult evaluate_gan(BigGanGenerator& g, models::Classifier& classifier,
                           const ClassifierOutputs& reference, const GaussianStats& reference_stats,
                           int64_t per_class, double truncation, uint64_t seed,
                           const SampleMetricsOptions& options) {
  const models::BigGanConfig& c = g.config();
  const models::ClassifierConfig& k = classifier.config();
  SMYRF_CHECK_HINT(c.image_channels == k.in_channels && c.resolution == k.image_size &&
                       c.n_classes == k.num_classes,
                   "gan_eval",
                   "the generator makes " << c.n_classes << " classes of " << c.image_channels
                                          << "x" << c.resolution << "x" << c.resolution
                                          << " images but the classifier reads " << k.num_classes
                                          << " classes of " << k.in_channels << "x" << k.image_size
                                          << "x" << k.image_size,
                   "FCD is defined for runs trained on Fashion-MNIST (1x32x32, 10 classes)");
  SMYRF_CHECK_HINT(per_class >= 2, "gan_eval", "per_class must be at least 2, got " << per_class,
                   "the protocol uses 1000");
  const auto t0 = std::chrono::steady_clock::now();
  const GanSamples s = sample_gan(g, per_class * c.n_classes, -1, truncation, seed);
  GanEvalResult r;
  r.images = s.images.size(0);
  r.metrics = evaluate_samples(classifier, s.images, s.labels, reference, reference_stats, options);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

// ---------------------------------------------------------------- one iteration

GanStepStats gan_iteration(const GanIteration& it, const GanTrainOptions& o, int64_t step) {
  BigGanGenerator& G = it.G;
  BigGanDiscriminator& D = it.D;
  const int64_t B = o.batch, nc = o.model.n_classes;
  // the noise is drawn on the CPU (the same numbers on either device) and follows the models
  const Device dev = G.device();
  GanStepStats st;
  // ---- D steps
  for (int64_t k = 0; k < o.d_steps; ++k) {
    const std::vector<Tensor> real = it.next_real();
    Tensor fake;
    const Tensor y_fake = randint(0, nc, {B}, DType::Int64, &it.noise).to(dev);
    {
      NoGradGuard ng;
      fake = G.forward(randn({B, o.model.dim_z}, {}, &it.noise).to(dev), y_fake);
    }
    it.opt_d.zero_grad();
    const Tensor out =
        D.forward(cat({fake, real[0].to(dev)}, 0), cat({y_fake, real[1].to(dev)}, 0));
    const Tensor d_fake = out.narrow(0, 0, B), d_real = out.narrow(0, B, B);
    const Tensor l_real = hinge_d_real(d_real), l_fake = hinge_d_fake(d_fake);
    (l_real + l_fake).backward();
    it.opt_d.step();
    // the last D step's numbers represent the iteration
    st.d_loss_real = l_real.item<double>();
    st.d_loss_fake = l_fake.item<double>();
    st.d_real = mean_of(d_real);
    st.d_fake = mean_of(d_fake);
  }
  // ---- G step, D frozen so its weight gradients are not computed
  for (auto& p : D.parameters()) p.requires_grad_(false);
  it.opt_g.zero_grad();
  const Tensor y_g = randint(0, nc, {B}, DType::Int64, &it.noise).to(dev);
  const Tensor z_g = randn({B, o.model.dim_z}, {}, &it.noise).to(dev);
  const Tensor l_g = hinge_g(D.forward(G.forward(z_g, y_g), y_g));
  l_g.backward();
  it.opt_g.step();
  for (auto& p : D.parameters()) p.requires_grad_(true);
  if (it.G_ema) models::ema_update(*it.G_ema, G, step > o.ema_start ? o.ema_decay : 0.0);
  st.step = step;
  st.g_loss = l_g.item<double>();
  st.gamma_g = gammas(G.attention_blocks());
  st.gamma_d = gammas(D.attention_blocks());
  return st;
}

// ---------------------------------------------------------------- training

AdamW::Options gan_adam_options(const GanTrainOptions& o, double lr) {
  return AdamW::Options{}
      .set_lr(lr)
      .set_betas(o.beta1, o.beta2)
      .set_eps(o.adam_eps)
      .set_weight_decay(0)
      .set_decoupled(false);
}

GanTrainResult train_gan(const GanTrainOptions& given) {
  // every iteration frees and reallocates the same activation and gradient buffers, and those
  // above glibc's mmap threshold came back as fresh pages each time: keep them, as lm train does
  // (train/alloc_policy.h; smyrf bench gan-step, whole process: page faults 36-61K -> 20-36K)
  retain_freed_memory();
  GanTrainOptions o = given;
  const bool resuming = given.resume && checkpoint_exists(given.out, kCkpt);
  if (resuming) {
    // the saved run's options win, except the controls of this call
    const json side = json::parse(read_file(path_in(given.out, std::string(kCkpt) + ".json"), kOp));
    o = GanTrainOptions::from_json(side.at("config"));
    o.steps = given.steps;
    o.stop_at = given.stop_at;
    o.time_limit_s = given.time_limit_s;
    o.progress = given.progress;
    o.write_samples = given.write_samples;
    o.sample_every = given.sample_every;
    o.ckpt_every = given.ckpt_every;
    o.prefetch = given.prefetch;
    o.out = given.out;
    o.dataset = given.dataset;
    o.device = given.device;
    o.resume = true;
  }
  const Device dev = device_option(o.device, kOp);  // before any work: a missing GPU fails now
  SMYRF_CHECK_HINT(o.batch > 0 && o.d_steps > 0 && o.steps >= 0, kOp,
                   "batch " << o.batch << ", d_steps " << o.d_steps << ", steps " << o.steps,
                   "batch and d_steps must be positive");
  if (o.eval_every > 0) {  // periodic evaluation: Fashion-MNIST only (its classifier)
    SMYRF_CHECK_HINT(
        o.data.empty(), kOp,
        "periodic evaluation (eval_every " << o.eval_every << ") needs Fashion-MNIST training data",
        "its feature network is the Fashion-MNIST classifier; drop --eval-every for "
        "an image folder");
    SMYRF_CHECK_HINT(o.eval_per_class > 0, kOp,
                     "eval_per_class must be positive, got " << o.eval_per_class,
                     "100 per class gives a 1k-image FCD");
  }
  fs::create_directories(o.out);

  data::ImageDataset owned;
  const data::ImageDataset* ds = o.dataset;
  if (!ds) {
    owned = load_data(o);
    ds = &owned;
  }
  if (!resuming) o.model.n_classes = ds->num_classes;
  check_data(*ds, o);
  o.model.validate();

  Generator init(o.seed);
  GanState state(o.model, &init);
  state.to(dev);  // initialised on the CPU: the same weights for a seed on either device
  BigGanGenerator& G = *state.G;
  BigGanDiscriminator& D = *state.D;
  BigGanGenerator& G_ema = *state.G_ema;
  AdamW opt_g(G.parameters(), gan_adam_options(o, o.g_lr));
  AdamW opt_d(D.parameters(), gan_adam_options(o, o.d_lr));
  PairOptimizer opt_pair(opt_g, opt_d);
  Generator noise(o.seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull);

  const Tensor images = ds->images, labels = ds->labels;
  data::DataLoader::Options lo;
  lo.batch_size = o.batch;
  lo.seed = o.seed + 1;
  lo.prefetch = o.prefetch;
  data::DataLoader loader(
      ds->size(),
      [&images, &labels](const std::vector<int64_t>& idx) {
        const Tensor i = from_vector<int64_t>(idx, {static_cast<int64_t>(idx.size())});
        NoGradGuard ng;
        return data::Batch{index_select(images, 0, i), index_select(labels, 0, i)};
      },
      lo);

  CheckpointTargets targets{&state,
                            &opt_pair,
                            {{"noise", &noise},
                             {"G_attention", &G.attention_generator()},
                             {"D_attention", &D.attention_generator()}}};
  int64_t step = resuming ? resume_run_checkpoint(o.out, kCkpt, targets, loader) : 0;
  RunLog run_log(path_in(o.out, "log.jsonl"), resuming, step, kOp);
  const std::vector<json>& log = run_log.entries();
  auto write_log = [&](const json& j) { run_log.write(j); };
  auto save = [&]() { save_run_checkpoint(o.out, kCkpt, targets, step, o.to_json(), loader); };

  // The grid's z and labels depend on the run seed only, so every grid of a run (resumed or not)
  // shows the same points of latent space.
  const int64_t spc = std::max<int64_t>(1, o.samples_per_class);
  GanTrainResult res;
  auto write_grid = [&]() {
    if (!o.write_samples) return;
    const GanSamples s = [&] {
      const int64_t n = spc * o.model.n_classes;
      std::vector<int64_t> ys(n);
      for (int64_t i = 0; i < n; ++i) ys[i] = i / spc;  // one row per class
      Generator gz(o.seed ^ 0xA5A5F00DBEEF1234ull);
      NoGradGuard ng;
      G_ema.eval();
      models::GanForward f;
      f.attention_seed = o.seed + 99;
      const Tensor z = models::sample_z(n, o.model.dim_z, o.sample_truncation, &gz);
      const Tensor y = from_vector<int64_t>(ys, {n});
      return GanSamples{G_ema.forward(z.to(dev), y.to(dev), f).to(Device::cpu()), Tensor()};
    }();
    fs::create_directories(path_in(o.out, "samples"));
    char name[64];
    std::snprintf(name, sizeof name, "samples/step_%06lld.png", static_cast<long long>(step));
    data::save_image_grid(path_in(o.out, name), s.images, spc);
    data::save_image_grid(path_in(o.out, "samples.png"), s.images, spc);
    res.last_grid = path_in(o.out, "samples.png");
  };

  // Periodic evaluation: the classifier and the test set's features are loaded once.
  std::unique_ptr<PeriodicEval> evaluator;
  std::unique_ptr<RunLog> eval_log;
  if (o.eval_every > 0) {
    evaluator = std::make_unique<PeriodicEval>(o);
    eval_log = std::make_unique<RunLog>(path_in(o.out, "evals.jsonl"), resuming, step, kOp);
  }
  auto run_eval = [&]() {
    const json j = evaluator->evaluate(G_ema, step);
    eval_log->write(j);
    if (o.progress)
      std::fprintf(stderr, "%seval at step %lld: FCD %.3f  KID %.5f  accuracy %.1f%% (%.0f s)\n",
                   isatty(2) ? "\n" : "", static_cast<long long>(step), j.at("fcd").get<double>(),
                   j.at("kid_mean").get<double>(), 100 * j.at("accuracy").get<double>(),
                   j.at("seconds").get<double>());
    if (o.write_samples) plot_eval_curve(eval_log->entries(), path_in(o.out, "fcd.png"));
  };

  const bool tty = isatty(2);
  const auto t_start = std::chrono::steady_clock::now();
  double train_seconds = 0;
  int64_t steps_run = 0;
  if (o.progress)
    std::fprintf(stderr,
                 "BigGAN %lldx%lld ch %lld, %s attention: G %lld, D %lld parameters; %lld images, "
                 "%lld classes; batch %lld, %lld D steps%s\n",
                 static_cast<long long>(o.model.resolution),
                 static_cast<long long>(o.model.resolution), static_cast<long long>(o.model.ch),
                 o.model.attention.c_str(), static_cast<long long>(G.num_parameters()),
                 static_cast<long long>(D.num_parameters()), static_cast<long long>(ds->size()),
                 static_cast<long long>(o.model.n_classes), static_cast<long long>(o.batch),
                 static_cast<long long>(o.d_steps),
                 resuming ? (" (resumed at step " + std::to_string(step) + ")").c_str() : "");
  const int64_t B = o.batch;
  const GanIteration iteration{
      G, D, &G_ema, opt_g, opt_d, noise, [&loader] { return loader.next(); }};
  bool stop = false;
  while (step < o.steps && !stop) {
    const auto t0 = std::chrono::steady_clock::now();
    ++step;
    ++steps_run;
    const GanStepStats st = gan_iteration(iteration, o, step);
    train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double ips = static_cast<double>(steps_run * B) / train_seconds;
    res.history.push_back(st);

    json sig = json::object();
    add_sigmas(sig, "G.", G);
    add_sigmas(sig, "D.", D);
    write_log({{"step", step},
               {"d_loss_real", st.d_loss_real},
               {"d_loss_fake", st.d_loss_fake},
               {"g_loss", st.g_loss},
               {"d_real", st.d_real},
               {"d_fake", st.d_fake},
               {"gamma_G", st.gamma_g},
               {"gamma_D", st.gamma_d},
               {"sigma", sig},
               {"images_per_s", ips}});

    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    if (o.stop_at >= 0 && step >= o.stop_at) stop = true;
    if (o.time_limit_s > 0 && elapsed >= o.time_limit_s) stop = true;
    if (o.progress && (tty || step % 10 == 0 || step == o.steps || stop)) {
      double eta = train_seconds / steps_run * static_cast<double>(o.steps - step);
      if (o.time_limit_s > 0) eta = std::min(eta, std::max(0.0, o.time_limit_s - elapsed));
      const int width = 20;
      const int filled = o.time_limit_s > 0 && o.time_limit_s - elapsed < eta + 1e-9
                             ? static_cast<int>(width * std::min(1.0, elapsed / o.time_limit_s))
                             : static_cast<int>(width * step / std::max<int64_t>(1, o.steps));
      std::fprintf(stderr,
                   "%s[%s%s] step %lld  D %.3f (real %.3f fake %.3f)  G %.3f  gamma %.4f  "
                   "%.2f img/s  left %s   %s",
                   tty ? "\r" : "", std::string(filled, '#').c_str(),
                   std::string(width - filled, '.').c_str(), static_cast<long long>(step),
                   st.d_loss_real + st.d_loss_fake, st.d_loss_real, st.d_loss_fake, st.g_loss,
                   st.gamma_g.empty() ? 0.0 : st.gamma_g[0], ips, format_duration(eta).c_str(),
                   tty ? "" : "\n");
    }
    const bool last = step == o.steps || stop;
    if ((o.sample_every > 0 && step % o.sample_every == 0) || last) write_grid();
    if ((o.ckpt_every > 0 && step % o.ckpt_every == 0) || last) save();
    if (evaluator && (step % o.eval_every == 0 || last)) run_eval();
  }
  if (o.progress && tty) std::fprintf(stderr, "\n");
  res.step = step;
  res.seconds = train_seconds;
  res.images_per_s = train_seconds > 0 ? static_cast<double>(steps_run * B) / train_seconds : 0;
  if (o.write_samples && !log.empty()) {
    PlotSeries d{{}, {}, {31, 119, 180}}, g{{}, {}, {214, 39, 40}};
    for (auto& j : log) {
      const double s = j.at("step").get<double>();
      d.x.push_back(s);
      d.y.push_back(j.at("d_loss_real").get<double>() + j.at("d_loss_fake").get<double>());
      g.x.push_back(s);
      g.y.push_back(j.at("g_loss").get<double>());
    }
    save_plot(path_in(o.out, "losses.png"), {d, g});
  }
  return res;
}

LoadedGan load_gan(const std::string& dir) {
  SMYRF_CHECK_HINT(checkpoint_exists(dir, kCkpt), "gan_sample", "no checkpoint in '" << dir << "'",
                   "train first: smyrf gan train --out " << dir);
  const json side = json::parse(read_file(path_in(dir, std::string(kCkpt) + ".json"), kOp));
  LoadedGan l;
  l.options = GanTrainOptions::from_json(side.at("config"));
  Generator g(0);
  GanState state(l.options.model, &g);
  CheckpointTargets t{&state, nullptr, {}};
  l.step = load_checkpoint(dir, kCkpt, t).step;
  l.g_ema = state.G_ema;
  l.g_ema->eval();
  l.g = state.G;
  l.d = state.D;
  l.g->train();
  l.d->train();
  return l;
}

data::ImageDataset load_gan_data(const GanTrainOptions& options) { return load_data(options); }

}  // namespace smyrf::train
