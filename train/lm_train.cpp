#include "train/lm_train.h"
#include "train/run_files.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/grad_mode.h"
#include "core/atomic_file.h"
#include "data/loader.h"
#include "models/bert.h"
#include "train/alloc_policy.h"
#include "train/checkpoint.h"
#include "train/clip.h"
#include "train/device_option.h"
#include "train/optim.h"
#include "train/plot.h"
#include "train/schedule.h"

namespace smyrf::train {

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kOp = "lm_train";
constexpr const char* kCkpt = "ckpt";

std::string path_in(const std::string& dir, const std::string& file) { return run_path(dir, file); }

// A per-batch MLM mask seed: a pure function of the run seed and the batch's window starts, so
// the masks of a resumed run match without saving any generator.
uint64_t mix_seed(uint64_t seed, const std::vector<int64_t>& idx) {
  uint64_t h = seed ^ 0x9E3779B97F4A7C15ull;
  for (int64_t v : idx) {
    h ^= static_cast<uint64_t>(v) + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ull;
  }
  return h;
}

// (inputs, targets) for windows starting at `starts`: GPT shifts by one; BERT masks.
data::Batch make_lm_batch(const std::vector<int32_t>& stream, const std::vector<int64_t>& starts,
                          int64_t context, bool causal, int64_t mask_id, uint64_t mask_seed) {
  const int64_t B = static_cast<int64_t>(starts.size());
  std::vector<int64_t> x(B * context), y(causal ? B * context : 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < context; ++i) {
      x[b * context + i] = stream[starts[b] + i];
      if (causal) y[b * context + i] = stream[starts[b] + i + 1];
    }
  Tensor xt = from_vector(x, {B, context});
  if (causal) return {xt, from_vector(y, {B, context})};
  Generator g(mask_seed);
  models::MlmBatch mb = models::mask_tokens(xt, mask_id, g);
  return {mb.inputs, mb.targets};
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const long t = std::lround(s);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

void draw_curves(const std::string& path, const std::vector<json>& log) {
  PlotSeries train, val;
  val.color = {214, 39, 40};
  for (const json& j : log) {
    if (j.contains("loss"))
      train.x.push_back(j["step"].get<double>()), train.y.push_back(j["loss"].get<double>());
    // The last evaluation covers the whole split; its prefix value keeps the curve on the same
    // tokens as the periodic evaluations (the split's halves differ by ~0.2 nats on fortunes).
    if (j.contains("val_loss"))
      val.x.push_back(j["step"].get<double>()),
          val.y.push_back(j.value("val_loss_prefix", j["val_loss"].get<double>()));
  }
  save_plot(path, {train, val});
}

}  // namespace

json LmTrainOptions::to_json() const {
  return json{{"model", model.to_json()},
              {"data", data},
              {"tokenizer", tokenizer},
              {"bpe_vocab", bpe_vocab},
              {"val_fraction", val_fraction},
              {"batch", batch},
              {"accum", accum},
              {"steps", steps},
              {"warmup", warmup},
              {"lr", lr},
              {"min_lr_ratio", min_lr_ratio},
              {"weight_decay", weight_decay},
              {"beta1", beta1},
              {"beta2", beta2},
              {"clip", clip},
              {"eval_every", eval_every},
              {"eval_tokens", eval_tokens},
              {"seed", seed},
              {"out", out},
              {"prefetch", prefetch}};
}

LmTrainOptions LmTrainOptions::from_json(const json& j) {
  LmTrainOptions o;
  try {
    o.model = models::ModelConfig::from_json(j.value("model", json::object()));
    o.data = j.value("data", o.data);
    o.tokenizer = j.value("tokenizer", o.tokenizer);
    o.bpe_vocab = j.value("bpe_vocab", o.bpe_vocab);
    o.val_fraction = j.value("val_fraction", o.val_fraction);
    o.batch = j.value("batch", o.batch);
    o.accum = j.value("accum", o.accum);
    o.steps = j.value("steps", o.steps);
    o.warmup = j.value("warmup", o.warmup);
    o.lr = j.value("lr", o.lr);
    o.min_lr_ratio = j.value("min_lr_ratio", o.min_lr_ratio);
    o.weight_decay = j.value("weight_decay", o.weight_decay);
    o.beta1 = j.value("beta1", o.beta1);
    o.beta2 = j.value("beta2", o.beta2);
    o.clip = j.value("clip", o.clip);
    o.eval_every = j.value("eval_every", o.eval_every);
    o.eval_tokens = j.value("eval_tokens", o.eval_tokens);
    o.seed = j.value("seed", o.seed);
    o.out = j.value("out", o.out);
    o.prefetch = j.value("prefetch", o.prefetch);
  } catch (const json::exception& e) {
    SMYRF_CHECK(false, kOp, "bad training options " << j.dump() << ": " << e.what());
  }
  return o;
}

LmData prepare_lm_data(const LmTrainOptions& o, const std::string& tokenizer_path, bool save) {
  const std::string text = o.text.empty() ? data::read_corpus(o.data) : o.text;
  LmData d;
  if (!tokenizer_path.empty() && fs::exists(tokenizer_path)) {
    d.tokenizer = data::tokenizer_from_json(read_file(tokenizer_path, kOp));
  } else if (o.tokenizer == "byte") {
    d.tokenizer = std::make_unique<data::ByteTokenizer>();
  } else {
    SMYRF_CHECK_HINT(o.tokenizer == "bpe", kOp, "unknown tokenizer '" << o.tokenizer << "'",
                     "use byte or bpe");
    // learned from the training part only, so validation text stays unseen
    const size_t cut = text.size() - static_cast<size_t>(text.size() * o.val_fraction);
    d.tokenizer = std::make_unique<data::BpeTokenizer>(
        data::BpeTokenizer::train(text.substr(0, cut), o.bpe_vocab));
  }
  if (save && !tokenizer_path.empty())
    write_file_atomic(tokenizer_path, d.tokenizer->to_json(), kOp);
  d.streams = data::split_tokens(d.tokenizer->encode(text), o.val_fraction);
  d.bytes_per_token.resize(d.tokenizer->vocab_size());
  for (int64_t id = 0; id < d.tokenizer->vocab_size(); ++id)
    d.bytes_per_token[id] =
        static_cast<int32_t>(d.tokenizer->decode({static_cast<int32_t>(id)}).size());
  return d;
}

LmEvalResult evaluate_lm(models::TransformerLM& model, const std::vector<int32_t>& stream,
                         const std::vector<int32_t>& bytes_per_token, int64_t batch,
                         int64_t max_tokens, const models::ForwardOptions& forward,
                         uint64_t mask_seed, int64_t prefix_tokens, LmEvalResult* prefix) {
  const int64_t ctx = model.config().context, n = static_cast<int64_t>(stream.size());
  const bool causal = model.causal();
  // GPT windows need context + 1 tokens (inputs and shifted targets)
  const int64_t span = causal ? ctx + 1 : ctx;
  SMYRF_CHECK_HINT(
      n >= span, "evaluate_lm",
      "the validation stream has " << n << " tokens, fewer than one window of " << span,
      "use a larger corpus, a larger val fraction or a shorter context");
  // windows a call with this token limit evaluates (limit 0: all)
  auto window_count = [&](int64_t limit) {
    size_t w = 0;
    for (int64_t s = 0; s + span <= n; s += ctx, ++w)
      if (limit > 0 && static_cast<int64_t>(w) * ctx >= limit) break;
    return w;
  };
  std::vector<int64_t> starts(window_count(max_tokens));
  for (size_t w = 0; w < starts.size(); ++w) starts[w] = static_cast<int64_t>(w) * ctx;
  const size_t prefix_windows = prefix ? window_count(prefix_tokens) : 0;
  const Device dev = model.device();
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard ng;
  LmEvalResult r;
  double nats = 0;
  const int64_t mask_id = model.config().vocab_size - 1;
  auto finish = [&](LmEvalResult& e, double total_nats) {
    e.loss = total_nats / static_cast<double>(std::max<int64_t>(e.targets, 1));
    e.bpb = e.loss * static_cast<double>(e.tokens) /
            static_cast<double>(std::max<int64_t>(e.bytes, 1)) / std::log(2.0);
  };
  for (size_t b0 = 0, b1; b0 < starts.size(); b0 = b1) {
    b1 = std::min(starts.size(), b0 + size_t(batch));
    if (b0 < prefix_windows && b1 > prefix_windows) b1 = prefix_windows;
    std::vector<int64_t> chunk(starts.begin() + b0, starts.begin() + b1);
    data::Batch xy = make_lm_batch(stream, chunk, ctx, causal, mask_id, mix_seed(mask_seed, chunk));
    Tensor logits = model.forward(xy[0].to(dev), forward);
    Tensor tg = xy[1];
    int64_t count = 0;
    for (int64_t t : tg.to_vector<int64_t>()) count += t != -100;
    nats += models::TransformerLM::loss(logits, tg.to(dev)).item() * static_cast<double>(count);
    r.targets += count;
    for (int64_t s : chunk)
      for (int64_t i = 0; i < ctx; ++i) {
        const int32_t id = stream[s + i + (causal ? 1 : 0)];
        r.bytes += id < static_cast<int32_t>(bytes_per_token.size()) ? bytes_per_token[id] : 0;
      }
    r.tokens += static_cast<int64_t>(chunk.size()) * ctx;
    if (prefix && b1 == std::min(prefix_windows, starts.size())) {
      *prefix = r;
      finish(*prefix, nats);
    }
  }
  model.train(was_training);
  finish(r, nats);
  return r;
}

std::vector<ParamGroup> lm_param_groups(models::TransformerLM& model, double weight_decay) {
  // decay only the weight matrices of Linear layers (dim 2, not the embeddings)
  ParamGroup decay{{}, weight_decay}, no_decay{{}, 0.0};
  for (auto& [name, p] : model.named_parameters()) {
    const bool embedding =
        name.find(".wte.") != std::string::npos || name.find(".wpe.") != std::string::npos;
    (p.dim() >= 2 && !embedding ? decay : no_decay).params.push_back(p);
  }
  return {decay, no_decay};
}

LmTrainResult train_lm(const LmTrainOptions& given) {
  // every step frees and reallocates the same large buffers: keep them (train/alloc_policy.h)
  retain_freed_memory();
  LmTrainOptions o = given;
  fs::create_directories(o.out);
  const bool resuming = o.resume && checkpoint_exists(o.out, kCkpt);
  if (resuming) {
    // the run's own options win: a resumed run must be the run that was interrupted
    json side = json::parse(read_file(path_in(o.out, std::string(kCkpt) + ".json"), kOp));
    LmTrainOptions saved = LmTrainOptions::from_json(side.at("config"));
    saved.text = given.text, saved.out = given.out, saved.steps = given.steps;
    saved.stop_at = given.stop_at, saved.time_limit_s = given.time_limit_s;
    saved.progress = given.progress, saved.plot = given.plot, saved.resume = true;
    saved.device = given.device;
    o = saved;
  }
  SMYRF_CHECK(o.batch > 0 && o.accum > 0 && o.steps > 0 && o.eval_every > 0 && o.warmup >= 0, kOp,
              "batch, accum, steps and eval_every must be positive, got batch "
                  << o.batch << ", accum " << o.accum << ", steps " << o.steps << ", eval_every "
                  << o.eval_every);
  const Device dev = device_option(o.device, kOp);  // before any work: a missing GPU fails now
  const std::string tok_path = path_in(o.out, "tokenizer.json");
  if (!resuming && fs::exists(tok_path)) fs::remove(tok_path);  // a fresh run trains its own
  LmData d = prepare_lm_data(o, tok_path, !resuming);
  o.model.vocab_size = d.tokenizer->vocab_size() + (o.model.kind == "bert" ? 1 : 0);
  o.model.validate();

  Generator init_gen(o.seed);
  std::unique_ptr<models::TransformerLM> model = models::make_model(o.model, &init_gen);
  model->to(dev);  // initialised on the CPU (the same weights for a seed on either device)
  model->train();

  AdamW opt(
      lm_param_groups(*model, o.weight_decay),
      AdamW::Options{}.set_lr(o.lr).set_betas(o.beta1, o.beta2).set_weight_decay(o.weight_decay));

  const int64_t ctx = o.model.context;
  const auto& train_stream = d.streams.train;
  const int64_t n_starts = static_cast<int64_t>(train_stream.size()) - ctx;  // GPT needs ctx + 1
  SMYRF_CHECK_HINT(n_starts >= o.batch, kOp,
                   "the training stream has " << train_stream.size() << " tokens, too few for "
                                              << o.batch << " windows of " << ctx + 1,
                   "use a larger corpus or a shorter context");
  const bool causal = model->causal();
  const int64_t mask_id = o.model.vocab_size - 1;
  const uint64_t seed = o.seed;
  data::DataLoader::Options lo;
  lo.batch_size = o.batch;
  lo.seed = o.seed + 1;
  lo.prefetch = o.prefetch;
  data::DataLoader loader(
      n_starts,
      [&train_stream, ctx, causal, mask_id, seed](const std::vector<int64_t>& starts) {
        return make_lm_batch(train_stream, starts, ctx, causal, mask_id, mix_seed(seed, starts));
      },
      lo);

  CheckpointTargets targets{model.get(), &opt, model->generators()};
  int64_t step = resuming ? resume_run_checkpoint(o.out, kCkpt, targets, loader) : 0;
  RunLog run_log(path_in(o.out, "log.jsonl"), resuming, step, kOp);
  const std::vector<json>& log = run_log.entries();
  auto write_log = [&](const json& j) { run_log.write(j); };
  auto save = [&]() { save_run_checkpoint(o.out, kCkpt, targets, step, o.to_json(), loader); };

  LmTrainResult res;
  res.parameters = model->num_parameters();
  const bool tty = isatty(2);
  const int64_t tokens_per_step = o.batch * o.accum * ctx;
  const auto t_start = std::chrono::steady_clock::now();
  double train_seconds = 0;
  int64_t steps_run = 0;
  if (o.progress)
    std::fprintf(
        stderr, "%s %s: %lld parameters, %s tokens (vocab %lld), %zu train / %zu val tokens%s\n",
        o.model.kind.c_str(), o.model.attention.c_str(), static_cast<long long>(res.parameters),
        d.tokenizer->kind().c_str(), static_cast<long long>(d.tokenizer->vocab_size()),
        d.streams.train.size(), d.streams.val.size(),
        resuming ? (" (resumed at step " + std::to_string(step) + ")").c_str() : "");
  bool stop = false;
  while (step < o.steps && !stop) {
    const auto t0 = std::chrono::steady_clock::now();
    const double lr = warmup_cosine_lr(step, o.warmup, o.steps, o.lr, o.lr * o.min_lr_ratio);
    opt.set_lr(lr);
    opt.zero_grad();
    double loss_sum = 0;
    for (int64_t m = 0; m < o.accum; ++m) {
      data::Batch xy = loader.next();
      Tensor loss = models::TransformerLM::loss(model->forward(xy[0].to(dev), {}), xy[1].to(dev));
      // the mean over micro-batches: scale each so the summed gradients are that mean's
      (o.accum > 1 ? loss * (1.0 / static_cast<double>(o.accum)) : loss).backward();
      loss_sum += loss.item();
    }
    const double grad_norm = clip_grad_norm_(model->parameters(), o.clip);
    opt.step();
    ++step;
    ++steps_run;
    const double loss = loss_sum / static_cast<double>(o.accum);
    res.losses.push_back(loss);
    res.loss_steps.push_back(step);
    train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double tps = static_cast<double>(steps_run * tokens_per_step) / train_seconds;
    write_log({{"step", step},
               {"loss", loss},
               {"lr", lr},
               {"grad_norm", grad_norm},
               {"tokens_per_s", tps}});
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    if (o.stop_at >= 0 && step >= o.stop_at) stop = true;
    if (o.time_limit_s > 0 && elapsed >= o.time_limit_s) stop = true;
    if (o.progress && (tty || step % 10 == 0 || step == o.steps)) {
      const double eta = train_seconds / steps_run * static_cast<double>(o.steps - step);
      const int width = 24, filled = static_cast<int>(width * step / o.steps);
      std::fprintf(stderr, "%s[%s%s] step %lld/%lld  loss %.4f  %.0f tok/s  left %s   %s",
                   tty ? "\r" : "", std::string(filled, '#').c_str(),
                   std::string(width - filled, '.').c_str(), static_cast<long long>(step),
                   static_cast<long long>(o.steps), loss, tps, format_duration(eta).c_str(),
                   tty ? "" : "\n");
    }
    const bool last = step == o.steps;
    if (step % o.eval_every == 0 || last || stop) {
      models::ForwardOptions eval_fwd;
      eval_fwd.seed = o.seed * 7919 + 17;  // fixed clusters: comparable evaluations
      // The last evaluation covers the whole split and reports the periodic prefix with it.
      const bool whole = last || stop;
      LmEvalResult prefix;
      res.last_eval =
          evaluate_lm(*model, d.streams.val, d.bytes_per_token, o.batch, whole ? 0 : o.eval_tokens,
                      eval_fwd, 1234, whole ? o.eval_tokens : 0, whole ? &prefix : nullptr);
      json entry{{"step", step},
                 {"val_loss", res.last_eval.loss},
                 {"val_bpb", res.last_eval.bpb},
                 {"eval_tokens", res.last_eval.tokens}};
      if (whole && o.eval_tokens > 0 && res.last_eval.tokens > prefix.tokens) {
        entry["val_loss_prefix"] = prefix.loss;
        entry["eval_tokens_prefix"] = prefix.tokens;
      }
      write_log(entry);
      if (o.progress)
        std::fprintf(stderr, "%sstep %lld: val loss %.4f, %.4f bits per byte (%lld tokens)\n",
                     tty ? "\n" : "", static_cast<long long>(step), res.last_eval.loss,
                     res.last_eval.bpb, static_cast<long long>(res.last_eval.tokens));
      save();
    }
  }
  res.step = step;
  res.tokens_per_s =
      train_seconds > 0 ? static_cast<double>(steps_run * tokens_per_step) / train_seconds : 0;
  if (o.plot) draw_curves(path_in(o.out, "loss.png"), log);
  return res;
}

LoadedLm load_lm(const std::string& dir) {
  SMYRF_CHECK_HINT(checkpoint_exists(dir, kCkpt), kOp, "no checkpoint in '" << dir << "'",
                   "train first: smyrf lm train --out " << dir);
  json side = json::parse(read_file(path_in(dir, std::string(kCkpt) + ".json"), kOp));
  LoadedLm l;
  l.options = LmTrainOptions::from_json(side.at("config"));
  l.tokenizer = data::tokenizer_from_json(read_file(path_in(dir, "tokenizer.json"), kOp));
  Generator g(0);
  l.model = models::make_model(l.options.model, &g);
  CheckpointTargets t{l.model.get(), nullptr, l.model->generators()};
  l.step = load_checkpoint(dir, kCkpt, t).step;
  l.model->eval();
  return l;
}

}  // namespace smyrf::train
