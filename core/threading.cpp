#include "core/threading.h"

#include <omp.h>

#include <unistd.h>

#include <cstdlib>

#include "core/error.h"

namespace smyrf {
// SMYRF_NUM_THREADS is applied at start-up by kernels/cpu/cpu_features.cpp, which every program
// that runs a kernel links (this file is not pulled out of the static library by all of them).

int num_threads() { return omp_get_max_threads(); }

void set_num_threads(int n) {
  SMYRF_CHECK(n > 0, "set_num_threads", "thread count must be positive, got " << n);
  omp_set_num_threads(n);
}

bool reexec_with_short_omp_spin(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT") ||
      std::getenv("SMYRF_KEEP_OMP_SPIN") || !argv || !argv[0])
    return false;
  // GOMP_SPINCOUNT is now set, so the re-executed program returns false here: no loop.
  if (setenv("GOMP_SPINCOUNT", "300", 1) != 0) return false;
  execv("/proc/self/exe", argv);
  unsetenv("GOMP_SPINCOUNT");  // exec failed: leave the environment as it was
  return false;
}
}  // namespace smyrf
