#include "core/threading.h"

#include <omp.h>

#include <cstdlib>

#include "core/error.h"

namespace smyrf {
namespace {
// Applied before main() so that every kernel, including static initialisers, sees it.
struct ApplyEnvironment {
  ApplyEnvironment() {
    if (const char* s = std::getenv("SMYRF_NUM_THREADS")) {
      int n = std::atoi(s);
      if (n > 0) omp_set_num_threads(n);
    }
  }
} apply_environment;
}  // namespace

int num_threads() { return omp_get_max_threads(); }

void set_num_threads(int n) {
  SMYRF_CHECK(n > 0, "set_num_threads", "thread count must be positive, got " << n);
  omp_set_num_threads(n);
}
}  // namespace smyrf
