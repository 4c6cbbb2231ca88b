// The gradient study (issue 8): how far SMYRF's gradients are from dense attention's, and why.
//
// SMYRF's backward is exact for the clustered function with the clusters held fixed
// (docs/smyrf.md); this library measures its distance to the DENSE gradient on the same inputs.
// Files: grad_study_inputs.cpp (synthetic inputs and capture from checkpoints), _metrics.cpp (one
// head, one configuration), _sweep.cpp (the configurations and the run), _report.cpp (CSV, PNG
// plots and the Markdown report), _params.cpp (parameter gradients over a short run). On the CPU
// all float64; on CUDA (StudyOptions::device "cuda") the dense and SMYRF ops run in float32 on the
// device and the metrics in float64 on the host. Deterministic in StudyOptions::seed, captured
// inputs included (their model pass is bit-reproducible on the CPU).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "autograd/attention_ops.h"
#include "core/tensor.h"

namespace smyrf::train {

// Per-head attention inputs: q (B, H, Nq, d), k (B, H, Nk, d), v (B, H, Nk, dv) and the upstream
// gradient dout (B, H, Nq, dv), all float64, with the scale and causal rule of their layer.
struct StudyInput {
  std::string source;  // "gaussian", "clustered", or "<run dir>:<layer>" for captured inputs
  std::string layer;   // the layer name ("synthetic" for synthetic inputs)
  Tensor q, k, v, dout;
  double scale = 1.0;
  double temperature = 1.0;  // synthetic: scale = 1 / (temperature * sqrt(d)); captured: 1
  bool causal = false;
};

// Synthetic inputs, B = 1: kind "gaussian" (q, k, v, dout i.i.d. N(0, 1)) or "clustered" (q and
// k drawn around 8 shared random centres of norm 2 d^(1/4) with N(0, 0.1^2) noise, so scaled
// scores are about 4 within a centre and clusters that matter exist). Low temperature (< 1)
// sharpens the dense attention, high (> 1) flattens it. Throws smyrf::Error for an unknown kind or
// non-positive sizes.
StudyInput synthetic_input(const std::string& kind, int64_t n, int64_t d, int64_t heads,
                           double temperature, uint64_t seed);

// Captured inputs: one forward/backward pass of a checkpoint with dense attention, with hooks
// (layers/module.h) on the named attention layer collecting q, k, v and grad_out. run_dir holds an
// `smyrf lm train` or `smyrf gan train` run. All draws come from Generator(seed * 31 + 7):
//  - LM: `batch` windows of the run's validation text (training text when that is too short; one
//    next_u64() % span per window start), masked by models::mask_tokens for BERT; the model's loss.
//  - GAN: layers are named "G.<path>" (the trained G, training mode), "G_ema.<path>" (eval mode) or
//    "D.<path>"; the draws of the training step: y = randint(0, n_classes, {batch}), then
//    z = randn({batch, dim_z}). G and G_ema layers: the generator's hinge loss
//    -mean(D(G(z, y), y)) (D frozen, training mode). D layers: the discriminator's hinge loss
//    mean(relu(1 + D(fake))) + mean(relu(1 - D(real))) on D(cat(fake, real)), fake = G(z, y)
//    without gradients, real = `batch` images of the run's training data (load_gan_data) at
//    indices next_u64() % size, so q, k, v and dout have 2 * batch rows: fakes first.
// Throws smyrf::Error naming the available layers when `layer` is not an attention layer of the
// run, and naming the image path when a D capture cannot read the run's training images.
StudyInput capture_input(const std::string& run_dir, const std::string& layer, int64_t batch,
                         uint64_t seed);
// The attention layer names of a checkpoint's model (GAN: G.*, G_ema.* and D.* layers).
std::vector<std::string> attention_layers(const std::string& run_dir);

// One SMYRF configuration of the study.
struct StudyConfig {
  int64_t n_hashes = 2, q_cluster = 32, k_cluster = 32;
  SmyrfDuplicates duplicates = SmyrfDuplicates::Multiset;
  int64_t n_seeds = 1;  // hash seeds averaged for bias and variance
  uint64_t seed = 1;    // the seeds used are derived from this one
  // Where the dense and SMYRF ops run. CUDA: q, k, v and dout are rounded to float32 and copied
  // to the device, outputs and gradients come back as float64 for the metrics; the coverage and
  // multiplicity of non-causal SMYRF are computed on the host from the device's cluster ids.
  Device device = Device::cpu();
};

// Distribution of a per-token quantity over tokens.
struct Dist {
  double mean = 0, p10 = 0, p50 = 0, p90 = 0;
};
Dist distribution(std::vector<double> values);  // NaNs skipped; all zero when empty
// Pearson correlation; 0 when either side is constant or there are < 2 pairs.
double pearson(const std::vector<double>& x, const std::vector<double>& y);

// Metrics of one (batch row, head), averaged over the n_seeds hash seeds where they are per-seed.
struct HeadMetrics {
  int64_t batch = 0, head = 0;
  // per-token cosine and relative error against dense (dq and out per query; dk, dv per key);
  // "whole" = the same measure on the flattened head tensor
  std::map<std::string, Dist> token;    // keys "cos_dq", "err_dq", ..., "cos_out", "err_out"
  std::map<std::string, double> whole;  // keys "cos_dq", "err_dq", ... (flattened)
  Dist coverage;                        // dense attention mass the clusters cover, per query
  double corr_coverage_err_dq = 0;      // Pearson over queries: coverage vs relative dq error
  double keys_no_grad = 0;              // fraction of keys no query attends (zero dk and dv)
  std::vector<double> mult_hist;        // share of (query, key) pairs with M = 0..n_hashes
  // seed-averaged gradient g_bar = mean_s g_s of [dq, dk, dv] against dense g:
  double bias_err = 0;  // |g_bar - g| / |g|
  double bias_cos = 0;  // cos(g_bar, g)
  double variance = 0;  // mean_s |g_s - g_bar|^2 / |g|^2 (0 for one seed)
};

// All heads of an input under one configuration. Throws smyrf::Error (op "grad_study") for
// configurations the op rejects, with its message, and for a CUDA device that is not there.
std::vector<HeadMetrics> measure(const StudyInput& in, const StudyConfig& c);
// The multiplicity M (Nq x Nk row-major: rounds in which query i and key j share a cluster) and
// the covered dense mass per query of one non-causal head without masks, from its cluster ids
// (R, Nq) and (R, Nk) (-1: padding), as SmyrfDiagnostics defines them: CUDA runs of the study
// get only the cluster ids from the device. q (Nq, d) and k (Nk, d) are the head's inputs.
void diagnostics_from_clusters(const std::vector<double>& q, const std::vector<double>& k,
                               int64_t nq, int64_t nk, int64_t d, double scale,
                               const std::vector<int32_t>& q_cluster,
                               const std::vector<int32_t>& k_cluster, int64_t rounds,
                               std::vector<int32_t>& M, std::vector<double>& coverage);

// ---- the sweep ----
struct StudyOptions {
  std::string out = "runs/study-grads";
  uint64_t seed = 1;
  // synthetic inputs (used when checkpoint is empty)
  std::vector<std::string> kinds{"gaussian", "clustered"};
  std::vector<int64_t> lengths{128, 256, 512};  // N sweep; the first of them... see sweep.cpp
  int64_t n = 256, d = 32, heads = 2;
  std::vector<double> temperatures{0.25, 1.0, 4.0};
  // real inputs
  std::string checkpoint;  // an lm or gan run folder
  std::string layer;       // attention layer name; empty = every attention layer
  int64_t batch = 2;
  int64_t train_steps = 3;  // parameter-gradient comparison steps (LM and GAN; 0 = skip)
  // grids
  std::vector<int64_t> n_hashes{1, 2, 4, 8};
  std::vector<int64_t> clusters{16, 32, 64};      // query cluster sizes (key: scaled by Nk/Nq)
  std::vector<double> budgets{0.125, 0.25, 0.5};  // n_hashes * Ck / Nk
  std::vector<int64_t> seed_counts{1, 2, 4, 8, 16};
  // "cpu" or "cuda" (the attention ops of every measurement; captures and the parameter study
  // stay on the CPU). CUDA rounds every input to float32 first.
  std::string device = "cpu";
  bool float32_inputs = false;  // CPU: round inputs to float32 too (what a CUDA run measures)
  bool progress = true;
};

// One measurement row of the CSV.
struct StudyRow {
  std::string sweep, source, layer;
  int64_t batch = 0, head = 0, n = 0, d = 0, n_hashes = 0, q_cluster = 0, k_cluster = 0,
          n_seeds = 1;
  double budget = 0, temperature = 1;
  std::string duplicates = "multiset";
  std::string metric, stat;  // e.g. ("err_dq", "p50"), ("cos_dq", "whole"), ("mult_hist", "2")
  double value = 0;
};

struct StudyResult {
  std::vector<StudyRow> rows;
  std::vector<std::string> files;  // written into options.out
};

// Runs every sweep, writes measurements.csv, the plots and report.md into options.out, shows a
// progress bar on stderr. Deterministic: same options, same numbers.
StudyResult run_grad_study(const StudyOptions& options);

// ---- parameter gradients over a short run (grad_study_params.cpp) ----
// At each step, on one batch, the gradient of every parameter with every attention layer SMYRF
// (hash seed fixed per step) and with every attention layer dense; the run then moves on the
// dense gradient. Per step, metrics "cos_grad" and "err_grad" (|g_smyrf - g_dense| / |g_dense|),
// stat "step<k>", for
//  - sweep "params": parameter groups (layer "<group>", for a GAN "G: <group>" / "D: <group>"):
//    "attention q", "attention k", "attention v", "attention o" (the projections: q_proj/theta,
//    k_proj/phi, v_proj/g, out_proj/o, weights and biases), "attention gain" (gamma), "convs",
//    "linear", "norms/embeddings" (batch/layer norms, the conditional BN's gain and bias
//    projections, embeddings) and "all parameters";
//  - sweep "params_layer": every parameter of an attention layer on its own (its full name).
// Rows carry the SMYRF configuration, the network's attention length n and its budget.
//
// LM checkpoint: `steps` SGD steps (lr 0.1) on `batch` training windows, SMYRF configuration c,
// model in eval mode (no dropout). Throws smyrf::Error when the training text is too short.
std::vector<StudyRow> param_gradient_study(const std::string& run_dir, const StudyConfig& c,
                                           int64_t steps, int64_t batch, uint64_t seed);
// GAN checkpoint (the run's own SMYRF configuration; the model's attention setting is overridden
// per pass, so a dense-trained run works too): each step is one D step and one G step of the
// training iteration (the run's d_steps is not followed), G and D in training mode, their
// spectral-norm vectors and BN statistics restored between the two passes so that only the
// attention differs:
//  - D rows ("D: ..."): the discriminator's hinge loss on cat(G(z, y) without gradients, a real
//    batch of `batch` images of the run's training data (load_gan_data)); in the SMYRF pass G's
//    attention is SMYRF too, as in SMYRF training;
//  - G rows ("G: ..."): the generator's hinge loss -mean(D(G(z, y), y)) with D frozen (fresh y, z).
// Draws from Generator(seed * 131 + 5): y, z, the real indices, then the G step's y and z. Updates
// by Adam with the run's learning rates and betas from fresh moments. Throws smyrf::Error naming
// the image path when the training images cannot be read.
std::vector<StudyRow> gan_param_gradient_study(const std::string& run_dir, int64_t steps,
                                               int64_t batch, uint64_t seed);

// ---- outputs (grad_study_report.cpp) ----
void write_csv(const std::string& path, const std::vector<StudyRow>& rows);
// The plots and report.md from the rows; returns the file names written.
std::vector<std::string> write_report(const std::string& dir, const std::vector<StudyRow>& rows,
                                      const StudyOptions& options);

}  // namespace smyrf::train
