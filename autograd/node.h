// A node of the dynamic autograd graph: one per differentiable op application.
//
// A node holds the backward function of its op, edges to the nodes that produced its inputs
// (or AccumulateGrad sinks for leaves), the versions of the tensors it saved (checked before
// backward runs, so an in-place change is an error instead of a wrong gradient), and metadata
// of its outputs (to fill in zero gradients for unused outputs and to run hooks).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace smyrf {

class Node;

struct Edge {
  std::shared_ptr<Node> node;  // null: the input needs no gradient
  uint32_t input_nr = 0;       // which output of `node` this input was
};

using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grad_outputs)>;

class Node : public std::enable_shared_from_this<Node> {
 public:
  Node(std::string name, BackwardFn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  virtual ~Node() = default;

  const std::string& name() const { return name_; }
  // Runs backward: one gradient per input (undefined where no gradient flows).
  virtual std::vector<Tensor> apply(const std::vector<Tensor>& grad_outputs);
  // Drops saved state after a backward without retain_graph.
  virtual void release();
  bool released() const { return released_; }

  std::vector<Edge> next;           // one per input
  std::vector<Shape> input_shapes;  // to check what backward returns
  std::vector<DType> input_dtypes;
  std::vector<Shape> output_shapes;  // to build zero grads for unused outputs
  std::vector<DType> output_dtypes;
  std::vector<Device> output_devices;              // zero grads live where the output does
  std::vector<std::weak_ptr<TensorImpl>> outputs;  // for hooks and retain_grad (weak: no cycle)
  struct Saved {
    std::shared_ptr<Storage> storage;
    uint64_t version;
  };
  std::vector<Saved> saved;

 protected:
  std::string name_;
  BackwardFn fn_;
  bool released_ = false;
};

// The sink for a leaf tensor: adds the gradient into its .grad.
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf);
  std::vector<Tensor> apply(const std::vector<Tensor>& grad_outputs) override;
  void release() override {}

 private:
  // Whether a first gradient can become the leaf's .grad without a copy (no one else sees it).
  static bool adoptable(const Tensor& grad);
  std::shared_ptr<TensorImpl> leaf_;
};

}  // namespace smyrf
