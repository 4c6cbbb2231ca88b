// The case registry, the runner that checks a case exercised its op, and the input helpers.
#include "tests/gradcheck/gradcheck_cases.h"

#include <algorithm>
#include <set>

#include "core/ops.h"

namespace smyrf::gc {

namespace {
// ops seen by the gradchecks of the case that is running (run_case is not reentrant)
std::set<std::string>& current_ops() {
  static std::set<std::string> ops;
  return ops;
}
int& current_checks() {
  static int n = 0;
  return n;
}
}  // namespace

std::vector<Case>& registry() {
  static std::vector<Case> cases;  // function-local: safe against static-init order
  return cases;
}

bool register_case(const char* op, const char* description, const char* file, int line) {
  registry().push_back(Case{op, description, file, line});
  return true;
}

const std::vector<std::string>& composite_labels() {
  static const std::vector<std::string> labels = {
      "var",     "std",       "norm",      "bmm",        "mse_loss",    "embedding", "split",
      "chunk",   "stack",     "topk",      "max_dim",    "min_dim",     "narrow",    "squeeze",
      "flatten", "transpose", "composite", "sub_scalar", "rdiv_scalar", "bce_logits"};
  return labels;
}

GradcheckResult check(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                      const GradcheckOptions& options) {
  GradcheckResult r = gradcheck(fn, inputs, options);
  CHECK_MESSAGE(r.ok, r.message);
  current_ops().insert(r.ops.begin(), r.ops.end());
  current_checks()++;
  return r;
}

void run_case(const char* op, void (*body)()) {
  current_ops().clear();
  current_checks() = 0;
  body();
  REQUIRE_MESSAGE(current_checks() > 0, "the case ran no gradcheck");
  const auto& comp = composite_labels();
  if (std::find(comp.begin(), comp.end(), op) != comp.end()) return;
  std::string seen;
  for (const std::string& s : current_ops()) seen += (seen.empty() ? "" : ", ") + s;
  CHECK_MESSAGE(current_ops().count(op) == 1,
                "the case is labelled '" << op << "' but its graphs only contain: " << seen);
}

Tensor randn64(const Shape& shape, uint64_t seed, bool requires_grad) {
  Generator g(seed);
  Tensor t = randn(shape, TensorOptions(DType::Float64), &g);
  t.requires_grad_(requires_grad);
  return t;
}

Tensor uniform64(const Shape& shape, double lo, double hi, uint64_t seed, bool requires_grad) {
  Generator g(seed);
  Tensor t = uniform(shape, lo, hi, TensorOptions(DType::Float64), &g);
  t.requires_grad_(requires_grad);
  return t;
}

Tensor away_from_zero(const Shape& shape, uint64_t seed, double lo, double hi) {
  Generator g(seed);
  std::vector<double> mag =
      uniform(shape, lo, hi, TensorOptions(DType::Float64), &g).to_vector<double>();
  std::vector<bool> neg = bernoulli(shape, 0.5, &g).to_vector<bool>();
  for (size_t i = 0; i < mag.size(); ++i)
    if (neg[i]) mag[i] = -mag[i];
  return from_vector(mag, shape, TensorOptions(DType::Float64).set_requires_grad());
}

Tensor distinct(const Shape& shape, uint64_t seed, double gap) {
  Generator g(seed);
  const int64_t n = shape_numel(shape);
  std::vector<int64_t> perm = randperm(n, &g).to_vector<int64_t>();
  std::vector<double> v(static_cast<size_t>(n));
  // centred so the values straddle zero; the gap keeps eps far from any reordering
  for (int64_t i = 0; i < n; ++i)
    v[i] = (static_cast<double>(perm[i]) - 0.5 * static_cast<double>(n)) * gap;
  return from_vector(v, shape, TensorOptions(DType::Float64).set_requires_grad());
}

Tensor transposed(const Shape& shape, uint64_t seed) {
  REQUIRE(shape.size() >= 2);
  Shape s = shape;
  std::swap(s[s.size() - 1], s[s.size() - 2]);
  Tensor base = randn64(s, seed, false);
  Tensor t = raw::transpose(base, -1, -2);
  t.requires_grad_();
  REQUIRE(!t.is_contiguous());
  return t;
}

Tensor strided(const Shape& shape, uint64_t seed) {
  REQUIRE(!shape.empty());
  Shape s = shape;
  s.back() = 2 * s.back() + 1;
  Tensor base = randn64(s, seed, false);
  Tensor t = raw::slice(base, -1, 1, s.back(), 2);
  t.requires_grad_();
  REQUIRE(t.shape() == shape);
  return t;
}

Tensor expanded(const Shape& shape, int64_t dim, uint64_t seed) {
  Shape s = shape;
  s[dim] = 1;
  Tensor t = raw::expand(randn64(s, seed, false), shape);
  t.requires_grad_();
  REQUIRE(t.strides()[dim] == 0);
  return t;
}

Tensor indices(const std::vector<int64_t>& values, const Shape& shape) {
  return from_vector(values, shape, TensorOptions(DType::Int64));
}

}  // namespace smyrf::gc
