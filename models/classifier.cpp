#include "models/classifier.h"

#include "autograd/ops_conv.h"
#include "core/random.h"

namespace smyrf::models {

nlohmann::json ClassifierConfig::to_json() const {
  return {{"in_channels", in_channels}, {"image_size", image_size},   {"num_classes", num_classes},
          {"widths", widths},           {"feature_dim", feature_dim}, {"dropout", dropout}};
}

ClassifierConfig ClassifierConfig::from_json(const nlohmann::json& j) {
  ClassifierConfig c;
  c.in_channels = j.value("in_channels", c.in_channels);
  c.image_size = j.value("image_size", c.image_size);
  c.num_classes = j.value("num_classes", c.num_classes);
  c.widths = j.value("widths", c.widths);
  c.feature_dim = j.value("feature_dim", c.feature_dim);
  c.dropout = j.value("dropout", c.dropout);
  return c;
}

ClassifierStage::ClassifierStage(int64_t in, int64_t out, Generator* gen) {
  // No conv bias: the BatchNorm right after it would cancel it.
  conv = register_module("conv", std::make_shared<layers::Conv2d>(in, out, 3, 1, 1, 1, 1,
                                                                  /*bias=*/false, gen));
  bn = register_module("bn", std::make_shared<layers::BatchNorm2d>(out));
}

Tensor ClassifierStage::forward(const Tensor& x) {
  return max_pool2d(relu(bn->forward(conv->forward(x))), 2);
}

Classifier::Classifier(const ClassifierConfig& c, Generator* gen) : config_(c) {
  SMYRF_CHECK(!c.widths.empty(), "Classifier", "widths must name at least one stage");
  const int64_t shrink = int64_t(1) << c.widths.size();
  SMYRF_CHECK_HINT(c.image_size % shrink == 0, "Classifier",
                   "image_size " << c.image_size << " is not divisible by " << shrink,
                   "each stage halves the image; pad the images or use fewer stages");
  SMYRF_CHECK(c.dropout >= 0 && c.dropout < 1, "Classifier",
              "dropout must be in [0, 1), got " << c.dropout);
  stages_ = register_module("stages", std::make_shared<layers::Sequential>());
  int64_t in = c.in_channels;
  for (int64_t w : c.widths) {
    stages_->add(std::make_shared<ClassifierStage>(in, w, gen));
    in = w;
  }
  const int64_t side = c.image_size / shrink;
  fc_ = register_module(
      "fc", std::make_shared<layers::Linear>(in * side * side, c.feature_dim, true, gen));
  head_ = register_module(
      "head", std::make_shared<layers::Linear>(c.feature_dim, c.num_classes, true, gen));
}

std::pair<Tensor, Tensor> Classifier::features_and_logits(const Tensor& x) {
  const auto& c = config_;
  SMYRF_CHECK_HINT(x.dim() == 4 && x.size(1) == c.in_channels && x.size(2) == c.image_size &&
                       x.size(3) == c.image_size,
                   name(),
                   "expected (N, " << c.in_channels << ", " << c.image_size << ", " << c.image_size
                                   << "), got " << shape_str(x.shape()),
                   "Fashion-MNIST is loaded padded to 32x32 (load_fashion_mnist pad_to=32)");
  Tensor h = stages_->forward(x).flatten(1);
  Tensor feats = relu(fc_->forward(h));
  Tensor logits = head_->forward(dropout(feats, c.dropout, is_training(), &dropout_gen_));
  return {feats, logits};
}

Tensor Classifier::forward(const Tensor& x) { return features_and_logits(x).second; }

Tensor Classifier::features(const Tensor& x) { return features_and_logits(x).first; }

}  // namespace smyrf::models
