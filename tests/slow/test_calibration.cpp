// End to end on real Fashion-MNIST: a reduced classifier trained briefly on a subset must learn
// (well above chance), and its FCD must order the calibration rows as docs/biggan.md step 4
// demands: real train vs test lowest, noise / blur / occlusion rising with strength, uniform
// noise (the ceiling) highest. About a minute on two cores.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>

#include "train/calibration.h"
#include "train/classifier_train.h"

using namespace smyrf;

TEST_CASE("calibration: a briefly trained classifier orders real, distorted and noise images") {
  if (!std::filesystem::exists(data::kFashionMnistDir)) {
    MESSAGE("dataset-fashion-mnist is not installed; scripts/install-deps installs it");
    return;
  }
  data::ImageDataset train = data::load_fashion_mnist(data::kFashionMnistDir, "train", 32);
  data::ImageDataset test = data::load_fashion_mnist(data::kFashionMnistDir, "test", 32);
  // Train on images 10000.. (the calibration's real rows use the first 200 of each class, which
  // all lie among the first 10000), and compare against a class-balanced 2000 of the test set.
  data::ImageDataset fit = train;
  fit.images = train.images.narrow(0, 10000, 8000).contiguous();
  fit.labels = train.labels.narrow(0, 10000, 8000).contiguous();
  data::ImageDataset ref = train::class_balanced_subset(test, 200);

  train::ClassifierTrainOptions o;
  o.model.widths = {8, 16, 16};
  o.model.feature_dim = 32;
  o.epochs = 1, o.batch_size = 64, o.warmup_steps = 10, o.seed = 1;
  o.log_every = 0, o.eval_every_epoch = false;
  train::ClassifierTrainResult r = train::train_classifier(fit, ref, o);
  MESSAGE("reduced classifier: test accuracy " << r.test_accuracy << " after " << r.steps
                                               << " steps");
  CHECK(r.test_accuracy > 0.7);

  train::CalibrationOptions co;
  co.per_class = 200;
  co.metrics.kid_subsets = 10, co.metrics.kid_subset_size = 500;
  const auto rows = train::run_calibration(*r.model, train, ref, co);
  MESSAGE(train::format_calibration(rows, "reduced test classifier"));
  REQUIRE(rows.size() == 11);
  CHECK(rows[0].name == "real train vs test");
  for (size_t i = 1; i < rows.size(); ++i) {
    CAPTURE(i);
    CHECK(rows[i].metrics.fcd > rows[0].metrics.fcd);
  }
  for (size_t i = 2; i < rows.size(); ++i)
    if (rows[i].name == rows[i - 1].name) {
      CAPTURE(rows[i].name);
      CAPTURE(rows[i].strength);
      CHECK(rows[i].metrics.fcd > rows[i - 1].metrics.fcd);
    }
  CHECK(rows.back().name == "uniform noise");
  // KID with 10 subsets is too noisy to order the mild rows; the ceiling must stand out.
  CHECK(rows.back().metrics.kid.mean > rows[0].metrics.kid.mean + 3 * rows.back().metrics.kid.std);
  for (size_t i = 0; i + 1 < rows.size(); ++i) CHECK(rows.back().metrics.fcd > rows[i].metrics.fcd);
  // The real rows' own labels are predicted about as well as the test set's.
  CHECK(rows[0].metrics.accuracy > 0.7);
}
