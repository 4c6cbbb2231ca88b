// `smyrf lm train | sample | eval`: pretrain GPT- or BERT-style transformers on a text corpus,
// sample from a trained GPT, and evaluate a run with dense or SMYRF attention
// (train/lm_train.h does the work).
#include <cstdio>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "train/lm_train.h"
#include "train/sample.h"

namespace smyrf::apps {
namespace {

struct EvalArgs {
  std::string run = "runs/lm";
  std::string attention;  // empty: the trained one
  int64_t n_hashes = -1, cq = -1, ck = -1, batch = 8, max_tokens = 0;
  uint64_t seed = 1;
};

struct SampleArgs {
  std::string run = "runs/lm", prompt = "\n", attention;
  int64_t tokens = 300, top_k = 0;
  double temperature = 0.8, top_p = 0.95;
  uint64_t seed = 1;
};

// The per-call attention override that eval and sample share.
models::ForwardOptions forward_options(const models::ModelConfig& trained,
                                       const std::string& attention, int64_t n_hashes, int64_t cq,
                                       int64_t ck, uint64_t seed) {
  models::ForwardOptions f;
  if (!attention.empty()) f.attention = models::parse_attention_kind(attention);
  layers::SmyrfConfig s = trained.smyrf_config();
  if (n_hashes > 0) s.n_hashes = n_hashes;
  if (cq > 0) s.q_cluster_size = cq;
  if (ck > 0) s.k_cluster_size = ck;
  f.smyrf = s;
  f.seed = seed;
  return f;
}

void add_train(CLI::App& lm) {
  auto* cmd = lm.add_subcommand("train", "Train a GPT (default) or BERT on a text corpus");
  static train::LmTrainOptions o;
  static std::string model_kind = "gpt";
  static double time_limit_min = 0;
  cmd->add_option("--model", model_kind, "gpt or bert")
      ->check(CLI::IsMember({"gpt", "bert"}))
      ->capture_default_str();
  cmd->add_option("--layers", o.model.layers, "transformer blocks")->capture_default_str();
  cmd->add_option("--d-model", o.model.d_model, "model width")->capture_default_str();
  cmd->add_option("--heads", o.model.heads, "attention heads")->capture_default_str();
  cmd->add_option("--context", o.model.context, "tokens per window")->capture_default_str();
  cmd->add_option("--dropout", o.model.dropout, "embedding and residual dropout")
      ->capture_default_str();
  cmd->add_option("--attention", o.model.attention, "dense or smyrf")
      ->check(CLI::IsMember({"dense", "smyrf"}))
      ->capture_default_str();
  cmd->add_option("--n-hashes", o.model.n_hashes, "SMYRF hashing rounds")->capture_default_str();
  cmd->add_option("--cq", o.model.q_cluster_size, "SMYRF query cluster size (causal: block)")
      ->capture_default_str();
  cmd->add_option("--ck", o.model.k_cluster_size, "SMYRF key cluster size (causal: past window)")
      ->capture_default_str();
  cmd->add_option("--tokenizer", o.tokenizer, "byte or bpe")
      ->check(CLI::IsMember({"byte", "bpe"}))
      ->capture_default_str();
  cmd->add_option("--vocab", o.bpe_vocab, "BPE vocabulary size")->capture_default_str();
  cmd->add_option("--data", o.data, "corpus files or folders")->capture_default_str();
  cmd->add_option("--batch", o.batch, "windows per micro-batch")->capture_default_str();
  cmd->add_option("--accum", o.accum, "micro-batches per step (gradient accumulation)")
      ->capture_default_str();
  cmd->add_option("--steps", o.steps, "optimizer steps")->capture_default_str();
  cmd->add_option("--warmup", o.warmup, "linear warm-up steps")->capture_default_str();
  cmd->add_option("--lr", o.lr, "peak learning rate")->capture_default_str();
  cmd->add_option("--weight-decay", o.weight_decay, "AdamW decay on weight matrices")
      ->capture_default_str();
  cmd->add_option("--clip", o.clip, "max global gradient norm (0: off)")->capture_default_str();
  cmd->add_option("--eval-every", o.eval_every, "evaluate and checkpoint every K steps")
      ->capture_default_str();
  cmd->add_option("--eval-tokens", o.eval_tokens,
                  "validation tokens per periodic evaluation (0: all)")
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "random seed")->capture_default_str();
  cmd->add_option("--out", o.out, "run folder")->capture_default_str();
  cmd->add_flag("--resume", o.resume, "continue the run in --out from its checkpoint");
  cmd->add_option("--stop-at", o.stop_at, "stop (with a checkpoint) after this step");
  cmd->add_option("--time-limit", time_limit_min,
                  "stop (with a checkpoint) after this many minutes");
  cmd->add_option("--device", o.device,
                  "cpu, or cuda: model, optimizer state and batches on the first GPU")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  cmd->callback([] {
    o.model.kind = model_kind;
    o.time_limit_s = time_limit_min * 60;
    train::LmTrainResult r = train::train_lm(o);
    std::printf(
        "trained %s to step %lld: val loss %.4f, %.4f bits per byte; %.0f tokens/s; run in %s\n",
        model_kind.c_str(), static_cast<long long>(r.step), r.last_eval.loss, r.last_eval.bpb,
        r.tokens_per_s, o.out.c_str());
  });
}

void add_sample(CLI::App& lm) {
  auto* cmd = lm.add_subcommand("sample", "Generate text from a trained GPT run");
  static SampleArgs a;
  cmd->add_option("run", a.run, "run folder (holds ckpt.* and tokenizer.json)")
      ->capture_default_str();
  cmd->add_option("--prompt", a.prompt, "text to continue")->capture_default_str();
  cmd->add_option("--tokens", a.tokens, "tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", a.temperature, "softmax temperature (0: greedy)")
      ->capture_default_str();
  cmd->add_option("--top-k", a.top_k, "keep the k most likely tokens (0: all)")
      ->capture_default_str();
  cmd->add_option("--top-p", a.top_p, "nucleus mass")->capture_default_str();
  cmd->add_option("--attention", a.attention, "dense or smyrf (default: as trained)")
      ->check(CLI::IsMember({"dense", "smyrf"}));
  cmd->add_option("--seed", a.seed, "random seed")->capture_default_str();
  cmd->callback([] {
    train::LoadedLm l = train::load_lm(a.run);
    train::SampleOptions so;
    so.temperature = a.temperature, so.top_k = a.top_k, so.top_p = a.top_p;
    so.forward = forward_options(l.options.model, a.attention, -1, -1, -1, a.seed);
    Generator gen(a.seed);
    std::vector<int32_t> prompt = l.tokenizer->encode(a.prompt);
    std::vector<int32_t> out = train::sample_tokens(*l.model, prompt, a.tokens, so, gen);
    const std::string text = l.tokenizer->decode(out);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::printf("\n");
  });
}

void add_eval(CLI::App& lm) {
  auto* cmd =
      lm.add_subcommand("eval", "Validation loss and bits per byte of a run, dense or SMYRF");
  static EvalArgs a;
  cmd->add_option("run", a.run, "run folder")->capture_default_str();
  cmd->add_option("--attention", a.attention, "dense or smyrf (default: as trained)")
      ->check(CLI::IsMember({"dense", "smyrf"}));
  cmd->add_option("--n-hashes", a.n_hashes, "SMYRF rounds (default: as trained)");
  cmd->add_option("--cq", a.cq, "SMYRF query cluster size (default: as trained)");
  cmd->add_option("--ck", a.ck, "SMYRF key cluster size (default: as trained)");
  cmd->add_option("--batch", a.batch, "windows per forward")->capture_default_str();
  cmd->add_option("--max-tokens", a.max_tokens, "evaluate this prefix of the split (0: all)")
      ->capture_default_str();
  cmd->add_option("--seed", a.seed, "SMYRF hash seed")->capture_default_str();
  cmd->callback([] {
    train::LoadedLm l = train::load_lm(a.run);
    train::LmData d = train::prepare_lm_data(l.options, a.run + "/tokenizer.json", false);
    models::ForwardOptions f =
        forward_options(l.options.model, a.attention, a.n_hashes, a.cq, a.ck, a.seed);
    train::LmEvalResult r =
        train::evaluate_lm(*l.model, d.streams.val, d.bytes_per_token, a.batch, a.max_tokens, f);
    const std::string used = a.attention.empty() ? l.options.model.attention : a.attention;
    std::printf(
        "{\"run\": \"%s\", \"model\": \"%s\", \"trained\": \"%s\", \"evaluated\": \"%s\", "
        "\"step\": %lld, \"val_loss\": %.6f, \"val_bpb\": %.6f, \"tokens\": %lld}\n",
        a.run.c_str(), l.options.model.kind.c_str(), l.options.model.attention.c_str(),
        used.c_str(), static_cast<long long>(l.step), r.loss, r.bpb,
        static_cast<long long>(r.tokens));
  });
}

}  // namespace

void add_lm_command(CLI::App& app) {
  auto* lm = app.add_subcommand("lm", "Pretrain, sample and evaluate small transformers");
  lm->require_subcommand(1);
  add_train(*lm);
  add_sample(*lm);
  add_eval(*lm);
}

}  // namespace smyrf::apps
