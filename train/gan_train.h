// Training SMYRF-BigGAN (docs/biggan.md): hinge loss, Adam with betas (0, 0.999) and separate G
// and D learning rates, d_steps discriminator steps per generator step, an EMA copy of G.
//
// One iteration (BigGAN-PyTorch's training function):
//   d_steps times: a real batch (x, y) from the loader, fake labels uniform over the classes and
//     z ~ N(0, 1) from the noise generator, G(z, y_fake) without gradients (G in training mode, so
//     its BN statistics and spectral-norm vectors move as in BigGAN), one D forward on
//     cat(fake, real), loss_D = mean(relu(1 + D(fake))) + mean(relu(1 - D(real))), an Adam step
//     of D;
//   then fresh z and fake labels, loss_G = -mean(D(G(z, y))) with D's parameters frozen (no
//     weight gradients computed), an Adam step of G, and the EMA update of G_ema (decay 0, a
//     copy, before ema_start; models::ema_update).
// "images/s" counts generator iterations: batch / seconds per iteration (all its D steps
// included), the unit of the PyTorch reference (a 1 D + 1 G step pair).
//
// A run lives in `out`:
//   ckpt.safetensors         G, D and G_ema as one state dict with prefixes "G.", "D.", "G_ema."
//                            (each part in BigGAN-PyTorch names), written atomically
//   ckpt.optim.safetensors   both Adam states ("G." and "D." prefixes)
//   ckpt.json                sidecar: step, config (these options), generator states (noise,
//                            G and D attention hashes), data-loader position (train/checkpoint.h)
//   samples/step_NNNNNN.png, samples.png   G_ema in eval mode on a fixed z and fixed labels (one
//                            row per class), every sample_every steps and at the end
//   log.jsonl                per step {"step", "d_loss_real", "d_loss_fake", "g_loss",
//                            "d_real", "d_fake" (mean D outputs), "gamma_G"/"gamma_D" (attention
//                            gains), "sigma" (top singular values of a few layers), "images_per_s"}
//   losses.png               D and G losses against the step
//   evals.jsonl, fcd.png     with eval_every > 0: every eval_every steps and at the end, FCD and
//                            KID of G_ema on eval_per_class images per class against the test set
//                            in the frozen classifier's feature space ({"step", "fcd", "kid_mean",
//                            "kid_std", "accuracy", "images", "classifier", "seconds"}), and the
//                            FCD curve. A small-sample FCD is biased upwards against the 10k-image
//                            protocol of `smyrf gan eval`: it is for curves and twin comparisons.
//                            Evaluation time is excluded from images/s; the z of every evaluation
//                            come from their own seed, so resume stays exact.
// and shows a progress bar on stderr (a line every 10 steps when stderr is not a terminal).
//
// Exact resume: weights, optimizers, spectral-norm vectors and BN statistics are in the state
// dict; the noise and attention-hash generators are in the sidecar; the batch order is a pure
// function of the seed and the saved loader position; grids use a z drawn from a generator
// seeded only by the run seed. A run stopped at step k and resumed logs bit-identical losses.
//
// Errors: smyrf::Error (op "gan_train") for inconsistent options, data that does not fit the
// model (size, channels, classes), and a resume without a checkpoint.
#pragma once
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/image_dataset.h"
#include "models/biggan.h"
#include "train/metrics.h"
#include "train/optim.h"

namespace smyrf::train {

struct GanTrainOptions {
  models::BigGanConfig model;  // image_channels, resolution and n_classes must fit the data
  std::string data;            // empty: Fashion-MNIST from data_dir; else an image folder
  std::string data_dir = data::kFashionMnistDir;
  int64_t max_images = 0;  // > 0: only the first max_images training images (smoke runs)
  int64_t batch = 32, d_steps = 2;
  int64_t steps = 100000;
  double g_lr = 2e-4, d_lr = 2e-4, beta1 = 0.0, beta2 = 0.999, adam_eps = 1e-8;
  double ema_decay = 0.999;
  int64_t ema_start = 200;
  int64_t sample_every = 100;  // grids (0: only at the end)
  int64_t ckpt_every = 200;    // checkpoints (0: only at the end)
  int64_t samples_per_class = 10;
  int64_t eval_every = 0;        // periodic FCD/KID of G_ema (0: off); Fashion-MNIST 1x32x32 only
  int64_t eval_per_class = 100;  // generated images per class in each periodic evaluation
  std::string classifier = "runs/classifier";  // frozen classifier folder for the evaluations
  double sample_truncation = 0;                // grids from truncated z (0: none)
  uint64_t seed = 1;
  std::string out = "runs/gan";
  bool resume = false;      // continue from out/ckpt (its options win, except the run controls)
  int64_t stop_at = -1;     // stop after this step, with a checkpoint (an interruption)
  double time_limit_s = 0;  // > 0: stop with a checkpoint and a grid once this much time passed
  bool progress = true;
  bool write_samples = true;
  int prefetch = 1;
  // "cpu" or "cuda" (the first GPU): where G, D, G_ema, the optimizer state and every batch
  // live (samples and evaluations come back to the CPU). Not saved: a run may resume on the
  // other device.
  std::string device = "cpu";
  const data::ImageDataset* dataset = nullptr;  // when set: train on it (tests); not saved

  nlohmann::json to_json() const;
  static GanTrainOptions from_json(const nlohmann::json& j);  // missing keys keep defaults
};

struct GanStepStats {
  int64_t step = 0;
  double d_loss_real = 0, d_loss_fake = 0, g_loss = 0, d_real = 0, d_fake = 0;
  std::vector<double> gamma_g, gamma_d;
};

struct GanTrainResult {
  int64_t step = 0;
  std::vector<GanStepStats> history;  // every step run by this call
  double images_per_s = 0;            // of this call
  double seconds = 0;
  std::string last_grid;  // path of the latest sample grid ("" when none was written)
};

GanTrainResult train_gan(const GanTrainOptions& options);

// Adam as the run trains G or D with learning rate lr: (beta1, beta2, adam_eps) of the options,
// no weight decay (also used by tools that resume a run's optimisation, e.g. the gradient study).
AdamW::Options gan_adam_options(const GanTrainOptions& options, double lr);

// One training iteration exactly as train_gan runs it (its loop calls this, and so does
// `smyrf bench gan-step`): o.d_steps D steps (each: next_real() for the real batch, fake labels and
// z from `noise`, G without gradients, D on cat(fake, real), hinge loss, opt_d step), one G step
// with D's parameters frozen (opt_g step), then the EMA update of G_ema for iteration `step` (the
// step number this iteration completes; decay 0 up to o.ema_start). G_ema may be null (no EMA).
// Returns the iteration's losses, mean D outputs and attention gains (last D step's numbers).
struct GanIteration {
  models::BigGanGenerator& G;
  models::BigGanDiscriminator& D;
  models::BigGanGenerator* G_ema;
  Optimizer& opt_g;
  Optimizer& opt_d;
  Generator& noise;
  std::function<std::vector<Tensor>()> next_real;  // {images (B, C, R, R), labels (B) int64}
};
GanStepStats gan_iteration(const GanIteration& it, const GanTrainOptions& o, int64_t step);

// The models of a run folder, restored from its one checkpoint: G_ema (eval mode) for sampling,
// and the trained G and D (training mode, as the training step runs them: G's batch norm uses
// batch statistics and both networks' spectral-norm vectors move on every forward), e.g. for the
// gradient study's real hinge losses (train/grad_study.h).
struct LoadedGan {
  GanTrainOptions options;
  std::shared_ptr<models::BigGanGenerator> g_ema;
  std::shared_ptr<models::BigGanGenerator> g;
  std::shared_ptr<models::BigGanDiscriminator> d;
  int64_t step = 0;
};
LoadedGan load_gan(const std::string& run_dir);

// The training images of a run's options exactly as train_gan reads them: options.data (an image
// folder) or Fashion-MNIST from options.data_dir, the first max_images when that is set. The
// readers' errors (op "image_folder" / "fashion_mnist") name the missing or bad path.
data::ImageDataset load_gan_data(const GanTrainOptions& options);

// n images (n, C, R, R) of class `label` (or, for label < 0, classes cycling 0, 1, ...) from G in
// eval mode without gradients, z truncated at `truncation` (<= 0: none), z and the attention
// hashes drawn from a generator seeded with `seed`; returned with their labels. Batches of 100.
struct GanSamples {
  Tensor images, labels;
};
GanSamples sample_gan(models::BigGanGenerator& g, int64_t n, int64_t label, double truncation,
                      uint64_t seed);

// The evaluation protocol of biggan.md on a generator (G_ema): per_class images of every class
// (sample_gan with `seed` and `truncation`) against the reference set (the 10k test images) in
// the frozen classifier's feature space: FCD, KID, accuracy against the conditioning labels and
// the predicted-class histogram (train/metrics.h). The images must match the classifier's input
// (Fashion-MNIST: 1x32x32). Throws smyrf::Error (op "gan_eval") when they do not.
struct GanEvalResult {
  SampleMetrics metrics;
  int64_t images = 0;
  double seconds = 0;  // generation and evaluation
};
GanEvalResult evaluate_gan(models::BigGanGenerator& g, models::Classifier& classifier,
                           const ClassifierOutputs& reference, const GaussianStats& reference_stats,
                           int64_t per_class, double truncation, uint64_t seed,
                           const SampleMetricsOptions& options = {});

// Loss helpers (hinge): D's two terms and G's, from D's scores (N).
Tensor hinge_d_real(const Tensor& d_real);  // mean(relu(1 - d_real))
Tensor hinge_d_fake(const Tensor& d_fake);  // mean(relu(1 + d_fake))
Tensor hinge_g(const Tensor& d_fake);       // -mean(d_fake)

}  // namespace smyrf::train
