// Gradient checks: dense attention and SMYRF attention (autograd/attention_ops.h). SMYRF's
// gradient is exact for the clustered function with the clusters held fixed; the seed is fixed
// and the inputs are small, so the eps perturbations do not move a token across a cluster
// boundary (the check would fail loudly if one did).
#include <cmath>

#include "autograd/attention_ops.h"
#include "tests/gradcheck/gradcheck_cases.h"

using namespace smyrf;
using Ins = std::vector<Tensor>;

namespace {
Tensor mask(const std::vector<int64_t>& keep, const Shape& shape) {
  return gc::indices(keep, shape).to(kBool);
}
}  // namespace

SMYRF_GRADCHECK_CASE("attention", "self-attention two heads") {
  gc::check([](const Ins& in) { return attention(in[0], in[1], in[2]); },
            {gc::randn64({2, 2, 5, 3}, 1300), gc::randn64({2, 2, 5, 3}, 1301),
             gc::randn64({2, 2, 5, 4}, 1302)});
}
SMYRF_GRADCHECK_CASE("attention", "cross-attention with key and query padding masks") {
  gc::check(
      [](const Ins& in) {
        AttentionOptions o;
        o.key_padding_mask = mask({1, 1, 0, 1, 1, 1, 0, 0}, {2, 4});
        o.query_padding_mask = mask({1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1}, {2, 6});
        return attention(in[0], in[1], in[2], o);
      },
      {gc::randn64({2, 1, 6, 3}, 1303), gc::randn64({2, 1, 4, 3}, 1304),
       gc::randn64({2, 1, 4, 2}, 1305)});
}
SMYRF_GRADCHECK_CASE("attention", "causal with an explicit scale on a transposed input") {
  gc::check(
      [](const Ins& in) {
        AttentionOptions o;
        o.causal = true;
        o.scale = 0.8;
        return attention(in[0], in[1], in[2], o);
      },
      {gc::transposed({1, 2, 6, 4}, 1306), gc::randn64({1, 2, 6, 4}, 1307),
       gc::randn64({1, 2, 6, 3}, 1308)});
}
SMYRF_GRADCHECK_CASE("attention", "additive bias with removed pairs and dropout") {
  gc::check(
      [](const Ins& in) {
        AttentionOptions o;
        Tensor bias = gc::randn64({1, 2, 5, 5}, 1309, false);
        Tensor cut = gc::indices({1, 0, 0, 1, 0}, {5}).to(kBool);
        o.bias = where(cut, full({5}, -INFINITY, kFloat64), bias);
        Generator gen(5);  // a fresh generator per call: the same dropout mask every time
        o.dropout_p = 0.3;
        o.generator = &gen;
        return attention(in[0], in[1], in[2], o);
      },
      {gc::randn64({1, 2, 5, 3}, 1310), gc::randn64({1, 2, 5, 3}, 1311),
       gc::randn64({1, 2, 5, 3}, 1312)});
}

SMYRF_GRADCHECK_CASE("smyrf_attention", "self-attention three rounds") {
  gc::check(
      [](const Ins& in) {
        SmyrfOptions o;
        o.n_hashes = 3, o.q_cluster_size = o.k_cluster_size = 4, o.seed = 7;
        return smyrf_attention(in[0], in[1], in[2], o);
      },
      {gc::randn64({1, 2, 12, 3}, 1320), gc::randn64({1, 2, 12, 3}, 1321),
       gc::randn64({1, 2, 12, 2}, 1322)});
}
SMYRF_GRADCHECK_CASE("smyrf_attention", "cross-attention Nq = 4 Nk with masks") {
  gc::check(
      [](const Ins& in) {
        SmyrfOptions o;
        o.n_hashes = 2, o.q_cluster_size = 4, o.k_cluster_size = 1, o.seed = 8;
        o.key_padding_mask = mask({1, 1, 0, 1, 1, 1, 1, 0}, {2, 4});
        o.query_padding_mask = mask({1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
                                     1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1},
                                    {2, 16});
        return smyrf_attention(in[0], in[1], in[2], o);
      },
      {gc::randn64({2, 1, 16, 3}, 1323), gc::randn64({2, 1, 4, 3}, 1324),
       gc::randn64({2, 1, 4, 3}, 1325)});
}
SMYRF_GRADCHECK_CASE("smyrf_attention", "set semantics") {
  gc::check(
      [](const Ins& in) {
        SmyrfOptions o;
        o.n_hashes = 4, o.q_cluster_size = o.k_cluster_size = 5, o.seed = 9;
        o.duplicates = SmyrfDuplicates::Set;
        return smyrf_attention(in[0], in[1], in[2], o);
      },
      {gc::randn64({1, 1, 10, 3}, 1326), gc::randn64({1, 1, 10, 3}, 1327),
       gc::randn64({1, 1, 10, 3}, 1328)});
}
SMYRF_GRADCHECK_CASE("smyrf_attention", "causal blocks and windows with scale and dropout") {
  gc::check(
      [](const Ins& in) {
        SmyrfOptions o;
        o.causal = true, o.n_hashes = 2, o.q_cluster_size = 3, o.k_cluster_size = 2, o.seed = 10;
        o.scale = 0.6;
        Generator gen(11);
        o.dropout_p = 0.2;
        o.generator = &gen;
        return smyrf_attention(in[0], in[1], in[2], o);
      },
      {gc::randn64({1, 2, 10, 3}, 1329), gc::randn64({1, 2, 10, 3}, 1330),
       gc::randn64({1, 2, 10, 2}, 1331)});
}
