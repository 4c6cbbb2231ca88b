// The gradient study one level up, on GAN checkpoints: the parameter gradients of G and D with
// SMYRF against dense attention over a short run. Known answers: with one cluster (cluster sizes
// at least the attention lengths) SMYRF is dense attention, so every group's cosine is 1 and its
// error 0 up to float32 rounding; with many clusters the attention weights' gradients differ. The
// same seed reproduces the same CSV.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <set>

#include "tests/train/grad_study_test_util.h"
#include "train/gan_train.h"
#include "train/grad_study.h"

using namespace smyrf;
using namespace smyrf::train;
namespace fs = std::filesystem;
namespace gst = grad_study_test;

namespace {
// value of (sweep, layer, metric, stat) rows
std::map<std::string, double> by_key(const std::vector<StudyRow>& rows) {
  std::map<std::string, double> m;
  for (const StudyRow& r : rows)
    m[r.sweep + "|" + r.layer + "|" + r.metric + "|" + r.stat] = r.value;
  return m;
}

const char* const kGroups[] = {"attention q", "attention k",      "attention v",
                               "attention o", "attention gain",   "convs",
                               "linear",      "norms/embeddings", "all parameters"};
}  // namespace

TEST_CASE("grad study params: one cluster gives the dense parameter gradients of G and D") {
  const std::string base = gst::temp_dir("params_one_cluster");
  // G attends 1024 queries to 256 keys, D 256 to 64: one cluster each, two hash rounds
  const std::string dir = gst::train_tiny_gan(base, [](GanTrainOptions& o) {
    o.model.q_cluster_size = 1024;
    o.model.k_cluster_size = 256;
  });
  const std::vector<StudyRow> rows = gan_param_gradient_study(dir, 2, 2, 3);
  const auto m = by_key(rows);
  for (const char* net : {"G: ", "D: "})
    for (const char* g : kGroups)
      for (const char* step : {"step0", "step1"}) {
        const std::string k = std::string("params|") + net + g;
        INFO(k << " " << step);
        REQUIRE(m.count(k + "|cos_grad|" + step));
        CHECK(m.at(k + "|cos_grad|" + step) == doctest::Approx(1).epsilon(1e-5));
        // float32 rounding is about 1e-6; without putting back the spectral-norm vectors and BN
        // statistics between the passes the errors are about 5e-4
        CHECK(m.at(k + "|err_grad|" + step) < 2e-5);
      }
  // the attention parameters one by one: theta, phi, g, o and gamma of each network's layer
  std::set<std::string> singles;
  for (const StudyRow& r : rows)
    if (r.sweep == "params_layer") singles.insert(r.layer);
  CHECK(singles.size() == 10);
  for (const StudyRow& r : rows) {
    CHECK(r.q_cluster == 1024);
    CHECK(r.n == (r.layer.rfind("G", 0) == 0 ? 1024 : 256));
  }
  fs::remove_all(base);
}

TEST_CASE("grad study params: many clusters move the attention gradients; same seed, same CSV") {
  const std::string base = gst::temp_dir("params_clusters");
  const std::string dir = gst::train_tiny_gan(base);  // Cq 64, Ck 16: 16 clusters in G, 4 in D
  const auto m = by_key(gan_param_gradient_study(dir, 1, 2, 3));
  for (const char* net : {"G: ", "D: "})
    for (const char* g : {"attention q", "attention k", "attention v", "attention o"}) {
      const std::string k = std::string("params|") + net + g;
      INFO(k);
      CHECK(m.at(k + "|cos_grad|step0") < 1 - 1e-5);  // one cluster: 1 - 1e-12
      CHECK(m.at(k + "|err_grad|step0") > 1e-3);
    }

  StudyOptions s = gst::small_study_options();
  s.checkpoint = dir;
  std::string d_layer;
  for (const std::string& n : attention_layers(dir))
    if (n.rfind("D.", 0) == 0) d_layer = n;
  REQUIRE(!d_layer.empty());
  s.layer = d_layer;  // the sweeps on D's layer only (256 queries): the test stays short
  s.batch = 1;
  s.train_steps = 1;
  s.n_hashes = {2};
  s.clusters = {64};
  s.budgets = {};
  s.seed_counts = {1};
  s.out = base + "/study_a";
  run_grad_study(s);
  s.out = base + "/study_b";
  run_grad_study(s);
  const std::string csv = gst::slurp(base + "/study_a/measurements.csv");
  CHECK(csv.find("G: all parameters") != std::string::npos);
  CHECK(csv.find("D: attention gain") != std::string::npos);
  CHECK(csv == gst::slurp(base + "/study_b/measurements.csv"));
  const std::string report = gst::slurp(base + "/study_a/report.md");
  CHECK(report.find("## Parameter gradients over a short run") != std::string::npos);
  CHECK(report.find("- G: attention q: cosine") != std::string::npos);
  for (const char* f : {"param_cosine_vs_step_G.png", "param_cosine_vs_step_D.png"})
    CHECK(fs::file_size(fs::path(base) / "study_a" / f) > 100);
  // another seed: other batches and hashes, other numbers
  const auto other = by_key(gan_param_gradient_study(dir, 1, 2, 4));
  CHECK(other.at("params|G: all parameters|cos_grad|step0") !=
        m.at("params|G: all parameters|cos_grad|step0"));
  // the D steps need the run's images: a missing folder is named, with the way around it
  fs::rename(base + "/images", base + "/moved");
  CHECK_THROWS_WITH_AS(gan_param_gradient_study(dir, 1, 2, 3),
                       doctest::Contains((base + "/images").c_str()), Error);
  CHECK_THROWS_WITH_AS(gan_param_gradient_study(dir, 1, 2, 3), doctest::Contains("--train-steps 0"),
                       Error);
  fs::remove_all(base);
}
