// The backward engine: dependency counting over the graph reachable from the roots, then nodes
// run in a topological order (Kahn), each once, with the sum of the gradients flowing into it.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "autograd/function.h"
#include "autograd/op_list.h"
#include "core/ops.h"

namespace smyrf {

namespace {
thread_local bool grad_mode_enabled = true;
}
bool GradMode::is_enabled() { return grad_mode_enabled; }
void GradMode::set_enabled(bool e) { grad_mode_enabled = e; }

bool is_registered_differentiable_op(const char* name) {
#define SMYRF_OP_NAME(n) #n,
  static const char* names[] = {SMYRF_DIFFERENTIABLE_OPS(SMYRF_OP_NAME)};
#undef SMYRF_OP_NAME
  for (const char* n : names)
    if (std::strcmp(n, name) == 0) return true;
  return false;
}

// ---------------------------------------------------------------- profiling
// Opt-in (SMYRF_PROFILE=1): wall time of every node's backward, summed per op name and printed to
// stderr at exit, largest first. There is no sampling profiler on the CPU targets; this is enough
// to see which backward ops dominate a training step. Off, it costs one cached getenv test.
namespace {
struct BackwardProfile {
  std::mutex m;
  std::map<std::string, std::pair<double, long>> ms_calls;
  ~BackwardProfile() {
    std::vector<std::pair<std::string, std::pair<double, long>>> v(ms_calls.begin(),
                                                                   ms_calls.end());
    std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second.first > b.second.first; });
    double total = 0;
    for (auto& e : v) total += e.second.first;
    std::fprintf(stderr, "[SMYRF_PROFILE] backward time per op (total %.1f ms)\n", total);
    for (auto& e : v)
      std::fprintf(stderr, "  %-28s %10.1f ms %5.1f%% %8ld calls\n", e.first.c_str(),
                   e.second.first, total > 0 ? 100.0 * e.second.first / total : 0.0,
                   e.second.second);
  }
};
bool profile_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("SMYRF_PROFILE");
    return e && *e && std::strcmp(e, "0") != 0;
  }();
  return on;
}
BackwardProfile& backward_profile() {
  static BackwardProfile p;
  return p;
}
}  // namespace

// ---------------------------------------------------------------- nodes
std::vector<Tensor> Node::apply(const std::vector<Tensor>& grad_outputs) {
  SMYRF_CHECK_HINT(!released_, "backward",
                   "trying to backward through the graph a second time (node " << name_ << ")",
                   "pass retain_graph=true to the first backward() if you need to backward twice");
  for (const Saved& s : saved)
    SMYRF_CHECK_HINT(s.storage->version() == s.version, name_,
                     "a tensor saved for backward was modified in place (version "
                         << s.storage->version() << ", expected " << s.version << ")",
                     "use the out-of-place op, or clone() the tensor before modifying it");
  return fn_(grad_outputs);
}

void Node::release() {
  fn_ = nullptr;
  saved.clear();
  released_ = true;
}

AccumulateGrad::AccumulateGrad(std::shared_ptr<TensorImpl> leaf)
    : Node("accumulate_grad", nullptr), leaf_(std::move(leaf)) {}

bool AccumulateGrad::adoptable(const Tensor& grad) {
  const TensorImpl& t = *grad.impl();
  // 2: the engine's gradient slot plus the caller's copy
  return grad.impl_ptr().use_count() == 2 && t.storage && t.storage.use_count() == 1 &&
         !t.grad_fn && !t.requires_grad && t.offset == 0 && grad.is_contiguous() &&
         t.storage->nbytes() == static_cast<size_t>(grad.numel()) * dtype_size(t.dtype);
}

std::vector<Tensor> AccumulateGrad::apply(const std::vector<Tensor>& g) {
  Tensor grad = g[0];
  for (auto& hook : leaf_->grad_hooks) hook(grad);
  if (!leaf_->grad) {
    // own the gradient: never alias a buffer the graph or the user may still use. When nobody
    // else can see it (the engine's slot and this copy are the only references to the tensor,
    // nothing else shares its storage, and it is exactly that storage, densely laid out), it is
    // adopted as it is: cloning a fresh gradient cost a full copy plus the page faults of a new
    // buffer (3 x 16 MiB per SMYRF attention call at BH 8, N 8192, about 4% of the op).
    leaf_->grad = adoptable(grad) ? grad.impl_ptr() : raw::clone(grad).impl_ptr();
  } else {
    Tensor acc(leaf_->grad);
    raw::binary_(raw::BinaryKind::Add, acc, grad);
  }
  return {};
}

// ---------------------------------------------------------------- recording
bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.impl()->requires_grad) return true;
  return false;
}

Tensor alias(const Tensor& t) { return raw::as_strided(t, t.shape(), t.strides(), t.offset()); }

namespace {
Edge edge_for(const Tensor& t) {
  if (!t.defined() || !t.impl()->requires_grad) return Edge{};
  if (t.impl()->grad_fn) return Edge{t.impl()->grad_fn, t.impl()->output_nr};
  // One accumulator per leaf (held weakly: the graph owns it), so a leaf used several times
  // receives one summed gradient and its hooks run once, as a non-leaf's do.
  std::shared_ptr<Node> acc = t.impl()->grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    t.impl()->grad_accumulator = acc;
  }
  return Edge{acc, 0};
}
}  // namespace

void record(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            BackwardFn backward, const std::vector<Tensor>& saved) {
  SMYRF_CHECK_HINT(is_registered_differentiable_op(name), "autograd",
                   "op '" << name << "' is not in the list of differentiable ops",
                   "add it to autograd/op_list.h and give it a gradient check in tests/gradcheck");
  auto node = std::make_shared<Node>(name, std::move(backward));
  for (const Tensor& t : inputs) {
    node->next.push_back(edge_for(t));
    node->input_shapes.push_back(t.defined() ? t.shape() : Shape{});
    node->input_dtypes.push_back(t.defined() ? t.dtype() : DType::Float32);
  }
  for (const Tensor& t : saved)
    if (t.defined()) node->saved.push_back({t.storage(), t.storage()->version()});
  for (size_t i = 0; i < outputs.size(); ++i) {
    // an op handing back one of its inputs would make that input its own ancestor (a cycle)
    for (const Tensor& t : inputs)
      SMYRF_CHECK(!outputs[i].is_same(t), name,
                  "autograd: output " << i << " is one of the op's inputs");
    TensorImpl* o = outputs[i].impl();
    o->requires_grad = true;
    o->grad_fn = node;
    o->output_nr = static_cast<uint32_t>(i);
    node->output_shapes.push_back(o->shape);
    node->output_dtypes.push_back(o->dtype);
    node->output_devices.push_back(outputs[i].device());
    node->outputs.push_back(outputs[i].impl_ptr());
  }
}

// ---------------------------------------------------------------- the engine
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads_in,
                  bool retain_graph) {
  NoGradGuard no_grad;
  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  std::unordered_map<Node*, int> deps;
  std::vector<std::shared_ptr<Node>> start;
  for (size_t r = 0; r < roots.size(); ++r) {
    const Tensor& root = roots[r];
    SMYRF_CHECK_HINT(root.defined() && root.impl()->requires_grad, "backward",
                     "the tensor does not require grad and has no grad_fn",
                     "set requires_grad on the leaves (e.g. parameters) before computing it");
    Tensor g = r < grads_in.size() ? grads_in[r] : Tensor();
    if (!g.defined()) {
      SMYRF_CHECK_HINT(
          root.numel() == 1, "backward",
          "grad can be implicitly created only for scalar outputs, got " << shape_str(root.shape()),
          "pass a gradient of the output's shape, or reduce to a scalar first (sum, mean)");
      // on the root's device: a CPU seed met the first CUDA gradient in an add and threw
      // (seen on the first GPU run, 2026-11-28)
      g = ones(root.shape(), TensorOptions(root.dtype()).set_device(root.device()));
    }
    SMYRF_CHECK_HINT(g.shape() == root.shape(), "backward",
                     "gradient of shape " << shape_str(g.shape()) << " for an output of shape "
                                          << shape_str(root.shape()),
                     "the gradient must have the output's shape");
    Edge e = edge_for(root);
    auto& buf = buffers[e.node.get()];
    if (buf.empty()) buf.resize(std::max<size_t>(e.node->output_shapes.size(), 1));
    buf[e.input_nr] =
        buf[e.input_nr].defined() ? raw::binary(raw::BinaryKind::Add, buf[e.input_nr], g) : g;
    start.push_back(e.node);
  }
  // dependency counts over the reachable graph
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack;
  for (auto& s : start)
    if (seen.insert(s.get()).second) stack.push_back(s.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next) {
      if (!e.node) continue;
      deps[e.node.get()]++;
      if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
    }
  }
  std::deque<std::shared_ptr<Node>> ready;
  std::unordered_set<Node*> queued;
  for (auto& s : start)
    if (deps[s.get()] == 0 && queued.insert(s.get()).second) ready.push_back(s);
  while (!ready.empty()) {
    std::shared_ptr<Node> n = ready.front();
    ready.pop_front();
    auto it = buffers.find(n.get());
    if (it == buffers.end()) {
      // no gradient reached this node: nothing to compute, but its inputs' counts still drop
      if (!retain_graph) n->release();
      for (const Edge& e : n->next)
        if (e.node && --deps[e.node.get()] == 0) ready.push_back(e.node);
      continue;
    }
    std::vector<Tensor> gout = std::move(it->second);
    buffers.erase(it);
    gout.resize(std::max<size_t>(n->output_shapes.size(), 1));
    for (size_t i = 0; i < n->output_shapes.size(); ++i) {
      if (!gout[i].defined()) {
        gout[i] = zeros(n->output_shapes[i],
                        TensorOptions(n->output_dtypes[i]).set_device(n->output_devices[i]));
        continue;
      }
      if (auto o = n->outputs[i].lock()) {
        for (auto& hook : o->grad_hooks) hook(gout[i]);
        if (o->retains_grad) {
          if (!o->grad)
            o->grad = raw::clone(gout[i]).impl_ptr();
          else
            raw::binary_(raw::BinaryKind::Add, Tensor(o->grad), gout[i]);
        }
      }
    }
    std::vector<Tensor> gin;
    if (profile_enabled()) {
      BackwardProfile& prof = backward_profile();
      auto t0 = std::chrono::steady_clock::now();
      gin = n->apply(gout);
      double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      std::lock_guard<std::mutex> lock(prof.m);
      auto& slot = prof.ms_calls[n->name()];
      slot.first += ms;
      slot.second += 1;
    } else {
      gin = n->apply(gout);
    }
    if (!retain_graph) n->release();
    for (size_t i = 0; i < n->next.size(); ++i) {
      const Edge& e = n->next[i];
      if (!e.node) continue;
      Tensor g = i < gin.size() ? gin[i] : Tensor();
      if (g.defined()) {
        SMYRF_CHECK(g.shape() == n->input_shapes[i], n->name() + " backward",
                    "returned a gradient of shape " << shape_str(g.shape()) << " for input " << i
                                                    << " of shape "
                                                    << shape_str(n->input_shapes[i]));
        if (g.dtype() != n->input_dtypes[i]) g = raw::to_dtype(g, n->input_dtypes[i]);
        auto& buf = buffers[e.node.get()];
        if (buf.size() <= e.input_nr)
          buf.resize(std::max<size_t>(e.node->output_shapes.size(), e.input_nr + 1));
        buf[e.input_nr] =
            buf[e.input_nr].defined() ? raw::binary(raw::BinaryKind::Add, buf[e.input_nr], g) : g;
      }
      if (--deps[e.node.get()] == 0) ready.push_back(e.node);
    }
  }
}

}  // namespace smyrf
