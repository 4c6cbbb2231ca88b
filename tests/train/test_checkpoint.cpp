// Checkpoints: save, load into freshly built objects, resume bit-identically; clear errors for
// missing, corrupt or mismatched files.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "layers/linear.h"
#include "train/checkpoint.h"

using namespace smyrf;
using namespace smyrf::train;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "smyrf_ckpt_XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
  std::string operator/(const std::string& f) const { return (path / f).string(); }
};

// A run: model, optimizer and the two random streams that drive training (data and dropout).
struct Run {
  Generator init, data, drop;
  std::shared_ptr<layers::Sequential> model = std::make_shared<layers::Sequential>();
  std::unique_ptr<AdamW> opt;
  explicit Run(uint64_t seed, int64_t hidden = 8) : init(seed), data(seed + 100), drop(seed + 200) {
    model->add(std::make_shared<layers::Linear>(4, hidden, true, &init));
    model->add(std::make_shared<layers::Activation>(layers::Activation::Kind::Gelu));
    model->add(std::make_shared<layers::Dropout>(0.2, &drop));
    model->add(std::make_shared<layers::Linear>(hidden, 3, true, &init));
    opt = std::make_unique<AdamW>(model->parameters(), AdamW::Options().set_lr(0.05));
  }
  CheckpointTargets targets() {
    return {model.get(), opt.get(), {{"data", &data}, {"dropout", &drop}}};
  }
  float train_step() {
    Tensor x = randn({16, 4}, {}, &data);
    Tensor y = randint(0, 3, {16}, DType::Int64, &data);
    opt->zero_grad();
    Tensor loss = cross_entropy(model->forward(x), y);
    loss.backward();
    opt->step();
    return loss.item<float>();
  }
  std::vector<float> weights() const {
    std::vector<float> all;
    for (auto& [n, t] : model->state_dict()) {
      auto v = t.to_vector<float>();
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  }
};

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}
// Checks that a message contains `part` and shows the whole message when it does not.
#define CHECK_HAS(msg, part)                              \
  do {                                                    \
    const std::string check_has_m_ = (msg);               \
    CHECK_MESSAGE(has(check_has_m_, part), check_has_m_); \
  } while (0)

}  // namespace

TEST_CASE("checkpoint: resume gives losses bit-identical to an uninterrupted run") {
  TempDir dir;
  Run ref(1);
  std::vector<float> ref_losses;
  for (int i = 0; i < 10; ++i) ref_losses.push_back(ref.train_step());
  CHECK(ref_losses.back() < ref_losses.front());

  Run first(1);
  for (int i = 0; i < 5; ++i) CHECK(first.train_step() == ref_losses[i]);
  CheckpointInfo info;
  info.step = 5;
  info.config = {{"hidden", 8}, {"lr", 0.05}};
  info.extra = {{"epoch", 0}, {"batch", 5}};
  save_checkpoint(dir.str(), "ckpt", first.targets(), info);
  CHECK(checkpoint_exists(dir.str(), "ckpt"));
  CHECK(fs::exists(dir / "ckpt.safetensors"));
  CHECK(fs::exists(dir / "ckpt.optim.safetensors"));

  // Everything freshly built with other seeds: all state must come from the checkpoint.
  Run resumed(77);
  resumed.opt->set_lr(1.0);
  CheckpointInfo got = load_checkpoint(dir.str(), "ckpt", resumed.targets());
  CHECK(got.step == 5);
  CHECK(got.config == info.config);
  CHECK(got.extra == info.extra);
  CHECK(resumed.opt->steps() == 5);
  CHECK(resumed.opt->lr() == 0.05);
  CHECK(resumed.data.seed() == first.data.seed());
  CHECK(resumed.data.offset() == first.data.offset());
  CHECK(resumed.weights() == first.weights());
  for (int i = 5; i < 10; ++i) CHECK(resumed.train_step() == ref_losses[i]);
  CHECK(resumed.weights() == ref.weights());
}

TEST_CASE("checkpoint: the weights file is a plain PyTorch-named state dict") {
  TempDir dir;
  Run r(2);
  save_checkpoint(dir.str(), "m", r.targets(), {});
  SafetensorsContents c = load_safetensors(dir / "m.safetensors");
  std::vector<std::string> names;
  for (auto& [n, t] : c.tensors) names.push_back(n);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias"});
  CHECK(c.tensors[0].second.shape() == Shape{8, 4});
  CHECK(c.metadata.at("format") == "pt");
  // the sidecar is readable JSON naming the other files
  auto side = nlohmann::json::parse(read_file(dir / "m.json"));
  CHECK(side["weights"] == "m.safetensors");
  CHECK(side["optimizer"]["file"] == "m.optim.safetensors");
  CHECK(side["optimizer"]["kind"] == "AdamW");
  CHECK(side["generators"]["data"]["seed"] == 102);
}

TEST_CASE("checkpoint: without an optimizer") {
  TempDir dir;
  Run a(3), b(4);
  save_checkpoint(dir.str(), "w", {a.model.get(), nullptr, {}}, {});
  CHECK_FALSE(fs::exists(dir / "w.optim.safetensors"));
  load_checkpoint(dir.str(), "w", {b.model.get(), nullptr, {}});
  CHECK(b.weights() == a.weights());
  CHECK_HAS(error_of([&] { load_checkpoint(dir.str(), "w", b.targets()); }),
            "has no optimizer state");
}

TEST_CASE("checkpoint: errors are clear and a failed load changes nothing") {
  TempDir dir;
  Run a(5);
  a.train_step();
  save_checkpoint(dir.str(), "c", a.targets(), {});
  Run b(6);
  const std::vector<float> before = b.weights();
  auto load = [&](Run& r) {
    return error_of([&] { load_checkpoint(dir.str(), "c", r.targets()); });
  };

  SUBCASE("missing sidecar") {
    std::string m = error_of([&] { load_checkpoint(dir.str(), "nope", b.targets()); });
    CHECK_HAS(m, "[checkpoint]");
    CHECK_HAS(m, "nope.json' does not exist");
    CHECK_FALSE(checkpoint_exists(dir.str(), "nope"));
  }
  SUBCASE("corrupt sidecar") {
    write_file_atomic(dir / "c.json", std::string("{\"format\": \"smyrf-checkpoint\", "));
    CHECK_HAS(load(b), "is not valid JSON");
    write_file_atomic(dir / "c.json",
                      std::string("{\"format\": \"smyrf-checkpoint\", \"version\": 1}"));
    CHECK_HAS(load(b), "lacks \"checkpoint_id\"");
  }
  SUBCASE("truncated weights file") {
    std::string w = read_file(dir / "c.safetensors");
    write_file_atomic(dir / "c.safetensors", w.substr(0, w.size() - 3));
    std::string m = load(b);
    CHECK_HAS(m, "[safetensors]");
    CHECK_HAS(m, "c.safetensors");
    CHECK_HAS(m, "truncated");
  }
  SUBCASE("missing optimizer file") {
    fs::remove(dir / "c.optim.safetensors");
    CHECK_HAS(load(b), "c.optim.safetensors': cannot open");
  }
  SUBCASE("weights from another save (a save interrupted between files)") {
    save_checkpoint(dir.str(), "other", a.targets(), {});
    fs::rename(dir / "other.safetensors", dir / "c.safetensors");
    std::string m = load(b);
    CHECK_HAS(m, "belongs to save");
    CHECK_HAS(m, "interrupted");
  }
  SUBCASE("model of another configuration") {
    Run wide(7, 16);
    const std::vector<float> wide_before = wide.weights();
    std::string m = error_of([&] {
      load_checkpoint(dir.str(), "c", {wide.model.get(), nullptr, {}});
    });
    CHECK_HAS(m, "'0.weight' has shape (8, 4) in the state dict but (16, 4) in the module");
    CHECK(wide.weights() == wide_before);
  }
  SUBCASE("another optimizer or an unknown generator") {
    SGD sgd(b.model->parameters(), SGD::Options{});
    CHECK_HAS(error_of([&] {
                load_checkpoint(dir.str(), "c", {b.model.get(), &sgd, {}});
              }),
              "holds AdamW state but the optimizer is SGD");
    Generator g;
    CHECK_HAS(error_of([&] {
                load_checkpoint(dir.str(), "c", {b.model.get(), nullptr, {{"noise", &g}}});
              }),
              "no state for generator 'noise'");
  }
  CHECK(b.weights() == before);
  CHECK(b.opt->steps() == 0);
}
