// Dense attention: argument checks, the scalar build of the drivers, and run-time dispatch.
#define SMYRF_ISA_NS scalar
#include "kernels/cpu/attention.h"

#include <sstream>
#include <stdexcept>

#include "kernels/cpu/attention_dense_impl.h"
#include "kernels/cpu/cpu_features.h"

namespace smyrf::kernels::cpu {

#if SMYRF_HAVE_AVX2_BUILD
namespace avx2 {
template <typename T>
void dense_forward(const AttentionParams&, const T*, const T*, const T*, const T*, T*, T*);
template <typename T>
void dense_backward(const AttentionParams&, const T*, const T*, const T*, const T*, const T*,
                    const T*, const T*, T*, T*, T*);
}  // namespace avx2
#endif

void attention_check(const AttentionParams& p) {
  auto fail = [&](const std::string& what, const std::string& hint) {
    std::ostringstream os;
    os << "[attention] " << what << ": BH=" << p.batch_heads << " heads=" << p.heads
       << " Nq=" << p.nq << " Nk=" << p.nk << " d=" << p.d << " dv=" << p.dv;
    if (!hint.empty()) os << "; " << hint;
    throw std::invalid_argument(os.str());
  };
  if (p.batch_heads < 0 || p.nq < 0 || p.nk < 0) fail("negative size", "");
  if (p.d <= 0 || p.dv <= 0) fail("head sizes must be positive", "");
  if (p.heads <= 0 || p.batch_heads % p.heads != 0)
    fail("heads must divide batch*heads", "BH is batch * heads, heads indexes the masks");
  if (!(p.dropout_p >= 0.0 && p.dropout_p < 1.0))
    fail("dropout_p must lie in [0, 1), got " + std::to_string(p.dropout_p), "");
  if (p.nq > INT32_MAX || p.nk > INT32_MAX) fail("sequence too long for 32-bit indices", "");
}

template <typename T>
void attention_forward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* bias,
                       T* out, T* lse) {
  attention_check(p);
#if SMYRF_HAVE_AVX2_BUILD
  if (active_isa() == Isa::Avx2) return avx2::dense_forward<T>(p, q, k, v, bias, out, lse);
#endif
  scalar::dense_forward<T>(p, q, k, v, bias, out, lse);
}

template <typename T>
void attention_backward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* bias,
                        const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv) {
  attention_check(p);
#if SMYRF_HAVE_AVX2_BUILD
  if (active_isa() == Isa::Avx2)
    return avx2::dense_backward<T>(p, q, k, v, bias, out, lse, dout, dq, dk, dv);
#endif
  scalar::dense_backward<T>(p, q, k, v, bias, out, lse, dout, dq, dk, dv);
}

#define SMYRF_INSTANTIATE(T)                                                                \
  template void attention_forward<T>(const AttentionParams&, const T*, const T*, const T*,  \
                                     const T*, T*, T*);                                     \
  template void attention_backward<T>(const AttentionParams&, const T*, const T*, const T*, \
                                      const T*, const T*, const T*, const T*, T*, T*, T*);
SMYRF_INSTANTIATE(float)
SMYRF_INSTANTIATE(double)
#undef SMYRF_INSTANTIATE

}  // namespace smyrf::kernels::cpu
