// The host-side arithmetic of the CUDA stored-dS dq path (kernels/cuda/smyrf_stored_ds.h: where
// each pair's dS goes, the K gather and dq scatter of SortedRows, and the batched product's
// arguments) run on the CPU: dS from the plan's clusters into stored_ds_index, the product with
// kernels/cpu's sgemm_batched (the row-major interface blas.h's bf16_gemm_batched_f32 shares),
// then the scatter, round by round; the result must be cpu::smyrf_backward's dq. The device
// kernels that use these (attention.cu, attention_mma.cuh) need a GPU: tests/cuda runs them.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/smyrf.h"
#include "kernels/cuda/smyrf_stored_ds.h"

using namespace smyrf::kernels;

namespace {

struct Case {
  int64_t bh, nq, nk, d, dv, rounds, cq, ck;
  bool mask;
};

void check_case(const Case& c) {
  CAPTURE(c.nq);
  CAPTURE(c.nk);
  CAPTURE(c.cq);
  CAPTURE(c.ck);
  CAPTURE(c.mask);
  cpu::SmyrfParams p;
  p.batch_heads = c.bh, p.heads = 1, p.nq = c.nq, p.nk = c.nk, p.d = c.d, p.dv = c.dv;
  p.n_hashes = c.rounds, p.cq = c.cq, p.ck = c.ck, p.seed = 7;
  p.scale = 1.0 / std::sqrt(static_cast<double>(c.d));
  std::vector<uint8_t> km(static_cast<size_t>(c.bh * c.nk), 1);
  if (c.mask) {
    for (size_t j = 0; j < km.size(); j += 5) km[j] = 0;
    p.key_mask = km.data();
  }
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.f, 1.f);
  auto rnd = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = normal(gen);
    return v;
  };
  const auto q = rnd(c.bh * c.nq * c.d), k = rnd(c.bh * c.nk * c.d), v = rnd(c.bh * c.nk * c.dv);
  const auto up = rnd(c.bh * c.nq * c.dv);
  const cpu::SmyrfPlan plan = cpu::smyrf_make_plan<float>(p, q.data(), k.data());
  std::vector<float> out(c.bh * c.nq * c.dv), lse(c.bh * c.nq), dq(c.bh * c.nq * c.d),
      dk(c.bh * c.nk * c.d), dv(c.bh * c.nk * c.dv);
  cpu::smyrf_forward<float>(p, plan, q.data(), k.data(), v.data(), out.data(), lse.data());
  cpu::smyrf_backward<float>(p, plan, q.data(), k.data(), v.data(), out.data(), lse.data(),
                             up.data(), dq.data(), dk.data(), dv.data());
  std::vector<double> D(static_cast<size_t>(c.bh * c.nq));  // dout . out per query
  for (int64_t i = 0; i < c.bh * c.nq; ++i)
    for (int64_t e = 0; e < c.dv; ++e) D[i] += double(up[i * c.dv + e]) * out[i * c.dv + e];

  const int64_t chunks = plan.n_chunks, clusters = c.bh * chunks;
  std::vector<float> ds_t(clusters * c.ck * c.cq, 0.f), k_sorted(clusters * c.ck * c.d),
      dq_sorted(clusters * c.cq * c.d);
  std::vector<double> dq_sum(c.bh * c.nq * c.d, 0.0);
  for (int64_t r = 0; r < c.rounds; ++r) {
    // what the dk/dv kernel stores: dS / scale of every listed pair of every chunk
    for (int64_t bh = 0; bh < c.bh; ++bh)
      for (int64_t ch = 0; ch < chunks; ++ch) {
        const int64_t qlo = ch * c.cq, qhi = std::min<int64_t>(qlo + c.cq, plan.q_real[bh]);
        const int64_t klo = ch * c.ck, khi = std::min<int64_t>(klo + c.ck, plan.k_real[bh]);
        for (int64_t kpos = 0; kpos < khi - klo; ++kpos)
          for (int64_t qpos = 0; qpos < qhi - qlo; ++qpos) {
            const int64_t i = plan.q_order[(bh * c.rounds + r) * c.nq + qlo + qpos];
            const int64_t j = plan.k_order[(bh * c.rounds + r) * c.nk + klo + kpos];
            double s = 0, dp = 0;
            for (int64_t e = 0; e < c.d; ++e)
              s += double(q[(bh * c.nq + i) * c.d + e]) * k[(bh * c.nk + j) * c.d + e];
            for (int64_t e = 0; e < c.dv; ++e)
              dp += double(up[(bh * c.nq + i) * c.dv + e]) * v[(bh * c.nk + j) * c.dv + e];
            const double pr = std::exp(p.scale * s - lse[bh * c.nq + i]);
            ds_t[cuda::stored_ds_index(bh, chunks, ch, c.ck, c.cq, kpos, qpos)] =
                static_cast<float>(pr * (dp - D[bh * c.nq + i]));
          }
      }
    const cuda::SortedRows ks{plan.k_order.data(), plan.k_real.data(),   c.nk, c.rounds, r,
                              chunks * c.ck,       static_cast<int>(c.d)};
    for (int64_t e = 0; e < clusters * c.ck * c.d; ++e) {
      const int64_t at = ks.token_element(e);
      k_sorted[e] = at >= 0 ? k[at] : 0.f;
    }
    const cuda::StoredDsProduct g = cuda::stored_ds_product(clusters, c.cq, c.ck, c.d, p.scale);
    cpu::sgemm_batched(g.trans_a, g.trans_b, g.batch, g.M, g.N, g.K, g.alpha, ds_t.data(), g.lda,
                       g.stride_a, k_sorted.data(), g.ldb, g.stride_b, 0.0f, dq_sorted.data(),
                       g.ldc, g.stride_c);
    const cuda::SortedRows qs{plan.q_order.data(), plan.q_real.data(),   c.nq, c.rounds, r,
                              chunks * c.cq,       static_cast<int>(c.d)};
    for (int64_t e = 0; e < clusters * c.cq * c.d; ++e) {
      const int64_t at = qs.token_element(e);
      if (at >= 0) dq_sum[at] += dq_sorted[e];
    }
  }
  double worst = 0, mag = 0;
  for (size_t i = 0; i < dq.size(); ++i) {
    worst = std::max(worst, std::fabs(dq_sum[i] - dq[i]));
    mag = std::max(mag, double(std::fabs(dq[i])));
  }
  CAPTURE(worst);
  CHECK(mag > 0.1);  // a test that compares zeros cannot fail
  CHECK(worst <= 2e-5 * mag);
}

}  // namespace

TEST_CASE("stored-dS dq arithmetic (CUDA path's host side) reproduces the CPU SMYRF dq") {
  const Case cases[] = {
      {2, 200, 200, 32, 24, 3, 64, 64, false},    // tail clusters, dv != d
      {2, 200, 200, 32, 32, 3, 32, 32, true},     // key mask: fewer real keys than queries
      {2, 256, 64, 32, 48, 2, 64, 16, false},     // cross attention, cq != ck
      {1, 97, 97, 40, 40, 2, 128, 128, true},     // one partial cluster
      {1, 300, 300, 72, 72, 2, 100, 100, false},  // clusters not a multiple of 64
  };
  for (const Case& c : cases) check_case(c);
}
