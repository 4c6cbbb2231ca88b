// Helpers shared by the attention benchmarks (attention_bench.cpp on the CPU,
// cuda_attention_bench.cpp on CUDA): the environment filters of their rows and one timed pass of
// an attention op through autograd.
#pragma once
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <string>

#include "autograd/grad_mode.h"
#include "bench/registry.h"
#include "core/tensor.h"

namespace smyrf::bench {

// Whether `name` is in the comma-separated list of environment variable `var` (unset or empty:
// every name is), e.g. SMYRF_ATTN_IMPLS=dense,smyrf-4x64 for profiling runs.
inline bool env_lists(const char* var, const std::string& name) {
  const char* env = std::getenv(var);
  if (!env || !*env) return true;
  for (const std::string& tok : list_entries(env))
    if (tok == name) return true;
  return false;
}

// One pass of `op` (an attention call on the inputs): forward only without recording, or forward
// then backward from the upstream gradient `up`, after which the inputs' accumulated gradients
// are dropped so that every timed pass does the same work.
inline void run_attention_pass(const std::function<Tensor()>& op, bool backward, const Tensor& up,
                               std::initializer_list<const Tensor*> inputs) {
  if (!backward) {
    NoGradGuard ng;
    op();
    return;
  }
  op().backward(up);
  for (const Tensor* t : inputs) t->zero_grad();
}

}  // namespace smyrf::bench
