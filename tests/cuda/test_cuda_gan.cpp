// BigGAN training on the GPU (gan train --device cuda): a tiny SMYRF-attention G and D trained
// three iterations on each device from the same seed follow each other (the noise is drawn on
// the CPU; convolution through cuDNN, pooling / upsampling / batch norm through our kernels).
// Passing on an NVIDIA H200 (2026-11-30).
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "data/image_dataset.h"
#include "train/gan_train.h"

using namespace smyrf;
using namespace smyrf::cuda_test;

TEST_CASE("cuda: a tiny BigGAN trained on the GPU follows the CPU run of the same seed") {
  const data::ImageDataset ds = labelled_images(24, 3, 150, -0.9, 0.9);
  auto run = [&](const std::string& device) {
    train::GanTrainOptions o;
    o.model.resolution = 32, o.model.ch = 4, o.model.dim_z = 16, o.model.shared_dim = 8;
    o.model.n_classes = 3, o.model.image_channels = 1, o.model.attention = "smyrf";
    o.model.q_cluster_size = 64, o.model.k_cluster_size = 16;
    o.dataset = &ds;
    o.batch = 8, o.d_steps = 2, o.steps = 3, o.ema_start = 1, o.ema_decay = 0.9;
    o.sample_every = 0, o.ckpt_every = 0, o.samples_per_class = 2, o.eval_every = 0;
    o.progress = false, o.prefetch = 1, o.seed = 3;
    o.out = (std::filesystem::temp_directory_path() / ("smyrf_cuda_gan_" + device)).string();
    std::filesystem::remove_all(o.out);
    o.device = device;
    return train::train_gan(o);
  };
  const train::GanTrainResult c = run("cpu"), g = run("cuda");
  REQUIRE(g.history.size() == c.history.size());
  for (size_t i = 0; i < c.history.size(); ++i) {
    INFO("step " << i + 1);
    CHECK(g.history[i].d_loss_real == doctest::Approx(c.history[i].d_loss_real).epsilon(1e-3));
    CHECK(g.history[i].d_loss_fake == doctest::Approx(c.history[i].d_loss_fake).epsilon(1e-3));
    CHECK(g.history[i].g_loss == doctest::Approx(c.history[i].g_loss).epsilon(1e-3));
  }
  CHECK(std::filesystem::exists(g.last_grid));  // the grid came back to the CPU as a PNG
}
