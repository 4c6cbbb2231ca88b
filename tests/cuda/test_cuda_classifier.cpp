// classifier train --device cuda: a small Fashion-MNIST-shaped classifier (convolutions through
// cuDNN, batch norm, max pooling, dropout from the shared Philox stream, cross-entropy, AdamW)
// trained on each device from one seed follows the CPU run, and comes back on the CPU.
// Written without a GPU at hand (2026-11-30): compiled, not yet run on one.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "data/image_dataset.h"
#include "train/classifier_train.h"

using namespace smyrf;
using namespace smyrf::cuda_test;

TEST_CASE("cuda: a classifier trained on the GPU follows the CPU run of the same seed") {
  const data::ImageDataset ds = labelled_images(32, 10, 160, -1.0, 1.0);
  auto run = [&](const std::string& device) {
    train::ClassifierTrainOptions o;
    o.model.widths = {8, 16};
    o.model.feature_dim = 16;
    o.epochs = 2, o.batch_size = 8, o.warmup_steps = 2, o.log_every = 1, o.seed = 5;
    o.log = [](const std::string&) {};
    o.device = device;
    return train::train_classifier(ds, ds, o);
  };
  const train::ClassifierTrainResult c = run("cpu"), g = run("cuda");
  CHECK(g.steps == c.steps);
  REQUIRE(g.history.size() == c.history.size());
  for (size_t i = 0; i < c.history.size(); ++i) {
    INFO("epoch " << i + 1);
    CHECK(g.history[i]["mean_loss"].get<double>() ==
          doctest::Approx(c.history[i]["mean_loss"].get<double>()).epsilon(1e-3));
  }
  CHECK(g.final_train_loss == doctest::Approx(c.final_train_loss).epsilon(1e-3));
  CHECK(g.model->device().is_cpu());  // returned on the CPU, ready to freeze
}
