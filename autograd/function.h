// How an op joins the graph. Every differentiable op is written as:
//
//   Tensor my_op(const Tensor& a, const Tensor& b) {
//     Tensor out = raw::...(a, b);                       // compute without recording
//     if (needs_grad({a, b}))
//       record("my_op", {a, b}, {out}, [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
//         return {grad_a, grad_b};                          // one per input; {} where none flows
//       }, /*saved=*/{a, b});                             // tensors whose in-place change is an error
//     return out;
//   }
//
// Backward functions run with grad mode off and may call the public differentiable API.
// A backward that needs an op's *output* must capture alias(out) (an alias with no autograd
// history), otherwise out -> node -> closure -> out would be a reference cycle.
#pragma once
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "core/tensor.h"

namespace smyrf {

// True when grad mode is on and any defined input requires grad.
bool needs_grad(const std::vector<Tensor>& inputs);

// Connects outputs to a new node named `name` (must be in autograd/op_list.h).
void record(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            BackwardFn backward, const std::vector<Tensor>& saved = {});

// A tensor sharing t's storage, shape and strides, without autograd history.
Tensor alias(const Tensor& t);

// Runs backward from `roots` with gradients `grads` (undefined = ones for scalars).
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph);

}  // namespace smyrf
