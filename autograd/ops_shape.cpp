// Views, joining, indexing and sorting, with their derivative rules.
#include "autograd/function.h"
#include "autograd/ops.h"
#include "core/ops.h"

namespace smyrf {

namespace {
Tensor view_node(const Tensor& x, const Tensor& y0) {
  // raw::squeeze returns x itself when there is nothing to squeeze; recording on it would give x
  // a grad_fn pointing back at x (a leaf would stop being one, and leak through the cycle)
  Tensor y = y0.is_same(x) ? alias(x) : y0;
  if (needs_grad({x})) {
    Shape s = x.shape();
    record("view", {x}, {y}, [s](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {raw::reshape(g[0], s)};
    });
  }
  return y;
}

// gradient of a view that picks part of x: zeros with g written into the same part
template <typename Pick>
Tensor part_node(const char* name, const Tensor& x, const Tensor& y, Pick pick) {
  if (needs_grad({x})) {
    Shape s = x.shape();
    DType dt = x.dtype();
    record(name, {x}, {y}, [s, dt, pick](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      Tensor z = zeros(s, TensorOptions(dt).set_device(g[0].device()));
      raw::copy_into(pick(z), g[0]);
      return {z};
    });
  }
  return y;
}
}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) { return view_node(x, raw::reshape(x, shape)); }
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  Tensor y = raw::permute(x, dims);
  if (needs_grad({x})) {
    std::vector<int64_t> inv(dims.size());
    for (size_t i = 0; i < dims.size(); ++i)
      inv[normalize_dim(dims[i], x.dim(), "permute")] = static_cast<int64_t>(i);
    record("permute", {x}, {y}, [inv](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {raw::permute(g[0], inv)};
    });
  }
  return y;
}
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  if (x.dim() == 0) return x;
  std::vector<int64_t> p(x.dim());
  for (int64_t i = 0; i < x.dim(); ++i) p[i] = i;
  std::swap(p[normalize_dim(d0, x.dim(), "transpose")], p[normalize_dim(d1, x.dim(), "transpose")]);
  return permute(x, p);
}

Tensor cat(const std::vector<Tensor>& ts, int64_t dim) {
  Tensor y = raw::cat(ts, dim);
  if (needs_grad(ts)) {
    int64_t d = normalize_dim(dim, ts[0].dim(), "cat");
    std::vector<int64_t> sizes;
    for (const Tensor& t : ts) sizes.push_back(t.shape()[d]);
    record("cat", ts, {y}, [d, sizes](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      std::vector<Tensor> r;
      int64_t at = 0;
      for (int64_t s : sizes) {
        r.push_back(raw::slice(g[0], d, at, at + s, 1));  // views: consumers copy if they must
        at += s;
      }
      return r;
    });
  }
  return y;
}

Tensor stack(const std::vector<Tensor>& ts, int64_t dim) {
  SMYRF_CHECK(!ts.empty(), "stack", "needs at least one tensor");
  int64_t d = normalize_dim(dim, ts[0].dim() + 1, "stack");
  std::vector<Tensor> u;
  for (size_t i = 0; i < ts.size(); ++i) {
    SMYRF_CHECK_HINT(ts[i].shape() == ts[0].shape(), "stack",
                     "tensor " << i << " has shape " << shape_str(ts[i].shape())
                               << ", tensor 0 has " << shape_str(ts[0].shape()),
                     "stack needs equal shapes");
    u.push_back(ts[i].unsqueeze(d));
  }
  return cat(u, d);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  int64_t d = normalize_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  SMYRF_CHECK_HINT(total == x.shape()[d], "split",
                   "sizes sum to " << total << " but dim " << d << " of " << shape_str(x.shape())
                                   << " has " << x.shape()[d],
                   "the sizes must add up to the dim's size");
  std::vector<Tensor> r;
  int64_t at = 0;
  for (int64_t s : sizes) {
    r.push_back(x.slice(d, at, at + s));
    at += s;
  }
  return r;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  SMYRF_CHECK(split_size > 0, "split", "split_size must be positive, got " << split_size);
  int64_t d = normalize_dim(dim, x.dim(), "split");
  std::vector<int64_t> sizes;
  for (int64_t at = 0; at < x.shape()[d]; at += split_size)
    sizes.push_back(std::min(split_size, x.shape()[d] - at));
  return split(x, sizes, d);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  SMYRF_CHECK(chunks > 0, "chunk", "chunks must be positive, got " << chunks);
  int64_t d = normalize_dim(dim, x.dim(), "chunk");
  int64_t n = x.shape()[d];
  return split(x, std::max<int64_t>((n + chunks - 1) / chunks, 1), d);
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor y = raw::gather(x, dim, index);
  if (needs_grad({x})) {
    Tensor idx = alias(index);
    Shape s = x.shape();
    DType dt = x.dtype();
    int64_t d = normalize_dim(dim, x.dim(), "gather");
    record("gather", {x}, {y},
           [idx, s, dt, d](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             // scatter into the part of a zero tensor the index spans (all of it, unless the
             // index is smaller than x in a dim other than d)
             Tensor z = zeros(s, TensorOptions(dt).set_device(g[0].device()));
             Tensor view = z;
             for (int64_t k = 0; k < static_cast<int64_t>(s.size()); ++k)
               if (k != d && idx.shape()[k] != s[k])
                 view = raw::slice(view, k, 0, idx.shape()[k], 1);
             raw::scatter_add_(view, d, idx, g[0]);
             return {z};
           },
           {index});
  }
  return y;
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor y = raw::index_select(x, dim, index);
  if (needs_grad({x})) {
    Tensor idx = alias(index);
    Shape s = x.shape();
    DType dt = x.dtype();
    int64_t d = normalize_dim(dim, x.dim(), "index_select");
    record("index_select", {x}, {y},
           [idx, s, dt, d](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             Tensor gx = zeros(s, TensorOptions(dt).set_device(g[0].device()));
             raw::index_add_(gx, d, idx, g[0]);
             return {gx};
           },
           {index});
  }
  return y;
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor y = raw::scatter_add(x, dim, index, src);
  if (needs_grad({x, src})) {
    Tensor idx = alias(index);
    int64_t d = normalize_dim(dim, x.dim(), "scatter_add");
    record("scatter_add", {x, src}, {y},
           [idx, d](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             return {g[0], raw::gather(g[0], d, idx)};
           },
           {index});
  }
  return y;
}

Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor y = raw::index_add(x, dim, index, src);
  if (needs_grad({x, src})) {
    Tensor idx = alias(index);
    int64_t d = normalize_dim(dim, x.dim(), "index_add");
    record("index_add", {x, src}, {y},
           [idx, d](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             return {g[0], raw::index_select(g[0], d, idx)};
           },
           {index});
  }
  return y;
}

Tensor one_hot(const Tensor& index, int64_t num_classes) {
  return raw::one_hot(index, num_classes);
}

namespace {
// The gradient node of values picked from x along dim d at indices idx (sort, topk): the
// incoming gradient scattered back to the places the values came from.
void record_selected_values(const Tensor& x, const Tensor& values, const Tensor& idx, int64_t d) {
  Tensor is = alias(idx);
  Shape s = x.shape();
  DType dt = x.dtype();
  record("sort_values", {x}, {values},
         [is, s, dt, d](const std::vector<Tensor>& g) -> std::vector<Tensor> {
           Tensor gx = zeros(s, TensorOptions(dt).set_device(g[0].device()));
           raw::scatter_add_(gx, d, is, g[0]);
           return {gx};
         });
}
}  // namespace

std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending) {
  auto [v, idx] = raw::sort(x, dim, descending);
  if (needs_grad({x}) && x.dim() == 0) {
    // a 0-d tensor sorts to a copy of itself: without this node its gradient was dropped
    record("sort_values", {x}, {v},
           [](const std::vector<Tensor>& g) -> std::vector<Tensor> { return {g[0]}; });
  } else if (needs_grad({x})) {
    record_selected_values(x, v, idx, normalize_dim(dim, x.dim(), "sort"));
  }
  return {v, idx};
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending) {
  return raw::sort(x, dim, descending).second;
}

std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  int64_t d = normalize_dim(dim, x.dim(), "topk");
  const int64_t n = x.dim() ? x.shape()[d] : 1;
  SMYRF_CHECK_HINT(k >= 0 && k <= n, "topk", "k = " << k << " but dim " << d << " has size " << n,
                   "choose k in [0, " << n << "]");
  if (x.dim() == 0) {  // (sort's 0-d handling)
    auto [v, i] = sort(x, d, largest);
    return {v.slice(d, 0, k).contiguous(), raw::contiguous(raw::slice(i, d, 0, k, 1))};
  }
  // raw::topk: a partial sort of each row when k is small (a full sort before: 10x slower for
  // k = 5 of 256); the gradient scatters into the selected places, as sort's does
  auto [v, idx] = raw::topk(x, k, d, largest);
  if (needs_grad({x})) record_selected_values(x, v, idx, d);
  return {v, idx};
}

// ---------------------------------------------------------------- Tensor view methods
Tensor Tensor::reshape(const Shape& shape) const { return smyrf::reshape(*this, shape); }
Tensor Tensor::view(const Shape& shape) const { return view_node(*this, raw::view(*this, shape)); }
Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  return smyrf::permute(*this, dims);
}
Tensor Tensor::transpose(int64_t d0, int64_t d1) const { return smyrf::transpose(*this, d0, d1); }
Tensor Tensor::slice(int64_t dim, int64_t start, int64_t end, int64_t step) const {
  int64_t d = normalize_dim(dim, this->dim(), "slice");
  return part_node(
      "slice", *this, raw::slice(*this, d, start, end, step),
      [d, start, end, step](const Tensor& z) { return raw::slice(z, d, start, end, step); });
}
Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length) const {
  int64_t d = normalize_dim(dim, this->dim(), "narrow");
  SMYRF_CHECK_HINT(start >= 0 && length >= 0 && start + length <= shape()[d], "narrow",
                   "range [" << start << ", " << start + length << ") exceeds dim " << d << " of "
                             << shape_str(shape()),
                   "start and length must stay within the dim");
  return slice(d, start, start + length, 1);
}
Tensor Tensor::select(int64_t dim, int64_t index) const {
  int64_t d = normalize_dim(dim, this->dim(), "select");
  return part_node("select", *this, raw::select(*this, d, index),
                   [d, index](const Tensor& z) { return raw::select(z, d, index); });
}
Tensor Tensor::expand(const Shape& shape) const {
  Tensor y = raw::expand(*this, shape);
  if (needs_grad({*this})) {
    Shape s = this->shape();
    record("expand", {*this}, {y}, [s](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {raw::sum_to(g[0], s)};
    });
  }
  return y;
}
Tensor Tensor::squeeze(int64_t dim) const { return view_node(*this, raw::squeeze(*this, dim)); }
Tensor Tensor::squeeze() const {
  Shape s;
  for (int64_t d : shape())
    if (d != 1) s.push_back(d);
  return view_node(*this, raw::reshape(*this, s));
}
Tensor Tensor::unsqueeze(int64_t dim) const { return view_node(*this, raw::unsqueeze(*this, dim)); }
Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  int64_t a = normalize_dim(start_dim, dim(), "flatten"),
          b = normalize_dim(end_dim, dim(), "flatten");
  SMYRF_CHECK(a <= b, "flatten", "start_dim " << a << " is after end_dim " << b);
  Shape s(shape().begin(), shape().begin() + a);
  int64_t m = 1;
  for (int64_t i = a; i <= b; ++i) m *= shape()[i];
  s.push_back(m);
  s.insert(s.end(), shape().begin() + b + 1, shape().end());
  return reshape(s);
}
Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor y = raw::clone(*this);
  if (needs_grad({*this}))
    record("contiguous", {*this}, {y},
           [](const std::vector<Tensor>& g) -> std::vector<Tensor> { return {g[0]}; });
  return y;
}
Tensor Tensor::clone() const {
  Tensor y = raw::clone(*this);
  if (needs_grad({*this}))
    record("clone", {*this}, {y},
           [](const std::vector<Tensor>& g) -> std::vector<Tensor> { return {g[0]}; });
  return y;
}
Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return *this;
  Tensor y = raw::to_dtype(*this, dt);
  if (needs_grad({*this}) && is_floating(dt)) {
    DType src = dtype();
    record("to_dtype", {*this}, {y}, [src](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {raw::to_dtype(g[0], src)};
    });
  }
  return y;
}
Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;  // a no-op, also for tensors inside a graph
  SMYRF_CHECK_HINT(!needs_grad({*this}), "to(device)",
                   "copies between devices are not recorded by autograd",
                   "move leaves (parameters, inputs) before building the graph");
  Tensor y = raw::to_device(*this, device);
  if (requires_grad() && is_leaf()) y.impl()->requires_grad = true;
  return y;
}

}  // namespace smyrf
