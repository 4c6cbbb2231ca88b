// Dense attention drivers built with -mavx2 -mfma (selected at run time by attention.cpp).
#if SMYRF_HAVE_AVX2_BUILD
#define SMYRF_ISA_NS avx2
#include "kernels/cpu/attention_dense_impl.h"

namespace smyrf::kernels::cpu::avx2 {
#define SMYRF_INSTANTIATE(T)                                                                      \
  template void dense_forward<T>(const AttentionParams&, const T*, const T*, const T*, const T*,  \
                                 T*, T*);                                                         \
  template void dense_backward<T>(const AttentionParams&, const T*, const T*, const T*, const T*, \
                                  const T*, const T*, const T*, T*, T*, T*);
SMYRF_INSTANTIATE(float)
SMYRF_INSTANTIATE(double)
#undef SMYRF_INSTANTIATE
}  // namespace smyrf::kernels::cpu::avx2
#endif
