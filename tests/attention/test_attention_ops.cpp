// The attention ops (autograd/attention_ops.h) through autograd, in float64.
//
// THE ORACLE (docs/smyrf.md): for a fixed seed, smyrf_attention's output and its q, k, v gradients
// equal the dense attention op with the additive bias log M (log 1[M > 0] for set semantics),
// M_ij = the number of rounds in which query i and key j share a cluster, built here from the op's
// own cluster assignments (diagnostics). Both sides are single fused nodes, so this checks the op
// plumbing (layouts, masks, seeds, the closure state) on top of the kernels' own oracle tests.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "autograd/attention_ops.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/random.h"

using namespace smyrf;

namespace {

// Worst oracle errors over the whole file, printed at the end (they go into the report).
double g_worst_out = 0, g_worst_grad = 0;

std::vector<double> values(const Tensor& t) { return t.contiguous().to_vector<double>(); }

// max |a - b| / max(max |b|, 1e-300): relative to the reference's scale. NaN anywhere fails.
double rel_err(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const std::vector<double> x = values(a), y = values(b);
  double num = 0, den = 1e-300;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) || std::isnan(y[i])) return std::numeric_limits<double>::infinity();
    num = std::max(num, std::abs(x[i] - y[i]));
    den = std::max(den, std::abs(y[i]));
  }
  return num / den;
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && values(a) == values(b);
}

Tensor leaf(const Shape& s, Generator& gen, double scale = 1.0) {
  return (randn(s, kFloat64, &gen) * scale).detach().requires_grad_();
}

Tensor fresh(const Tensor& t) { return t.detach().clone().requires_grad_(); }

// (B, N) bool mask with about `keep` of the tokens real.
Tensor random_mask(int64_t B, int64_t n, double keep, Generator& gen) {
  return bernoulli({B, n}, keep, &gen);
}

// M (B, H, Nq, Nk) from the cluster ids (B, H, R, N): pairs sharing a cluster id in a round.
Tensor multiplicity_from_clusters(const Tensor& qc, const Tensor& kc) {
  const int64_t B = qc.size(0), H = qc.size(1), R = qc.size(2), nq = qc.size(3), nk = kc.size(3);
  const std::vector<int32_t> a = qc.to_vector<int32_t>(), b = kc.to_vector<int32_t>();
  std::vector<double> m(static_cast<size_t>(B * H * nq * nk), 0.0);
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t i = 0; i < nq; ++i) {
        const int32_t c = a[(bh * R + r) * nq + i];
        if (c < 0) continue;
        for (int64_t j = 0; j < nk; ++j)
          if (b[(bh * R + r) * nk + j] == c) m[(bh * nq + i) * nk + j] += 1;
      }
  return from_vector(m, {B, H, nq, nk});
}

// log M, or log 1[M > 0] for set semantics; -inf where M = 0.
Tensor log_bias(const Tensor& m, SmyrfDuplicates dup) {
  std::vector<double> x = values(m);
  for (double& e : x) {
    if (dup == SmyrfDuplicates::Set) e = e > 0 ? 1.0 : 0.0;
    e = e > 0 ? std::log(e) : -std::numeric_limits<double>::infinity();
  }
  return from_vector(x, m.shape());
}

struct OracleCase {
  int64_t B = 2, H = 2, nq = 48, nk = 48, d = 8, dv = 8;
  int64_t n_hashes = 2, cq = 8, ck = 8;
  SmyrfDuplicates dup = SmyrfDuplicates::Multiset;
  bool key_mask = false, query_mask = false, causal = false;
  double dropout = 0.0;
  uint64_t seed = 11;
};

// Runs SMYRF and the dense op with bias log M on the same inputs and upstream gradient; returns
// the forward and worst-gradient relative errors.
std::pair<double, double> run_oracle(const OracleCase& c) {
  Generator gen(1000 + c.seed);
  const Tensor q = leaf({c.B, c.H, c.nq, c.d}, gen), k = leaf({c.B, c.H, c.nk, c.d}, gen);
  const Tensor v = leaf({c.B, c.H, c.nk, c.dv}, gen);
  const Tensor up = randn({c.B, c.H, c.nq, c.dv}, kFloat64, &gen);
  Tensor kmask, qmask;
  if (c.key_mask) kmask = random_mask(c.B, c.nk, 0.75, gen);
  if (c.query_mask) qmask = random_mask(c.B, c.nq, 0.8, gen);

  SmyrfDiagnostics dg;
  dg.want_clusters = true;
  dg.want_multiplicity = true;
  SmyrfOptions so;
  so.n_hashes = c.n_hashes;
  so.q_cluster_size = c.cq;
  so.k_cluster_size = c.ck;
  so.duplicates = c.dup;
  so.causal = c.causal;
  so.key_padding_mask = kmask;
  so.query_padding_mask = qmask;
  so.seed = c.seed;
  so.diagnostics = &dg;
  so.dropout_p = c.dropout;
  Generator drop_a(77), drop_b(77);  // same stream: SMYRF and dense draw the same dropout seed
  so.generator = &drop_a;
  const Tensor out = smyrf_attention(q, k, v, so);
  sum(out * up).backward();

  Tensor m = dg.multiplicity.to(kFloat64);
  if (!c.causal) {
    // the independent M, from the cluster ids: must agree with the kernel's own count
    const Tensor m2 = multiplicity_from_clusters(dg.q_cluster, dg.k_cluster);
    CHECK(bit_equal(m, m2));
    m = m2;
  }
  const Tensor q2 = fresh(q), k2 = fresh(k), v2 = fresh(v);
  AttentionOptions ao;
  ao.bias = log_bias(m, c.dup);
  ao.key_padding_mask = kmask;
  ao.query_padding_mask = qmask;
  ao.dropout_p = c.dropout;
  ao.generator = &drop_b;
  const Tensor ref = attention(q2, k2, v2, ao);
  sum(ref * up).backward();

  const double eo = rel_err(out, ref);
  const double eg = std::max(
      {rel_err(q.grad(), q2.grad()), rel_err(k.grad(), k2.grad()), rel_err(v.grad(), v2.grad())});
  g_worst_out = std::max(g_worst_out, eo);
  g_worst_grad = std::max(g_worst_grad, eg);
  return {eo, eg};
}

void check_oracle(const OracleCase& c) {
  const auto [eo, eg] = run_oracle(c);
  INFO("B=" << c.B << " H=" << c.H << " Nq=" << c.nq << " Nk=" << c.nk << " R=" << c.n_hashes
            << " Cq=" << c.cq << " Ck=" << c.ck << " set=" << (c.dup == SmyrfDuplicates::Set)
            << " masks=" << c.key_mask << c.query_mask << " causal=" << c.causal);
  CHECK(eo <= 1e-10);
  CHECK(eg <= 1e-10);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("NOT an smyrf::Error: ") + e.what();
  }
  return "no error";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("smyrf_attention oracle: self-attention over shapes, rounds and cluster sizes") {
  for (int64_t R : {1, 2, 4})
    for (int64_t cl : {4, 8, 16}) {
      OracleCase c;
      c.n_hashes = R;
      c.cq = c.ck = cl;
      c.seed = 10 * R + cl;
      check_oracle(c);
    }
  OracleCase odd;  // tail clusters shorter than Cq, d != dv, one head
  odd.B = 3, odd.H = 1, odd.nq = odd.nk = 37, odd.d = 5, odd.dv = 3, odd.cq = odd.ck = 8;
  odd.n_hashes = 3;
  check_oracle(odd);
}

TEST_CASE("smyrf_attention oracle: cross-attention Nq = 4 Nk (BigGAN pooling)") {
  for (int64_t R : {1, 3, 8}) {
    OracleCase c;
    c.nq = 64, c.nk = 16, c.cq = 16, c.ck = 4, c.n_hashes = R, c.seed = 50 + R;
    check_oracle(c);
  }
  OracleCase tail;  // padded tail chunks on both sides
  tail.nq = 60, tail.nk = 15, tail.cq = 8, tail.ck = 2, tail.n_hashes = 2;
  check_oracle(tail);
}

TEST_CASE("smyrf_attention oracle: key and query padding masks") {
  for (bool km : {true, false})
    for (bool qm : {true, false}) {
      if (!km && !qm) continue;
      OracleCase c;
      c.key_mask = km, c.query_mask = qm, c.n_hashes = 3, c.seed = 90 + 2 * km + qm;
      check_oracle(c);
      OracleCase x = c;
      x.nq = 64, x.nk = 16, x.cq = 16, x.ck = 4;
      check_oracle(x);
    }
}

TEST_CASE("smyrf_attention oracle: set semantics (each co-clustered pair once)") {
  for (int64_t R : {2, 4}) {
    OracleCase c;
    c.dup = SmyrfDuplicates::Set, c.n_hashes = R, c.cq = c.ck = 16, c.seed = 70 + R;
    check_oracle(c);
    c.key_mask = true;
    c.nq = 64, c.nk = 16, c.cq = 16, c.ck = 4;
    check_oracle(c);
  }
}

TEST_CASE("smyrf_attention oracle: causal mode against its own multiplicity") {
  for (SmyrfDuplicates dup : {SmyrfDuplicates::Multiset, SmyrfDuplicates::Set}) {
    OracleCase c;
    c.causal = true, c.nq = c.nk = 50, c.cq = 8, c.ck = 6, c.n_hashes = 3, c.dup = dup;
    check_oracle(c);
    c.key_mask = true;
    check_oracle(c);
  }
}

TEST_CASE("smyrf_attention oracle: attention dropout shares dense attention's mask") {
  OracleCase c;
  c.dropout = 0.3, c.n_hashes = 2, c.key_mask = true;
  check_oracle(c);
}

TEST_CASE("smyrf_attention: one cluster equals dense attention for any n_hashes") {
  Generator gen(3);
  const Tensor q = leaf({2, 2, 24, 6}, gen), k = leaf({2, 2, 6, 6}, gen),
               v = leaf({2, 2, 6, 4}, gen);
  const Tensor up = randn({2, 2, 24, 4}, kFloat64, &gen);
  const Tensor q2 = fresh(q), k2 = fresh(k), v2 = fresh(v);
  const Tensor ref = attention(q2, k2, v2);
  sum(ref * up).backward();
  for (int64_t R : {1, 2, 5}) {
    for (SmyrfDuplicates dup : {SmyrfDuplicates::Multiset, SmyrfDuplicates::Set}) {
      const Tensor a = fresh(q), b = fresh(k), c = fresh(v);
      SmyrfOptions o;
      o.n_hashes = R, o.q_cluster_size = 24, o.k_cluster_size = 6, o.duplicates = dup;
      const Tensor out = smyrf_attention(a, b, c, o);
      sum(out * up).backward();
      CHECK(rel_err(out, ref) <= 1e-12);
      CHECK(rel_err(a.grad(), q2.grad()) <= 1e-12);
      CHECK(rel_err(b.grad(), k2.grad()) <= 1e-12);
      CHECK(rel_err(c.grad(), v2.grad()) <= 1e-12);
    }
  }
}

TEST_CASE("attention op: equals a softmax(q k^T) v built from plain ops, with masks and causal") {
  Generator gen(4);
  const int64_t B = 2, H = 3, nq = 7, nk = 9, d = 5;
  const Tensor q = leaf({B, H, nq, d}, gen), k = leaf({B, H, nk, d}, gen),
               v = leaf({B, H, nk, d}, gen);
  for (bool causal : {false, true}) {
    AttentionOptions o;
    o.causal = causal;
    o.scale = 0.7;
    o.key_padding_mask = random_mask(B, nk, 0.7, gen);
    const Tensor out = attention(q, k, v, o);
    // reference: -inf where masked or in the future (j > i + nk - nq)
    std::vector<double> bias(static_cast<size_t>(B * nq * nk));
    const std::vector<int64_t> keep = o.key_padding_mask.to(kInt64).to_vector<int64_t>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < nq; ++i)
        for (int64_t j = 0; j < nk; ++j)
          bias[(b * nq + i) * nk + j] = (keep[b * nk + j] && (!causal || j <= i + nk - nq))
                                            ? 0.0
                                            : -std::numeric_limits<double>::infinity();
    const Tensor bt = from_vector(bias, {B, 1, nq, nk});
    const Tensor s = matmul(q, transpose(k, 2, 3)) * 0.7 + bt;
    Tensor ref = matmul(softmax(s, -1), v);
    // rows with no key are 0 in the op; the plain reference gives NaN there: compare real rows
    const std::vector<double> a = values(out), r = values(ref);
    double worst = 0;
    for (size_t e = 0; e < a.size(); ++e)
      if (!std::isnan(r[e])) worst = std::max(worst, std::abs(a[e] - r[e]));
    CHECK(worst <= 1e-12);
  }
}

TEST_CASE("smyrf_attention: causal prefix is a function of tokens <= i only (bit-identical)") {
  Generator gen(5);
  const int64_t B = 1, H = 2, n = 64, d = 8;
  const Tensor q = randn({B, H, n, d}, kFloat64, &gen), k = randn({B, H, n, d}, kFloat64, &gen),
               v = randn({B, H, n, d}, kFloat64, &gen);
  SmyrfOptions o;
  o.causal = true, o.n_hashes = 2, o.q_cluster_size = 8, o.k_cluster_size = 8, o.seed = 9;
  const Tensor out = smyrf_attention(q, k, v, o);
  for (int64_t i : {0, 7, 8, 37, 62}) {
    // perturb every token after i, in q, k and v, by a large amount
    Tensor noise = randn({B, H, n, d}, kFloat64, &gen) * 5.0;
    Tensor after = (arange(0.0, static_cast<double>(n), 1.0, kFloat64) > static_cast<double>(i))
                       .to(kFloat64)
                       .reshape({1, 1, n, 1});
    const Tensor out2 = smyrf_attention(q + noise * after, k - noise * after, v + noise * after, o);
    CHECK(bit_equal(out.slice(2, 0, i + 1), out2.slice(2, 0, i + 1)));
    if (i + 1 < n) CHECK_FALSE(bit_equal(out.slice(2, i + 1, n), out2.slice(2, i + 1, n)));
  }
}

TEST_CASE("smyrf_attention: seeds (explicit, drawn, recorded) control the clusters") {
  Generator gen(6);
  const Tensor q = randn({2, 2, 64, 8}, kFloat64, &gen), k = randn({2, 2, 64, 8}, kFloat64, &gen),
               v = randn({2, 2, 64, 8}, kFloat64, &gen);
  SmyrfOptions o;
  o.n_hashes = 2, o.q_cluster_size = o.k_cluster_size = 8;
  SmyrfDiagnostics d1, d2, d3;
  o.seed = 123;
  o.diagnostics = &d1;
  const Tensor a = smyrf_attention(q, k, v, o);
  o.diagnostics = &d2;
  const Tensor b = smyrf_attention(q, k, v, o);
  CHECK(bit_equal(a, b));
  CHECK(bit_equal(d1.q_cluster, d2.q_cluster));
  CHECK(d1.seed == 123);
  o.seed = 124;
  o.diagnostics = &d3;
  const Tensor c = smyrf_attention(q, k, v, o);
  CHECK_FALSE(bit_equal(d1.q_cluster, d3.q_cluster));
  CHECK_FALSE(bit_equal(a, c));

  // drawn from a generator: fresh per call, recorded, and reproducible by passing it back
  Generator hg(42);
  SmyrfOptions r;
  r.n_hashes = 2, r.q_cluster_size = r.k_cluster_size = 8, r.generator = &hg;
  SmyrfDiagnostics e1, e2, e3;
  r.diagnostics = &e1;
  const Tensor x = smyrf_attention(q, k, v, r);
  r.diagnostics = &e2;
  const Tensor y = smyrf_attention(q, k, v, r);
  CHECK(e1.seed != e2.seed);
  CHECK_FALSE(bit_equal(e1.q_cluster, e2.q_cluster));
  r.seed = e1.seed;
  r.diagnostics = &e3;
  CHECK(bit_equal(smyrf_attention(q, k, v, r), x));
  CHECK(bit_equal(e3.k_cluster, e1.k_cluster));
  Generator hg2(42);  // the same generator state gives the same first seed
  r.seed.reset();
  r.generator = &hg2;
  CHECK(bit_equal(smyrf_attention(q, k, v, r), x));
}

TEST_CASE("attention ops: a query whose every key is masked gets zeros and zero gradients") {
  Generator gen(7);
  const int64_t B = 2, H = 2, n = 32, d = 4;
  Tensor kmask = ones({B, n}, kBool);
  Tensor qmask = ones({B, n}, kBool);
  {
    NoGradGuard ng;
    kmask.select(0, 1).fill_(0);                 // batch 1: no real key at all
    qmask.select(0, 0).slice(0, 0, 5).fill_(0);  // batch 0: 5 padded queries
  }
  for (int which = 0; which < 2; ++which) {
    const Tensor q = leaf({B, H, n, d}, gen), k = leaf({B, H, n, d}, gen),
                 v = leaf({B, H, n, d}, gen);
    Tensor out;
    if (which == 0) {
      AttentionOptions o;
      o.key_padding_mask = kmask, o.query_padding_mask = qmask;
      out = attention(q, k, v, o);
    } else {
      SmyrfOptions o;
      o.key_padding_mask = kmask, o.query_padding_mask = qmask, o.q_cluster_size = 8,
      o.k_cluster_size = 8;
      out = smyrf_attention(q, k, v, o);
    }
    sum(out * randn(out.shape(), kFloat64, &gen)).backward();
    auto all_zero = [](const Tensor& t) {
      for (double e : values(t))
        if (e != 0.0) return false;
      return true;
    };
    auto finite = [](const Tensor& t) {
      for (double e : values(t))
        if (!std::isfinite(e)) return false;
      return true;
    };
    CHECK(finite(out));
    CHECK(finite(q.grad()));
    CHECK(finite(k.grad()));
    CHECK(all_zero(out.select(0, 1)));
    CHECK(all_zero(q.grad().select(0, 1)));
    CHECK(all_zero(k.grad().select(0, 1)));
    CHECK(all_zero(v.grad().select(0, 1)));
    CHECK(all_zero(out.select(0, 0).slice(1, 0, 5)));
    CHECK(all_zero(q.grad().select(0, 0).slice(1, 0, 5)));
    CHECK_FALSE(all_zero(out.select(0, 0).slice(1, 5, n)));
  }
}

TEST_CASE("attention ops: float32 and non-contiguous inputs") {
  Generator gen(8);
  // (B, N, H, d) storage viewed as (B, H, N, d): the usual head split
  const Tensor qb = randn({2, 32, 2, 8}, kFloat64, &gen), kb = randn({2, 32, 2, 8}, kFloat64, &gen),
               vb = randn({2, 32, 2, 8}, kFloat64, &gen);
  const Tensor q = qb.permute({0, 2, 1, 3}), k = kb.permute({0, 2, 1, 3}),
               v = vb.permute({0, 2, 1, 3});
  REQUIRE_FALSE(q.is_contiguous());
  SmyrfOptions o;
  o.seed = 5, o.q_cluster_size = o.k_cluster_size = 8;
  const Tensor s64 = smyrf_attention(q, k, v, o);
  CHECK(bit_equal(s64, smyrf_attention(q.contiguous(), k.contiguous(), v.contiguous(), o)));
  const Tensor d64 = attention(q, k, v);
  CHECK(bit_equal(d64, attention(q.contiguous(), k.contiguous(), v.contiguous())));
  const Tensor s32 = smyrf_attention(q.to(kFloat32), k.to(kFloat32), v.to(kFloat32), o);
  const Tensor d32 = attention(q.to(kFloat32), k.to(kFloat32), v.to(kFloat32));
  CHECK(s32.dtype() == kFloat32);
  CHECK(rel_err(d32.to(kFloat64), d64) < 1e-5);
  // float32 hashing may order near-ties differently; most of the output must still agree
  CHECK(rel_err(s32.to(kFloat64), s64) < 1e-2);
}

TEST_CASE("smyrf_attention diagnostics: clusters, multiplicity and coverage") {
  Generator gen(9);
  const Tensor q = randn({1, 2, 32, 4}, kFloat64, &gen), k = randn({1, 2, 8, 4}, kFloat64, &gen),
               v = randn({1, 2, 8, 4}, kFloat64, &gen);
  SmyrfDiagnostics dg;
  dg.want_multiplicity = true, dg.want_coverage = true;
  SmyrfOptions o;
  o.n_hashes = 3, o.q_cluster_size = 8, o.k_cluster_size = 2, o.diagnostics = &dg, o.seed = 1;
  smyrf_attention(q, k, v, o);
  CHECK(dg.q_cluster.shape() == Shape{1, 2, 3, 32});
  CHECK(dg.k_cluster.shape() == Shape{1, 2, 3, 8});
  CHECK(dg.multiplicity.shape() == Shape{1, 2, 32, 8});
  CHECK(dg.coverage.shape() == Shape{1, 2, 32});
  // balanced clusters: each round, each query cluster has Cq members and each key cluster Ck
  const std::vector<int32_t> qc = dg.q_cluster.to_vector<int32_t>();
  for (int64_t row = 0; row < 2 * 3; ++row)
    for (int32_t c = 0; c < 4; ++c)
      CHECK(std::count(qc.begin() + row * 32, qc.begin() + (row + 1) * 32, c) == 8);
  // each query attends Ck keys per round: its M row sums to n_hashes * Ck
  const std::vector<int32_t> m = dg.multiplicity.to_vector<int32_t>();
  for (int64_t row = 0; row < 2 * 32; ++row) {
    int sum_m = 0;
    for (int64_t j = 0; j < 8; ++j) sum_m += m[row * 8 + j];
    CHECK(sum_m == 3 * 2);
  }
  // coverage against a direct computation of the dense mass on keys with M > 0
  const std::vector<double> cov = values(dg.coverage);
  const Tensor p = softmax(matmul(q, transpose(k, 2, 3)) * 0.5, -1);
  const std::vector<double> pv = values(p);
  for (int64_t row = 0; row < 2 * 32; ++row) {
    double want = 0;
    for (int64_t j = 0; j < 8; ++j)
      if (m[row * 8 + j] > 0) want += pv[row * 8 + j];
    CHECK(std::abs(cov[row] - want) < 1e-12);
    CHECK(cov[row] <= 1.0 + 1e-12);
  }
  // one cluster covers all the mass
  SmyrfDiagnostics full;
  full.want_coverage = true;
  o.q_cluster_size = 32, o.k_cluster_size = 8, o.diagnostics = &full;
  smyrf_attention(q, k, v, o);
  for (double c : values(full.coverage)) CHECK(std::abs(c - 1.0) < 1e-12);
  // causal coverage goes through M
  SmyrfDiagnostics causal;
  causal.want_coverage = true;
  SmyrfOptions oc;
  oc.causal = true, oc.q_cluster_size = 4, oc.k_cluster_size = 4, oc.diagnostics = &causal;
  smyrf_attention(q, q, q, oc);
  CHECK_FALSE(causal.q_cluster.defined());  // causal plans have no clusters
  REQUIRE(causal.coverage.shape() == Shape{1, 2, 32});
  const std::vector<double> cc = values(causal.coverage);
  CHECK(std::abs(cc[0] - 1.0) < 1e-12);  // the first query has one key: its own
  for (double c : cc) CHECK((c > 0 && c <= 1.0 + 1e-12));
}

TEST_CASE("attention ops: malformed calls raise smyrf::Error with the op, shapes and a hint") {
  Generator gen(10);
  const Tensor q = randn({2, 2, 16, 4}, kFloat64, &gen), k = randn({2, 2, 16, 4}, kFloat64, &gen),
               v = randn({2, 2, 16, 4}, kFloat64, &gen);
  auto dense = [&](const Tensor& a, const Tensor& b, const Tensor& c, AttentionOptions o = {}) {
    return error_of([&] { attention(a, b, c, o); });
  };
  auto smyrf = [&](const Tensor& a, const Tensor& b, const Tensor& c, SmyrfOptions o) {
    return error_of([&] { smyrf_attention(a, b, c, o); });
  };
  SmyrfOptions so;
  so.q_cluster_size = so.k_cluster_size = 4;
  struct Expect {
    std::string message;
    std::vector<std::string> parts;
  };
  std::vector<Expect> cases;
  cases.push_back({dense(q.select(1, 0), k, v), {"[attention]", "(batch, heads, N, d)", "hint"}});
  cases.push_back({dense(q, randn({2, 2, 16, 5}, kFloat64, &gen), v),
                   {"q and k head sizes differ (4 vs 5)", "k (2, 2, 16, 5)", "hint"}});
  cases.push_back({dense(q, k, randn({2, 2, 12, 4}, kFloat64, &gen)),
                   {"k and v lengths differ (16 keys vs 12 values)", "hint"}});
  cases.push_back({smyrf(q, randn({3, 2, 16, 4}, kFloat64, &gen), v, so),
                   {"[smyrf_attention]", "batch sizes differ", "k (3, 2, 16, 4)"}});
  cases.push_back({dense(q, randn({2, 1, 16, 4}, kFloat64, &gen), v), {"head counts differ"}});
  cases.push_back({dense(q.to(kFloat32), k, v), {"different dtypes", "float32", "float64"}});
  cases.push_back(
      {dense(q.to(kInt64), k.to(kInt64), v.to(kInt64)), {"float32 or float64", "int64"}});
  cases.push_back({smyrf(q.to(kBFloat16), k.to(kBFloat16), v.to(kBFloat16), so),
                   {"float32 or float64", "bfloat16", "runs on CUDA"}});
  {
    AttentionOptions o;
    o.key_padding_mask = ones({2, 15}, kBool);
    cases.push_back(
        {dense(q, k, v, o), {"key_padding_mask must be (batch, Nk) = (2, 16)", "(2, 15)"}});
    o.key_padding_mask = ones({2, 16}, kFloat32);
    cases.push_back({dense(q, k, v, o), {"key_padding_mask must be bool", "float32", "hint"}});
  }
  {
    SmyrfOptions o = so;
    o.query_padding_mask = ones({16}, kBool);
    cases.push_back({smyrf(q, k, v, o), {"query_padding_mask must be (batch, Nq) = (2, 16)"}});
  }
  {
    SmyrfOptions o = so;
    o.q_cluster_size = 4, o.k_cluster_size = 2;
    cases.push_back({smyrf(q, k, v, o),
                     {"clusters cannot pair", "ceil(16/4) = 4", "ceil(16/2) = 8", "choose Ck"}});
    const Tensor kp = randn({2, 2, 4, 4}, kFloat64, &gen);
    o.q_cluster_size = 4, o.k_cluster_size = 4;  // Nq = 4 Nk needs Ck = Cq / 4
    cases.push_back({smyrf(q, kp, kp, o), {"cannot pair", "Ck about Cq * Nk / Nq = 1"}});
    o.n_hashes = 0;
    cases.push_back({smyrf(q, k, v, o), {"n_hashes must be at least 1"}});
    o.n_hashes = 2, o.k_cluster_size = 0;
    cases.push_back({smyrf(q, k, v, o), {"cluster sizes must be positive"}});
    o.k_cluster_size = 1, o.causal = true;
    cases.push_back({smyrf(q, kp, kp, o), {"causal SMYRF needs Nq == Nk", "hint"}});
  }
  {
    AttentionOptions o;
    o.dropout_p = 1.0;
    cases.push_back({dense(q, k, v, o), {"dropout_p must lie in [0, 1)"}});
    o.dropout_p = 0;
    o.bias = zeros({16, 15}, kFloat64);
    cases.push_back({dense(q, k, v, o), {"bias must be (Nq, Nk) = (16, 16)", "(16, 15)"}});
    o.bias = zeros({16, 16}, kFloat64).requires_grad_();
    cases.push_back({dense(q, k, v, o), {"requires grad", "detach"}});
    SmyrfOptions s = so;
    s.bias = zeros({16, 16}, kFloat64);
    cases.push_back({smyrf(q, k, v, s), {"bias is not supported by SMYRF"}});
    SmyrfDiagnostics dg;
    dg.want_multiplicity = true, dg.max_matrix_elements = 100;
    s.bias = Tensor();
    s.diagnostics = &dg;
    cases.push_back(
        {smyrf(q, k, v, s), {"multiplicity matrix (2, 2, 16, 16)", "max_matrix_elements"}});
  }
  CHECK(cases.size() >= 12);
  for (const Expect& e : cases) {
    INFO(e.message);
    CHECK(e.message.rfind("[", 0) == 0);  // an smyrf::Error, not another exception
    CHECK(contains(e.message, "(hint: "));
    for (const std::string& part : e.parts) CHECK(contains(e.message, part));
  }
}

TEST_CASE("attention ops: oracle error summary") {
  // runs last in file order; the numbers go into the issue report
  MESSAGE("worst oracle relative error: forward " << g_worst_out << ", gradients " << g_worst_grad);
  CHECK(g_worst_out <= 1e-10);
  CHECK(g_worst_grad <= 1e-10);
}
