// `smyrf gan train | sample | eval`: train SMYRF-BigGAN (or its dense twin) on Fashion-MNIST or a
// folder of images, sample a trained run, and evaluate it with the frozen Fashion-MNIST
// classifier (FCD, KID, accuracy, class histogram; train/gan_train.h does the work).
#include <cstdio>
#include <filesystem>
#include <string>

#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "data/png.h"
#include "train/classifier_train.h"
#include "train/gan_train.h"

namespace smyrf::apps {
namespace {

void add_train(CLI::App& gan) {
  auto* cmd = gan.add_subcommand(
      "train",
      "Train BigGAN with SMYRF (or dense) attention; defaults: the CPU configuration on "
      "Fashion-MNIST");
  static train::GanTrainOptions o;
  static std::string preset = "cpu";
  static double minutes = 0;
  static int64_t ch = -1, dim_z = -1, n_hashes = -1, cq = -1, ck = -1, g_attn = -1, d_attn = -1,
                 channels = -1, resolution = -1;
  static std::string attention;
  static int64_t eval_every = -1;
  cmd->add_option("--preset", preset, "model configuration: cpu or gpu (biggan.md)")
      ->check(CLI::IsMember({"cpu", "gpu"}))
      ->capture_default_str();
  cmd->add_option("--attention", attention, "dense or smyrf (default: smyrf)")
      ->check(CLI::IsMember({"dense", "smyrf"}));
  cmd->add_option("--ch", ch, "base width (preset: 8 for cpu, 32 for gpu)");
  cmd->add_option("--dim-z", dim_z, "latent size (divisible by the G blocks + 1)");
  cmd->add_option("--resolution", resolution, "image size: 32, 64, 128 or 256 (default 32)");
  cmd->add_option("--channels", channels, "image channels, 1 or 3 (default 1)");
  cmd->add_option("--g-attention-res", g_attn, "resolution of G's attention block (0: none)");
  cmd->add_option("--d-attention-res", d_attn, "resolution of D's attention block (0: none)");
  cmd->add_option("--n-hashes", n_hashes, "SMYRF hashing rounds");
  cmd->add_option("--cq", cq, "SMYRF query cluster size");
  cmd->add_option("--ck", ck, "SMYRF key cluster size");
  cmd->add_option("--data", o.data,
                  "folder of images with one subfolder per class (default: "
                  "Fashion-MNIST)");
  cmd->add_option("--fashion-mnist-dir", o.data_dir, "where the Fashion-MNIST IDX files are")
      ->capture_default_str();
  cmd->add_option("--max-images", o.max_images, "use only the first N training images (0: all)")
      ->capture_default_str();
  cmd->add_option("--batch", o.batch, "batch size")->capture_default_str();
  cmd->add_option("--d-steps", o.d_steps, "D steps per G step")->capture_default_str();
  cmd->add_option("--steps", o.steps, "G steps")->capture_default_str();
  cmd->add_option("--minutes", minutes, "wall-clock budget; stops with a checkpoint (0: none)")
      ->capture_default_str();
  cmd->add_option("--g-lr", o.g_lr, "G learning rate")->capture_default_str();
  cmd->add_option("--d-lr", o.d_lr, "D learning rate")->capture_default_str();
  cmd->add_option("--ema-decay", o.ema_decay, "decay of the EMA copy of G")->capture_default_str();
  cmd->add_option("--ema-start", o.ema_start, "step from which G_ema averages (before: copies)")
      ->capture_default_str();
  cmd->add_option("--eval-every", eval_every,
                  "FCD/KID of G_ema every K steps into evals.jsonl and fcd.png (default: 500 when "
                  "the frozen classifier exists and the data is Fashion-MNIST, else off; 0: off)");
  cmd->add_option("--eval-per-class", o.eval_per_class,
                  "generated images per class in each periodic evaluation")
      ->capture_default_str();
  cmd->add_option("--classifier", o.classifier, "frozen classifier folder for the evaluations")
      ->capture_default_str();
  cmd->add_option("--sample-every", o.sample_every, "write a sample grid every K steps")
      ->capture_default_str();
  cmd->add_option("--ckpt-every", o.ckpt_every, "write a checkpoint every K steps")
      ->capture_default_str();
  cmd->add_option("--truncation", o.sample_truncation, "truncation of the grids' z (0: none)")
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "seed of initialisation, noise and batch order")
      ->capture_default_str();
  cmd->add_option("--out", o.out, "run folder")->capture_default_str();
  cmd->add_flag("--resume", o.resume, "continue the run in --out from its checkpoint");
  cmd->add_option("--device", o.device,
                  "cpu, or cuda: G, D, G_ema, optimizer state and batches on the first GPU")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  cmd->callback([] {
    o.model = models::BigGanConfig::preset(preset);
    if (!attention.empty()) o.model.attention = attention;
    if (ch > 0) o.model.ch = ch;
    if (dim_z > 0) o.model.dim_z = dim_z;
    if (resolution > 0) o.model.resolution = resolution;
    if (channels > 0) o.model.image_channels = channels;
    if (g_attn >= 0) o.model.g_attention_res = g_attn;
    if (d_attn >= 0) o.model.d_attention_res = d_attn;
    if (n_hashes > 0) o.model.n_hashes = n_hashes;
    if (cq > 0) o.model.q_cluster_size = cq;
    if (ck > 0) o.model.k_cluster_size = ck;
    o.time_limit_s = minutes * 60.0;
    // periodic FCD/KID by default when it can run: Fashion-MNIST data and a frozen classifier
    const bool can_eval =
        o.data.empty() && std::filesystem::exists(o.classifier + "/classifier.json");
    o.eval_every = eval_every >= 0 ? eval_every : (can_eval ? 500 : 0);
    if (eval_every < 0 && !can_eval && o.data.empty())
      std::fprintf(stderr,
                   "gan train: no frozen classifier in %s, so no periodic FCD/KID (train one with "
                   "smyrf classifier train)\n",
                   o.classifier.c_str());
    const train::GanTrainResult r = train::train_gan(o);
    std::printf("gan train: %lld steps, %.2f images/s, samples in %s\n",
                static_cast<long long>(r.step), r.images_per_s,
                r.last_grid.empty() ? "(none)" : r.last_grid.c_str());
  });
}

void add_sample(CLI::App& gan) {
  auto* cmd = gan.add_subcommand("sample", "Sample a grid from a trained run's EMA generator");
  static std::string run = "runs/gan", out;
  static int64_t label = -1, count = 100, nrow = 0;
  static double truncation = 0;
  static uint64_t seed = 1;
  cmd->add_option("--run", run, "run folder with a checkpoint")->capture_default_str();
  cmd->add_option("--class", label, "class to draw (-1: all classes in turn)")
      ->capture_default_str();
  cmd->add_option("--count", count, "number of images")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--truncation", truncation, "redraw z entries beyond this (0: none)")
      ->capture_default_str();
  cmd->add_option("--seed", seed, "seed of z")->capture_default_str();
  cmd->add_option("--nrow", nrow, "images per grid row (0: the number of classes, or 10)");
  cmd->add_option("--out", out, "output PNG (default: <run>/sample.png)");
  cmd->callback([] {
    train::LoadedGan l = train::load_gan(run);
    const train::GanSamples s = train::sample_gan(*l.g_ema, count, label, truncation, seed);
    const std::string path = out.empty() ? run + "/sample.png" : out;
    const int64_t row = nrow > 0 ? nrow : (label < 0 ? l.options.model.n_classes : 10);
    data::save_image_grid(path, s.images, row);
    std::printf("gan sample: %lld images (step %lld, %s attention, truncation %g) -> %s\n",
                static_cast<long long>(count), static_cast<long long>(l.step),
                l.options.model.attention.c_str(), truncation, path.c_str());
  });
}

void add_eval(CLI::App& gan) {
  auto* cmd = gan.add_subcommand(
      "eval",
      "FCD/KID/accuracy/histogram of a run's EMA generator against the Fashion-MNIST test "
      "set, in the frozen classifier's feature space (train it with smyrf classifier train)");
  static std::string run = "runs/gan", classifier = "runs/classifier",
                     data_dir = data::kFashionMnistDir;
  static int64_t per_class = 1000, kid_subsets = 100, kid_subset_size = 1000;
  static double truncation = 0;
  static uint64_t seed = 1;
  cmd->add_option("--run", run, "run folder with a checkpoint")->capture_default_str();
  cmd->add_option("--classifier", classifier, "folder of the frozen classifier")
      ->capture_default_str();
  cmd->add_option("--data", data_dir, "folder of the Fashion-MNIST IDX files")
      ->capture_default_str();
  cmd->add_option("--per-class", per_class, "generated images per class")->capture_default_str();
  cmd->add_option("--truncation", truncation, "truncation of z (0: none)")->capture_default_str();
  cmd->add_option("--seed", seed, "seed of z and of the KID subsets")->capture_default_str();
  cmd->add_option("--kid-subsets", kid_subsets, "KID subsets")->capture_default_str();
  cmd->add_option("--kid-subset-size", kid_subset_size, "KID subset size")->capture_default_str();
  cmd->callback([] {
    train::LoadedGan l = train::load_gan(run);
    train::FrozenClassifier fc = train::load_frozen_classifier(classifier);
    const data::ImageDataset test = data::load_fashion_mnist(data_dir, "test", 32);
    const train::ClassifierOutputs ref = train::classify_images(*fc.model, test.images);
    const train::GaussianStats ref_stats = train::fit_gaussian(ref.features);
    train::SampleMetricsOptions mo;
    mo.kid_subsets = kid_subsets, mo.kid_subset_size = kid_subset_size, mo.kid_seed = seed;
    const train::GanEvalResult r =
        train::evaluate_gan(*l.g_ema, *fc.model, ref, ref_stats, per_class, truncation, seed, mo);
    const train::SampleMetrics& m = r.metrics;
    std::printf("gan eval: %s, step %lld, %s attention, %lld images (truncation %g), %s\n",
                run.c_str(), static_cast<long long>(l.step), l.options.model.attention.c_str(),
                static_cast<long long>(r.images), truncation, fc.info.version.c_str());
    std::printf("  FCD-FMNIST (%s)  %.3f\n", fc.info.version.c_str(), m.fcd);
    std::printf("  KID  %.5f +- %.5f (%lld subsets of %lld)\n", m.kid.mean, m.kid.std,
                static_cast<long long>(m.kid.subsets), static_cast<long long>(m.kid.subset_size));
    std::printf("  accuracy on conditioning labels  %.2f%%\n  predicted classes ",
                100 * m.accuracy);
    for (int64_t h : m.histogram) std::printf(" %lld", static_cast<long long>(h));
    std::printf("\n  (%.0f s)\n", r.seconds);
    const nlohmann::json j = {{"step", l.step},
                              {"attention", l.options.model.attention},
                              {"classifier", fc.info.version},
                              {"images", r.images},
                              {"truncation", truncation},
                              {"seed", seed},
                              {"fcd", m.fcd},
                              {"kid_mean", m.kid.mean},
                              {"kid_std", m.kid.std},
                              {"accuracy", m.accuracy},
                              {"histogram", m.histogram}};
    std::ofstream(run + "/eval.jsonl", std::ios::app) << j.dump() << "\n";
  });
}

}  // namespace

void add_gan_command(CLI::App& app) {
  auto* gan = app.add_subcommand("gan", "Train, sample and evaluate SMYRF-BigGAN");
  gan->require_subcommand(1);
  add_train(*gan);
  add_sample(*gan);
  add_eval(*gan);
}

}  // namespace smyrf::apps
