#include "train/classifier_train.h"

#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "autograd/grad_mode.h"
#include "core/atomic_file.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "core/sha256.h"
#include "data/loader.h"
#include "train/device_option.h"
#include "train/metrics.h"
#include "train/optim.h"

namespace smyrf::train {
namespace {

// Copies the images at `indices` into a batch, each moved by its own random (dy, dx) in
// [-max_shift, max_shift]; pixels shifted in from outside are background (-1).
Tensor shifted_batch(const Tensor& images, const std::vector<int64_t>& indices, int64_t max_shift,
                     Generator& gen) {
  const int64_t n = static_cast<int64_t>(indices.size()), c = images.size(1), h = images.size(2),
                w = images.size(3);
  Tensor out = full({n, c, h, w}, -1.0, TensorOptions(kFloat32));
  std::vector<int64_t> shifts(static_cast<size_t>(2 * n), 0);
  if (max_shift > 0)
    shifts = randint(-max_shift, max_shift + 1, {2 * n}, DType::Int64, &gen).to_vector<int64_t>();
  const float* src = images.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t dy = shifts[2 * i], dx = shifts[2 * i + 1];
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* s = src + (indices[i] * c + ch) * h * w;
      float* d = dst + (i * c + ch) * h * w;
      for (int64_t y = std::max<int64_t>(0, dy); y < std::min(h, h + dy); ++y)
        for (int64_t x = std::max<int64_t>(0, dx); x < std::min(w, w + dx); ++x)
          d[y * w + x] = s[(y - dy) * w + (x - dx)];
    }
  }
  return out;
}

void emit(const ClassifierTrainOptions& o, const std::string& line) {
  if (o.log) {
    o.log(line);
  } else {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

}  // namespace

double classifier_accuracy(models::Classifier& model, const data::ImageDataset& ds,
                           int64_t batch_size) {
  return label_accuracy(classify_images(model, ds.images, batch_size).logits, ds.labels);
}

ClassifierTrainResult train_classifier(const data::ImageDataset& train,
                                       const data::ImageDataset& test,
                                       const ClassifierTrainOptions& o) {
  SMYRF_CHECK(train.size() > 0 && test.size() > 0, "train_classifier", "empty dataset");
  SMYRF_CHECK(o.epochs >= 1 && o.batch_size >= 2, "train_classifier",
              "need epochs >= 1 and batch_size >= 2 (BatchNorm), got " << o.epochs << " and "
                                                                       << o.batch_size);
  SMYRF_CHECK(o.max_shift >= 0, "train_classifier", "max_shift must be >= 0");
  const Device dev = device_option(o.device, "train_classifier");  // a missing GPU fails now
  // The seed fixes the initial weights and (through the model's own stream) the dropout masks.
  Generator init_gen(o.seed);
  ClassifierTrainResult r;
  auto model = std::make_shared<models::Classifier>(o.model, &init_gen);
  model->to(dev);  // before the optimizer, whose state is made where the parameters are
  model->train();

  const Tensor train_images = train.images.to(kFloat32).contiguous();
  const Tensor train_labels = train.labels.to(kInt64).contiguous();
  const int64_t max_shift = o.max_shift;
  auto shift_gen = std::make_shared<Generator>(o.seed + 2);
  // make_batch runs on the loader's single worker thread, batch after batch in order, so one
  // generator gives a reproducible sequence of shifts.
  data::DataLoader::Options lo;
  lo.batch_size = o.batch_size, lo.shuffle = true, lo.drop_last = true, lo.seed = o.seed + 3;
  data::DataLoader loader(
      train.size(),
      [&, shift_gen](const std::vector<int64_t>& idx) -> data::Batch {
        Tensor labels = index_select(train_labels, 0, from_vector(idx, {int64_t(idx.size())}));
        return {shifted_batch(train_images, idx, max_shift, *shift_gen), labels};
      },
      lo);

  AdamW opt(model->parameters(),
            AdamW::Options{}.set_lr(o.lr).set_weight_decay(o.weight_decay).set_decoupled(true));
  const int64_t per_epoch = loader.batches_per_epoch();
  const int64_t total = per_epoch * o.epochs;
  emit(o, fmt("classifier: %lld parameters, %lld train / %lld test images, %lld epochs x %lld "
              "steps, batch %lld, lr %g, shift %lld, seed %llu",
              (long long)model->num_parameters(), (long long)train.size(), (long long)test.size(),
              (long long)o.epochs, (long long)per_epoch, (long long)o.batch_size, o.lr,
              (long long)o.max_shift, (unsigned long long)o.seed));

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  auto window_t0 = t0;
  double win_loss = 0, win_hits = 0;
  int64_t win_steps = 0, win_images = 0;
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    double epoch_loss = 0;
    for (int64_t b = 0; b < per_epoch; ++b) {
      const int64_t step = epoch * per_epoch + b + 1;
      // Warm-up then cosine to zero: the low-lr tail settles BatchNorm statistics and weights,
      // worth most of a point of accuracy in a run of a few epochs.
      double lr = o.lr * 0.5 * (1 + std::cos(M_PI * double(step - 1) / double(total)));
      if (o.warmup_steps > 0 && step <= o.warmup_steps) lr *= double(step) / double(o.warmup_steps);
      opt.set_lr(lr);
      data::Batch batch = loader.next();  // built on the CPU by the loader's worker
      for (Tensor& t : batch) t = t.to(dev);
      auto [feats, logits] = model->features_and_logits(batch[0]);
      Tensor loss = cross_entropy(logits, batch[1]);
      opt.zero_grad();
      loss.backward();
      opt.step();
      const double l = loss.item();
      SMYRF_CHECK(std::isfinite(l), "train_classifier", "loss became " << l << " at step " << step);
      epoch_loss += l;
      win_loss += l, ++win_steps, win_images += batch[0].size(0);
      win_hits += label_accuracy(logits, batch[1]) * double(batch[0].size(0));
      if ((o.log_every > 0 && step % o.log_every == 0) || step == total) {
        const auto now = clock::now();
        const double dt = std::chrono::duration<double>(now - window_t0).count();
        r.final_train_loss = win_loss / double(win_steps);
        emit(o,
             fmt("step %6lld/%lld  epoch %lld  loss %.4f  train acc %5.2f%%  lr %.2e  %.0f img/s",
                 (long long)step, (long long)total, (long long)epoch + 1, r.final_train_loss,
                 100.0 * win_hits / double(win_images), lr, double(win_images) / dt));
        window_t0 = now, win_loss = 0, win_hits = 0, win_steps = 0, win_images = 0;
      }
      r.steps = step;
    }
    if (o.eval_every_epoch || epoch + 1 == o.epochs) {
      const double acc = classifier_accuracy(*model, test);
      const double secs = std::chrono::duration<double>(clock::now() - t0).count();
      r.test_accuracy = acc;
      r.history.push_back({{"epoch", epoch + 1},
                           {"mean_loss", epoch_loss / double(per_epoch)},
                           {"test_accuracy", acc},
                           {"seconds", secs}});
      emit(o, fmt("epoch %lld: mean loss %.4f  test accuracy %.2f%%  (%.0f s)",
                  (long long)epoch + 1, epoch_loss / double(per_epoch), 100.0 * acc, secs));
      window_t0 = clock::now();  // images/s counts training only, not this evaluation
    }
  }
  r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  model->to(Device::cpu());
  model->eval();
  r.model = model;
  return r;
}

std::string classifier_version(const std::string& sha256_hex) {
  SMYRF_CHECK(sha256_hex.size() == 64, "classifier",
              "expected a 64-digit SHA-256, got '" << sha256_hex << "'");
  return "classifier v" + sha256_hex.substr(0, 8);
}

FrozenClassifierInfo save_frozen_classifier(models::Classifier& model, const std::string& dir,
                                            const nlohmann::json& training) {
  std::filesystem::create_directories(dir);
  FrozenClassifierInfo info;
  info.weights_path = (std::filesystem::path(dir) / "classifier.safetensors").string();
  info.json_path = (std::filesystem::path(dir) / "classifier.json").string();
  const std::string bytes = safetensors_serialize(
      model.state_dict(),
      {{"format", "smyrf-classifier"}, {"config", model.config().to_json().dump()}});
  info.sha256 = sha256_hex(bytes);
  info.version = classifier_version(info.sha256);
  write_file_atomic(info.weights_path, bytes, "classifier");
  info.json = {{"format", "smyrf-classifier-1"},
               {"version", info.version},
               {"sha256", info.sha256},
               {"weights", "classifier.safetensors"},
               {"config", model.config().to_json()},
               {"training", training}};
  write_file_atomic(info.json_path, info.json.dump(2) + "\n", "classifier");
  return info;
}

FrozenClassifier load_frozen_classifier(const std::string& dir) {
  FrozenClassifier fc;
  auto& info = fc.info;
  info.json_path = (std::filesystem::path(dir) / "classifier.json").string();
  SMYRF_CHECK_HINT(std::filesystem::exists(info.json_path), "classifier",
                   "no frozen classifier in '" << dir << "' (missing " << info.json_path << ")",
                   "train one with `smyrf classifier train --out " << dir << "`");
  try {
    info.json = nlohmann::json::parse(read_file(info.json_path, "classifier"));
  } catch (const nlohmann::json::exception& e) {
    SMYRF_CHECK(false, "classifier", "bad JSON in " << info.json_path << ": " << e.what());
  }
  info.weights_path =
      (std::filesystem::path(dir) / info.json.value("weights", "classifier.safetensors")).string();
  info.sha256 = info.json.value("sha256", "");
  info.version = info.json.value("version", "");
  const std::string bytes = read_file(info.weights_path, "classifier");
  const std::string actual = sha256_hex(bytes);
  SMYRF_CHECK_HINT(actual == info.sha256, "classifier",
                   info.weights_path << " has SHA-256 " << actual << " but " << info.json_path
                                     << " says " << info.sha256,
                   "the weights changed after freezing; retrain or restore the file");
  SMYRF_CHECK(info.version == classifier_version(actual), "classifier",
              "version '" << info.version << "' does not match the checksum " << actual);
  fc.model = std::make_shared<models::Classifier>(
      models::ClassifierConfig::from_json(info.json.value("config", nlohmann::json::object())));
  fc.model->load_state_dict(safetensors_parse(bytes, info.weights_path).tensors);
  fc.model->eval();
  for (Tensor& p : fc.model->parameters()) p.requires_grad_(false);
  return fc;
}

}  // namespace smyrf::train
