#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "apps/commands.h"
#include "core/device.h"
#include "core/threading.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/host_memory.h"
#ifdef SMYRF_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace smyrf::apps {
namespace {
int g_exit_code = 0;
}
int exit_code() { return g_exit_code; }
void set_exit_code(int code) { g_exit_code = code; }

void add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Print how smyrf was built and what this machine offers");
  cmd->callback([] {
    namespace kc = kernels::cpu;
    std::printf("smyrf 0.1\n");
    std::printf("cpu kernels : %s (avx2+fma on this cpu: %s)\n", kc::isa_name(kc::active_isa()),
                kc::cpu_has_avx2_fma() ? "yes" : "no");
    std::printf("threads     : %d (SMYRF_NUM_THREADS or OMP_NUM_THREADS)\n", omp_get_max_threads());
    // set by the re-execution in main() from the load at start-up, or by the user
    const char* spin = std::getenv("GOMP_SPINCOUNT");
    const char* policy = std::getenv("OMP_WAIT_POLICY");
    std::printf("omp spin    : %s%s (GOMP_SPINCOUNT; %d / %d: quiet / busy machine at start-up)\n",
                spin ? spin : "libgomp default",
                policy ? (std::string(", OMP_WAIT_POLICY=") + policy).c_str() : "", kQuietSpinCount,
                kBusySpinCount);
    std::printf(
        "host memory : huge pages %s (SMYRF_HUGEPAGES), freed-block cache up to %zu MiB "
        "(SMYRF_HOST_CACHE_MB)\n",
        kc::huge_pages_enabled() ? "advised" : "off", kc::host_cache_stats().limit_bytes >> 20);
    std::printf("cuda        : %s\n", built_with_cuda() ? "built with CUDA" : "built without CUDA");
    int n = cuda_device_count();
    std::printf("gpus        : %d\n", n);
#ifdef SMYRF_WITH_CUDA
    for (int i = 0; i < n; ++i)
      std::printf("  cuda:%d %s\n", i, kernels::cuda::device_description(i).c_str());
#endif
  });
}

}  // namespace smyrf::apps
