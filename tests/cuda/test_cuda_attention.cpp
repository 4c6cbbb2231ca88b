// Dense and SMYRF attention on CUDA against the CPU ops: outputs and the gradients of q, k and v
// (through autograd, with a random upstream gradient), with masks, causal, cross-attention,
// bias, dropout and both duplicate semantics. SMYRF on CUDA hashes in double like the CPU plan, so
// with the same seed both build the same clusters and the results agree to float rounding.
// Runs only with a GPU (exit 77 = skipped otherwise). All pass on an NVIDIA H200 (first GPU run,
// 2026-11-28).
#include <doctest/doctest.h>

#include "autograd/attention_ops.h"
#include "cuda_test_util.h"

using namespace smyrf;
using namespace smyrf::cuda_test;

namespace {

struct Qkv {
  Tensor q, k, v, up;
};

Qkv inputs(int64_t B, int64_t H, int64_t nq, int64_t nk, int64_t d, int64_t dv, uint32_t seed) {
  return {rnd({B, H, nq, d}, seed), rnd({B, H, nk, d}, seed + 1), rnd({B, H, nk, dv}, seed + 2),
          rnd({B, H, nq, dv}, seed + 3)};
}

// Runs f on the CPU and on CUDA and compares the output and the three gradients.
template <typename F>
void compare_both(const Qkv& x, F f, const std::string& what) {
  Tensor qc = leaf(x.q), kc = leaf(x.k), vc = leaf(x.v);
  Tensor oc = f(qc, kc, vc);
  sum(oc * x.up).backward();
  Tensor qg = leaf(cu(x.q)), kg = leaf(cu(x.k)), vg = leaf(cu(x.v));
  Tensor og = f(qg, kg, vg);
  sum(og * cu(x.up)).backward();
  check_close(og, oc, 1e-4, 1e-5, what + ": out");
  check_close(qg.grad(), qc.grad(), 1e-3, 1e-4, what + ": dq");
  check_close(kg.grad(), kc.grad(), 1e-3, 1e-4, what + ": dk");
  check_close(vg.grad(), vc.grad(), 1e-3, 1e-4, what + ": dv");
}

Tensor key_mask_for(int64_t B, int64_t n, const Device& dev) {
  std::vector<float> m(static_cast<size_t>(B * n), 1.0f);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = n - 1 - 3 * b; j < n && j >= 0; ++j) m[b * n + j] = 0.0f;  // tail padding
  return from_vector(m, {B, n}).to(kBool).to(dev);
}

}  // namespace

TEST_CASE("cuda: dense attention matches the CPU (plain, causal, cross, masks, bias)") {
  for (int64_t n : {1, 33, 130}) {
    const Qkv x = inputs(2, 3, n, n, 16, 24, 10 + static_cast<uint32_t>(n));
    compare_both(
        x, [](const Tensor& q, const Tensor& k, const Tensor& v) { return attention(q, k, v); },
        "plain n=" + std::to_string(n));
    compare_both(
        x,
        [](const Tensor& q, const Tensor& k, const Tensor& v) {
          AttentionOptions o;
          o.causal = true;
          return attention(q, k, v, o);
        },
        "causal n=" + std::to_string(n));
  }
  const Qkv cross = inputs(2, 2, 37, 71, 64, 64, 40);
  compare_both(
      cross,
      [](const Tensor& q, const Tensor& k, const Tensor& v) {
        AttentionOptions o;
        o.key_padding_mask = key_mask_for(2, 71, q.device());
        o.bias = (rnd({37, 71}, 99) * 0.5).to(q.device());
        return attention(q, k, v, o);
      },
      "cross with key mask and bias");
}

TEST_CASE("cuda: dense attention dropout regenerates the CPU's mask") {
  const Qkv x = inputs(1, 2, 50, 50, 32, 32, 60);
  compare_both(
      x,
      [](const Tensor& q, const Tensor& k, const Tensor& v) {
        Generator g(7);  // the same dropout seed on both devices
        AttentionOptions o;
        o.dropout_p = 0.25;
        o.generator = &g;
        return attention(q, k, v, o);
      },
      "dropout");
}

TEST_CASE("cuda: SMYRF attention matches the CPU (rounds, cluster sizes, masks, duplicates)") {
  struct Case {
    int64_t nq, nk, d, n_hashes, cq, ck;
    bool mask;
    SmyrfDuplicates dup;
  };
  const Case cases[] = {{128, 128, 32, 1, 32, 32, false, SmyrfDuplicates::Multiset},
                        {256, 256, 64, 4, 64, 64, false, SmyrfDuplicates::Multiset},
                        {200, 200, 64, 3, 32, 32, true, SmyrfDuplicates::Set},
                        {256, 64, 32, 2, 64, 16, false, SmyrfDuplicates::Multiset},    // cross
                        {97, 97, 128, 2, 128, 128, true, SmyrfDuplicates::Multiset}};  // 1 cluster
  for (const Case& c : cases) {
    const Qkv x = inputs(2, 2, c.nq, c.nk, c.d, c.d, 70 + static_cast<uint32_t>(c.nq));
    compare_both(
        x,
        [&](const Tensor& q, const Tensor& k, const Tensor& v) {
          SmyrfOptions o;
          o.n_hashes = c.n_hashes;
          o.q_cluster_size = c.cq;
          o.k_cluster_size = c.ck;
          o.duplicates = c.dup;
          o.seed = 1234;
          if (c.mask) o.key_padding_mask = key_mask_for(2, c.nk, q.device());
          return smyrf_attention(q, k, v, o);
        },
        "smyrf nq=" + std::to_string(c.nq) + " nk=" + std::to_string(c.nk) +
            " R=" + std::to_string(c.n_hashes));
  }
}

TEST_CASE("cuda: SMYRF clusters on CUDA are the CPU's clusters") {
  const Qkv x = inputs(2, 2, 256, 256, 64, 64, 90);
  SmyrfDiagnostics dc, dg;
  SmyrfOptions o;
  o.n_hashes = 3;
  o.q_cluster_size = o.k_cluster_size = 32;
  o.seed = 55;
  o.diagnostics = &dc;
  smyrf_attention(x.q, x.k, x.v, o);
  o.diagnostics = &dg;
  smyrf_attention(cu(x.q), cu(x.k), cu(x.v), o);
  check_equal(dg.q_cluster, dc.q_cluster, "q clusters");
  check_equal(dg.k_cluster, dc.k_cluster, "k clusters");
}

TEST_CASE("cuda: causal SMYRF (pair-list kernels) matches the CPU op: masks, semantics, dropout") {
  // Written 2026-11-30 without a GPU: the first GPU run checks the pair-list kernels
  // (kernels/cuda/smyrf_pairs.cu) here.
  struct Case {
    int64_t n, d, n_hashes, block, window;
    bool key_mask, query_mask;
    SmyrfDuplicates dup;
    double dropout;
  };
  const Case cases[] = {
      {96, 16, 2, 16, 24, true, false, SmyrfDuplicates::Multiset, 0.0},
      {200, 64, 4, 32, 48, false, false, SmyrfDuplicates::Multiset, 0.0},  // 200 = 6 * 32 + 8
      {131, 32, 3, 16, 40, true, true, SmyrfDuplicates::Set, 0.0},
      {128, 128, 2, 64, 64, false, true, SmyrfDuplicates::Multiset, 0.2},  // widest head, dropout
      {77, 8, 1, 8, 100, true, false, SmyrfDuplicates::Multiset, 0.0}};    // window > past
  for (const Case& c : cases) {
    const Qkv x = inputs(2, 2, c.n, c.n, c.d, c.d, 95 + static_cast<uint32_t>(c.n));
    compare_both(
        x,
        [&](const Tensor& q, const Tensor& k, const Tensor& v) {
          SmyrfOptions o;
          o.causal = true;
          o.n_hashes = c.n_hashes;
          o.q_cluster_size = c.block;
          o.k_cluster_size = c.window;
          o.duplicates = c.dup;
          o.seed = 7;
          o.dropout_p = c.dropout;
          Generator g(11);  // the same dropout seed on both devices
          o.generator = &g;
          if (c.key_mask) o.key_padding_mask = key_mask_for(2, c.n, q.device());
          if (c.query_mask) o.query_padding_mask = key_mask_for(2, c.n, q.device());
          return smyrf_attention(q, k, v, o);
        },
        "causal smyrf n=" + std::to_string(c.n) + " d=" + std::to_string(c.d));
  }
}
