#include "bench/memory_probe.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "kernels/cpu/host_memory.h"

namespace smyrf::bench {

void pin_mmap_threshold() {
  mallopt(M_MMAP_THRESHOLD, 64 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
  // the host block cache would hand a measured call the blocks of the call before it
  kernels::cpu::set_host_cache_limit(0);
}

double peak_added_mib(const std::function<void()>& fn) {
  auto read_kib = [](const char* key) -> double {
    std::ifstream f("/proc/self/status");
    std::string line;
    const size_t n = std::strlen(key);
    while (std::getline(f, line))
      if (line.compare(0, n, key) == 0) return std::atof(line.c_str() + n);
    return -1;
  };
  {
    std::ofstream clear("/proc/self/clear_refs");
    if (!(clear << "5" << std::flush)) return -1;
  }
  const double base = read_kib("VmRSS:");
  fn();
  const double peak = read_kib("VmHWM:");
  return base < 0 || peak < 0 ? -1 : (peak - base) / 1024.0;
}

}  // namespace smyrf::bench
