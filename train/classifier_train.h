// Training, freezing and loading the Fashion-MNIST feature classifier (models/classifier.h).
//
// train_classifier: AdamW with a short linear warm-up and a cosine decay to zero, cross-entropy,
// optional random shifts (the padded 32x32 images move by up to max_shift pixels, the uncovered
// border filled with the background value -1), a fixed seed for initialisation, shuffling,
// dropout and shifts. Test accuracy is measured after every epoch on the quantised test images.
//
// The frozen classifier lives in a folder as
//   classifier.safetensors  the state dict (PyTorch names), config in the metadata
//   classifier.json         {"version": "classifier v<first 8 hex of sha256>", "sha256", "config",
//                            "training": {...}} -- written last, atomically
// The SHA-256 is of the exact bytes of classifier.safetensors (`sha256sum` agrees), so a metric
// that names "classifier v1a2b3c4d" names one set of weights. load_frozen_classifier recomputes it
// and refuses a file that does not match its JSON.
#pragma once
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "data/image_dataset.h"
#include "models/classifier.h"

namespace smyrf::train {

struct ClassifierTrainOptions {
  models::ClassifierConfig model;
  int64_t epochs = 4;
  int64_t batch_size = 128;
  double lr = 2e-3;
  double weight_decay = 1e-4;  // decoupled (AdamW)
  int64_t warmup_steps = 100;
  int64_t max_shift = 2;  // random translation in pixels, 0 = no augmentation
  uint64_t seed = 0;
  int64_t log_every = 50;  // steps between progress lines (0 = none)
  bool eval_every_epoch = true;
  // "cpu", or "cuda": the model, optimizer state and batches on the first GPU (train/
  // device_option.h: an unknown name, or cuda without a GPU, is refused before any work). The
  // weights are initialised on the CPU, so a seed gives the same start on either device, and
  // the returned model is back on the CPU.
  std::string device = "cpu";
  // Progress sink; prints to stdout when empty.
  std::function<void(const std::string&)> log;
};

struct ClassifierTrainResult {
  std::shared_ptr<models::Classifier> model;  // in eval mode
  double test_accuracy = 0;
  double final_train_loss = 0;  // mean over the last logging window
  int64_t steps = 0;
  double seconds = 0;
  nlohmann::json history = nlohmann::json::array();  // per epoch: loss, test accuracy, time
};

ClassifierTrainResult train_classifier(const data::ImageDataset& train,
                                       const data::ImageDataset& test,
                                       const ClassifierTrainOptions& options);

// Accuracy of the model (eval mode, quantised inputs) on a labelled dataset; the images go to
// the model's device a batch at a time.
double classifier_accuracy(models::Classifier& model, const data::ImageDataset& ds,
                           int64_t batch_size = 500);

struct FrozenClassifierInfo {
  std::string weights_path, json_path, sha256, version;
  nlohmann::json json;  // the whole sidecar
};

// "classifier v" + the first 8 hex digits of the weights' SHA-256.
std::string classifier_version(const std::string& sha256_hex);

// Writes the two files (creating dir); `training` is stored under "training" in the JSON.
FrozenClassifierInfo save_frozen_classifier(
    models::Classifier& model, const std::string& dir,
    const nlohmann::json& training = nlohmann::json::object());

struct FrozenClassifier {
  std::shared_ptr<models::Classifier> model;  // eval mode, parameters do not require grad
  FrozenClassifierInfo info;
};
// Throws smyrf::Error (op "classifier") when a file is missing, the checksum differs from the
// JSON, or the weights do not fit the config.
FrozenClassifier load_frozen_classifier(const std::string& dir);

}  // namespace smyrf::train
