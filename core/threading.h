// Threads used by the CPU kernels (OpenMP). SMYRF_NUM_THREADS, read once at start-up, takes
// precedence over OMP_NUM_THREADS; set_num_threads changes it at run time.
#pragma once

namespace smyrf {
int num_threads();
void set_num_threads(int n);

// OpenMP idle-wait policy for shared hosts. libgomp's default lets an idle thread spin ~300000
// pause iterations (1-7 ms) before sleeping. When the host has more runnable threads than cores,
// that spin steals the time slice the other thread of the same parallel region needs to reach
// the join, and short kernels then cost a scheduler slice each. Measured with `smyrf bench gemm`
// on 2 vCPUs at load ~8 (median GFLOP/s, 4 interleaved rounds): 128^3 0.21 default, 37 with
// GOMP_SPINCOUNT=300, 47 with OMP_WAIT_POLICY=passive; 256^3 1.7 / 47 / 37; 512^3 8.5 / 20 / 17.
//
// A spin too short costs on a quiet machine instead: on the 2-vCPU EPYC a pause is 23 ns, so 300
// of them are ~7 us, less than a vCPU that halted takes to wake (10-90 us). Once one thread of a
// region sleeps, its partner's wait at the next barrier outlasts the spin too and the pair can
// settle into paying a wake-up per region: `smyrf bench gemm` 128^3 ran at 87-92 GFLOP/s in 1
// to 5 of 10 processes (230 in the others; one thread alone: 126), and `bench gan-step --shapes
// cpu` (many short kernels), 4 alternated rounds, took 173.5 ms with GOMP_SPINCOUNT=300, 151.0
// with 1000, 145.9 with 3000 and 144.0 with 30000 (128^3: 10 of 10 processes fast at 3000).
// With 6 busy processes beside it the same step took 671 / 795 / 914 ms at 300 / 1000 / 3000.
// So the spin follows the load found at start-up: kQuietSpinCount when this program's threads
// fit beside the tasks already running, kBusySpinCount otherwise.
inline constexpr int kQuietSpinCount = 3000;
inline constexpr int kBusySpinCount = 300;

// The spin count for `threads` OpenMP threads on `procs` usable CPUs with `others` tasks already
// runnable (others < 0: unknown, taken as busy).
int omp_spin_count_for(int others, int threads, int procs);

// Tasks runnable on the machine besides the calling thread: the least of `samples` readings of
// /proc/stat's procs_running, `gap_us` apart (a CPU-bound competitor shows in every reading, a
// passing one does not), minus one. -1 when /proc/stat cannot be read.
int other_runnable_tasks(int samples = 5, int gap_us = 1000);

// libgomp reads its environment in its own constructor, before any of ours, and glibc resets
// environ after .preinit_array functions run, so the only way to change the policy from inside
// is to re-execute the program. Call this first thing in main(): unless the user set
// OMP_WAIT_POLICY, GOMP_SPINCOUNT or SMYRF_KEEP_OMP_SPIN, it sets GOMP_SPINCOUNT to
// omp_spin_count_for(other_runnable_tasks(), threads, CPUs) and execv's /proc/self/exe with
// argv. It returns only when it did not re-execute (false: nothing to do; a failed exec also
// returns false and the program simply runs with the default policy).
bool reexec_with_omp_spin_for_load(char** argv);
}  // namespace smyrf
