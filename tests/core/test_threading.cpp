// SMYRF_NUM_THREADS is read once before main(). The only way to see that is a fresh process:
// this test re-runs its own binary with the variable set and only the child case selected; the
// child checks the thread count it started with and reports through its exit status.
#include <doctest/doctest.h>
#include <omp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "core/threading.h"

namespace {
constexpr const char* kChildCase = "threading: child process sees SMYRF_NUM_THREADS";

// Runs this test binary again with SMYRF_NUM_THREADS=n and only the child case; true if it passed.
bool child_passes(int n) {
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const std::string threads = std::to_string(n);
    setenv("SMYRF_NUM_THREADS", threads.c_str(), 1);
    setenv("SMYRF_THREADING_CHILD_EXPECT", threads.c_str(), 1);
    unsetenv("OMP_NUM_THREADS");
    const std::string tc = std::string("--test-case=") + kChildCase;
    execl("/proc/self/exe", "test_core", tc.c_str(), "--no-intro", "--no-version", "--minimal",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
}  // namespace

TEST_CASE("threading: child process sees SMYRF_NUM_THREADS") {
  const char* expect = std::getenv("SMYRF_THREADING_CHILD_EXPECT");
  if (!expect) return;  // only meaningful in the child started below
  CHECK(omp_get_max_threads() == std::atoi(expect));
  CHECK(smyrf::num_threads() == std::atoi(expect));
}

TEST_CASE("threading: SMYRF_NUM_THREADS sets the kernels' thread count at start-up") {
  CHECK(child_passes(1));
  CHECK(child_passes(3));
}
