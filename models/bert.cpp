#include "models/bert.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace smyrf::models {

MlmBatch mask_tokens(const Tensor& tokens, int64_t mask_id, Generator& gen, double p) {
  SMYRF_CHECK_HINT(tokens.defined() && tokens.dim() == 2 && tokens.dtype() == DType::Int64,
                   "mask_tokens", "tokens must be (batch, T) int64",
                   "pass the windows of a token stream");
  SMYRF_CHECK(p > 0 && p <= 1, "mask_tokens", "p must lie in (0, 1], got " << p);
  SMYRF_CHECK(mask_id > 0, "mask_tokens", "mask_id must be positive, got " << mask_id);
  const int64_t B = tokens.size(0), T = tokens.size(1);
  const int64_t k = std::max<int64_t>(1, std::llround(p * static_cast<double>(T)));
  std::vector<int64_t> in = tokens.contiguous().to_vector<int64_t>();
  std::vector<int64_t> tgt(in.size(), -100);
  // One draw of every random number up front keeps the stream's consumption independent of the
  // data, so a checkpointed generator position means the same thing in every run.
  std::vector<float> order = rand({B, T}, {}, &gen).to_vector<float>();
  std::vector<float> action = rand({B, T}, {}, &gen).to_vector<float>();
  std::vector<int64_t> random_ids =
      randint(0, mask_id, {B, T}, DType::Int64, &gen).to_vector<int64_t>();
  std::vector<int64_t> pos(T);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t base = b * T;
    std::iota(pos.begin(), pos.end(), 0);
    // the k positions with the smallest uniform keys: a uniform k-subset
    std::partial_sort(pos.begin(), pos.begin() + k, pos.end(), [&](int64_t x, int64_t y) {
      return order[base + x] < order[base + y] || (order[base + x] == order[base + y] && x < y);
    });
    for (int64_t j = 0; j < k; ++j) {
      const int64_t i = base + pos[j];
      SMYRF_CHECK(in[i] >= 0 && in[i] < mask_id, "mask_tokens",
                  "token " << in[i] << " is outside [0, " << mask_id << ")");
      tgt[i] = in[i];
      if (action[i] < 0.8f)
        in[i] = mask_id;
      else if (action[i] < 0.9f)
        in[i] = random_ids[i];
    }
  }
  return {from_vector(in, {B, T}), from_vector(tgt, {B, T})};
}

}  // namespace smyrf::models
