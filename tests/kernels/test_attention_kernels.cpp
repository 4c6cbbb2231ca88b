// Dense attention kernels against a naive float64 reference that materialises the softmax, plus
// the Philox known-answer vectors, edge cases and ISA/precision agreement.
#include <doctest/doctest.h>

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/philox.h"

using namespace smyrf::kernels;
using namespace smyrf::kernels::cpu;

namespace {

std::vector<double> randn(size_t n, uint32_t seed, double scale = 1.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<double> x(n);
  for (auto& e : x) e = dist(gen);
  return x;
}

// max |a - b| / max(max |b|, 1): relative for O(1) data, absolute where the reference is ~0
// (a gradient that is exactly 0 in exact arithmetic, e.g. dq with a single key).
// max |a - b| / max(1, max |b|); a NaN on one side only is an infinite error (std::max dropped
// it: a kernel writing NaN rows passed)
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

struct Grads {
  std::vector<double> out, lse, dq, dk, dv;
};

// Naive dense attention with materialised probabilities (same conventions as attention.h).
Grads naive_attention(const AttentionParams& p, const std::vector<double>& q,
                      const std::vector<double>& k, const std::vector<double>& v,
                      const double* bias, const std::vector<double>& dout) {
  const int64_t BH = p.batch_heads, nq = p.nq, nk = p.nk, d = p.d, dv = p.dv;
  Grads g;
  g.out.assign(BH * nq * dv, 0);
  g.lse.assign(BH * nq, -std::numeric_limits<double>::infinity());
  g.dq.assign(BH * nq * d, 0);
  g.dk.assign(BH * nk * d, 0);
  g.dv.assign(BH * nk * dv, 0);
  const uint32_t thr = attention_dropout_threshold(p.dropout_p);
  for (int64_t bh = 0; bh < BH; ++bh) {
    const int64_t b = bh / p.heads;
    for (int64_t i = 0; i < nq; ++i) {
      if (p.query_mask && !p.query_mask[b * nq + i]) continue;
      std::vector<double> s(nk, -INFINITY), P(nk, 0), z(nk, 1);
      double mx = -INFINITY;
      for (int64_t j = 0; j < nk; ++j) {
        if (p.key_mask && !p.key_mask[b * nk + j]) continue;
        if (p.causal && j > i + (nk - nq)) continue;
        double acc = 0;
        for (int64_t c = 0; c < d; ++c) acc += q[(bh * nq + i) * d + c] * k[(bh * nk + j) * d + c];
        s[j] = p.scale * acc + (bias ? bias[bh * p.bias_bh_stride + i * nk + j] : 0.0);
        mx = std::max(mx, s[j]);
        if (p.dropout_p > 0)
          z[j] =
              attention_dropout_keep(p.dropout_seed, bh, i, j, thr) ? 1.0 / (1 - p.dropout_p) : 0.0;
      }
      if (mx == -INFINITY) continue;
      double sum = 0;
      for (int64_t j = 0; j < nk; ++j) sum += (P[j] = std::exp(s[j] - mx));
      for (int64_t j = 0; j < nk; ++j) P[j] /= sum;
      g.lse[bh * nq + i] = mx + std::log(sum);
      const double* go = &dout[(bh * nq + i) * dv];
      std::vector<double> dP(nk, 0);
      for (int64_t j = 0; j < nk; ++j) {
        for (int64_t c = 0; c < dv; ++c) {
          g.out[(bh * nq + i) * dv + c] += P[j] * z[j] * v[(bh * nk + j) * dv + c];
          dP[j] += go[c] * v[(bh * nk + j) * dv + c] * z[j];
          g.dv[(bh * nk + j) * dv + c] += P[j] * z[j] * go[c];
        }
      }
      double D = 0;
      for (int64_t j = 0; j < nk; ++j) D += P[j] * dP[j];
      for (int64_t j = 0; j < nk; ++j) {
        const double ds = P[j] * (dP[j] - D) * p.scale;
        for (int64_t c = 0; c < d; ++c) {
          g.dq[(bh * nq + i) * d + c] += ds * k[(bh * nk + j) * d + c];
          g.dk[(bh * nk + j) * d + c] += ds * q[(bh * nq + i) * d + c];
        }
      }
    }
  }
  return g;
}

template <typename T>
Grads run_kernel(const AttentionParams& p, const std::vector<double>& q,
                 const std::vector<double>& k, const std::vector<double>& v, const double* bias,
                 size_t bias_n, const std::vector<double>& dout) {
  auto cast = [](const std::vector<double>& x) { return std::vector<T>(x.begin(), x.end()); };
  std::vector<T> tq = cast(q), tk = cast(k), tv = cast(v), tdo = cast(dout);
  std::vector<T> tb(bias ? bias : nullptr, bias ? bias + bias_n : nullptr);
  const int64_t BH = p.batch_heads;
  std::vector<T> out(BH * p.nq * p.dv, T(7)), lse(BH * p.nq, T(7));
  std::vector<T> dq(BH * p.nq * p.d, T(7)), dk(BH * p.nk * p.d, T(7)), dv(BH * p.nk * p.dv, T(7));
  const T* bp = bias ? tb.data() : nullptr;
  attention_forward<T>(p, tq.data(), tk.data(), tv.data(), bp, out.data(), lse.data());
  attention_backward<T>(p, tq.data(), tk.data(), tv.data(), bp, out.data(), lse.data(), tdo.data(),
                        dq.data(), dk.data(), dv.data());
  auto back = [](const std::vector<T>& x) { return std::vector<double>(x.begin(), x.end()); };
  return Grads{back(out), back(lse), back(dq), back(dk), back(dv)};
}

struct Case {
  int64_t B, H, nq, nk, d, dv;
  bool kmask, qmask, causal, bias, bias_per_bh;
  double dropout;
};

void check_case(const Case& c, double tol) {
  AttentionParams p;
  p.batch_heads = c.B * c.H;
  p.heads = c.H;
  p.nq = c.nq;
  p.nk = c.nk;
  p.d = c.d;
  p.dv = c.dv;
  p.scale = 1.0 / std::sqrt(static_cast<double>(c.d));
  p.causal = c.causal;
  p.dropout_p = c.dropout;
  p.dropout_seed = 1234;
  const int64_t BH = p.batch_heads;
  auto q = randn(BH * c.nq * c.d, 1), k = randn(BH * c.nk * c.d, 2), v = randn(BH * c.nk * c.dv, 3);
  auto dout = randn(BH * c.nq * c.dv, 4);
  std::vector<uint8_t> km(c.B * c.nk, 1), qm(c.B * c.nq, 1);
  std::mt19937 gen(5);
  if (c.kmask)
    for (auto& e : km) e = gen() % 4 != 0;
  if (c.qmask)
    for (auto& e : qm) e = gen() % 3 != 0;
  if (c.kmask) p.key_mask = km.data();
  if (c.qmask) p.query_mask = qm.data();
  std::vector<double> bias;
  if (c.bias) {
    bias = randn((c.bias_per_bh ? BH : 1) * c.nq * c.nk, 6);
    std::mt19937 g2(7);
    for (auto& e : bias)
      if (g2() % 5 == 0) e = -INFINITY;
    p.bias_bh_stride = c.bias_per_bh ? c.nq * c.nk : 0;
  }
  const double* bp = c.bias ? bias.data() : nullptr;
  const Grads ref = naive_attention(p, q, k, v, bp, dout);
  const Grads got = run_kernel<double>(p, q, k, v, bp, bias.size(), dout);
  CHECK(rel_err(got.out, ref.out) < tol);
  CHECK(rel_err(got.lse, ref.lse) < tol);
  CHECK(rel_err(got.dq, ref.dq) < tol);
  CHECK(rel_err(got.dk, ref.dk) < tol);
  CHECK(rel_err(got.dv, ref.dv) < tol);
  CHECK(all_finite(got.out));
  CHECK(all_finite(got.dq));
  CHECK(all_finite(got.dk));
  CHECK(all_finite(got.dv));
}

}  // namespace

TEST_CASE("philox4x32-10 matches the Random123 known-answer vectors") {
  const uint32_t c0[4] = {0, 0, 0, 0}, k0[2] = {0, 0};
  const Philox4x32 r0 = philox4x32(c0, k0);
  CHECK(r0.v[0] == 0x6627e8d5u);
  CHECK(r0.v[1] == 0xe169c58du);
  CHECK(r0.v[2] == 0xbc57ac4cu);
  CHECK(r0.v[3] == 0x9b00dbd8u);
  const uint32_t c1[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
  const uint32_t k1[2] = {0xffffffffu, 0xffffffffu};
  const Philox4x32 r1 = philox4x32(c1, k1);
  CHECK(r1.v[0] == 0x408f276du);
  CHECK(r1.v[1] == 0x41c83b0eu);
  CHECK(r1.v[2] == 0xa20bc7c6u);
  CHECK(r1.v[3] == 0x6d5451fdu);
  const uint32_t c2[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
  const uint32_t k2[2] = {0xa4093822u, 0x299f31d0u};
  const Philox4x32 r2 = philox4x32(c2, k2);
  CHECK(r2.v[0] == 0xd16cfe09u);
  CHECK(r2.v[1] == 0x94fdccebu);
  CHECK(r2.v[2] == 0x5001e420u);
  CHECK(r2.v[3] == 0x24126ea1u);
}

TEST_CASE("philox normals have mean 0 and variance 1") {
  double s = 0, s2 = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const uint32_t ctr[4] = {static_cast<uint32_t>(i), 0, 0, 0}, key[2] = {42, 0};
    const Normal4 z = normal4(ctr, key);
    const Normal2d zd = normal2_double(ctr, key);
    for (float e : z.v) s += e, s2 += double(e) * e;
    for (double e : zd.v) s += e, s2 += e * e;
  }
  const double m = s / (6.0 * n), var = s2 / (6.0 * n) - m * m;
  CHECK(std::abs(m) < 0.02);
  CHECK(std::abs(var - 1) < 0.03);
}

TEST_CASE("dense attention forward and backward match the naive float64 reference") {
  const double tol = 1e-12;
  // B, H, Nq, Nk, d, dv, kmask, qmask, causal, bias, bias_per_bh, dropout
  const Case cases[] = {
      {1, 1, 1, 1, 4, 4, false, false, false, false, false, 0.0},
      {2, 2, 37, 53, 16, 12, false, false, false, false, false, 0.0},
      {2, 2, 37, 53, 16, 12, true, false, false, false, false, 0.0},
      {2, 2, 37, 53, 16, 12, true, true, false, false, false, 0.0},
      {2, 1, 70, 70, 8, 8, false, false, true, false, false, 0.0},
      {2, 1, 45, 131, 8, 5, true, true, true, false, false, 0.0},
      {1, 2, 60, 20, 8, 5, false, false, true, false, false, 0.0},  // Nk < Nq: early rows empty
      {2, 2, 33, 65, 7, 9, true, false, false, true, true, 0.0},
      {1, 3, 33, 65, 7, 9, false, true, true, true, false, 0.0},
      {2, 2, 41, 67, 8, 8, true, true, false, false, false, 0.3},
      {1, 2, 65, 65, 8, 8, false, false, true, true, true, 0.5},
  };
  for (const Case& c : cases) {
    CAPTURE(c.nq);
    CAPTURE(c.nk);
    CAPTURE(c.causal);
    CAPTURE(c.dropout);
    for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
      const Isa prev = set_active_isa(isa);
      check_case(c, tol);
      set_active_isa(prev);
    }
  }
}

TEST_CASE("dense attention: a query with every key masked gives zeros, -inf lse, no NaN") {
  AttentionParams p;
  p.batch_heads = 2;
  p.heads = 1;
  p.nq = 5;
  p.nk = 9;
  p.d = 4;
  p.dv = 3;
  p.scale = 0.5;
  std::vector<uint8_t> km(2 * 9, 1);
  for (int j = 0; j < 9; ++j) km[9 + j] = 0;  // batch 1: no key at all
  p.key_mask = km.data();
  auto q = randn(2 * 5 * 4, 1), k = randn(2 * 9 * 4, 2), v = randn(2 * 9 * 3, 3),
       dout = randn(2 * 5 * 3, 4);
  const Grads g = run_kernel<double>(p, q, k, v, nullptr, 0, dout);
  for (int i = 0; i < 5; ++i) {
    CHECK(g.lse[5 + i] == -INFINITY);
    for (int c = 0; c < 3; ++c) CHECK(g.out[(5 + i) * 3 + c] == 0.0);
    for (int c = 0; c < 4; ++c) CHECK(g.dq[(5 + i) * 4 + c] == 0.0);
  }
  for (int j = 0; j < 9 * 4; ++j) CHECK(g.dk[9 * 4 + j] == 0.0);
  CHECK(all_finite(g.out));
  CHECK(all_finite(g.dq));
  CHECK(all_finite(g.dk));
  CHECK(all_finite(g.dv));
  const Grads gf = run_kernel<float>(p, q, k, v, nullptr, 0, dout);
  CHECK(all_finite(gf.out));
  CHECK(all_finite(gf.dq));
}

TEST_CASE("dense attention: float agrees with double, AVX2 agrees with scalar on odd sizes") {
  // Odd lengths exercise the one-row tails of the two-row backward micro-kernels (odd query
  // blocks, odd key tiles); masks make blocks with skipped rows and zero probabilities.
  const int64_t sizes[][4] = {
      {1, 1, 3, 5}, {13, 77, 9, 11}, {129, 67, 64, 64}, {200, 200, 33, 17}, {97, 131, 64, 64}};
  for (auto& sz : sizes) {
    // variant 4: causal with a query mask only (row lists with gaps through the causal tiles)
    for (int variant = 0; variant < 5; ++variant) {
      const bool causal = variant == 1 || variant >= 3, masked = variant == 2 || variant == 3;
      AttentionParams p;
      p.batch_heads = 3;
      p.heads = masked ? 1 : 3;
      p.nq = sz[0];
      p.nk = causal ? std::max(sz[0], sz[1]) : sz[1];
      p.d = sz[2];
      p.dv = sz[3];
      p.scale = 1.0 / std::sqrt(double(p.d));
      p.causal = causal;
      std::vector<uint8_t> km(3 * p.nk, 1), qm(3 * p.nq, 1);
      std::mt19937 gen(17);
      for (auto& e : km) e = gen() % 4 != 0;
      for (auto& e : qm) e = gen() % 3 != 0;
      if (masked) {
        p.key_mask = km.data();
        p.query_mask = qm.data();
      }
      if (variant == 4) p.query_mask = qm.data();
      CAPTURE(variant);
      auto q = randn(3 * p.nq * p.d, 11, 1.5), k = randn(3 * p.nk * p.d, 12, 1.5),
           v = randn(3 * p.nk * p.dv, 13), dout = randn(3 * p.nq * p.dv, 14);
      const Isa prev = set_active_isa(Isa::Scalar);
      const Grads ds = run_kernel<double>(p, q, k, v, nullptr, 0, dout);
      const Grads fs = run_kernel<float>(p, q, k, v, nullptr, 0, dout);
      set_active_isa(Isa::Avx2);
      const Grads da = run_kernel<double>(p, q, k, v, nullptr, 0, dout);
      const Grads fa = run_kernel<float>(p, q, k, v, nullptr, 0, dout);
      set_active_isa(prev);
      CAPTURE(p.nq);
      CAPTURE(p.nk);
      CHECK(rel_err(da.out, ds.out) < 1e-13);
      CHECK(rel_err(da.dq, ds.dq) < 1e-13);
      CHECK(rel_err(da.dk, ds.dk) < 1e-13);
      CHECK(rel_err(da.dv, ds.dv) < 1e-13);
      for (const Grads* f : {&fs, &fa}) {
        CHECK(rel_err(f->out, ds.out) < 2e-5);
        CHECK(rel_err(f->lse, ds.lse) < 2e-5);
        CHECK(rel_err(f->dq, ds.dq) < 5e-5);
        CHECK(rel_err(f->dk, ds.dk) < 5e-5);
        CHECK(rel_err(f->dv, ds.dv) < 5e-5);
      }
    }
  }
}

TEST_CASE("dense attention: float AVX2 packed tiles (no key mask) agree with float64, repeatably") {
  // Float32 without bias, key mask, causality or dropout, d and dv multiples of 8, runs the packed
  // 128 x 128 tiles: several key blocks merged per query block (the last ones partial), query
  // masks as row lists, and the backward's private dq sums on two threads.
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(2);
  const int64_t sizes[][4] = {{300, 290, 64, 32}, {257, 385, 16, 64}, {5, 520, 128, 8}};
  for (auto& sz : sizes) {
    for (const bool qmasked : {false, true}) {
      AttentionParams p;
      p.batch_heads = 3;
      p.heads = 3;
      p.nq = sz[0];
      p.nk = sz[1];
      p.d = sz[2];
      p.dv = sz[3];
      p.scale = 1.0 / std::sqrt(double(p.d));
      std::vector<uint8_t> qm(p.nq);
      std::mt19937 gen(23);
      for (auto& e : qm) e = gen() % 3 != 0;
      if (qmasked) p.query_mask = qm.data();
      auto q = randn(3 * p.nq * p.d, 41, 1.5), k = randn(3 * p.nk * p.d, 42, 1.5),
           v = randn(3 * p.nk * p.dv, 43), dout = randn(3 * p.nq * p.dv, 44);
      const Isa prev = set_active_isa(Isa::Scalar);
      const Grads ds = run_kernel<double>(p, q, k, v, nullptr, 0, dout);
      set_active_isa(Isa::Avx2);
      const Grads fa = run_kernel<float>(p, q, k, v, nullptr, 0, dout);
      const Grads again = run_kernel<float>(p, q, k, v, nullptr, 0, dout);
      set_active_isa(prev);
      CAPTURE(p.nq);
      CAPTURE(qmasked);
      CHECK(rel_err(fa.out, ds.out) < 2e-5);
      CHECK(rel_err(fa.lse, ds.lse) < 2e-5);
      CHECK(rel_err(fa.dq, ds.dq) < 5e-5);
      CHECK(rel_err(fa.dk, ds.dk) < 5e-5);
      CHECK(rel_err(fa.dv, ds.dv) < 5e-5);
      CHECK(again.dq == fa.dq);
      CHECK(again.dk == fa.dk);
      CHECK(again.dv == fa.dv);
    }
  }
  omp_set_num_threads(saved_threads);
}

TEST_CASE("dense attention backward is bit-identical from run to run on two threads") {
  // Each thread sums the dq of the key tiles it processed into a private buffer; if the tile to
  // thread assignment followed timing (a dynamic schedule), dq would change in its last bits
  // between identical calls. 1024 keys = 16 tiles, so a timing-driven split shows up at once.
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(2);
  AttentionParams p;
  p.batch_heads = 2;
  p.heads = 2;
  p.nq = p.nk = 1024;
  p.d = p.dv = 32;
  p.scale = 1.0 / std::sqrt(32.0);
  p.causal = true;
  auto q = randn(2 * 1024 * 32, 31), k = randn(2 * 1024 * 32, 32), v = randn(2 * 1024 * 32, 33),
       dout = randn(2 * 1024 * 32, 34);
  const Grads first = run_kernel<float>(p, q, k, v, nullptr, 0, dout);
  for (int rep = 0; rep < 6; ++rep) {
    const Grads again = run_kernel<float>(p, q, k, v, nullptr, 0, dout);
    CHECK(again.dq == first.dq);
    CHECK(again.dk == first.dk);
    CHECK(again.dv == first.dv);
  }
  omp_set_num_threads(saved_threads);
}

TEST_CASE("dense attention rejects bad arguments with an [attention] message") {
  AttentionParams p;
  p.batch_heads = 3;
  p.heads = 2;
  p.nq = 4;
  p.nk = 4;
  p.d = 4;
  p.dv = 4;
  std::vector<double> x(64), o(64), l(64);
  CHECK_THROWS_WITH_AS(
      attention_forward<double>(p, x.data(), x.data(), x.data(), nullptr, o.data(), l.data()),
      doctest::Contains("[attention]"), std::invalid_argument);
  p.heads = 1;
  p.dropout_p = 1.0;
  CHECK_THROWS_AS(
      attention_forward<double>(p, x.data(), x.data(), x.data(), nullptr, o.data(), l.data()),
      std::invalid_argument);
}
