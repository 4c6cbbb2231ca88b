#include "autograd/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <sstream>
#include <unordered_map>

#include "autograd/function.h"
#include "autograd/grad_mode.h"
#include "core/random.h"

namespace smyrf {

namespace {

// Storage element index of each view element, in row-major order of the view.
std::vector<int64_t> storage_positions(const Tensor& t) {
  const int64_t n = t.numel();
  const int64_t nd = t.dim();
  std::vector<int64_t> pos(static_cast<size_t>(n));
  Shape idx(static_cast<size_t>(nd), 0);
  for (int64_t e = 0; e < n; ++e) {
    int64_t p = t.offset();
    for (int64_t k = 0; k < nd; ++k) p += idx[k] * t.strides()[k];
    pos[e] = p;
    for (int64_t k = nd - 1; k >= 0; --k) {
      if (++idx[k] < t.shape()[k]) break;
      idx[k] = 0;
    }
  }
  return pos;
}

Shape unravel(int64_t flat, const Shape& shape) {
  Shape idx(shape.size(), 0);
  for (int64_t k = static_cast<int64_t>(shape.size()) - 1; k >= 0; --k) {
    idx[k] = flat % shape[k];
    flat /= shape[k];
  }
  return idx;
}

std::string index_str(const Shape& idx) {
  std::string r = "[";
  for (size_t i = 0; i < idx.size(); ++i) r += (i ? ", " : "") + std::to_string(idx[i]);
  return r + "]";
}

// The scalar whose gradient is checked: <out, v>, accumulated in long double so the rounding of
// the sum stays far below the central-difference signal.
double project(const Tensor& out, const std::vector<double>& v) {
  std::vector<double> o = out.to_vector<double>();
  long double s = 0;
  for (size_t i = 0; i < o.size(); ++i) s += static_cast<long double>(o[i]) * v[i];
  return static_cast<double>(s);
}

void collect_ops(const Tensor& out, std::vector<std::string>& names) {
  std::set<std::string> found;
  std::set<const Node*> seen;
  std::vector<const Node*> stack;
  if (out.grad_fn()) stack.push_back(out.grad_fn().get());
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    if (!seen.insert(n).second) continue;
    if (n->name() != "accumulate_grad") found.insert(n->name());
    for (const Edge& e : n->next)
      if (e.node) stack.push_back(e.node.get());
  }
  names.assign(found.begin(), found.end());
}

struct AnalyticRun {
  Shape out_shape;
  std::vector<double> v;                   // the upstream gradient, flat
  std::vector<std::vector<double>> grads;  // per input (empty for inputs without grad), flat
  std::vector<std::string> ops;
};

// One forward + backward with the upstream gradient drawn from `seed`. The function sees fresh
// leaves that alias the inputs (same storage and strides, no history), so gradients are taken
// with respect to the views exactly as passed and the caller's .grad stays untouched.
AnalyticRun run_analytic(const GradcheckFn& fn, const std::vector<Tensor>& inputs, uint64_t seed) {
  EnableGradGuard grad_on;
  std::vector<Tensor> leaves;
  for (const Tensor& in : inputs) {
    if (in.defined() && in.requires_grad()) {
      Tensor leaf = alias(in);
      leaf.requires_grad_(true);
      leaves.push_back(leaf);
    } else {
      leaves.push_back(in);
    }
  }
  Tensor out = fn(leaves);
  SMYRF_CHECK_HINT(
      out.defined() && out.dtype() == DType::Float64, "gradcheck",
      "fn must return a float64 tensor, got "
          << (out.defined() ? dtype_name(out.dtype()) : std::string("an undefined tensor")),
      "compute in float64: gradcheck needs the precision");
  SMYRF_CHECK_HINT(out.requires_grad(), "gradcheck",
                   "fn's output has no autograd history (shape " << shape_str(out.shape()) << ")",
                   "the output must depend on an input that requires grad");
  AnalyticRun r;
  r.out_shape = out.shape();
  collect_ops(out, r.ops);
  Generator gen(seed);
  Tensor v = randn(out.shape(), TensorOptions(DType::Float64), &gen);
  r.v = v.to_vector<double>();
  out.backward(v);
  r.grads.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!(inputs[i].defined() && inputs[i].requires_grad())) continue;
    Tensor g = leaves[i].grad();
    if (g.defined()) {
      SMYRF_CHECK(g.shape() == inputs[i].shape(), "gradcheck",
                  "gradient of input " << i << " has shape " << shape_str(g.shape())
                                       << ", the input " << shape_str(inputs[i].shape()));
      r.grads[i] = g.to_vector<double>();
    } else {
      r.grads[i].assign(static_cast<size_t>(inputs[i].numel()), 0.0);  // no gradient flows: zero
    }
  }
  return r;
}

std::vector<std::vector<double>> snapshot(const std::vector<Tensor>& inputs) {
  std::vector<std::vector<double>> s;
  for (const Tensor& t : inputs)
    s.push_back(t.defined() ? t.to_vector<double>() : std::vector<double>{});
  return s;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& opt) {
  SMYRF_CHECK(opt.eps > 0, "gradcheck", "eps must be positive, got " << opt.eps);
  std::vector<size_t> checked;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (!t.defined() || !t.requires_grad()) continue;
    SMYRF_CHECK_HINT(t.dtype() == DType::Float64 && t.device().is_cpu(), "gradcheck",
                     "input " << i << " requires grad but is " << dtype_name(t.dtype()) << " on "
                              << t.device().str(),
                     "pass float64 CPU tensors");
    for (size_t j : checked)
      SMYRF_CHECK_HINT(inputs[j].storage() != t.storage(), "gradcheck",
                       "inputs " << j << " and " << i << " share storage",
                       "perturbing one would move the other; pass a clone() of one of them");
    checked.push_back(i);
  }
  SMYRF_CHECK_HINT(!checked.empty(), "gradcheck", "no input requires grad",
                   "call requires_grad_() on the inputs to check");

  GradcheckResult res;
  std::ostringstream msg;
  auto fail = [&](const std::string& m) {
    res.ok = false;
    msg << (msg.tellp() > 0 ? "\n" : "") << m;
  };

  const std::vector<std::vector<double>> before = snapshot(inputs);
  AnalyticRun a = run_analytic(fn, inputs, opt.seed);
  res.ops = a.ops;
  if (opt.check_inputs_unchanged) {
    std::vector<std::vector<double>> after = snapshot(inputs);
    for (size_t i = 0; i < inputs.size(); ++i)
      if (!same_bits(before[i], after[i]))
        fail("input " + std::to_string(i) + " was modified by the forward or backward pass");
  }
  if (opt.check_determinism) {
    AnalyticRun b = run_analytic(fn, inputs, opt.seed);
    for (size_t i : checked) {
      if (same_bits(a.grads[i], b.grads[i])) continue;
      size_t e = 0;
      while (e < a.grads[i].size() &&
             std::memcmp(&a.grads[i][e], &b.grads[i][e], sizeof(double)) == 0)
        ++e;
      std::ostringstream m;
      m.precision(17);
      m << "backward is not deterministic: input " << i << " element "
        << index_str(unravel(static_cast<int64_t>(e), inputs[i].shape())) << " is " << a.grads[i][e]
        << " in one run and " << b.grads[i][e] << " in the next";
      fail(m.str());
    }
  }

  // numeric side: no graph, perturb storage elements in place (restored bit-exactly after each)
  NoGradGuard no_grad;
  double worst_ratio = -1;
  int64_t violations = 0;
  for (size_t i : checked) {
    const Tensor& t = inputs[i];
    double* base = static_cast<double*>(t.storage()->data());
    std::vector<int64_t> pos = storage_positions(t);
    // view elements grouped by storage element, in order of first appearance
    std::unordered_map<int64_t, size_t> group_of;
    std::vector<std::vector<int64_t>> groups;
    for (int64_t e = 0; e < static_cast<int64_t>(pos.size()); ++e) {
      auto [it, fresh] = group_of.emplace(pos[e], groups.size());
      if (fresh) groups.emplace_back();
      groups[it->second].push_back(e);
    }
    for (const std::vector<int64_t>& grp : groups) {
      double& slot = base[pos[grp[0]]];
      const double orig = slot;
      slot = orig + opt.eps;
      const double fp = project(fn(inputs), a.v);
      slot = orig - opt.eps;
      const double fm = project(fn(inputs), a.v);
      slot = orig;
      const double numeric = (fp - fm) / (2 * opt.eps);
      double analytic = 0;
      for (int64_t e : grp) analytic += a.grads[i][e];
      const double err = std::fabs(analytic - numeric);
      const double allowed = opt.atol + opt.rtol * std::fabs(numeric);
      const bool finite = std::isfinite(analytic) && std::isfinite(numeric);
      const double ratio = finite ? err / allowed : std::numeric_limits<double>::infinity();
      res.elements_checked++;
      if (finite) {
        res.max_abs_error = std::max(res.max_abs_error, err);
        res.max_rel_error =
            std::max(res.max_rel_error, err / std::max(std::fabs(numeric), opt.atol));
      }
      if (!finite || err > allowed) violations++;
      if (ratio > worst_ratio) {
        worst_ratio = ratio;
        res.worst_input = static_cast<int64_t>(i);
        res.worst_index = unravel(grp[0], t.shape());
        res.worst_analytic = analytic;
        res.worst_numeric = numeric;
      }
    }
  }
  if (violations > 0) {
    std::ostringstream m;
    m.precision(10);
    const Tensor& t = inputs[res.worst_input];
    m << "gradient mismatch in " << violations << " of " << res.elements_checked
      << " elements; worst: input " << res.worst_input << " " << shape_str(t.shape()) << " element "
      << index_str(res.worst_index) << ": analytic " << res.worst_analytic << ", numeric "
      << res.worst_numeric << " (|diff| " << std::fabs(res.worst_analytic - res.worst_numeric)
      << ", allowed " << opt.atol + opt.rtol * std::fabs(res.worst_numeric) << "); max abs error "
      << res.max_abs_error << ", max rel error " << res.max_rel_error;
    fail(m.str());
  }
  if (!res.ok) {
    std::string ops;
    for (const std::string& o : res.ops) ops += (ops.empty() ? "" : ", ") + o;
    msg << "\n  ops in the graph: " << (ops.empty() ? "(none)" : ops) << "; output "
        << shape_str(a.out_shape) << "; eps " << opt.eps << ", atol " << opt.atol << ", rtol "
        << opt.rtol;
    res.message = "gradcheck: " + msg.str();
  }
  return res;
}

}  // namespace smyrf
