#include "core/iter.h"

namespace smyrf {

Shape broadcast_strides(const Tensor& t, const Shape& shape) {
  const Shape& ts = t.shape();
  Shape st(shape.size(), 0);
  size_t off = shape.size() - ts.size();
  for (size_t i = 0; i < ts.size(); ++i) st[off + i] = ts[i] == 1 ? 0 : t.stride(static_cast<int64_t>(i));
  return st;
}

IterPlan make_iter_plan(const Shape& shape, const std::vector<Shape>& strides, const char* op) {
  IterPlan p;
  const size_t nops = strides.size();
  std::vector<int64_t> sz;
  std::vector<std::vector<int64_t>> st(nops);
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!sz.empty()) {
      bool merge = true;
      for (size_t k = 0; k < nops && merge; ++k) merge = st[k].back() == strides[k][d] * shape[d];
      if (merge) {
        sz.back() *= shape[d];
        for (size_t k = 0; k < nops; ++k) st[k].back() = strides[k][d];
        continue;
      }
    }
    sz.push_back(shape[d]);
    for (size_t k = 0; k < nops; ++k) st[k].push_back(strides[k][d]);
  }
  if (shape_numel(shape) == 0) {  // an empty space: one dim of size 0
    sz.assign(1, 0);
    for (auto& s : st) s.assign(1, 0);
  }
  SMYRF_CHECK(sz.size() <= static_cast<size_t>(kernels::cpu::kMaxDims), op,
              "too many non-mergeable dims (" << sz.size() << ") for " << shape_str(shape));
  p.ndim = static_cast<int>(sz.size());
  for (size_t d = 0; d < sz.size(); ++d) p.sizes[d] = sz[d];
  p.strides = std::move(st);
  for (auto& s : p.strides)
    if (s.empty()) s.push_back(0);
  return p;
}

}  // namespace smyrf
