#include "train/sample.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/grad_mode.h"

namespace smyrf::train {

int32_t pick_token(const std::vector<float>& logits, const SampleOptions& o, double u) {
  SMYRF_CHECK(!logits.empty(), "sample", "empty logits");
  SMYRF_CHECK_HINT(o.top_p > 0 && o.top_p <= 1, "sample",
                   "top_p must lie in (0, 1], got " << o.top_p, "1 disables nucleus filtering");
  SMYRF_CHECK(o.top_k >= 0, "sample", "top_k must be >= 0, got " << o.top_k);
  const int64_t V = static_cast<int64_t>(logits.size());
  if (o.temperature <= 0 || o.top_k == 1)
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  // ids by descending logit (ties: smaller id first, so the choice is deterministic)
  std::vector<int32_t> ids(V);
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  int64_t keep = o.top_k > 0 ? std::min(o.top_k, V) : V;
  std::vector<double> p(keep);
  const double top = logits[ids[0]];
  double z = 0;
  for (int64_t i = 0; i < keep; ++i) z += p[i] = std::exp((logits[ids[i]] - top) / o.temperature);
  if (o.top_p < 1) {
    double mass = 0;
    int64_t n = 0;
    while (n < keep && mass < o.top_p * z) mass += p[n++];
    keep = std::max<int64_t>(n, 1);
    z = mass > 0 ? mass : p[0];
  }
  double target = u * z, acc = 0;
  for (int64_t i = 0; i < keep; ++i) {
    acc += p[i];
    if (target < acc) return ids[i];
  }
  return ids[keep - 1];  // u * z rounded up to the total
}

std::vector<int32_t> sample_tokens(models::TransformerLM& model, std::vector<int32_t> prompt,
                                   int64_t n_new, const SampleOptions& o, Generator& gen) {
  SMYRF_CHECK_HINT(!prompt.empty(), "sample", "the prompt is empty",
                   "start from at least one token");
  SMYRF_CHECK_HINT(model.causal(), "sample", "the model is not causal (BERT)",
                   "sample from a GPT checkpoint");
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard ng;
  const int64_t ctx = model.config().context;
  for (int64_t s = 0; s < n_new; ++s) {
    const int64_t n = static_cast<int64_t>(prompt.size()), start = std::max<int64_t>(0, n - ctx);
    std::vector<int64_t> window(prompt.begin() + start, prompt.end());
    Tensor idx = from_vector(window, {1, n - start});
    Tensor logits = model.forward(idx, o.forward);
    std::vector<float> last = logits.select(1, n - start - 1).contiguous().to_vector<float>();
    const double u = rand({1}, TensorOptions(kFloat64), &gen).item();
    prompt.push_back(pick_token(last, o, u));
  }
  model.train(was_training);
  return prompt;
}

}  // namespace smyrf::train
