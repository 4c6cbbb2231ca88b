// The gradient study's captured inputs from real run folders: a tiny BigGAN trained here on an
// image folder (G, G_ema and D layers, the real hinge losses, checked against a manual autograd
// pass of the same loss) and a tiny GPT (two captures with one seed are bit-identical, and so is
// a whole study run twice).
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/random.h"
#include "data/png.h"
#include "layers/attention.h"
#include "tests/train/grad_study_test_util.h"
#include "train/gan_train.h"
#include "train/grad_study.h"
#include "train/lm_train.h"

using namespace smyrf;
using namespace smyrf::train;
namespace fs = std::filesystem;
using grad_study_test::slurp;
using grad_study_test::temp_dir;
using grad_study_test::train_tiny_gan;

namespace {

// The gradient of `loss` at the "out" capture point of root's layer `path`, through a manual
// autograd pass: a forward hook keeps the output and asks autograd to retain its gradient.
struct OutGrad {
  Tensor out;
  int64_t id = 0;
  std::shared_ptr<layers::Module> m;
  OutGrad(layers::Module& root, const std::string& path) : m(layers::find_module(root, path)) {
    id = m->register_forward_hook([this](const std::string& p, const Tensor& t) {
      if (p != "out") return;
      out = t;
      out.retain_grad();
    });
  }
  ~OutGrad() { m->remove_hook(id); }
  Tensor grad() const { return out.grad().to(kFloat64).contiguous(); }
};

double max_abs(const Tensor& t) {
  double m = 0;
  for (double x : t.contiguous().to_vector<double>()) m = std::max(m, std::abs(x));
  return m;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const auto x = a.contiguous().to_vector<double>(), y = b.contiguous().to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

std::string first_with_prefix(const std::vector<std::string>& names, const std::string& prefix) {
  for (const std::string& n : names)
    if (n.rfind(prefix, 0) == 0) return n;
  return "";
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

}  // namespace

TEST_CASE("grad study capture: GAN layers of G, G_ema and D with the real hinge losses") {
  const std::string base = temp_dir("capture_gan");
  const std::string dir = train_tiny_gan(base);
  const std::vector<std::string> names = attention_layers(dir);
  const std::string g_layer = first_with_prefix(names, "G."),
                    e_layer = first_with_prefix(names, "G_ema."),
                    d_layer = first_with_prefix(names, "D.");
  REQUIRE(!g_layer.empty());
  REQUIRE(!e_layer.empty());
  REQUIRE(!d_layer.empty());
  CHECK(names.size() == 3);  // one attention block in each network
  const int64_t B = 2;
  const uint64_t seed = 9;

  {  // G: grad_out is the gradient of -mean(D(G(z, y), y))
    const StudyInput in = capture_input(dir, g_layer, B, seed);
    CHECK(in.layer == g_layer);
    REQUIRE(in.q.dim() == 4);
    const int64_t n = in.q.size(2);
    CHECK(in.q.shape() == Shape({B, 1, n, in.q.size(3)}));
    CHECK(in.k.shape() == Shape({B, 1, n / 4, in.q.size(3)}));
    CHECK(in.v.shape() == Shape({B, 1, n / 4, in.v.size(3)}));
    CHECK(in.dout.shape() == Shape({B, 1, n, in.v.size(3)}));
    CHECK(in.scale == 1.0);
    CHECK(!in.causal);
    // the same loss by hand: the documented draws, G in training mode, D's output
    LoadedGan l = load_gan(dir);
    OutGrad og(*l.g, g_layer.substr(2));
    Generator g(seed * 31 + 7);
    const Tensor y = randint(0, l.options.model.n_classes, {B}, DType::Int64, &g);
    const Tensor z = randn({B, l.options.model.dim_z}, {}, &g);
    models::GanForward dense;
    dense.attention = layers::AttentionKind::Dense;
    (-mean(l.d->forward(l.g->forward(z, y, dense), y, dense))).backward();
    const Tensor manual = og.grad();
    REQUIRE(max_abs(manual) > 0);
    CHECK(max_abs_diff(in.dout, manual) <= 1e-6 * max_abs(manual));
    // a second capture with the same seed is the same, bit for bit
    CHECK(same_bits(capture_input(dir, g_layer, B, seed).dout, in.dout));
  }

  {  // G_ema differs from G: its own weights, eval mode
    const StudyInput g_in = capture_input(dir, g_layer, B, seed);
    const StudyInput e_in = capture_input(dir, e_layer, B, seed);
    REQUIRE(e_in.q.shape() == g_in.q.shape());
    CHECK(max_abs_diff(e_in.q, g_in.q) > 0);
    CHECK(max_abs(e_in.dout) > 0);
  }

  {  // D: grad_out is the gradient of the discriminator's hinge loss on fake and real
    const StudyInput in = capture_input(dir, d_layer, B, seed);
    REQUIRE(in.q.dim() == 4);
    CHECK(in.q.size(0) == 2 * B);  // fakes, then reals
    CHECK(in.dout.shape() == Shape({2 * B, 1, in.q.size(2), in.v.size(3)}));
    LoadedGan l = load_gan(dir);
    OutGrad og(*l.d, d_layer.substr(2));
    Generator g(seed * 31 + 7);
    const Tensor y = randint(0, l.options.model.n_classes, {B}, DType::Int64, &g);
    const Tensor z = randn({B, l.options.model.dim_z}, {}, &g);
    const data::ImageDataset ds = load_gan_data(l.options);
    REQUIRE(ds.size() == 12);
    std::vector<int64_t> idx(B);
    for (auto& i : idx) i = static_cast<int64_t>(g.next_u64() % 12);
    const Tensor at = from_vector(idx, {B});
    models::GanForward dense;
    dense.attention = layers::AttentionKind::Dense;
    Tensor fake;
    {
      NoGradGuard ng;
      fake = l.g->forward(z, y, dense);
    }
    const Tensor out = l.d->forward(cat({fake, index_select(ds.images, 0, at)}, 0),
                                    cat({y, index_select(ds.labels, 0, at)}, 0), dense);
    const Tensor loss =
        mean(relu(1.0 + out.narrow(0, 0, B))) + mean(relu(1.0 - out.narrow(0, B, B)));
    loss.backward();
    const Tensor manual = og.grad();
    REQUIRE(max_abs(manual) > 0);
    CHECK(max_abs_diff(in.dout, manual) <= 1e-6 * max_abs(manual));
  }

  {  // unknown names list every layer; missing images name their path
    CHECK_THROWS_WITH_AS(capture_input(dir, "D.nothing", B, seed),
                         doctest::Contains(e_layer.c_str()), Error);
    CHECK_THROWS_WITH_AS(capture_input(dir, g_layer.substr(2), B, seed),
                         doctest::Contains("G., G_ema. or D."), Error);
    fs::rename(base + "/images", base + "/moved");
    CHECK_THROWS_WITH_AS(capture_input(dir, d_layer, B, seed),
                         doctest::Contains((base + "/images").c_str()), Error);
    CHECK(capture_input(dir, g_layer, B, seed).q.defined());  // G needs no images
    fs::rename(base + "/moved", base + "/images");
  }
  fs::remove_all(base);
}

TEST_CASE("grad study capture: an LM checkpoint gives bit-identical captures and studies") {
  const std::string base = temp_dir("capture_lm");
  fs::create_directories(base);
  {
    std::ofstream f(base + "/corpus.txt");
    const char* words[] = {"alpha ", "beta ", "gamma ", "delta ", "eps "};
    for (int i = 0; i < 600; ++i)
      f << words[i % 5] << words[(i * 7 + 3) % 5] << (i % 4 ? "" : ".\n");
  }
  LmTrainOptions o;
  o.data = {base + "/corpus.txt"};
  o.model.layers = 1;
  o.model.d_model = 32;
  o.model.heads = 2;
  o.model.context = 32;
  o.batch = 4;
  o.steps = 3;
  o.warmup = 1;
  o.eval_every = 3;
  o.eval_tokens = 128;
  o.val_fraction = 0.1;
  o.out = base + "/run";
  o.progress = false;
  o.plot = false;
  train_lm(o);
  const std::vector<std::string> names = attention_layers(o.out);
  REQUIRE(names.size() == 1);
  const StudyInput a = capture_input(o.out, names[0], 2, 3);
  const StudyInput b = capture_input(o.out, names[0], 2, 3);
  CHECK(a.q.shape() == Shape({2, 2, 32, 16}));
  CHECK(a.causal);
  CHECK(same_bits(a.q, b.q));
  CHECK(same_bits(a.k, b.k));
  CHECK(same_bits(a.v, b.v));
  CHECK(same_bits(a.dout, b.dout));
  CHECK(max_abs(a.dout) > 0);
  CHECK(!same_bits(capture_input(o.out, names[0], 2, 4).q, a.q));  // another seed, other windows

  StudyOptions s;
  s.checkpoint = o.out;
  s.batch = 1;
  s.train_steps = 1;
  s.n_hashes = {1, 2};
  s.clusters = {8};
  s.budgets = {0.25};
  s.seed_counts = {1, 2};
  s.progress = false;
  s.out = base + "/study_a";
  const StudyResult ra = run_grad_study(s);
  s.out = base + "/study_b";
  run_grad_study(s);
  REQUIRE(!ra.rows.empty());
  const std::string csv = slurp(base + "/study_a/measurements.csv");
  CHECK(csv.find("params") != std::string::npos);  // the parameter-gradient rows are included
  CHECK(csv == slurp(base + "/study_b/measurements.csv"));
  const std::string report = slurp(base + "/study_a/report.md");
  CHECK(report.find("- attention q: cosine") != std::string::npos);  // the LM's one network
  CHECK(report.find("- all parameters: cosine") != std::string::npos);
  CHECK(fs::file_size(base + "/study_a/param_cosine_vs_step.png") > 100);
  fs::remove_all(base);
}
