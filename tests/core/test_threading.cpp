// SMYRF_NUM_THREADS is read once before main(). The only way to see that is a fresh process:
// this test re-runs its own binary with the variable set and only the child case selected; the
// child checks the thread count it started with and reports through its exit status.
#include <doctest/doctest.h>
#include <omp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
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

namespace {
constexpr const char* kSpinChildCase =
    "threading: re-executed child runs with the spin for its load";

// Forks; the child prepares its environment with `setup`, then calls reexec_with_omp_spin_for_load
// with an argv that selects only kSpinChildCase. Returns the child's exit status (or -1): 0 when
// the re-executed test passed, `no_exec_status` when the call returned instead of re-executing.
int spin_child_status(void (*setup)(), int no_exec_status) {
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    setup();
    std::string tc = std::string("--test-case=") + kSpinChildCase;
    std::string a0 = "test_core", a1 = "--minimal";
    char* argv[] = {a0.data(), tc.data(), a1.data(), nullptr};
    smyrf::reexec_with_omp_spin_for_load(argv);
    _exit(no_exec_status);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
}  // namespace

TEST_CASE("threading: re-executed child runs with the spin for its load") {
  const char* mode = std::getenv("SMYRF_SPIN_CHILD");
  if (!mode) return;  // only meaningful in the children started below
  const std::string m = mode;
  CHECK(m == "expect-reexec");  // "must-not-reexec" children must never get here
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  REQUIRE(spin != nullptr);
  // the load is the test machine's: either count, and nothing else
  const std::string s = spin;
  CHECK(
      (s == std::to_string(smyrf::kQuietSpinCount) || s == std::to_string(smyrf::kBusySpinCount)));
}

TEST_CASE(
    "threading: reexec_with_omp_spin_for_load re-executes once, and never over the user's choice") {
  // no policy set: the program is re-executed with GOMP_SPINCOUNT set (status 0 from the child
  // case; 7 would mean the call returned instead)
  CHECK(spin_child_status(
            [] {
              unsetenv("OMP_WAIT_POLICY");
              unsetenv("GOMP_SPINCOUNT");
              unsetenv("SMYRF_KEEP_OMP_SPIN");
              setenv("SMYRF_SPIN_CHILD", "expect-reexec", 1);
            },
            7) == 0);
  // any user setting wins: the call returns (status 0 from _exit) and nothing is re-executed
  for (const char* var : {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "SMYRF_KEEP_OMP_SPIN"}) {
    static const char* chosen;
    chosen = var;
    CHECK(spin_child_status(
              [] {
                unsetenv("OMP_WAIT_POLICY");
                unsetenv("GOMP_SPINCOUNT");
                unsetenv("SMYRF_KEEP_OMP_SPIN");
                setenv(chosen, "active", 1);
                setenv("SMYRF_SPIN_CHILD", "must-not-reexec", 1);
              },
              0) == 0);
  }
}

TEST_CASE("threading: the OpenMP spin is long only when the threads fit beside the running tasks") {
  using smyrf::kBusySpinCount;
  using smyrf::kQuietSpinCount;
  CHECK(smyrf::omp_spin_count_for(0, 2, 2) == kQuietSpinCount);
  CHECK(smyrf::omp_spin_count_for(1, 2, 2) == kBusySpinCount);  // a busy process beside two threads
  CHECK(smyrf::omp_spin_count_for(6, 2, 2) == kBusySpinCount);
  CHECK(smyrf::omp_spin_count_for(1, 1, 2) == kQuietSpinCount);
  CHECK(smyrf::omp_spin_count_for(14, 2, 16) == kQuietSpinCount);
  CHECK(smyrf::omp_spin_count_for(15, 2, 16) == kBusySpinCount);
  CHECK(smyrf::omp_spin_count_for(-1, 2, 2) == kBusySpinCount);  // /proc/stat unreadable
  CHECK(kQuietSpinCount > kBusySpinCount);
}

TEST_CASE("threading: other_runnable_tasks reads the run queue, not counting the caller") {
  const int others = smyrf::other_runnable_tasks(3, 100);
  // Linux always has /proc/stat; the caller itself is excluded, so an idle machine gives 0
  REQUIRE(others >= 0);
  CHECK(others < 100000);
  // a child that spins is runnable in every reading
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    while (std::chrono::steady_clock::now() < until) {
    }
    _exit(0);
  }
  usleep(20000);  // let it start
  const int with_child = smyrf::other_runnable_tasks(3, 1000);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(with_child >= 1);
}
