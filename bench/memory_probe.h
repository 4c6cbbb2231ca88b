// Peak resident memory added by a piece of work, for benchmarks that report memory.
#pragma once
#include <functional>

namespace smyrf::bench {

// Makes every buffer above 64 KiB an mmap that is unmapped on free, so RSS tracks live memory
// (glibc otherwise raises its mmap threshold after the first large free and keeps the pages, and
// a second run would reuse them without raising the RSS), and turns the host block cache off
// (kernels/cpu/host_memory.h) for the same reason. Call once before measuring.
void pin_mmap_threshold();

// Peak resident memory fn adds, in MiB: resets the high-water mark (/proc/self/clear_refs "5"),
// reads VmRSS, runs fn, reads VmHWM. Negative when the kernel refuses the reset.
double peak_added_mib(const std::function<void()>& fn);

}  // namespace smyrf::bench
