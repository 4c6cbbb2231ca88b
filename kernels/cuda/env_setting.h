// A run-time setting of the CUDA kernels (host code): a value a setter may change, whose first
// read without a setter call comes from an environment variable. Shared by the attention pipeline
// depth, SMYRF's dq mode (attention.cu) and the strided kernels' rows path (elementwise.cu).
#pragma once
#include <atomic>

namespace smyrf::kernels::cuda::detail {

// The setting in `slot`, where `unset` marks "not yet read": then from_env() (which may throw:
// nothing is stored) is stored, unless a concurrent first read or a setter got there first.
template <typename T, typename FromEnv>
T setting_or_env(std::atomic<T>& slot, T unset, FromEnv from_env) {
  T v = slot.load();
  if (v != unset) return v;
  v = from_env();
  T expected = unset;
  return slot.compare_exchange_strong(expected, v) ? v : expected;
}

}  // namespace smyrf::kernels::cuda::detail
