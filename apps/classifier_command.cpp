// `smyrf classifier train|eval-real`: the frozen Fashion-MNIST feature classifier behind
// FCD/KID (docs/biggan.md, "Evaluation without Inception weights").
//   train      trains it on the 60k training images (padded to 32x32), reports test accuracy,
//              freezes it to <out>/classifier.safetensors + classifier.json (SHA-256, version)
//              and fails (exit 1) when the accuracy is below --min-accuracy.
//   eval-real  the calibration table: real train vs test (the floor), noise, blur and occlusion
//              at three strengths, uniform noise (a ceiling); fails when the ordering is wrong.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "apps/commands.h"
#include "core/atomic_file.h"
#include "data/image_dataset.h"
#include "train/calibration.h"
#include "train/classifier_train.h"
#include "train/device_option.h"

namespace smyrf::apps {
namespace {

struct TrainArgs {
  std::string data = data::kFashionMnistDir;
  std::string out = "runs/classifier";
  std::string device = "cpu";
  int64_t epochs = 4, batch = 128, shift = 2, train_limit = 0, features = 128;
  double lr = 2e-3, weight_decay = 1e-4, min_accuracy = 0.91, dropout = 0.3;
  uint64_t seed = 0;
  std::vector<int64_t> widths = {32, 64, 64};
};

struct EvalArgs {
  std::string data = data::kFashionMnistDir;
  std::string dir = "runs/classifier";
  int64_t per_class = 1000, kid_subsets = 100, kid_subset_size = 1000;
  uint64_t seed = 0;
};

void run_train(const TrainArgs& a) {
  train::device_option(a.device, "train_classifier");  // a missing GPU fails before the loading
  data::ImageDataset train = data::load_fashion_mnist(a.data, "train", 32);
  data::ImageDataset test = data::load_fashion_mnist(a.data, "test", 32);
  if (a.train_limit > 0 && a.train_limit < train.size()) {
    train.images = train.images.narrow(0, 0, a.train_limit).contiguous();
    train.labels = train.labels.narrow(0, 0, a.train_limit).contiguous();
  }
  train::ClassifierTrainOptions o;
  o.model.widths = a.widths, o.model.feature_dim = a.features, o.model.dropout = a.dropout;
  o.epochs = a.epochs, o.batch_size = a.batch, o.lr = a.lr, o.weight_decay = a.weight_decay;
  o.max_shift = a.shift, o.seed = a.seed, o.device = a.device;
  train::ClassifierTrainResult r = train::train_classifier(train, test, o);
  nlohmann::json training = {{"seed", a.seed},
                             {"epochs", a.epochs},
                             {"batch_size", a.batch},
                             {"lr", a.lr},
                             {"weight_decay", a.weight_decay},
                             {"max_shift", a.shift},
                             {"device", a.device},
                             {"train_images", train.size()},
                             {"test_accuracy", r.test_accuracy},
                             {"seconds", r.seconds},
                             {"steps", r.steps},
                             {"history", r.history}};
  train::FrozenClassifierInfo info = train::save_frozen_classifier(*r.model, a.out, training);
  // Reload through the checksum-verifying path and measure again: what later metrics will load.
  train::FrozenClassifier fc = train::load_frozen_classifier(a.out);
  const double acc = train::classifier_accuracy(*fc.model, test);
  std::printf("trained in %.0f s (%lld steps); test accuracy %.2f%% (reloaded: %.2f%%)\n",
              r.seconds, (long long)r.steps, 100 * r.test_accuracy, 100 * acc);
  std::printf("saved %s\n  sha256 %s\n  version \"%s\"\n", info.weights_path.c_str(),
              info.sha256.c_str(), info.version.c_str());
  if (acc < a.min_accuracy) {
    std::printf("FAIL: test accuracy %.2f%% is below the required %.2f%%\n", 100 * acc,
                100 * a.min_accuracy);
    set_exit_code(1);
  }
}

void run_eval_real(const EvalArgs& a) {
  train::FrozenClassifier fc = train::load_frozen_classifier(a.dir);
  std::printf("loaded %s (%s)\n", fc.info.weights_path.c_str(), fc.info.version.c_str());
  data::ImageDataset train = data::load_fashion_mnist(a.data, "train", 32);
  data::ImageDataset test = data::load_fashion_mnist(a.data, "test", 32);
  train::CalibrationOptions o;
  o.per_class = a.per_class, o.seed = a.seed;
  o.metrics.kid_subsets = a.kid_subsets, o.metrics.kid_subset_size = a.kid_subset_size;
  o.metrics.kid_seed = a.seed;
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<train::CalibrationRow> rows = train::run_calibration(*fc.model, train, test, o);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s", train::format_calibration(rows, fc.info.version).c_str());
  std::printf("(%lld images per row, %lld KID subsets of %lld, %.0f s)\n",
              (long long)(a.per_class * fc.model->config().num_classes), (long long)a.kid_subsets,
              (long long)a.kid_subset_size, secs);

  // The checks of docs/biggan.md step 4: the floor is lowest, each distortion rises with strength.
  bool ok = true;
  for (size_t i = 1; i < rows.size(); ++i)
    if (!(rows[i].metrics.fcd > rows[0].metrics.fcd)) ok = false;
  for (size_t i = 2; i < rows.size(); ++i)
    if (rows[i].name == rows[i - 1].name && !(rows[i].metrics.fcd > rows[i - 1].metrics.fcd))
      ok = false;
  std::printf("calibration ordering: %s\n", ok ? "OK" : "VIOLATED");
  if (!ok) set_exit_code(1);

  nlohmann::json j = {{"classifier", fc.info.version},
                      {"sha256", fc.info.sha256},
                      {"per_class", a.per_class},
                      {"kid_subsets", a.kid_subsets},
                      {"kid_subset_size", a.kid_subset_size},
                      {"ordering_ok", ok},
                      {"rows", nlohmann::json::array()}};
  for (const auto& r : rows)
    j["rows"].push_back({{"images", r.name},
                         {"strength", r.strength},
                         {"fcd", r.metrics.fcd},
                         {"kid", r.metrics.kid.mean},
                         {"kid_std", r.metrics.kid.std},
                         {"accuracy", r.metrics.accuracy},
                         {"histogram", r.metrics.histogram}});
  const std::string path = (std::filesystem::path(a.dir) / "calibration.json").string();
  write_file_atomic(path, j.dump(2) + "\n", "classifier");
  std::printf("wrote %s\n", path.c_str());
}

}  // namespace

void add_classifier_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("classifier", "The frozen Fashion-MNIST classifier behind FCD/KID");
  cmd->require_subcommand(1);

  static TrainArgs t;
  auto* tr =
      cmd->add_subcommand("train", "Train, check (>= --min-accuracy) and freeze the classifier");
  tr->add_option("--data", t.data, "folder of the Fashion-MNIST IDX files");
  tr->add_option("--out", t.out, "output folder")->capture_default_str();
  tr->add_option("--epochs", t.epochs, "epochs")->check(CLI::PositiveNumber)->capture_default_str();
  tr->add_option("--batch", t.batch, "batch size")
      ->check(CLI::Range(2, 1 << 16))
      ->capture_default_str();
  tr->add_option("--lr", t.lr, "peak learning rate (cosine decay)")->capture_default_str();
  tr->add_option("--weight-decay", t.weight_decay, "AdamW decoupled weight decay")
      ->capture_default_str();
  tr->add_option("--shift", t.shift, "random shift augmentation in pixels (0 = off)")
      ->capture_default_str();
  tr->add_option("--seed", t.seed, "seed of init, order, dropout and shifts")
      ->capture_default_str();
  tr->add_option("--train-limit", t.train_limit, "use only the first N training images (0 = all)");
  tr->add_option("--widths", t.widths, "channels of the conv stages")
      ->delimiter(',')
      ->capture_default_str();
  tr->add_option("--features", t.features, "feature (penultimate) dimension")
      ->capture_default_str();
  tr->add_option("--dropout", t.dropout, "dropout before the head")->capture_default_str();
  tr->add_option("--min-accuracy", t.min_accuracy, "fail below this test accuracy")
      ->capture_default_str();
  tr->add_option("--device", t.device,
                 "cpu, or cuda: model, optimizer state and batches on the GPU")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  tr->callback([] { run_train(t); });

  static EvalArgs e;
  auto* ev =
      cmd->add_subcommand("eval-real", "Calibration table of FCD/KID on real and distorted images");
  ev->add_option("--data", e.data, "folder of the Fashion-MNIST IDX files");
  ev->add_option("--dir", e.dir, "folder of the frozen classifier")->capture_default_str();
  ev->add_option("--per-class", e.per_class, "training images per class in each row")
      ->capture_default_str();
  ev->add_option("--kid-subsets", e.kid_subsets, "KID subsets")->capture_default_str();
  ev->add_option("--kid-subset-size", e.kid_subset_size, "KID subset size")->capture_default_str();
  ev->add_option("--seed", e.seed, "seed of the distortions and KID subsets")
      ->capture_default_str();
  ev->callback([] { run_eval_real(e); });
}

}  // namespace smyrf::apps
