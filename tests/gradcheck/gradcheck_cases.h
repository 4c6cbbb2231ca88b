// The registry of gradient-check cases and the helpers the case files share.
//
//   SMYRF_GRADCHECK_CASE("softmax", "over a middle dim") {
//     Tensor x = gc::randn64({2, 3, 4}, 1);
//     gc::check([](const std::vector<Tensor>& in) { return softmax(in[0], 1); }, {x});
//   }
//
// Each case becomes its own doctest test case ("gradcheck <op>: <description>") and is recorded
// in a static list. test_gradcheck_coverage.cpp walks SMYRF_DIFFERENTIABLE_OPS (autograd/op_list.h)
// and fails for any op without a case, so an op added later cannot skip its gradient check.
// A case labelled with an op name must actually put a node of that op in the checked graph
// (verified after the case runs); composite functions (var, norm, linear, ...) use labels from
// gc::composite_labels().
//
// Descriptions must not contain commas (doctest's --test-case filter splits on them).
#pragma once
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/random.h"

namespace smyrf::gc {

struct Case {
  const char* op;
  const char* description;
  const char* file;
  int line;
};

std::vector<Case>& registry();
bool register_case(const char* op, const char* description, const char* file, int line);
// Runs a case body, then checks that its gradchecks exercised the labelled op.
void run_case(const char* op, void (*body)());
// Labels allowed besides the differentiable op names: functions built from several ops.
const std::vector<std::string>& composite_labels();

// Runs gradcheck, reports a failure through doctest with gradcheck's message, and records the
// ops of the graph for run_case. Returns the result for cases that assert more.
GradcheckResult check(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                      const GradcheckOptions& options = {});

// ---- inputs (float64, requires grad unless noted; seeds keep every case reproducible)
Tensor randn64(const Shape& shape, uint64_t seed, bool requires_grad = true);
Tensor uniform64(const Shape& shape, double lo, double hi, uint64_t seed,
                 bool requires_grad = true);
// |x| in [lo, hi] with random signs: keeps abs/sign/relu kinks at 0 out of reach of eps
Tensor away_from_zero(const Shape& shape, uint64_t seed, double lo = 0.2, double hi = 1.5);
// Distinct values at least `gap` apart in random order: sort/amax/max without accidental ties
Tensor distinct(const Shape& shape, uint64_t seed, double gap = 0.1);
// Non-contiguous views of fresh data, as a leaf that requires grad:
Tensor transposed(const Shape& shape, uint64_t seed);             // last two dims swapped in memory
Tensor strided(const Shape& shape, uint64_t seed);                // last dim sliced with step 2
Tensor expanded(const Shape& shape, int64_t dim, uint64_t seed);  // `dim` has stride 0
Tensor indices(const std::vector<int64_t>& values, const Shape& shape);  // int64, no grad

}  // namespace smyrf::gc

#define SMYRF_GC_CAT_(a, b) a##b
#define SMYRF_GC_CAT(a, b) SMYRF_GC_CAT_(a, b)
#define SMYRF_GRADCHECK_CASE_IMPL_(op, desc, fn)                           \
  static void fn();                                                        \
  [[maybe_unused]] static const bool SMYRF_GC_CAT(fn, _registered) =       \
      ::smyrf::gc::register_case(op, desc, __FILE__, __LINE__);            \
  TEST_CASE("gradcheck " op ": " desc) { ::smyrf::gc::run_case(op, &fn); } \
  static void fn()
#define SMYRF_GRADCHECK_CASE(op, desc) \
  SMYRF_GRADCHECK_CASE_IMPL_(op, desc, SMYRF_GC_CAT(smyrf_gradcheck_case_, __COUNTER__))
