// SMYRF: the scalar build of the drivers, run-time dispatch, and the diagnostics.
#define SMYRF_ISA_NS scalar
#include "kernels/cpu/smyrf.h"

#include <stdexcept>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/smyrf_impl.h"
#include "kernels/cpu/smyrf_plan.h"

namespace smyrf::kernels::cpu {

#if SMYRF_HAVE_AVX2_BUILD
namespace avx2 {
template <typename T>
void smyrf_forward_impl(const SmyrfParams&, const SmyrfPlan&, const T*, const T*, const T*, T*, T*);
template <typename T>
void smyrf_backward_impl(const SmyrfParams&, const SmyrfPlan&, const T*, const T*, const T*,
                         const T*, const T*, const T*, T*, T*, T*);
}  // namespace avx2
#endif

void smyrf_check_plan(const SmyrfParams& p, const SmyrfPlan& plan) {
  smyrf_check(p);
  if (plan.batch_heads != p.batch_heads || plan.rounds != p.n_hashes || plan.nq != p.nq ||
      plan.nk != p.nk || plan.causal != p.causal)
    throw std::invalid_argument(
        "[smyrf_attention] the plan was made for other parameters (BH, n_hashes, Nq, Nk or "
        "causal differ); hint: build it with smyrf_make_plan from the same SmyrfParams");
}

template <typename T>
void smyrf_forward(const SmyrfParams& p, const SmyrfPlan& plan, const T* q, const T* k, const T* v,
                   T* out, T* lse) {
  smyrf_check_plan(p, plan);
#if SMYRF_HAVE_AVX2_BUILD
  if (active_isa() == Isa::Avx2) return avx2::smyrf_forward_impl<T>(p, plan, q, k, v, out, lse);
#endif
  scalar::smyrf_forward_impl<T>(p, plan, q, k, v, out, lse);
}

template <typename T>
void smyrf_backward(const SmyrfParams& p, const SmyrfPlan& plan, const T* q, const T* k, const T* v,
                    const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv) {
  smyrf_check_plan(p, plan);
#if SMYRF_HAVE_AVX2_BUILD
  if (active_isa() == Isa::Avx2)
    return avx2::smyrf_backward_impl<T>(p, plan, q, k, v, out, lse, dout, dq, dk, dv);
#endif
  scalar::smyrf_backward_impl<T>(p, plan, q, k, v, out, lse, dout, dq, dk, dv);
}

#define SMYRF_INSTANTIATE(T)                                                                \
  template void smyrf_forward<T>(const SmyrfParams&, const SmyrfPlan&, const T*, const T*,  \
                                 const T*, T*, T*);                                         \
  template void smyrf_backward<T>(const SmyrfParams&, const SmyrfPlan&, const T*, const T*, \
                                  const T*, const T*, const T*, const T*, T*, T*, T*);
SMYRF_INSTANTIATE(float)
SMYRF_INSTANTIATE(double)
#undef SMYRF_INSTANTIATE

void smyrf_cluster_assignment(const SmyrfParams& p, const SmyrfPlan& plan, int32_t* q_cluster,
                              int32_t* k_cluster) {
  smyrf_check_plan(p, plan);
  if (plan.causal)
    throw std::invalid_argument(
        "[smyrf_attention] cluster assignment is not defined in causal mode (each query has its "
        "own window); hint: use smyrf_multiplicity");
  std::copy(plan.q_cluster.begin(), plan.q_cluster.end(), q_cluster);
  std::copy(plan.k_cluster.begin(), plan.k_cluster.end(), k_cluster);
}

void smyrf_multiplicity(const SmyrfParams& p, const SmyrfPlan& plan, int32_t* m) {
  smyrf_check_plan(p, plan);
  const int64_t BH = p.batch_heads, R = p.n_hashes, nq = p.nq, nk = p.nk;
  std::fill(m, m + BH * nq * nk, 0);
  for (int64_t bh = 0; bh < BH; ++bh) {
    int32_t* mb = m + bh * nq * nk;
    if (!plan.causal) {
      for (int64_t r = 0; r < R; ++r) {
        const int32_t* qo = plan.q_order.data() + (bh * R + r) * nq;
        const int32_t* ko = plan.k_order.data() + (bh * R + r) * nk;
        for (int64_t c = 0; c < plan.n_chunks; ++c) {
          const int64_t q0 = c * p.cq, q1 = std::min<int64_t>(q0 + p.cq, plan.q_real[bh]);
          const int64_t k0 = c * p.ck, k1 = std::min<int64_t>(k0 + p.ck, plan.k_real[bh]);
          for (int64_t a = q0; a < q1; ++a)
            for (int64_t b = k0; b < k1; ++b) ++mb[qo[a] * nk + ko[b]];
        }
      }
      continue;
    }
    const uint8_t* qm = p.query_mask ? p.query_mask + (bh / p.heads) * nq : nullptr;
    CausalWalker w(p, plan, bh);
    std::vector<int32_t> keys;
    for (int64_t b = 0; b * p.cq < nq; ++b) {
      for (int64_t i = b * p.cq; i < std::min(nq, (b + 1) * p.cq); ++i) {
        if (qm && !qm[i]) continue;
        for (int64_t r = 0; r < R; ++r) {
          int64_t start, len;
          w.window(r, i, &start, &len);
          keys.clear();
          causal_key_list(w, p, bh, r, i, start, len, keys);
          for (int32_t j : keys) ++mb[i * nk + j];
        }
      }
      w.add_block(b);
    }
  }
}

}  // namespace smyrf::kernels::cpu
