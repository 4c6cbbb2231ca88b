// SMYRF kernels. The oracle (docs/smyrf.md): for a fixed seed, SMYRF forward and gradients equal
// dense attention with the additive bias log M, M the op's own co-clustering multiplicity (set
// semantics: log 1[M > 0]), to rounding in float64. The dense kernel is itself checked against a
// materialised-softmax reference in test_attention_kernels.cpp.
#include <doctest/doctest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/smyrf.h"
#include "kernels/cpu/smyrf_pairs.h"
#include "kernels/cpu/smyrf_plan.h"

using namespace smyrf::kernels::cpu;

namespace {

// Gaussian values rounded to float, so float and double runs hash identical inputs.
std::vector<double> randn(size_t n, uint32_t seed, double scale = 1.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<double> x(n);
  for (auto& e : x) e = static_cast<float>(dist(gen));
  return x;
}

// max |a - b| / max(max |b|, 1): relative for O(1) data, absolute where the reference is ~0
// (a gradient that is exactly 0 in exact arithmetic, e.g. dq with a single key). A NaN on one
// side only is an infinite error (std::max would drop it).
double rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 1.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) != std::isnan(b[i])) return std::numeric_limits<double>::infinity();
    if (std::isnan(a[i]) || (std::isinf(b[i]) && a[i] == b[i])) continue;
    num = std::max(num, std::abs(a[i] - b[i]));
    den = std::max(den, std::abs(b[i]));
  }
  return num / den;
}

bool all_finite(const std::vector<double>& x) {
  for (double e : x)
    if (!std::isfinite(e)) return false;
  return true;
}

struct Result {
  std::vector<double> out, lse, dq, dk, dv;
};

struct Problem {
  SmyrfParams p;
  std::vector<double> q, k, v, dout;
  std::vector<uint8_t> kmask, qmask;
};

Problem make_problem(int64_t B, int64_t H, int64_t nq, int64_t nk, int64_t d, int64_t dv,
                     int64_t n_hashes, int64_t cq, int64_t ck, bool kmask, bool qmask,
                     uint32_t seed = 1) {
  Problem pr;
  SmyrfParams& p = pr.p;
  p.batch_heads = B * H;
  p.heads = H;
  p.nq = nq;
  p.nk = nk;
  p.d = d;
  p.dv = dv;
  p.n_hashes = n_hashes;
  p.cq = cq;
  p.ck = ck;
  p.scale = 1.0 / std::sqrt(static_cast<double>(d));
  p.seed = 99;
  const int64_t BH = B * H;
  pr.q = randn(BH * nq * d, seed, 1.5);
  pr.k = randn(BH * nk * d, seed + 1, 1.5);
  pr.v = randn(BH * nk * dv, seed + 2);
  pr.dout = randn(BH * nq * dv, seed + 3);
  pr.kmask.assign(B * nk, 1);
  pr.qmask.assign(B * nq, 1);
  std::mt19937 gen(seed + 4);
  if (kmask) {
    for (int64_t b = 0; b < B; ++b)  // a padded tail plus a few holes, as real batches have
      for (int64_t j = 0; j < nk; ++j) pr.kmask[b * nk + j] = (j < nk - 3 * b - 2) && gen() % 7;
    p.key_mask = pr.kmask.data();
  }
  if (qmask) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < nq; ++i) pr.qmask[b * nq + i] = (i < nq - 2 * b - 1) && gen() % 6;
    p.query_mask = pr.qmask.data();
  }
  return pr;
}

template <typename T>
Result run_smyrf(const Problem& pr, SmyrfPlan* plan_out = nullptr) {
  const SmyrfParams& p = pr.p;
  auto cast = [](const std::vector<double>& x) { return std::vector<T>(x.begin(), x.end()); };
  std::vector<T> q = cast(pr.q), k = cast(pr.k), v = cast(pr.v), dout = cast(pr.dout);
  const int64_t BH = p.batch_heads;
  std::vector<T> out(BH * p.nq * p.dv, T(7)), lse(BH * p.nq, T(7));
  std::vector<T> dq(BH * p.nq * p.d, T(7)), dk(BH * p.nk * p.d, T(7)), dv(BH * p.nk * p.dv, T(7));
  SmyrfPlan plan = smyrf_make_plan<T>(p, q.data(), k.data());
  smyrf_forward<T>(p, plan, q.data(), k.data(), v.data(), out.data(), lse.data());
  smyrf_backward<T>(p, plan, q.data(), k.data(), v.data(), out.data(), lse.data(), dout.data(),
                    dq.data(), dk.data(), dv.data());
  if (plan_out) *plan_out = plan;
  auto back = [](const std::vector<T>& x) { return std::vector<double>(x.begin(), x.end()); };
  return Result{back(out), back(lse), back(dq), back(dk), back(dv)};
}

// Dense attention with the bias log M (or log 1[M > 0]) built from the plan's multiplicity.
Result run_oracle(const Problem& pr, const SmyrfPlan& plan) {
  const SmyrfParams& p = pr.p;
  const int64_t BH = p.batch_heads;
  std::vector<int32_t> m(BH * p.nq * p.nk);
  smyrf_multiplicity(p, plan, m.data());
  std::vector<double> bias(m.size());
  const bool set = p.duplicates == SmyrfDuplicates::Set;
  for (size_t t = 0; t < m.size(); ++t)
    bias[t] = m[t] == 0 ? -std::numeric_limits<double>::infinity()
                        : (set ? 0.0 : std::log(static_cast<double>(m[t])));
  AttentionParams a;
  a.batch_heads = BH;
  a.heads = p.heads;
  a.nq = p.nq;
  a.nk = p.nk;
  a.d = p.d;
  a.dv = p.dv;
  a.scale = p.scale;
  a.key_mask = p.key_mask;
  a.query_mask = p.query_mask;
  a.bias_bh_stride = p.nq * p.nk;
  a.dropout_p = p.dropout_p;
  a.dropout_seed = p.dropout_seed;
  Result r;
  r.out.resize(BH * p.nq * p.dv);
  r.lse.resize(BH * p.nq);
  r.dq.resize(BH * p.nq * p.d);
  r.dk.resize(BH * p.nk * p.d);
  r.dv.resize(BH * p.nk * p.dv);
  attention_forward<double>(a, pr.q.data(), pr.k.data(), pr.v.data(), bias.data(), r.out.data(),
                            r.lse.data());
  attention_backward<double>(a, pr.q.data(), pr.k.data(), pr.v.data(), bias.data(), r.out.data(),
                             r.lse.data(), pr.dout.data(), r.dq.data(), r.dk.data(), r.dv.data());
  return r;
}

// SMYRF computed from the plan's pair lists (smyrf_pairs.h) the way the CUDA causal kernels do:
// per query over its row of pairs (scores + log M, the LSE, out with the dropout factors, dq),
// per key over its column (dk, dv), with D_i = dO_i . out_i. Float64.
Result run_pairs(const Problem& pr, const SmyrfPairs& pairs) {
  const SmyrfParams& p = pr.p;
  const int64_t BH = p.batch_heads, nq = p.nq, nk = p.nk, d = p.d, dv = p.dv;
  const uint32_t threshold = attention_dropout_threshold(p.dropout_p);
  const double zscale = 1.0 / (1.0 - p.dropout_p);
  auto z = [&](int64_t bh, int64_t i, int64_t j) {
    if (p.dropout_p <= 0) return 1.0;
    return attention_dropout_keep(p.dropout_seed, bh, i, j, threshold) ? zscale : 0.0;
  };
  auto dot = [](const double* a, const double* b, int64_t n) {
    double s = 0;
    for (int64_t c = 0; c < n; ++c) s += a[c] * b[c];
    return s;
  };
  Result r;
  r.out.assign(BH * nq * dv, 0.0);
  r.lse.assign(BH * nq, -std::numeric_limits<double>::infinity());
  r.dq.assign(BH * nq * d, 0.0);
  r.dk.assign(BH * nk * d, 0.0);
  r.dv.assign(BH * nk * dv, 0.0);
  std::vector<double> D(BH * nq, 0.0);
  auto score = [&](int64_t bh, int64_t i, int64_t j, int32_t mult) {
    return p.scale * dot(&pr.q[(bh * nq + i) * d], &pr.k[(bh * nk + j) * d], d) +
           std::log(static_cast<double>(mult));
  };
  for (int64_t bh = 0; bh < BH; ++bh)
    for (int64_t i = 0; i < nq; ++i) {
      const int64_t row = bh * nq + i, e0 = pairs.q_offsets[row], e1 = pairs.q_offsets[row + 1];
      if (e0 == e1) continue;
      double m = -std::numeric_limits<double>::infinity(), l = 0;
      for (int64_t e = e0; e < e1; ++e)
        m = std::max(m, score(bh, i, pairs.q_keys[e], pairs.q_mult[e]));
      for (int64_t e = e0; e < e1; ++e)
        l += std::exp(score(bh, i, pairs.q_keys[e], pairs.q_mult[e]) - m);
      const double lse = m + std::log(l);
      r.lse[row] = lse;
      for (int64_t e = e0; e < e1; ++e) {
        const int64_t j = pairs.q_keys[e];
        const double w = std::exp(score(bh, i, j, pairs.q_mult[e]) - lse) * z(bh, i, j);
        for (int64_t c = 0; c < dv; ++c) r.out[row * dv + c] += w * pr.v[(bh * nk + j) * dv + c];
      }
      D[row] = dot(&pr.dout[row * dv], &r.out[row * dv], dv);
      for (int64_t e = e0; e < e1; ++e) {
        const int64_t j = pairs.q_keys[e];
        const double pij = std::exp(score(bh, i, j, pairs.q_mult[e]) - lse);
        const double dp = dot(&pr.dout[row * dv], &pr.v[(bh * nk + j) * dv], dv);
        const double ds = pij * (z(bh, i, j) * dp - D[row]) * p.scale;
        for (int64_t c = 0; c < d; ++c) r.dq[row * d + c] += ds * pr.k[(bh * nk + j) * d + c];
      }
    }
  for (int64_t bh = 0; bh < BH; ++bh)
    for (int64_t j = 0; j < nk; ++j) {
      const int64_t col = bh * nk + j;
      for (int64_t e = pairs.k_offsets[col]; e < pairs.k_offsets[col + 1]; ++e) {
        const int64_t i = pairs.k_queries[e], row = bh * nq + i;
        const double pij = std::exp(score(bh, i, j, pairs.k_mult[e]) - r.lse[row]);
        const double dp = dot(&pr.dout[row * dv], &pr.v[col * dv], dv);
        const double ds = pij * (z(bh, i, j) * dp - D[row]) * p.scale;
        for (int64_t c = 0; c < dv; ++c)
          r.dv[col * dv + c] += pij * z(bh, i, j) * pr.dout[row * dv + c];
        for (int64_t c = 0; c < d; ++c) r.dk[col * d + c] += ds * pr.q[row * d + c];
      }
    }
  return r;
}

double worst(const Result& a, const Result& b) {
  double e = 0;
  e = std::max(e, rel_err(a.out, b.out));
  e = std::max(e, rel_err(a.lse, b.lse));
  e = std::max(e, rel_err(a.dq, b.dq));
  e = std::max(e, rel_err(a.dk, b.dk));
  e = std::max(e, rel_err(a.dv, b.dv));
  return e;
}

}  // namespace

TEST_CASE("SMYRF oracle: forward and gradients equal dense attention with bias log M") {
  struct Shape {
    int64_t B, H, nq, nk, d, dv, R, cq, ck;
    bool kmask, qmask, causal;
  };
  const Shape shapes[] = {
      {1, 1, 64, 64, 8, 8, 1, 16, 16, false, false, false},
      {2, 2, 50, 50, 8, 6, 3, 8, 8, false, false, false},  // 50 = 6 * 8 + 2: padded tail
      {2, 2, 50, 50, 8, 6, 3, 8, 8, true, true, false},
      {2, 1, 96, 24, 16, 16, 4, 16, 4, false, false, false},  // BigGAN-like Nq = 4 Nk
      {2, 1, 100, 25, 16, 12, 2, 12, 3, true, true, false},   // Nq = 4 Nk, 9 chunks, tails
      {1, 3, 70, 37, 5, 7, 4, 10, 6, true, false, false},     // odd everything
      {2, 1, 77, 77, 8, 8, 3, 8, 12, false, false, true},     // causal: block 8, window 12
      {2, 2, 61, 61, 8, 5, 2, 6, 5, true, true, true},
      // 75 clusters a round: the drivers run the rounds bh by bh (4 RoundGroups)
      {2, 2, 300, 300, 8, 8, 2, 4, 4, true, false, false},
  };
  double max_err = 0;
  for (const Shape& s : shapes) {
    for (SmyrfDuplicates dup : {SmyrfDuplicates::Multiset, SmyrfDuplicates::Set}) {
      for (double dropout : {0.0, 0.25}) {
        Problem pr =
            make_problem(s.B, s.H, s.nq, s.nk, s.d, s.dv, s.R, s.cq, s.ck, s.kmask, s.qmask);
        pr.p.causal = s.causal;
        pr.p.duplicates = dup;
        pr.p.dropout_p = dropout;
        pr.p.dropout_seed = 17;
        SmyrfPlan plan;
        const Result got = run_smyrf<double>(pr, &plan);
        const Result want = run_oracle(pr, plan);
        CAPTURE(s.nq);
        CAPTURE(s.nk);
        CAPTURE(s.R);
        CAPTURE(s.causal);
        CAPTURE(static_cast<int>(dup));
        CAPTURE(dropout);
        const double e = worst(got, want);
        CHECK(e < 1e-10);
        CHECK(all_finite(got.out));
        CHECK(all_finite(got.dq));
        CHECK(all_finite(got.dk));
        CHECK(all_finite(got.dv));
        max_err = std::max(max_err, e);
      }
    }
  }
  MESSAGE("SMYRF oracle: max relative error over all cases = " << max_err);
}

TEST_CASE("SMYRF multiplicity agrees with the cluster assignment and the chunk sizes") {
  Problem pr = make_problem(2, 1, 50, 50, 8, 8, 3, 8, 8, true, true);
  SmyrfPlan plan = smyrf_make_plan<double>(pr.p, pr.q.data(), pr.k.data());
  const int64_t BH = 2, R = 3, n = 50;
  std::vector<int32_t> qc(BH * R * n), kc(BH * R * n), m(BH * n * n);
  smyrf_cluster_assignment(pr.p, plan, qc.data(), kc.data());
  smyrf_multiplicity(pr.p, plan, m.data());
  bool same = true;
  for (int64_t bh = 0; bh < BH; ++bh) {
    // padded tokens report -1, real ones a chunk id of a real chunk
    for (int64_t r = 0; r < R; ++r)
      for (int64_t i = 0; i < n; ++i) {
        const bool real = pr.qmask[bh * n + i];
        CHECK((qc[(bh * R + r) * n + i] == -1) == !real);
      }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        int count = 0;
        for (int64_t r = 0; r < R; ++r) {
          const int32_t a = qc[(bh * R + r) * n + i], b = kc[(bh * R + r) * n + j];
          count += (a >= 0 && a == b) ? 1 : 0;
        }
        same = same && count == m[(bh * n + i) * n + j];
      }
    // every round, each chunk of real queries meets at most Ck keys
    for (int64_t i = 0; i < n; ++i) {
      int64_t row = 0;
      for (int64_t j = 0; j < n; ++j) row += m[(bh * n + i) * n + j];
      CHECK(row <= R * 8);
    }
  }
  CHECK(same);
}

TEST_CASE("SMYRF with one cluster equals dense attention for any n_hashes") {
  for (int64_t R : {1, 2, 5}) {
    for (SmyrfDuplicates dup : {SmyrfDuplicates::Multiset, SmyrfDuplicates::Set}) {
      Problem pr = make_problem(2, 2, 40, 23, 8, 6, R, 64, 23, true, true);
      pr.p.duplicates = dup;
      const Result got = run_smyrf<double>(pr);
      AttentionParams a;
      a.batch_heads = 4;
      a.heads = 2;
      a.nq = 40;
      a.nk = 23;
      a.d = 8;
      a.dv = 6;
      a.scale = pr.p.scale;
      a.key_mask = pr.p.key_mask;
      a.query_mask = pr.p.query_mask;
      Result want;
      want.out.resize(4 * 40 * 6);
      want.lse.resize(4 * 40);
      want.dq.resize(4 * 40 * 8);
      want.dk.resize(4 * 23 * 8);
      want.dv.resize(4 * 23 * 6);
      attention_forward<double>(a, pr.q.data(), pr.k.data(), pr.v.data(), nullptr, want.out.data(),
                                want.lse.data());
      attention_backward<double>(a, pr.q.data(), pr.k.data(), pr.v.data(), nullptr, want.out.data(),
                                 want.lse.data(), pr.dout.data(), want.dq.data(), want.dk.data(),
                                 want.dv.data());
      CAPTURE(R);
      CHECK(rel_err(got.out, want.out) < 1e-12);
      CHECK(rel_err(got.dq, want.dq) < 1e-12);
      CHECK(rel_err(got.dk, want.dk) < 1e-12);
      CHECK(rel_err(got.dv, want.dv) < 1e-12);
      if (dup == SmyrfDuplicates::Set) CHECK(rel_err(got.lse, want.lse) < 1e-12);
      // multiset: every pair counted R times, so lse shifts by log R
      if (dup == SmyrfDuplicates::Multiset) {
        std::vector<double> shifted = want.lse;
        for (auto& e : shifted)
          if (std::isfinite(e)) e += std::log(double(R));
        CHECK(rel_err(got.lse, shifted) < 1e-12);
      }
    }
  }
}

// Causal outputs at positions <= cut, for tokens after cut perturbed (and, with masks, their key
// mask redrawn), must be bit-identical to the unperturbed run's. In float on the AVX2 path the
// queries go two at a time (rows2_forward) with a partner that may be a later token: its keys
// must not change a bit of the earlier query's result (d 13: the dots' masked tails; windows of 12
// and blocks of 8: the 8-, 4- and 1-row dot paths and shared runs of every length).
template <typename T>
void check_causal_prefix(bool masks, int64_t d) {
  Problem base = make_problem(1, 2, 90, 90, d, 8, 3, 8, 12, masks, masks);
  base.p.causal = true;
  const Result ref = run_smyrf<T>(base);
  // no empty rows: every real query sees at least its own key when that key is real
  for (int64_t bh = 0; bh < 2; ++bh)
    for (int64_t i = 0; i < 90; ++i)
      if (!masks) CHECK(std::isfinite(ref.lse[bh * 90 + i]));
  for (int64_t cut : {0, 7, 8, 40, 63, 88}) {
    Problem pert = base;
    std::mt19937 gen(static_cast<uint32_t>(cut));
    std::normal_distribution<double> dist(0, 3);
    for (int64_t bh = 0; bh < 2; ++bh)
      for (int64_t t = cut + 1; t < 90; ++t) {
        for (int64_t c = 0; c < d; ++c) {
          pert.q[(bh * 90 + t) * d + c] = dist(gen);
          pert.k[(bh * 90 + t) * d + c] = dist(gen);
        }
        for (int64_t c = 0; c < 8; ++c) pert.v[(bh * 90 + t) * 8 + c] = dist(gen);
      }
    if (masks)
      for (int64_t t = cut + 1; t < 90; ++t) pert.kmask[t] = gen() % 2;
    pert.p.key_mask = masks ? pert.kmask.data() : nullptr;
    pert.p.query_mask = masks ? pert.qmask.data() : nullptr;
    const Result got = run_smyrf<T>(pert);
    CAPTURE(cut);
    bool identical = true;
    for (int64_t bh = 0; bh < 2; ++bh) {
      identical = identical && std::memcmp(&got.out[bh * 90 * 8], &ref.out[bh * 90 * 8],
                                           (cut + 1) * 8 * sizeof(double)) == 0;
      identical = identical && std::memcmp(&got.lse[bh * 90], &ref.lse[bh * 90],
                                           (cut + 1) * sizeof(double)) == 0;
    }
    CHECK(identical);
    if (cut < 80) CHECK(rel_err(got.out, ref.out) > 1e-3);  // the perturbation did something
  }
}

TEST_CASE("causal SMYRF: outputs at i are bit-identical when tokens after i change") {
  for (bool masks : {false, true}) {
    CAPTURE(masks);
    check_causal_prefix<double>(masks, 8);
    check_causal_prefix<float>(masks, 8);
    check_causal_prefix<float>(masks, 13);
  }
}

TEST_CASE("causal SMYRF: scores all far below zero keep their own max (float AVX2 path)") {
  // Every key near one direction u and every query along -u: all scores are about -200, so a
  // softmax shifted by 0 instead of the row's max would underflow every exp (sum 0, NaN output).
  // The vector softmax of the per-row kernels masks the lanes past the keys out of the max; the
  // windows (12 keys) end mid-vector.
  Problem pr = make_problem(1, 2, 90, 90, 8, 8, 2, 8, 12, false, false);
  pr.p.causal = true;
  pr.p.scale = 1.0;
  std::mt19937 gen(11);
  std::normal_distribution<double> noise(0, 0.05);
  for (size_t r = 0; r < pr.q.size() / 8; ++r)
    for (int c = 0; c < 8; ++c) {
      const double u = c % 2 ? 1.0 : -1.0;  // |u|^2 = 8
      pr.k[r * 8 + c] = u + noise(gen);
      pr.q[r * 8 + c] = -25.0 * u + noise(gen);
    }
  const Result want = run_smyrf<double>(pr);
  const Result got = run_smyrf<float>(pr);
  CHECK(all_finite(got.out));
  CHECK(all_finite(got.lse));
  CHECK(rel_err(got.out, want.out) < 1e-4);
  CHECK(rel_err(got.lse, want.lse) < 1e-4);
  CHECK(rel_err(got.dq, want.dq) < 1e-3);
}

// The plan's order is the stable sort of the real tokens by their XBOX+ hash (padded ones after,
// in index order), recomputed here with the same serial double sums. Near ties (rows one ulp
// apart in one coordinate, and exact duplicates) exercise the sort's tie handling; the rows are
// processed four at a time inside the plan, so 4k + 3 rows cover the remainder path too.
TEST_CASE("SMYRF plan order is the stable sort by hash, near ties and duplicates included") {
  // bunched: 164 of the 203 rows are copies of 2 rows (buckets far above bucket_sort's insertion
  // sort limit), and batch row 1 is all one row (every hash equal).
  for (const int variant : {0, 1, 2}) {
    const bool masked = variant == 1, bunched = variant == 2;
    Problem pr = make_problem(2, 1, 203, 203, 12, 4, 3, 16, 16, masked, masked);
    const int64_t BH = 2, n = 203, d = 12, R = 3;
    if (bunched)
      for (int64_t t = 0; t < BH * n; ++t) {
        const int64_t src = t < n ? (t % 5 < 4 ? t % 2 : -1) : n;
        if (src < 0) continue;
        for (int64_t c = 0; c < d; ++c) {
          pr.q[t * d + c] = pr.q[src * d + c];
          pr.k[t * d + c] = pr.k[src * d + c];
        }
      }
    for (int64_t t = 0; !bunched && t + 3 < BH * n; t += 9)
      for (int64_t c = 0; c < d; ++c) {
        pr.q[(t + 1) * d + c] = pr.q[t * d + c];
        pr.k[(t + 2) * d + c] = pr.k[t * d + c];
        if (c == 0 && t % 2 == 0) {
          pr.q[(t + 3) * d] = std::nextafter(static_cast<float>(pr.q[t * d]), 10.f);
          pr.k[(t + 3) * d] = std::nextafter(static_cast<float>(pr.k[t * d]), -10.f);
        }
      }
    const SmyrfParams& p = pr.p;
    const SmyrfPlan plan = smyrf_make_plan<double>(p, pr.q.data(), pr.k.data());
    for (int64_t bh = 0; bh < BH; ++bh) {
      const uint8_t* qm = masked ? p.query_mask + bh * n : nullptr;
      const uint8_t* km = masked ? p.key_mask + bh * n : nullptr;
      const double* qb = pr.q.data() + bh * n * d;
      const double* kb = pr.k.data() + bh * n * d;
      auto sq = [&](const double* x) {
        double acc = 0;
        for (int64_t c = 0; c < d; ++c) acc += x[c] * x[c];
        return acc;
      };
      double mq = 0, mk = 0;
      for (int64_t i = 0; i < n; ++i) {
        if (!qm || qm[i]) mq = std::max(mq, sq(qb + i * d));
        if (!km || km[i]) mk = std::max(mk, sq(kb + i * d));
      }
      for (int64_t r = 0; r < R; ++r) {
        const std::vector<double> a = smyrf_hash_direction(p.seed, r, d);
        auto expected = [&](const double* x, const uint8_t* m, int64_t lift) {
          std::vector<double> h(n);
          for (int64_t i = 0; i < n; ++i) {
            double acc = 0;
            for (int64_t c = 0; c < d; ++c) acc += a[c] * x[i * d + c];
            h[i] = acc + a[lift] * std::sqrt(std::max(0.0, mq + mk - sq(x + i * d)));
          }
          std::vector<int32_t> order(n);
          std::iota(order.begin(), order.end(), 0);
          std::stable_sort(order.begin(), order.end(), [&](int32_t u, int32_t v) {
            const bool ru = !m || m[u], rv = !m || m[v];
            if (ru != rv) return ru;
            return ru && h[u] < h[v];
          });
          return order;
        };
        const std::vector<int32_t> eq = expected(qb, qm, d + 1), ek = expected(kb, km, d);
        CAPTURE(bh);
        CAPTURE(r);
        CHECK(std::equal(eq.begin(), eq.end(), plan.q_order.begin() + (bh * R + r) * n));
        CHECK(std::equal(ek.begin(), ek.end(), plan.k_order.begin() + (bh * R + r) * n));
      }
    }
  }
}

TEST_CASE("SMYRF token hashes are plain serial double sums, float and double rows alike") {
  // Float rows go eight at a time through AVX double vectors, double rows through the 2-lane code,
  // the last rows one at a time: every norm and dot must equal the plain loop bit for bit (the
  // cluster order, hence the result, must not depend on the vector path). n = 203: 25 blocks of
  // 8, then the 4-row and 1-row paths; d = 12 and 20 have transpose tails.
  for (const int64_t d : {12, 20, 64}) {
    for (const int64_t R : {3, 5}) {
      const int64_t n = 203;
      std::vector<std::vector<double>> dirs;
      for (int64_t r = 0; r < R; ++r) dirs.push_back(smyrf_hash_direction(7, r, d));
      const std::vector<double> xd0 = randn(n * d, 11, 1.5);
      const std::vector<float> xf(xd0.begin(), xd0.end());
      const std::vector<double> xd(xf.begin(), xf.end());
      std::vector<double> nf(n), df(R * n), nd(n), dd(R * n);
      smyrf_norms_and_dots(xf.data(), n, d, dirs, nf.data(), df.data());
      smyrf_norms_and_dots(xd.data(), n, d, dirs, nd.data(), dd.data());
      int64_t bad = 0;
      for (int64_t i = 0; i < n; ++i) {
        double sq = 0;
        for (int64_t c = 0; c < d; ++c) sq += xd[i * d + c] * xd[i * d + c];
        bad += nf[i] != sq || nd[i] != sq;
        for (int64_t r = 0; r < R; ++r) {
          double acc = 0;
          for (int64_t c = 0; c < d; ++c) acc += dirs[r][c] * xd[i * d + c];
          bad += df[r * n + i] != acc || dd[r * n + i] != acc;
        }
      }
      CAPTURE(d);
      CAPTURE(R);
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("SMYRF clustering is a function of the seed") {
  Problem pr = make_problem(1, 2, 64, 64, 8, 8, 2, 8, 8, false, false);
  SmyrfPlan a, b, c;
  const Result ra = run_smyrf<double>(pr, &a);
  const Result rb = run_smyrf<double>(pr, &b);
  CHECK(a.q_order == b.q_order);
  CHECK(a.k_order == b.k_order);
  CHECK(std::memcmp(ra.out.data(), rb.out.data(), ra.out.size() * sizeof(double)) == 0);
  CHECK(std::memcmp(ra.dq.data(), rb.dq.data(), ra.dq.size() * sizeof(double)) == 0);
  pr.p.seed = 100;
  const Result rc = run_smyrf<double>(pr, &c);
  CHECK(a.q_order != c.q_order);
  CHECK(a.k_order != c.k_order);
  CHECK(rel_err(rc.out, ra.out) > 1e-6);
  // rounds use different directions
  CHECK(smyrf_hash_direction(99, 0, 8) != smyrf_hash_direction(99, 1, 8));
}

TEST_CASE("SMYRF: padded queries and rows without keys give zeros and no NaN") {
  Problem pr = make_problem(2, 1, 32, 32, 8, 8, 2, 8, 8, false, false);
  for (int64_t j = 0; j < 32; ++j) pr.kmask[32 + j] = 0;  // batch 1 has no key
  for (int64_t i = 0; i < 32; i += 3) pr.qmask[i] = 0;    // batch 0 pads some queries
  pr.p.key_mask = pr.kmask.data();
  pr.p.query_mask = pr.qmask.data();
  for (bool causal : {false, true}) {
    pr.p.causal = causal;
    const Result r = run_smyrf<double>(pr);
    const Result f = run_smyrf<float>(pr);
    CHECK(all_finite(r.out));
    CHECK(all_finite(r.dq));
    CHECK(all_finite(r.dk));
    CHECK(all_finite(r.dv));
    CHECK(all_finite(f.out));
    CHECK(all_finite(f.dq));
    for (int64_t i = 0; i < 32; ++i) {
      const bool empty = (i % 3 == 0);
      for (int64_t bh : {0, 1}) {
        if (bh == 0 && !empty) {
          CHECK(std::isfinite(r.lse[i]));
          continue;
        }
        CHECK(r.lse[bh * 32 + i] == -INFINITY);
        for (int64_t c = 0; c < 8; ++c) {
          CHECK(r.out[(bh * 32 + i) * 8 + c] == 0.0);
          CHECK(r.dq[(bh * 32 + i) * 8 + c] == 0.0);
        }
      }
    }
    for (int64_t t = 0; t < 32 * 8; ++t) CHECK(r.dk[32 * 8 + t] == 0.0);
  }
}

TEST_CASE("SMYRF: AVX2 agrees with scalar and float agrees with double") {
  struct Shape {
    int64_t nq, nk, d, dv, R, cq, ck;
    bool causal;
    SmyrfDuplicates dup = SmyrfDuplicates::Multiset;
    double dropout = 0;
    bool qmask = false;
  };
  // Non-causal float AVX2 runs the packed (up to 128 x 128) cluster tiles (smyrf_tiles_impl.h) when
  // d and dv are multiples of 8 and the clusters fit: full and 1-query tail clusters,
  // cross-attention, query masks, and set semantics (tiles in round 0, the generic code after). d
  // 17 / dropout take the generic tile code. The causal cases run the per-row kernels
  // (attention_rows_impl.h): their 8-, 4- and 1-row dot paths (33 / 31 with masked tails), the
  // vector softmax of a row (key counts off multiples of 8), accumulate_rows' 64- and 32-column
  // strips and tails (dv 100), set semantics and dropout (the scalar softmax).
  const Shape shapes[] = {{133, 133, 17, 9, 3, 16, 16, false},
                          {300, 75, 64, 64, 2, 40, 10, false},
                          {97, 97, 33, 31, 2, 8, 20, true},
                          {130, 130, 64, 64, 2, 16, 24, true},
                          {90, 90, 72, 100, 2, 10, 21, true},
                          {101, 101, 24, 40, 3, 7, 13, true, SmyrfDuplicates::Set, 0.2},
                          {257, 257, 16, 24, 3, 64, 64, false},
                          {200, 131, 32, 8, 2, 50, 33, false},
                          {190, 190, 64, 64, 3, 48, 48, false, SmyrfDuplicates::Set},
                          {150, 150, 40, 64, 2, 64, 64, false, SmyrfDuplicates::Multiset, 0, true},
                          {70, 70, 128, 128, 2, 64, 64, false},
                          {300, 300, 64, 64, 2, 128, 128, false},
                          {260, 130, 16, 8, 2, 100, 50, false},
                          {520, 520, 16, 16, 2, 8, 8, false}};  // 65 clusters: 2 RoundGroups
  for (const Shape& s : shapes) {
    Problem pr = make_problem(1, 2, s.nq, s.nk, s.d, s.dv, s.R, s.cq, s.ck, true, s.qmask);
    pr.p.causal = s.causal;
    pr.p.duplicates = s.dup;
    pr.p.dropout_p = s.dropout;
    pr.p.dropout_seed = 5;
    const Isa prev = set_active_isa(Isa::Scalar);
    const Result ds = run_smyrf<double>(pr);
    const Result fs = run_smyrf<float>(pr);
    set_active_isa(Isa::Avx2);
    const Result da = run_smyrf<double>(pr);
    const Result fa = run_smyrf<float>(pr);
    set_active_isa(prev);
    CAPTURE(s.nq);
    CHECK(worst(da, ds) < 1e-13);
    for (const Result* f : {&fs, &fa}) {
      CHECK(rel_err(f->out, ds.out) < 2e-5);
      CHECK(rel_err(f->lse, ds.lse) < 2e-5);
      CHECK(rel_err(f->dq, ds.dq) < 1e-4);
      CHECK(rel_err(f->dk, ds.dk) < 1e-4);
      CHECK(rel_err(f->dv, ds.dv) < 1e-4);
    }
  }
}

TEST_CASE("SMYRF tiles: rows no round-0 cluster holds are cleared, the others written") {
  // The float AVX2 tiles path writes round 0 into uncleared outputs (run_smyrf fills them with 7)
  // and clears only the rows outside every round-0 cluster: padded rows, the real queries of chunks
  // without keys (few real keys) and the real keys of chunks without queries (few real queries).
  for (int scenario : {0, 1}) {
    Problem pr = make_problem(2, 2, 200, 200, 16, 8, 3, 32, 32, false, false);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t t = 0; t < 200; ++t) {
        const bool few = t < 45 + 10 * b && t % 5 != 1;
        if (scenario == 0) pr.kmask[b * 200 + t] = few;
        if (scenario == 1) pr.qmask[b * 200 + t] = few;
      }
    pr.p.key_mask = pr.kmask.data();
    pr.p.query_mask = pr.qmask.data();
    for (SmyrfDuplicates dup : {SmyrfDuplicates::Multiset, SmyrfDuplicates::Set}) {
      pr.p.duplicates = dup;
      CAPTURE(scenario);
      const Isa prev = set_active_isa(Isa::Scalar);
      const Result ds = run_smyrf<double>(pr);
      set_active_isa(Isa::Avx2);
      const Result fa = run_smyrf<float>(pr);
      set_active_isa(prev);
      CHECK(all_finite(fa.out));
      CHECK(all_finite(fa.dq));
      CHECK(all_finite(fa.dk));
      CHECK(all_finite(fa.dv));
      CHECK(rel_err(fa.out, ds.out) < 2e-5);
      CHECK(rel_err(fa.dq, ds.dq) < 1e-4);
      CHECK(rel_err(fa.dk, ds.dk) < 1e-4);
      CHECK(rel_err(fa.dv, ds.dv) < 1e-4);
      int64_t empty_q = 0, zero_k = 0;
      for (int64_t r = 0; r < 4 * 200; ++r) {
        CHECK(std::isinf(ds.lse[r]) == std::isinf(fa.lse[r]));
        if (std::isinf(fa.lse[r])) {
          ++empty_q;
          for (int64_t c = 0; c < 8; ++c) CHECK(fa.out[r * 8 + c] == 0.0);
          for (int64_t c = 0; c < 16; ++c) CHECK(fa.dq[r * 16 + c] == 0.0);
        }
        bool ds_zero = true;
        for (int64_t c = 0; c < 16; ++c) ds_zero = ds_zero && ds.dk[r * 16 + c] == 0.0;
        if (ds_zero) {
          ++zero_k;
          for (int64_t c = 0; c < 16; ++c) CHECK(fa.dk[r * 16 + c] == 0.0);
          for (int64_t c = 0; c < 8; ++c) CHECK(fa.dv[r * 8 + c] == 0.0);
        }
      }
      CHECK(empty_q > 0);  // both kinds of uncovered rows occur
      CHECK(zero_k > 0);
    }
  }
}

TEST_CASE("SMYRF tiles: bit-identical on 1, 2 and 3 threads") {
  // Tasks go to threads in claimed blocks (for_round_tasks), so which thread runs a cluster varies
  // from run to run; the rows each task writes within a round are its own and the rounds are
  // ordered, so the result must not depend on it. 600 tokens in clusters of 16: 2 x 38 tasks per
  // round, blocks of 8 with a partial last one.
  Problem pr = make_problem(2, 1, 600, 600, 32, 16, 3, 16, 16, true, true);
  for (SmyrfDuplicates dup : {SmyrfDuplicates::Multiset, SmyrfDuplicates::Set}) {
    pr.p.duplicates = dup;
    const Isa prev = set_active_isa(Isa::Avx2);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const Result one = run_smyrf<float>(pr);
    std::vector<Result> many;
    for (int t : {2, 3, 2}) {
      omp_set_num_threads(t);
      many.push_back(run_smyrf<float>(pr));
    }
    omp_set_num_threads(threads);
    set_active_isa(prev);
    for (const Result& m : many) {
      CHECK(m.out == one.out);
      CHECK(m.lse == one.lse);
      CHECK(m.dq == one.dq);
      CHECK(m.dk == one.dk);
      CHECK(m.dv == one.dv);
    }
  }
}

TEST_CASE("SMYRF rejects inconsistent chunk counts with a [smyrf_attention] message") {
  Problem pr = make_problem(1, 1, 64, 64, 8, 8, 1, 8, 32, false, false);
  CHECK_THROWS_WITH_AS(smyrf_make_plan<double>(pr.p, pr.q.data(), pr.k.data()),
                       doctest::Contains("chunk counts differ"), std::invalid_argument);
  pr.p.ck = 8;
  pr.p.causal = true;
  pr.p.nk = 32;
  CHECK_THROWS_WITH_AS(smyrf_make_plan<double>(pr.p, pr.q.data(), pr.k.data()),
                       doctest::Contains("[smyrf_attention]"), std::invalid_argument);
  pr.p.nk = 64;
  SmyrfPlan plan = smyrf_make_plan<double>(pr.p, pr.q.data(), pr.k.data());
  std::vector<int32_t> qc(64), kc(64);
  CHECK_THROWS_AS(smyrf_cluster_assignment(pr.p, plan, qc.data(), kc.data()),
                  std::invalid_argument);
}

TEST_CASE("SMYRF pairs: both views list exactly the plan's multiplicity, causal or clustered") {
  struct Shape {
    int64_t B, H, n, R, cq, ck;
    bool causal, masks;
  };
  const Shape shapes[] = {{2, 2, 77, 3, 8, 12, true, false},
                          {2, 2, 61, 2, 6, 5, true, true},
                          {1, 1, 40, 4, 40, 64, true, false},
                          {2, 1, 50, 3, 8, 8, false, true},
                          {1, 2, 64, 2, 16, 16, false, false}};
  for (const Shape& s : shapes)
    for (SmyrfDuplicates dup : {SmyrfDuplicates::Multiset, SmyrfDuplicates::Set}) {
      Problem pr = make_problem(s.B, s.H, s.n, s.n, 8, 8, s.R, s.cq, s.ck, s.masks, s.masks);
      pr.p.causal = s.causal;
      pr.p.duplicates = dup;
      SmyrfPlan plan;
      run_smyrf<double>(pr, &plan);
      const SmyrfPairs pairs = smyrf_pairs(pr.p, plan);
      const int64_t BH = pr.p.batch_heads, n = s.n;
      std::vector<int32_t> m(BH * n * n);
      smyrf_multiplicity(pr.p, plan, m.data());
      // query-major: each key once, with M (1 under set semantics), nothing else
      std::vector<int32_t> seen(m.size(), 0);
      int64_t bad = 0;
      for (int64_t row = 0; row < BH * n; ++row)
        for (int64_t e = pairs.q_offsets[row]; e < pairs.q_offsets[row + 1]; ++e) {
          const int64_t j = pairs.q_keys[e], at = row * n + j;
          const int32_t want = dup == SmyrfDuplicates::Set ? 1 : m[at];
          if (m[at] == 0 || pairs.q_mult[e] != want) ++bad;
          ++seen[at];
        }
      for (size_t t = 0; t < m.size(); ++t) bad += (m[t] > 0) != (seen[t] == 1);
      // key-major: the same pairs, queries ascending
      int64_t count = 0;
      for (int64_t col = 0; col < BH * n; ++col)
        for (int64_t e = pairs.k_offsets[col]; e < pairs.k_offsets[col + 1]; ++e, ++count) {
          const int64_t bh = col / n, j = col % n, i = pairs.k_queries[e];
          if (e > pairs.k_offsets[col] && pairs.k_queries[e - 1] >= i) ++bad;
          const int64_t at = (bh * n + i) * n + j;
          const int32_t want = dup == SmyrfDuplicates::Set ? 1 : m[at];
          if (m[at] == 0 || pairs.k_mult[e] != want) ++bad;
        }
      CAPTURE(s.n);
      CAPTURE(s.causal);
      CAPTURE(static_cast<int>(dup));
      CHECK(count == pairs.size());
      CHECK(pairs.size() > 0);
      CHECK(bad == 0);
    }
}

TEST_CASE("SMYRF pairs: attention over the pair lists equals the op (the CUDA causal algorithm)") {
  // run_pairs is what kernels/cuda's causal kernels compute; here it must reproduce the CPU op,
  // masks, both duplicate semantics and dropout included, to float64 rounding.
  struct Shape {
    int64_t B, H, n, d, dv, R, cq, ck;
    bool causal, masks;
  };
  const Shape shapes[] = {{2, 2, 77, 8, 8, 3, 8, 12, true, false},
                          {2, 2, 61, 8, 5, 2, 6, 5, true, true},
                          {2, 1, 50, 8, 6, 3, 8, 8, false, true}};
  for (const Shape& s : shapes)
    for (SmyrfDuplicates dup : {SmyrfDuplicates::Multiset, SmyrfDuplicates::Set})
      for (double dropout : {0.0, 0.25}) {
        Problem pr = make_problem(s.B, s.H, s.n, s.n, s.d, s.dv, s.R, s.cq, s.ck, s.masks, s.masks);
        pr.p.causal = s.causal;
        pr.p.duplicates = dup;
        pr.p.dropout_p = dropout;
        pr.p.dropout_seed = 5;
        SmyrfPlan plan;
        const Result got = run_smyrf<double>(pr, &plan);
        const Result want = run_pairs(pr, smyrf_pairs(pr.p, plan));
        CAPTURE(s.n);
        CAPTURE(s.causal);
        CAPTURE(static_cast<int>(dup));
        CAPTURE(dropout);
        CHECK(worst(got, want) < 1e-10);
      }
}
