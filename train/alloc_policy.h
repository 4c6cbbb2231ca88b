// Process-wide malloc policy for training loops.
//
// A training step frees and reallocates the same large activation and gradient buffers every
// step. glibc serves buffers above its mmap threshold (dynamic, at most 32 MiB) with a fresh
// mmap that is unmapped on free, so each step page-faults and zero-fills them again; at GPT
// context 1024, batch 8 (32 MiB MLP activations) that was ~0.6 s of system time per step on one
// thread, and with the threshold pinned at 64 KiB (bench/memory_probe) ~1 s (measured with
// `smyrf bench lm-step`, 2026-11-28). PyTorch's caching allocator keeps such buffers; this does
// the same with malloc's own knobs: every buffer up to 1 GiB comes from the heap and freed
// memory is kept for reuse instead of being returned to the OS after every step.
//
// The price is resident memory: the heap does not shrink after the largest step, so RSS stays
// at the step's peak (what a caching allocator does too). Benchmarks that report memory use
// bench/memory_probe's pin_mmap_threshold for that measurement instead.
#pragma once

namespace smyrf::train {

// Sets M_MMAP_THRESHOLD to 1 GiB and M_TRIM_THRESHOLD to 2 GiB (fixed: glibc's dynamic
// threshold adjustment is off afterwards). Returns false when malloc refused a setting (the
// process then keeps running with the previous policy).
bool retain_freed_memory();

}  // namespace smyrf::train
