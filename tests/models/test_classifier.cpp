// The Fashion-MNIST feature classifier (models/classifier.h) and its frozen form
// (train/classifier_train.h): shapes, parameter names, the checksum-verified save/load.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "autograd/grad_mode.h"
#include "core/device.h"
#include "core/random.h"
#include "core/sha256.h"
#include "models/classifier.h"
#include "train/classifier_train.h"

using namespace smyrf;
namespace fs = std::filesystem;

TEST_CASE("classifier: shapes, parameter count and names") {
  Generator g(0);
  models::Classifier m(models::ClassifierConfig{}, &g);
  // 32x32 -> 4x4 after three stages: 1*32*9 + 32*64*9 + 64*64*9 conv weights, 2*(32+64+64) BN,
  // 1024*128 + 128 fc, 128*10 + 10 head.
  CHECK(m.num_parameters() == 288 + 18432 + 36864 + 320 + 131072 + 128 + 1290);
  const auto names = m.state_dict();
  CHECK(names.front().first == "stages.0.conv.weight");
  CHECK(names.back().first == "head.bias");
  Tensor x = uniform({3, 1, 32, 32}, -1, 1, kFloat32, &g);
  m.eval();
  auto [f, l] = m.features_and_logits(x);
  CHECK(f.shape() == Shape{3, 128});
  CHECK(l.shape() == Shape{3, 10});
  CHECK(amin(f).item() >= 0);  // after the ReLU
  CHECK_THROWS(m.forward(uniform({3, 1, 28, 28}, -1, 1, kFloat32, &g)));
  models::ClassifierConfig bad;
  bad.image_size = 36;  // not divisible by 8
  CHECK_THROWS(models::Classifier(bad));
  // config JSON round trip
  models::ClassifierConfig c;
  c.widths = {8, 16};
  c.feature_dim = 24;
  const auto c2 = models::ClassifierConfig::from_json(c.to_json());
  CHECK(c2.widths == c.widths);
  CHECK(c2.feature_dim == 24);
}

TEST_CASE("classifier: frozen save/load verifies the SHA-256 and names the version") {
  const fs::path dir = fs::temp_directory_path() / "smyrf_test_frozen_classifier";
  fs::remove_all(dir);
  models::ClassifierConfig c;
  c.widths = {4, 8};
  c.feature_dim = 16;
  Generator g(3);
  models::Classifier m(c, &g);
  m.eval();
  const train::FrozenClassifierInfo info =
      train::save_frozen_classifier(m, dir.string(), {{"note", "test"}});
  CHECK(info.sha256 == sha256_file_hex(info.weights_path));
  CHECK(info.version == "classifier v" + info.sha256.substr(0, 8));

  train::FrozenClassifier fc = train::load_frozen_classifier(dir.string());
  CHECK(fc.info.version == info.version);
  CHECK(fc.info.json["training"]["note"] == "test");
  CHECK_FALSE(fc.model->is_training());
  for (const Tensor& p : fc.model->parameters()) CHECK_FALSE(p.requires_grad());
  Tensor x = uniform({2, 1, 32, 32}, -1, 1, kFloat32, &g);
  NoGradGuard ng;
  CHECK(amax(abs(fc.model->features(x) - m.features(x))).item() == 0);

  // One flipped byte in the weights: refused, naming both checksums.
  {
    std::fstream f(info.weights_path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-1, std::ios::end);
    f.put('\x7f');
  }
  CHECK_THROWS_WITH_AS(train::load_frozen_classifier(dir.string()), doctest::Contains("SHA-256"),
                       Error);
  fs::remove_all(dir);
  CHECK_THROWS_WITH_AS(train::load_frozen_classifier(dir.string()),
                       doctest::Contains("smyrf classifier train"), Error);
}

TEST_CASE("classifier train device: an unknown device or a missing GPU is refused by name") {
  data::ImageDataset ds;
  ds.images = uniform({8, 1, 32, 32}, -1, 1, kFloat32);
  ds.labels = from_vector<int64_t>({0, 1, 2, 3, 4, 5, 6, 7}, {8});
  ds.num_classes = 10;
  train::ClassifierTrainOptions o;
  o.model.widths = {4, 8};
  o.model.feature_dim = 8;
  o.epochs = 1, o.batch_size = 4, o.log_every = 0;
  o.log = [](const std::string&) {};
  o.device = "tpu";
  CHECK_THROWS_WITH(train::train_classifier(ds, ds, o), doctest::Contains("unknown device 'tpu'"));
  if (cuda_device_count() == 0) {
    o.device = "cuda";
    CHECK_THROWS_WITH(train::train_classifier(ds, ds, o),
                      doctest::Contains("[train_classifier] cannot run on cuda:0"));
  }
  o.device = "cpu";  // the same options train on the CPU
  const train::ClassifierTrainResult r = train::train_classifier(ds, ds, o);
  CHECK(r.steps == 2);
  CHECK(r.model->device().is_cpu());
}
