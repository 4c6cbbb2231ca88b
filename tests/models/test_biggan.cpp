// BigGAN generator and discriminator: BigGAN-PyTorch parameter names and shapes, output shapes and
// ranges, gradients reaching every parameter (attention gains included), dense/SMYRF twins
// sharing weights, EMA arithmetic, truncated z, config round trips; and the trainer: a tiny pair
// trains without NaN, and a run stopped and resumed continues with bit-identical losses.
#include <doctest/doctest.h>

#include <malloc.h>
#include <unistd.h>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/threading.h"
#include "models/biggan.h"
#include "models/classifier.h"
#include "tests/sanitizers.h"
#include "train/classifier_train.h"
#include "train/gan_train.h"

using namespace smyrf;
using namespace smyrf::models;

namespace {

// ch 4 at 16x16 would have no 32x32 table; use 32x32 with tiny widths (16 channels) and small
// SMYRF clusters so both attention blocks run several clusters.
BigGanConfig tiny(const std::string& attention = "smyrf") {
  BigGanConfig c;
  c.resolution = 32;
  c.ch = 4;
  c.dim_z = 16;
  c.shared_dim = 8;
  c.n_classes = 3;
  c.image_channels = 1;
  c.attention = attention;
  c.q_cluster_size = 64;
  c.k_cluster_size = 16;
  return c;
}

std::map<std::string, Shape> shapes(const layers::Module& m) {
  std::map<std::string, Shape> out;
  for (auto& [n, t] : m.state_dict()) out[n] = t.shape();
  return out;
}

// The tiny models here run hundreds of small ops; on a loaded 2-core machine an OpenMP team spends
// far more time waiting for its other thread than computing (40 s against 1 s measured), so the
// heavier tests run on one thread, restored afterwards. Exact resume does not depend on it: both
// runs of the comparison use the same count.
struct OneThread {
  int saved = num_threads();
  OneThread() { set_num_threads(1); }
  ~OneThread() { set_num_threads(saved); }
};

Tensor labels(std::vector<int64_t> v) {
  return from_vector<int64_t>(v, {static_cast<int64_t>(v.size())});
}

}  // namespace

TEST_CASE("biggan: G and D state-dict names and shapes follow BigGAN-PyTorch") {
  Generator gen(1);
  const BigGanConfig c = BigGanConfig::cpu();  // ch 8: widths 32, dim_z 64 in 4 chunks of 16
  BigGanGenerator g(c, &gen);
  BigGanDiscriminator d(c, &gen);
  const auto gs = shapes(g), ds = shapes(d);
  const std::map<std::string, Shape> want_g = {{"shared.weight", {10, 64}},
                                               {"linear.weight_orig", {32 * 16, 16}},
                                               {"linear.bias", {32 * 16}},
                                               {"linear.weight_u", {32 * 16}},
                                               {"linear.weight_v", {16}},
                                               {"blocks.0.0.conv1.weight_orig", {32, 32, 3, 3}},
                                               {"blocks.0.0.conv2.bias", {32}},
                                               {"blocks.0.0.conv_sc.weight_orig", {32, 32, 1, 1}},
                                               {"blocks.0.0.bn1.gain.weight_orig", {32, 64 + 16}},
                                               {"blocks.1.0.bn2.bias.weight_orig", {32, 80}},
                                               {"blocks.2.0.bn1.bn.running_mean", {32}},
                                               {"blocks.2.0.bn1.bn.num_batches_tracked", {}},
                                               {"blocks.2.1.theta.weight_orig", {4, 32, 1, 1}},
                                               {"blocks.2.1.phi.weight_orig", {4, 32, 1, 1}},
                                               {"blocks.2.1.g.weight_orig", {16, 32, 1, 1}},
                                               {"blocks.2.1.o.weight_orig", {32, 16, 1, 1}},
                                               {"blocks.2.1.gamma", {}},
                                               {"output_layer.0.weight", {32}},
                                               {"output_layer.0.running_var", {32}},
                                               {"output_layer.2.weight_orig", {1, 32, 3, 3}},
                                               {"output_layer.2.bias", {1}}};
  for (auto& [n, s] : want_g) {
    REQUIRE_MESSAGE(gs.count(n) == 1, n);
    CHECK_MESSAGE(gs.at(n) == s, n);
  }
  CHECK(gs.count("blocks.0.1.gamma") == 0);  // attention only at 32x32
  const std::map<std::string, Shape> want_d = {
      {"blocks.0.0.conv1.weight_orig", {32, 1, 3, 3}},
      {"blocks.0.0.conv_sc.weight_orig", {32, 1, 1, 1}},
      {"blocks.0.1.gamma", {}},  // attention at 16x16, after the first block
      {"blocks.0.1.theta.weight_u", {4}},
      {"blocks.2.0.conv_sc.weight_orig", {32, 32, 1, 1}},
      {"blocks.3.0.conv2.weight_orig", {32, 32, 3, 3}},
      {"linear.weight_orig", {1, 32}},
      {"embed.weight_orig", {10, 32}},
      {"embed.weight_v", {32}}};
  for (auto& [n, s] : want_d) {
    REQUIRE_MESSAGE(ds.count(n) == 1, n);
    CHECK_MESSAGE(ds.at(n) == s, n);
  }
  CHECK(ds.count("blocks.3.0.conv_sc.weight_orig") == 0);  // same width, no pooling: identity
  CHECK(ds.count("blocks.1.1.gamma") == 0);
  CHECK(g.attention_blocks().size() == 1);
  CHECK(d.attention_blocks().size() == 1);
}

TEST_CASE("biggan: architecture table for 64 and 128, config checks and JSON round trip") {
  BigGanConfig c = tiny();
  c.resolution = 64;
  c.dim_z = 20;  // 4 blocks + 1
  c.g_attention_res = 32;
  c.d_attention_res = 16;  // after block 1 (2 ch = 8 channels)
  Generator gen(2);
  BigGanGenerator g(c, &gen);
  CHECK(shapes(g).at("linear.weight_orig") == Shape{16 * 4 * 16, 4});
  CHECK(shapes(g).at("blocks.3.0.conv2.weight_orig") == Shape{8, 8, 3, 3});
  CHECK(shapes(g).count("blocks.2.1.gamma") == 1);
  BigGanDiscriminator d(c, &gen);
  CHECK(shapes(d).at("blocks.4.0.conv1.weight_orig") == Shape{64, 32, 3, 3});
  CHECK(shapes(d).count("blocks.1.1.gamma") == 1);
  CHECK(shapes(d).count("blocks.0.1.gamma") == 0);
  NoGradGuard ng;
  const Tensor x = g.forward(randn({2, 20}, {}, &gen), labels({0, 2}));
  CHECK(x.shape() == Shape{2, 1, 64, 64});
  CHECK(d.forward(x, labels({0, 2})).shape() == Shape{2});

  BigGanConfig bad = tiny();
  bad.dim_z = 15;
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("dim_z 15"), Error);
  bad = tiny();
  bad.resolution = 48;
  CHECK_THROWS_AS(bad.validate(), Error);
  bad = tiny();
  bad.g_attention_res = 4;
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("no G block"), Error);
  bad = tiny();
  bad.attention = "sparse";
  CHECK_THROWS_AS(bad.validate(), Error);

  BigGanConfig r = BigGanConfig::from_json(BigGanConfig::gpu().to_json());
  CHECK(r.ch == 32);
  CHECK(r.dim_z == 120);
  CHECK(r.n_hashes == 4);
  CHECK(r.to_json() == BigGanConfig::gpu().to_json());
  CHECK(BigGanConfig::preset("cpu").to_json() == BigGanConfig().to_json());
  CHECK_THROWS_AS(BigGanConfig::preset("tpu"), Error);
}

TEST_CASE("biggan: output shapes and range; spectral norm keeps weights at sigma 1") {
  OneThread one;
  Generator gen(3);
  BigGanGenerator g(tiny(), &gen);
  BigGanDiscriminator d(tiny(), &gen);
  const Tensor z = randn({4, 16}, {}, &gen);
  const Tensor y = labels({0, 1, 2, 1});
  const Tensor x = g.forward(z, y);
  REQUIRE(x.shape() == Shape{4, 1, 32, 32});
  const auto v = x.to_vector<float>();
  float lo = 1, hi = -1;
  for (float f : v) lo = std::min(lo, f), hi = std::max(hi, f);
  CHECK(lo > -1.0f);
  CHECK(hi < 1.0f);
  CHECK(hi - lo > 1e-3f);  // not a constant image
  const Tensor s = d.forward(x, y);
  CHECK(s.shape() == Shape{4});
  CHECK_THROWS_AS(g.forward(randn({4, 15}, {}, &gen), y), Error);
  CHECK_THROWS_AS(d.forward(randn({4, 1, 16, 16}, {}, &gen), y), Error);
  CHECK_THROWS_AS(d.forward(x, labels({0, 1})), Error);
  // after a few power iterations on one fixed weight, W/sigma has top singular value ~1
  for (int i = 0; i < 30; ++i) d.forward(x.detach(), y);
  for (auto& [n, sn] : d.spectral_layers()) {
    (void)n;
    CHECK(sn->last_sigma() > 0);
  }
}

TEST_CASE("biggan: gradients reach every parameter of G and D, attention gains included") {
  OneThread one;
  for (const char* kind : {"smyrf", "dense"}) {
    CAPTURE(kind);
    Generator gen(4);
    BigGanGenerator g(tiny(kind), &gen);
    BigGanDiscriminator d(tiny(kind), &gen);
    const Tensor y = labels({0, 1, 2, 0});
    // gamma starts at 0, so nothing upstream of o/theta/phi/g gets a gradient through it; make
    // it nonzero to see the attention branch's weights reached as well
    {
      NoGradGuard ng;
      for (auto& a : g.attention_blocks()) a->gamma.fill_(0.5);
      for (auto& a : d.attention_blocks()) a->gamma.fill_(0.5);
    }
    const Tensor loss = d.forward(g.forward(randn({4, 16}, {}, &gen), y), y).mean();
    loss.backward();
    for (auto* m : std::vector<layers::Module*>{&g, &d})
      for (auto& [n, p] : m->named_parameters()) {
        const Tensor gr = p.grad();
        REQUIRE_MESSAGE(gr.defined(), n);
        double a = 0;
        for (float f : gr.contiguous().to_vector<float>()) a += std::fabs(f);
        CHECK_MESSAGE(std::isfinite(a), n);
        CHECK_MESSAGE(a > 0, n);
      }
  }
}

TEST_CASE("biggan: dense and SMYRF twins share weights; both run on the same state") {
  OneThread one;
  Generator g1(5), g2(5);
  BigGanGenerator smyrf_g(tiny("smyrf"), &g1);
  BigGanGenerator dense_g(tiny("dense"), &g2);
  const auto a = smyrf_g.state_dict(), b = dense_g.state_dict();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].first == b[i].first);
    CHECK(a[i].second.to_vector<double>() == b[i].second.to_vector<double>());
  }
  // with gamma 0 attention adds nothing, so the twins agree exactly; with gamma nonzero they
  // differ (SMYRF attends within clusters only), and a per-call override switches the kind
  smyrf_g.eval();
  dense_g.eval();
  Generator zg(6);
  const Tensor z = randn({2, 16}, {}, &zg);
  const Tensor y = labels({1, 2});
  NoGradGuard ng;
  GanForward f;
  f.attention_seed = 7;
  CHECK(smyrf_g.forward(z, y, f).to_vector<float>() == dense_g.forward(z, y, f).to_vector<float>());
  smyrf_g.attention_blocks()[0]->gamma.fill_(1.0);
  dense_g.attention_blocks()[0]->gamma.fill_(1.0);
  const auto xs = smyrf_g.forward(z, y, f).to_vector<float>();
  const auto xd = dense_g.forward(z, y, f).to_vector<float>();
  GanForward as_dense = f;
  as_dense.attention = layers::AttentionKind::Dense;
  CHECK(smyrf_g.forward(z, y, as_dense).to_vector<float>() == xd);
  double diff = 0;
  for (size_t i = 0; i < xs.size(); ++i) diff = std::max(diff, double(std::fabs(xs[i] - xd[i])));
  CHECK(diff > 0);
  CHECK(std::isfinite(diff));
}

TEST_CASE("biggan: EMA arithmetic and truncated z") {
  Generator g1(7), g2(8);
  BigGanGenerator src(tiny(), &g1);
  BigGanGenerator ema(tiny(), &g2);
  ema_update(ema, src, 0.0);  // decay 0 copies
  const auto s = src.state_dict(), e = ema.state_dict();
  for (size_t i = 0; i < s.size(); ++i)
    CHECK_MESSAGE(s[i].second.to_vector<double>() == e[i].second.to_vector<double>(), s[i].first);
  {
    NoGradGuard ng;
    src.linear->weight_orig.add_(1.0);
    src.output_layer->named_buffers()[0].second.add_(2.0);  // running_mean of the output BN
    src.linear->weight_u.mul_(-1.0);
  }
  const float before = ema.linear->weight_orig.to_vector<float>()[0];
  const float rm_before = ema.output_layer->named_buffers()[0].second.to_vector<float>()[0];
  ema_update(ema, src, 0.75);
  CHECK(ema.linear->weight_orig.to_vector<float>()[0] == doctest::Approx(before + 0.25));
  CHECK(ema.output_layer->named_buffers()[0].second.to_vector<float>()[0] ==
        doctest::Approx(rm_before + 0.5));
  // singular vectors are copied, never averaged (they must stay unit vectors)
  CHECK(ema.linear->weight_u.to_vector<float>() == src.linear->weight_u.to_vector<float>());

  Generator zg(9);
  const auto z = sample_z(64, 16, 0.5, &zg).to_vector<float>();
  double mx = 0;
  for (float f : z) mx = std::max(mx, double(std::fabs(f)));
  CHECK(mx <= 0.5);
  CHECK(mx > 0.3);
  Generator za(10), zb(10);
  CHECK(sample_z(8, 16, 0.0, &za).to_vector<float>() == randn({8, 16}, {}, &zb).to_vector<float>());
}

namespace {

// 48 images of 3 classes: class k is a bright horizontal band at height 8 + 8k, plus noise.
data::ImageDataset toy_dataset() {
  data::ImageDataset ds;
  const int64_t n = 48;
  Generator gen(11);
  std::vector<float> px(static_cast<size_t>(n * 32 * 32));
  std::vector<int64_t> ys(n);
  const auto noise = uniform({n * 32 * 32}, -0.1, 0.1, {}, &gen).to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    ys[i] = i % 3;
    for (int64_t r = 0; r < 32; ++r)
      for (int64_t c = 0; c < 32; ++c) {
        const size_t at = static_cast<size_t>((i * 32 + r) * 32 + c);
        const bool band = r >= 8 + 8 * ys[i] && r < 12 + 8 * ys[i];
        px[at] = (band ? 0.8f : -0.8f) + noise[at];
      }
  }
  ds.images = from_vector<float>(px, {n, 1, 32, 32});
  ds.labels = from_vector<int64_t>(ys, {n});
  ds.num_classes = 3;
  return ds;
}

train::GanTrainOptions toy_options(const data::ImageDataset& ds, const std::string& out) {
  train::GanTrainOptions o;
  o.model = tiny();
  o.dataset = &ds;
  o.batch = 8;
  o.d_steps = 2;
  o.ema_start = 2;
  o.ema_decay = 0.9;
  o.sample_every = 0;
  o.ckpt_every = 0;
  o.samples_per_class = 2;
  o.progress = false;
  o.prefetch = 1;
  o.out = out;
  o.seed = 3;
  return o;
}

std::string temp_dir(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() /
                 ("smyrf_test_biggan_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}

}  // namespace

TEST_CASE("gan train keeps freed large buffers in malloc's heap, as lm train does") {
#ifndef SMYRF_TEST_ASAN
  // (train/alloc_policy.h: under ASan malloc is ASan's and the policy is refused)
  OneThread one;
  const data::ImageDataset ds = toy_dataset();
  const std::string dir = temp_dir("alloc");
  train::GanTrainOptions o = toy_options(ds, dir);
  o.steps = 1;
  train::train_gan(o);
  // a 48 MiB buffer (above glibc's largest dynamic mmap threshold) now comes from the heap
  const size_t mapped_before = mallinfo2().hblkhd;
  void* a = std::malloc(size_t{48} << 20);
  REQUIRE(a != nullptr);
  CHECK(mallinfo2().hblkhd == mapped_before);
  std::free(a);
  std::filesystem::remove_all(dir);
#endif
}

TEST_CASE("gan train: a tiny pair trains without NaN, logs health signals and writes a grid") {
  OneThread one;
  const data::ImageDataset ds = toy_dataset();
  const std::string dir = temp_dir("train");
  train::GanTrainOptions o = toy_options(ds, dir);
  o.steps = 4;
  const train::GanTrainResult r = train::train_gan(o);
  REQUIRE(r.history.size() == 4);
  for (auto& s : r.history) {
    CHECK(std::isfinite(s.d_loss_real));
    CHECK(std::isfinite(s.d_loss_fake));
    CHECK(std::isfinite(s.g_loss));
    REQUIRE(s.gamma_g.size() == 1);
    REQUIRE(s.gamma_d.size() == 1);
  }
  // the attention gains start at 0 and must move, or attention would be dead weight
  CHECK(r.history.back().gamma_g[0] != 0.0);
  CHECK(r.history.back().gamma_d[0] != 0.0);
  CHECK(r.images_per_s > 0);
  CHECK(std::filesystem::exists(dir + "/samples.png"));
  CHECK(std::filesystem::exists(dir + "/samples/step_000004.png"));
  CHECK(std::filesystem::exists(dir + "/ckpt.json"));
  std::ifstream log(dir + "/log.jsonl");
  std::string line, last;
  int lines = 0;
  while (std::getline(log, line)) ++lines, last = line;
  CHECK(lines == 4);
  const auto j = nlohmann::json::parse(last);
  CHECK(j.contains("d_real"));
  CHECK(j.contains("sigma"));
  CHECK(j.at("sigma").size() >= 2);

  // the run's G_ema loads back and samples with truncation
  train::LoadedGan l = train::load_gan(dir);
  CHECK(l.step == 4);
  const train::GanSamples s = train::sample_gan(*l.g_ema, 5, 1, 0.5, 7);
  CHECK(s.images.shape() == Shape{5, 1, 32, 32});
  CHECK(s.labels.to_vector<int64_t>() == std::vector<int64_t>(5, 1));
  CHECK(train::sample_gan(*l.g_ema, 5, 1, 0.5, 7).images.to_vector<float>() ==
        s.images.to_vector<float>());
  CHECK_THROWS_AS(train::sample_gan(*l.g_ema, 2, 3, 0, 1), Error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("gan train: a run stopped and resumed continues with bit-identical losses") {
  OneThread one;
  const data::ImageDataset ds = toy_dataset();
  const std::string a = temp_dir("straight"), b = temp_dir("resumed");
  train::GanTrainOptions oa = toy_options(ds, a);
  oa.steps = 4;
  oa.write_samples = false;
  const train::GanTrainResult straight = train::train_gan(oa);

  train::GanTrainOptions ob = toy_options(ds, b);
  ob.steps = 4;
  ob.stop_at = 2;
  ob.write_samples = false;
  const train::GanTrainResult first = train::train_gan(ob);
  REQUIRE(first.step == 2);
  ob.stop_at = -1;
  ob.resume = true;
  ob.seed = 999;  // ignored: the checkpoint's options win
  const train::GanTrainResult second = train::train_gan(ob);
  REQUIRE(second.history.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    const auto& x = straight.history[2 + i];
    const auto& y = second.history[i];
    CHECK(y.step == x.step);
    CHECK(y.d_loss_real == x.d_loss_real);
    CHECK(y.d_loss_fake == x.d_loss_fake);
    CHECK(y.g_loss == x.g_loss);
    // the raw scores too: a saturated hinge (all real scores beyond the margin) would hide a
    // resumed run that reads the wrong real batches
    CHECK(y.d_real == x.d_real);
    CHECK(y.d_fake == x.d_fake);
    CHECK(y.gamma_g == x.gamma_g);
  }
  // and the EMA generators end identical
  const auto ea = train::load_gan(a).g_ema->state_dict(),
             eb = train::load_gan(b).g_ema->state_dict();
  REQUIRE(ea.size() == eb.size());
  for (size_t i = 0; i < ea.size(); ++i)
    CHECK_MESSAGE(ea[i].second.to_vector<double>() == eb[i].second.to_vector<double>(),
                  ea[i].first);
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
}

TEST_CASE("gan eval: generated images go through the classifier protocol; mismatches throw") {
  OneThread one;
  Generator gen(12);
  BigGanConfig c = tiny("dense");
  c.n_classes = 10;
  BigGanGenerator g(c, &gen);
  ClassifierConfig kc;
  kc.widths = {8, 8, 8};
  kc.feature_dim = 16;
  Classifier classifier(kc, &gen);
  classifier.eval();
  const Tensor ref_images = clamp(randn({40, 1, 32, 32}, {}, &gen), -1, 1);
  const train::ClassifierOutputs ref = train::classify_images(classifier, ref_images);
  const train::GaussianStats stats = train::fit_gaussian(ref.features);
  train::SampleMetricsOptions mo;
  mo.kid_subsets = 3;
  mo.kid_subset_size = 20;
  const train::GanEvalResult r = train::evaluate_gan(g, classifier, ref, stats, 3, 0.0, 1, mo);
  CHECK(r.images == 30);
  int64_t total = 0;
  for (int64_t h : r.metrics.histogram) total += h;
  CHECK(total == 30);
  CHECK(r.metrics.accuracy >= 0);
  CHECK(r.metrics.accuracy <= 1);
  CHECK(std::isfinite(r.metrics.fcd));
  CHECK(r.metrics.fcd >= 0);
  // same seed, same numbers
  CHECK(train::evaluate_gan(g, classifier, ref, stats, 3, 0.0, 1, mo).metrics.fcd == r.metrics.fcd);
  BigGanGenerator three(tiny("dense"), &gen);  // 3 classes: not Fashion-MNIST's 10
  CHECK_THROWS_WITH_AS(train::evaluate_gan(three, classifier, ref, stats, 3, 0.0, 1, mo),
                       doctest::Contains("classes"), Error);
}

TEST_CASE("gan train: periodic FCD/KID of G_ema lands in evals.jsonl and survives a resume") {
  OneThread one;
  // a 10-class toy set (the evaluation is Fashion-MNIST's protocol) and a frozen untrained
  // classifier: the numbers are meaningless, the bookkeeping is what is tested
  data::ImageDataset ds = toy_dataset();
  ds.labels = from_vector<int64_t>(
      [&] {
        std::vector<int64_t> y(static_cast<size_t>(ds.size()));
        for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<int64_t>(i % 10);
        return y;
      }(),
      {ds.size()});
  ds.num_classes = 10;
  Generator gen(21);
  ClassifierConfig kc;
  kc.widths = {4, 4, 4};
  kc.feature_dim = 8;
  Classifier classifier(kc, &gen);
  const std::string cdir = temp_dir("classifier"), a = temp_dir("eval_a"), b = temp_dir("eval_b");
  train::save_frozen_classifier(classifier, cdir);

  auto options = [&](const std::string& out) {
    train::GanTrainOptions o = toy_options(ds, out);
    o.model.n_classes = 10;
    o.steps = 4;
    o.eval_every = 2;
    o.eval_per_class = 3;
    o.classifier = cdir;
    o.write_samples = false;
    return o;
  };
  auto read_evals = [](const std::string& dir) {
    std::vector<nlohmann::json> v;
    std::ifstream in(dir + "/evals.jsonl");
    for (std::string line; std::getline(in, line);) v.push_back(nlohmann::json::parse(line));
    return v;
  };
  train::train_gan(options(a));
  const auto straight = read_evals(a);
  REQUIRE(straight.size() == 2);
  CHECK(straight[0].at("step") == 2);
  CHECK(straight[1].at("step") == 4);
  CHECK(straight[1].at("images") == 30);
  CHECK(std::isfinite(straight[1].at("fcd").get<double>()));
  CHECK(straight[1].at("classifier").get<std::string>().rfind("classifier v", 0) == 0);

  train::GanTrainOptions ob = options(b);
  ob.stop_at = 3;  // stops between evaluations: the resumed run must not repeat step 2's line
  train::train_gan(ob);
  ob.stop_at = -1;
  ob.resume = true;
  train::train_gan(ob);
  const auto resumed = read_evals(b);
  REQUIRE(resumed.size() == 3);  // steps 2, 3 (the stop) and 4
  CHECK(resumed[0].at("fcd") == straight[0].at("fcd"));
  CHECK(resumed[2].at("step") == 4);
  CHECK(resumed[2].at("fcd") == straight[1].at("fcd"));

  train::GanTrainOptions bad = options(a);
  bad.data = "some/folder";
  bad.dataset = nullptr;
  CHECK_THROWS_WITH_AS(train::train_gan(bad), doctest::Contains("Fashion-MNIST"), Error);
  for (const auto& d : {cdir, a, b}) std::filesystem::remove_all(d);
}

TEST_CASE("gan train device: an unknown device or a missing GPU is refused by name") {
  const data::ImageDataset ds = toy_dataset();
  train::GanTrainOptions o = toy_options(ds, temp_dir("device"));
  o.steps = 1;
  o.device = "tpu";
  CHECK_THROWS_WITH(train::train_gan(o), doctest::Contains("unknown device 'tpu'"));
  if (cuda_device_count() == 0) {
    o.device = "cuda";
    CHECK_THROWS_WITH(train::train_gan(o), doctest::Contains("[gan_train] cannot run on cuda:0"));
  }
}
