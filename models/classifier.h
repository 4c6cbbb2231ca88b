// The Fashion-MNIST feature classifier: the frozen network whose penultimate features define the
// FCD/KID feature space (docs/biggan.md, "Evaluation without Inception weights").
//
// Architecture (widths from ClassifierConfig), input (N, C, S, S) in [-1, 1]:
//   for each stage s: conv3x3(pad 1, no bias) - BatchNorm2d - ReLU, then 2x2 max pool
//   flatten - Linear(feature_dim) - ReLU  -> features (N, feature_dim)   (the FCD space)
//   dropout (training only) - Linear(num_classes) -> logits (N, num_classes)
// With the defaults (1x32x32, widths 32-64-64, 128 features) it has about 188k parameters and
// 7.4M multiply-adds per image. State-dict names: "stages.<i>.conv.weight", "stages.<i>.bn.*",
// "fc.weight", "fc.bias", "head.weight", "head.bias".
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/norm.h"

namespace smyrf::models {

struct ClassifierConfig {
  int64_t in_channels = 1;
  int64_t image_size = 32;  // must be divisible by 2^(number of stages)
  int64_t num_classes = 10;
  std::vector<int64_t> widths = {32, 64, 64};
  int64_t feature_dim = 128;
  double dropout = 0.3;

  nlohmann::json to_json() const;
  static ClassifierConfig from_json(const nlohmann::json& j);  // missing keys keep defaults
};

class ClassifierStage : public layers::Module {
 public:
  ClassifierStage(int64_t in, int64_t out, Generator* gen);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "ClassifierStage"; }
  std::shared_ptr<layers::Conv2d> conv;
  std::shared_ptr<layers::BatchNorm2d> bn;
};

class Classifier : public layers::Module {
 public:
  explicit Classifier(const ClassifierConfig& config, Generator* gen = nullptr);
  // x (N, in_channels, image_size, image_size) -> logits (N, num_classes).
  Tensor forward(const Tensor& x) override;
  // x as above -> penultimate features (N, feature_dim), after the ReLU.
  Tensor features(const Tensor& x);
  // Both from one pass.
  std::pair<Tensor, Tensor> features_and_logits(const Tensor& x);
  std::string name() const override { return "Classifier"; }
  const ClassifierConfig& config() const { return config_; }

 private:
  ClassifierConfig config_;
  std::shared_ptr<layers::Sequential> stages_;
  std::shared_ptr<layers::Linear> fc_, head_;
  Generator dropout_gen_;  // owned, so the model outlives whatever generator built it
};

}  // namespace smyrf::models
