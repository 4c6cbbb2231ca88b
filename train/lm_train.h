// Language-model pretraining: GPT (next token) or BERT (masked LM) on a text corpus.
//
// train_lm runs the whole job in `out`:
//   tokenizer.json        the tokenizer (a BPE tokenizer is trained on the training part of the
//   text) ckpt.safetensors/.optim.safetensors/.json   checkpoint (train/checkpoint.h): weights with
//                         PyTorch names; sidecar config = these options, extra = data position
//   log.jsonl             one JSON object per step {"step","loss","lr","grad_norm","tokens_per_s"}
//                         and per evaluation {"step","val_loss","val_bpb","eval_tokens"}
//   loss.png              train and validation loss against the step (train/plot.h)
// and shows a progress bar on stderr (a line every 10 steps when stderr is not a terminal).
//
// Training: AdamW (decoupled decay on the matrices of Linear layers only; none on biases, norms
// and embeddings), warm-up + cosine schedule (train/schedule.h), clipping by global norm, `accum`
// micro-batches per step. Windows are drawn by a prefetching DataLoader whose samples are window
// start positions in the training stream (a seeded permutation per epoch).
//
// Exact resume: every random stream (initialisation, dropout, SMYRF hashes per layer, batch order,
// MLM masks) is either saved in the checkpoint or a pure function of the seed and the data
// position, and evaluation uses fixed seeds of its own, so a run stopped at step k and resumed
// produces bit-identical losses to one that never stopped.
//
// Bits per byte = mean loss (nats per target token) * tokens / bytes / ln 2, over the evaluated
// windows, so byte and BPE tokenizers compare.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/text.h"
#include "models/transformer.h"
#include "train/optim.h"

namespace smyrf::train {

struct LmTrainOptions {
  models::ModelConfig model;  // vocab_size is set from the tokenizer
  std::vector<std::string> data{data::kFortunesDir};
  std::string text;  // when non-empty: the corpus itself, instead of reading `data` (tests)
  std::string tokenizer = "byte";  // "byte" or "bpe"
  int64_t bpe_vocab = 1024;
  double val_fraction = 0.05;
  int64_t batch = 8, accum = 1, steps = 2000, warmup = 100;
  double lr = 1e-3, min_lr_ratio = 0.1, weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95;
  double clip = 1.0;            // max global gradient norm; <= 0 disables clipping
  int64_t eval_every = 200;     // evaluate (and checkpoint) every K steps and at the end
  int64_t eval_tokens = 65536;  // periodic evaluations use this prefix of the validation split;
                                // the last one of a call (steps reached, stop_at or time limit)
                                // uses all of it. 0 = always all
  uint64_t seed = 1;
  std::string out = "runs/lm";
  bool resume = false;      // continue from out/ckpt when it exists (its options win, except the
                            // ones below and steps)
  int64_t stop_at = -1;     // stop after this step, with a checkpoint (an interruption)
  double time_limit_s = 0;  // > 0: stop with a checkpoint once this much time has passed
  bool progress = true;
  bool plot = true;
  int prefetch = 2;
  // "cpu" or "cuda" (the first GPU): where the model, its optimizer state and every batch live.
  // Not part of the saved run options: a run may resume on the other device.
  std::string device = "cpu";

  nlohmann::json to_json() const;  // everything except text
  static LmTrainOptions from_json(const nlohmann::json& j);
};

struct LmEvalResult {
  double loss = 0;  // mean nats per target
  double bpb = 0;   // bits per byte
  int64_t tokens = 0, targets = 0, bytes = 0;
};

struct LmTrainResult {
  int64_t step = 0;            // optimizer steps completed
  std::vector<double> losses;  // training loss of every step run by this call
  std::vector<int64_t> loss_steps;
  LmEvalResult last_eval;   // the latest evaluation (none: tokens == 0)
  double tokens_per_s = 0;  // training throughput of this call (evaluation excluded)
  int64_t parameters = 0;
};

LmTrainResult train_lm(const LmTrainOptions& options);

// The corpus of a run, tokenised and split.
struct LmData {
  std::unique_ptr<data::Tokenizer> tokenizer;
  data::TokenStreams streams;
  std::vector<int32_t> bytes_per_token;  // bytes of each id, for bits per byte
};
// Reads the corpus (options.text or options.data) and builds or loads the tokenizer: from
// tokenizer_path when that file exists, else a new one (saved there when save is true).
LmData prepare_lm_data(const LmTrainOptions& options, const std::string& tokenizer_path, bool save);

// Loss over consecutive windows of `stream` (stride context): GPT predicts each next token; BERT
// predicts tokens masked by a generator seeded with mask_seed (the same masks every call).
// max_tokens > 0 stops after that many tokens. With `prefix` given, also reports in it the
// result that max_tokens = prefix_tokens would give, from the same pass (batches are cut at that
// boundary, so the prefix windows are batched exactly as in a call that stops there). Runs in
// eval mode without gradients and restores the model's mode, on the device of the model's
// parameters. Throws when the stream is shorter than one window.
LmEvalResult evaluate_lm(models::TransformerLM& model, const std::vector<int32_t>& stream,
                         const std::vector<int32_t>& bytes_per_token, int64_t batch,
                         int64_t max_tokens, const models::ForwardOptions& forward,
                         uint64_t mask_seed = 1234, int64_t prefix_tokens = 0,
                         LmEvalResult* prefix = nullptr);

// The AdamW groups of a language model: decay on the weight matrices of Linear layers, none on
// biases, norms and the token and position embeddings.
std::vector<ParamGroup> lm_param_groups(models::TransformerLM& model, double weight_decay);

// Loads the model of a run folder (ckpt + tokenizer) for sampling and evaluation.
struct LoadedLm {
  LmTrainOptions options;
  std::unique_ptr<models::TransformerLM> model;
  std::unique_ptr<data::Tokenizer> tokenizer;
  int64_t step = 0;
};
LoadedLm load_lm(const std::string& run_dir);

}  // namespace smyrf::train
