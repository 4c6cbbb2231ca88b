// gradcheck: compares the analytic gradient (backward) of a function with central differences,
// in float64.
//
//   GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return softmax(in[0], 1); },
//                                 {randn({3, 4}, kFloat64).requires_grad_()});
//   if (!r.ok) std::cerr << r.message;
//
// What it checks, for every input that requires grad:
//   - the analytic gradient of <fn(inputs), v> for a random upstream gradient v (so non-scalar
//     outputs are covered) against (f(x + eps) - f(x - eps)) / (2 eps) for each element;
//     |analytic - numeric| <= atol + rtol |numeric| must hold everywhere.
//   - backward leaves the inputs' values unchanged,
//   - two forward+backward runs give bitwise identical gradients (deterministic backward).
//
// Inputs: floating inputs must be float64 (the numeric side needs the precision); integer and
// bool inputs (indices, masks) are passed through unchanged. Non-contiguous inputs (transposed,
// sliced with a step, expanded) are kept as they are: the numeric side perturbs the storage
// element a view element maps to. When several elements of an expanded view share one storage
// element, the analytic gradients of those elements are summed before comparing (the chain rule
// for the shared element). Inputs that require grad must not share storage with one another.
//
// fn must be deterministic (draw random numbers from a Generator it creates with a fixed seed)
// and return a float64 tensor. gradcheck never modifies the caller's tensors' .grad.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace smyrf {

struct GradcheckOptions {
  double eps = 1e-6;   // central-difference step
  double atol = 1e-7;  // absolute tolerance
  double rtol = 1e-5;  // relative tolerance, times |numeric|
  uint64_t seed = 0;   // of the random upstream gradient
  bool check_inputs_unchanged = true;
  bool check_determinism = true;
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;  // max |analytic - numeric| over all checked elements
  double max_rel_error = 0;  // max |analytic - numeric| / max(|numeric|, atol)
  int64_t worst_input = -1;  // input index of the largest violation (or largest error if ok)
  Shape worst_index;         // multi-index of that element in the input's shape
  double worst_analytic = 0, worst_numeric = 0;
  int64_t elements_checked = 0;
  std::vector<std::string> ops;  // names of the autograd nodes of fn's graph, sorted, unique
  std::string message;           // empty when ok; otherwise what failed, readable
  explicit operator bool() const { return ok; }
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Throws smyrf::Error for unusable arguments (non-float64 floating inputs, no input requiring
// grad, inputs sharing storage, fn returning a non-float64 or history-less tensor); a gradient
// mismatch is reported in the result, not thrown.
GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace smyrf
