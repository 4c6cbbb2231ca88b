// Helpers shared by the gradient study's tests (tests/train/test_grad_study*.cpp and the CUDA
// suite's tests/cuda/test_cuda_grad_study.cpp): the small synthetic study every run-level test
// uses, temporary folders, reading files back, and tiny GAN runs trained on a generated image
// folder. Header-only, no test cases.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/random.h"
#include "data/png.h"
#include "train/gan_train.h"
#include "train/grad_study.h"

namespace smyrf::grad_study_test {

// The whole file as a string ("" when it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// An empty temporary folder for one test (the pid keeps parallel runs apart).
inline std::string temp_dir(const std::string& name) {
  const std::filesystem::path p = std::filesystem::temp_directory_path() /
                                  ("smyrf_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}

// A small synthetic study (clustered inputs, n 64, d 8, one head, every sweep with one or two
// points) that runs in well under a second; out and device are the caller's.
inline train::StudyOptions small_study_options() {
  train::StudyOptions o;
  o.kinds = {"clustered"};
  o.n = 64, o.d = 8, o.heads = 1;
  o.lengths = {32};
  o.temperatures = {0.5};
  o.n_hashes = {1, 2};
  o.clusters = {16};
  o.budgets = {0.25};
  o.seed_counts = {1, 2};
  o.progress = false;
  return o;
}

// An image folder of 3 classes x 4 grayscale 32x32 PNGs: class k is a bright band at 8 + 8k.
inline std::string write_image_folder(const std::string& root) {
  Generator g(5);
  for (int k = 0; k < 3; ++k) {
    const std::filesystem::path dir = std::filesystem::path(root) / ("class" + std::to_string(k));
    std::filesystem::create_directories(dir);
    for (int i = 0; i < 4; ++i) {
      std::vector<uint8_t> px(32 * 32);
      const auto noise = rand({32 * 32}, kFloat64, &g).to_vector<double>();
      for (int r = 0; r < 32; ++r)
        for (int c = 0; c < 32; ++c) {
          const bool band = r >= 8 + 8 * k && r < 12 + 8 * k;
          px[r * 32 + c] = static_cast<uint8_t>((band ? 200 : 30) + 40 * noise[r * 32 + c]);
        }
      data::write_png((dir / (std::to_string(i) + ".png")).string(), px.data(), 32, 32, 1);
    }
  }
  return root;
}

// A tiny SMYRF BigGAN (32x32, ch 4: G attention at 32x32 over 1024 queries and 256 keys, D
// attention at 16x16 over 256 and 64; SMYRF Cq 64, Ck 16 unless `adjust` changes it) trained for 2
// steps on the image folder written into base/images; returns the run folder base/run.
inline std::string train_tiny_gan(const std::string& base,
                                  const std::function<void(train::GanTrainOptions&)>& adjust = {}) {
  train::GanTrainOptions o;
  o.model.resolution = 32;
  o.model.ch = 4;
  o.model.dim_z = 16;
  o.model.shared_dim = 8;
  o.model.image_channels = 1;
  o.model.attention = "smyrf";
  o.model.q_cluster_size = 64;
  o.model.k_cluster_size = 16;
  o.data = write_image_folder(base + "/images");
  o.batch = 4;
  o.d_steps = 1;
  o.steps = 2;
  o.ema_start = 0;
  o.ema_decay = 0.5;  // G_ema differs from G
  o.sample_every = 0;
  o.ckpt_every = 0;
  o.eval_every = 0;
  o.write_samples = false;
  o.progress = false;
  o.out = base + "/run";
  o.seed = 4;
  if (adjust) adjust(o);
  train::train_gan(o);
  return o.out;
}

}  // namespace smyrf::grad_study_test
