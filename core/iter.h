// Preparing strided index spaces for the elementwise kernels: broadcast strides (0 on broadcast
// dims), drop size-1 dims and merge dims that are contiguous for every operand, so most kernels
// see one long run.
#pragma once
#include <vector>

#include "core/tensor.h"
#include "kernels/cpu/nd_loop.h"

namespace smyrf {

struct IterPlan {
  int ndim = 0;
  int64_t sizes[kernels::cpu::kMaxDims];
  std::vector<std::vector<int64_t>> strides;  // one per operand, ndim entries each
  const int64_t* s(size_t k) const { return strides[k].data(); }
};

// Strides of t when broadcast to `shape` (t's rank may be smaller).
Shape broadcast_strides(const Tensor& t, const Shape& shape);

// Plan for `shape` with the given per-operand strides (each of rank shape.size()).
IterPlan make_iter_plan(const Shape& shape, const std::vector<Shape>& strides, const char* op);

}  // namespace smyrf
