// Threads used by the CPU kernels (OpenMP). SMYRF_NUM_THREADS, read once at start-up, takes
// precedence over OMP_NUM_THREADS; set_num_threads changes it at run time.
#pragma once

namespace smyrf {
int num_threads();
void set_num_threads(int n);

// OpenMP idle-wait policy for shared hosts. libgomp's default lets an idle thread spin ~300000
// pause iterations (1-3 ms) before sleeping. When the host has more runnable threads than cores,
// that spin steals the time slice the other thread of the same parallel region needs to reach
// the join, and short kernels then cost a scheduler slice each. Measured with `smyrf bench gemm`
// on 2 vCPUs at load ~8 (median GFLOP/s, 4 interleaved rounds): 128^3 0.21 default, 37 with
// GOMP_SPINCOUNT=300, 47 with OMP_WAIT_POLICY=passive; 256^3 1.7 / 47 / 37; 512^3 8.5 / 20 / 17.
//
// libgomp reads its environment in its own constructor, before any of ours, and glibc resets
// environ after .preinit_array functions run, so the only way to change the policy from inside
// is to re-execute the program. Call this first thing in main(): unless the user set
// OMP_WAIT_POLICY, GOMP_SPINCOUNT or SMYRF_KEEP_OMP_SPIN, it sets GOMP_SPINCOUNT=300 (a ~10-40
// us spin: back-to-back kernels on a quiet machine still find the thread awake) and execv's
// /proc/self/exe with argv. It returns only when it did not re-execute (false: nothing to do;
// a failed exec also returns false and the program simply runs with the default policy).
bool reexec_with_short_omp_spin(char** argv);
}  // namespace smyrf
