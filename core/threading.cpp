#include "core/threading.h"

#include <omp.h>

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
}  // namespace smyrf
