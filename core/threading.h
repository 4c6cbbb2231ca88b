// Threads used by the CPU kernels (OpenMP). SMYRF_NUM_THREADS, read once at start-up, takes
// precedence over OMP_NUM_THREADS; set_num_threads changes it at run time.
#pragma once

namespace smyrf {
int num_threads();
void set_num_threads(int n);
}  // namespace smyrf
