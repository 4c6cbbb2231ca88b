#include "core/threading.h"

#include <omp.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>

#include "core/error.h"

namespace smyrf {
// SMYRF_NUM_THREADS is applied at start-up by kernels/cpu/cpu_features.cpp, which every program
// that runs a kernel links (this file is not pulled out of the static library by all of them).

int num_threads() { return omp_get_max_threads(); }

void set_num_threads(int n) {
  SMYRF_CHECK(n > 0, "set_num_threads", "thread count must be positive, got " << n);
  omp_set_num_threads(n);
}

int omp_spin_count_for(int others, int threads, int procs) {
  return others >= 0 && others + threads <= procs ? kQuietSpinCount : kBusySpinCount;
}

int other_runnable_tasks(int samples, int gap_us) {
  int least = -1;
  for (int i = 0; i < samples; ++i) {
    if (i > 0) usleep(static_cast<useconds_t>(gap_us));
    std::ifstream stat("/proc/stat");
    std::string key;
    long long value = -1;
    while (stat >> key) {
      if (key == "procs_running") {
        stat >> value;
        break;
      }
      stat.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    }
    if (value < 1) return -1;
    least = least < 0 ? static_cast<int>(value) : std::min(least, static_cast<int>(value));
  }
  return least < 0 ? -1 : least - 1;
}

bool reexec_with_omp_spin_for_load(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT") ||
      std::getenv("SMYRF_KEEP_OMP_SPIN") || !argv || !argv[0])
    return false;
  const int spin =
      omp_spin_count_for(other_runnable_tasks(), omp_get_max_threads(), omp_get_num_procs());
  // GOMP_SPINCOUNT is now set, so the re-executed program returns false here: no loop.
  if (setenv("GOMP_SPINCOUNT", std::to_string(spin).c_str(), 1) != 0) return false;
  execv("/proc/self/exe", argv);
  unsetenv("GOMP_SPINCOUNT");  // exec failed: leave the environment as it was
  return false;
}
}  // namespace smyrf
