#include "kernels/cpu/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include <omp.h>

namespace smyrf::kernels::cpu {
namespace {
// SMYRF_NUM_THREADS (documented in core/threading.h) is applied here, before main(), rather than
// in core/threading.cpp: this object is linked into every executable that runs a kernel, while
// threading.o is only pulled out of the static library by programs that call num_threads() or
// set_num_threads() (the smyrf CLI calls neither, and silently ignored the variable).
struct ApplyThreadEnvironment {
  ApplyThreadEnvironment() {
    if (const char* s = std::getenv("SMYRF_NUM_THREADS")) {
      const int n = std::atoi(s);
      if (n > 0) omp_set_num_threads(n);
    }
  }
} apply_thread_environment;

Isa detect() {
  const char* env = std::getenv("SMYRF_CPU");
  if (env && std::strcmp(env, "scalar") == 0) return Isa::Scalar;
  return cpu_has_avx2_fma() ? Isa::Avx2 : Isa::Scalar;
}
std::atomic<int>& current() {
  static std::atomic<int> isa{static_cast<int>(detect())};
  return isa;
}
}  // namespace

bool cpu_has_avx2_fma() {
#if defined(SMYRF_HAVE_AVX2_BUILD) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

Isa active_isa() { return static_cast<Isa>(current().load(std::memory_order_relaxed)); }

Isa set_active_isa(Isa isa) {
  if (isa == Isa::Avx2 && !cpu_has_avx2_fma()) isa = Isa::Scalar;
  return static_cast<Isa>(current().exchange(static_cast<int>(isa)));
}

const char* isa_name(Isa isa) { return isa == Isa::Avx2 ? "avx2" : "scalar"; }

}  // namespace smyrf::kernels::cpu
