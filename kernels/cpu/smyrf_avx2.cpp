// SMYRF drivers built with -mavx2 -mfma (selected at run time by smyrf.cpp).
#if SMYRF_HAVE_AVX2_BUILD
#define SMYRF_ISA_NS avx2
#include "kernels/cpu/smyrf_impl.h"

namespace smyrf::kernels::cpu::avx2 {
#define SMYRF_INSTANTIATE(T)                                                                     \
  template void smyrf_forward_impl<T>(const SmyrfParams&, const SmyrfPlan&, const T*, const T*,  \
                                      const T*, T*, T*);                                         \
  template void smyrf_backward_impl<T>(const SmyrfParams&, const SmyrfPlan&, const T*, const T*, \
                                       const T*, const T*, const T*, const T*, T*, T*, T*);
SMYRF_INSTANTIATE(float)
SMYRF_INSTANTIATE(double)
#undef SMYRF_INSTANTIATE
}  // namespace smyrf::kernels::cpu::avx2
#endif
