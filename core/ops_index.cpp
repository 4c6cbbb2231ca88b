// Joining, indexing and sorting.
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "core/ops.h"
#include "core/ops_cuda.h"
#include "kernels/cpu/index.h"

namespace smyrf::raw {
namespace kc = kernels::cpu;

namespace {
// (outer, n, inner) around `dim` of a contiguous shape
void split_around(const Shape& s, int64_t dim, int64_t& outer, int64_t& inner) {
  outer = 1, inner = 1;
  for (int64_t i = 0; i < dim; ++i) outer *= s[i];
  for (int64_t i = dim + 1; i < static_cast<int64_t>(s.size()); ++i) inner *= s[i];
}

// The index as a contiguous int64 tensor (itself when it is one), not yet range-checked.
Tensor index_as_int64(const Tensor& index, const char* op) {
  SMYRF_CHECK_HINT(is_integral(index.dtype()), op,
                   "index must be int32 or int64, got " << dtype_name(index.dtype()),
                   "convert with .to(kInt64)");
  return contiguous(to_dtype(index, DType::Int64));
}

Tensor checked_index(const Tensor& index, int64_t n, const char* op) {
  Tensor idx = index_as_int64(index, op);
  // CUDA indices are checked on the device (a flag read back, not the indices); only a bad one
  // brings them to the host, to name it: the same Error on both devices instead of an
  // out-of-bounds read in a kernel
  if (idx.device().is_cuda() && cuda_ops::indices_in_range(idx, n)) return idx;
  const Tensor host = idx.device().is_cpu() ? idx : to_device(idx, Device::cpu());
  const int64_t* p = host.data_ptr<int64_t>();
  // one branch-free pass (vectorised, both threads) for the common case, then the first bad
  // index for the message; the loop had re-evaluated numel() and thrown per element, 40% of a
  // 4096^2 gather
  const int64_t count = idx.numel();
  const uint64_t bound = static_cast<uint64_t>(n);
  bool ok = true;
#pragma omp parallel for reduction(&& : ok) if (count >= (int64_t{1} << 18) && !omp_in_parallel())
  for (int64_t i = 0; i < count; ++i) ok = ok && static_cast<uint64_t>(p[i]) < bound;
  if (!ok)
    for (int64_t i = 0; i < count; ++i)
      SMYRF_CHECK_HINT(p[i] >= 0 && p[i] < n, op,
                       "index " << p[i] << " is out of range for a dim of size " << n,
                       "indices must be in [0, " << n << ")");
  return idx;
}

// t, or a copy of it where it shares out's storage (an in-place op must not read what it writes).
Tensor unaliased(const Tensor& t, const Tensor& out) {
  return t.storage() == out.storage() ? clone(t) : t;
}
// The end of an in-place op that ran on `out`, contiguous(dst): copied back when dst is a strided
// view (copy_into bumps its version), else dst's version bumped here.
void finish_in_place(const Tensor& dst, const Tensor& out) {
  if (out.storage() != dst.storage())
    copy_into(dst, out);
  else
    dst.storage()->bump_version();
}

void require_same_device(const Tensor& a, const Tensor& b, const char* op) {
  SMYRF_CHECK_HINT(
      a.device() == b.device(), op,
      "operands on different devices: " << a.device().str() << " and " << b.device().str(),
      "move both to one device with .to(device)");
}
TensorOptions on(DType dt, const Tensor& like) {
  return TensorOptions(dt).set_device(like.device());
}
}  // namespace

Tensor cat(const std::vector<Tensor>& ts, int64_t dim) {
  SMYRF_CHECK(!ts.empty(), "cat", "needs at least one tensor");
  const Tensor& first = ts[0];
  // normalize_dim accepts dim 0 on a 0-d tensor, and shape()[0] of it read out of bounds
  SMYRF_CHECK_HINT(first.dim() > 0, "cat",
                   "cannot concatenate 0-d tensors (shape " << shape_str(first.shape()) << ")",
                   "use stack, or unsqueeze them to shape (1,)");
  dim = normalize_dim(dim, first.dim(), "cat");
  DType dt = first.dtype();
  int64_t total = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    const Tensor& t = ts[i];
    SMYRF_CHECK_HINT(t.dim() == first.dim(), "cat",
                     "tensor " << i << " has shape " << shape_str(t.shape()) << ", tensor 0 has "
                               << shape_str(first.shape()),
                     "all tensors need the same rank");
    for (int64_t d = 0; d < t.dim(); ++d)
      SMYRF_CHECK_HINT(d == dim || t.shape()[d] == first.shape()[d], "cat",
                       "tensor " << i << " has shape " << shape_str(t.shape()) << ", tensor 0 has "
                                 << shape_str(first.shape()),
                       "sizes must match except in dim " << dim);
    dt = promote_types(dt, t.dtype());
    total += t.shape()[dim];
  }
  Shape s = first.shape();
  s[dim] = total;
  TensorOptions o(dt);
  o.device = first.device();
  Tensor out = empty(s, o);
  int64_t at = 0;
  for (const Tensor& t : ts) {
    copy_into(slice(out, dim, at, at + t.shape()[dim], 1), t);
    at += t.shape()[dim];
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& ts, int64_t dim) {
  SMYRF_CHECK(!ts.empty(), "stack", "needs at least one tensor");
  dim = normalize_dim(dim, ts[0].dim() + 1, "stack");
  std::vector<Tensor> u;
  for (size_t i = 0; i < ts.size(); ++i) {
    SMYRF_CHECK_HINT(ts[i].shape() == ts[0].shape(), "stack",
                     "tensor " << i << " has shape " << shape_str(ts[i].shape())
                               << ", tensor 0 has " << shape_str(ts[0].shape()),
                     "stack needs equal shapes");
    u.push_back(unsqueeze(ts[i], dim));
  }
  return cat(u, dim);
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  require_same_device(x, index, "index_select");
  dim = normalize_dim(dim, x.dim(), "index_select");
  SMYRF_CHECK(index.dim() <= 1, "index_select",
              "index must be 1-D, got " << shape_str(index.shape()));
  Tensor idx = checked_index(index, x.shape()[dim], "index_select");
  Tensor xc = contiguous(x);
  Shape s = x.shape();
  s[dim] = idx.numel();
  Tensor out = empty(s, on(x.dtype(), x));
  int64_t outer, inner;
  split_around(x.shape(), dim, outer, inner);
  if (x.device().is_cuda()) {
    cuda_ops::index_select(xc, idx, out, outer, x.shape()[dim], idx.numel(), inner);
    return out;
  }
  SMYRF_DISPATCH_ALL(x.dtype(), "index_select", [&] {
    if constexpr (!std::is_same_v<scalar_t, bool>) {
      kc::index_select<scalar_t>(xc.data_ptr<scalar_t>(), idx.data_ptr<int64_t>(),
                                 out.data_ptr<scalar_t>(), outer, x.shape()[dim], idx.numel(),
                                 inner);
    } else {
      kc::index_select<bool>(xc.data_ptr<bool>(), idx.data_ptr<int64_t>(), out.data_ptr<bool>(),
                             outer, x.shape()[dim], idx.numel(), inner);
    }
  });
  return out;
}

void index_add_(const Tensor& dst, int64_t dim, const Tensor& index, const Tensor& src) {
  require_same_device(dst, index, "index_add");
  require_same_device(dst, src, "index_add");
  dim = normalize_dim(dim, dst.dim(), "index_add");
  SMYRF_CHECK(index.dim() <= 1, "index_add", "index must be 1-D, got " << shape_str(index.shape()));
  Tensor idx = checked_index(index, dst.shape()[dim], "index_add");
  Shape want = dst.shape();
  want[dim] = idx.numel();
  SMYRF_CHECK_HINT(
      src.shape() == want, "index_add",
      "source of shape " << shape_str(src.shape()) << " does not match " << shape_str(want),
      "source has the input's shape with dim " << dim << " equal to the number of indices");
  Tensor out = contiguous(dst);  // dst itself when contiguous: the kernel adds in place
  Tensor sc = unaliased(contiguous(to_dtype(src, dst.dtype())), out);
  idx = unaliased(idx, out);
  int64_t outer, inner;
  split_around(dst.shape(), dim, outer, inner);
  if (dst.device().is_cuda()) {
    cuda_ops::index_add(out, idx, sc, outer, dst.shape()[dim], idx.numel(), inner);
  } else {
    SMYRF_DISPATCH_NUMERIC(dst.dtype(), "index_add", [&] {
      kc::index_add<scalar_t>(out.data_ptr<scalar_t>(), idx.data_ptr<int64_t>(),
                              sc.data_ptr<scalar_t>(), outer, dst.shape()[dim], idx.numel(), inner);
    });
  }
  finish_in_place(dst, out);
}

Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor out = clone(x);
  index_add_(out, dim, index, src);
  return out;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  require_same_device(x, index, "gather");
  dim = normalize_dim(dim, x.dim(), "gather");
  SMYRF_CHECK_HINT(index.dim() == x.dim(), "gather",
                   "index of shape " << shape_str(index.shape()) << " and input "
                                     << shape_str(x.shape()) << " differ in rank",
                   "index needs the input's rank");
  for (int64_t d = 0; d < x.dim(); ++d)
    SMYRF_CHECK_HINT(d == dim || index.shape()[d] <= x.shape()[d], "gather",
                     "index of shape " << shape_str(index.shape()) << " is larger than input "
                                       << shape_str(x.shape()) << " in dim " << d,
                     "index dims other than " << dim << " must not exceed the input's");
  // CPU: the kernel checks the indices as it reads them (kernels/cpu/index.h)
  Tensor idx = x.device().is_cuda() ? checked_index(index, x.shape()[dim], "gather")
                                    : index_as_int64(index, "gather");
  Tensor xs = x;  // restrict x to the index's extent in the other dims
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d != dim) xs = slice(xs, d, 0, index.shape()[d], 1);
  Tensor xc = contiguous(xs);
  Tensor out = empty(index.shape(), on(x.dtype(), x));
  int64_t outer, inner;
  split_around(index.shape(), dim, outer, inner);
  if (x.device().is_cuda()) {
    cuda_ops::gather(xc, idx, out, outer, x.shape()[dim], index.shape()[dim], inner);
    return out;
  }
  bool in_range = true;
  SMYRF_DISPATCH_ALL(x.dtype(), "gather", [&] {
    in_range = kc::gather<scalar_t>(xc.data_ptr<scalar_t>(), idx.data_ptr<int64_t>(),
                                    out.data_ptr<scalar_t>(), outer, x.shape()[dim],
                                    index.shape()[dim], inner);
  });
  if (!in_range) checked_index(idx, x.shape()[dim], "gather");  // throws, naming the index
  SMYRF_CHECK(in_range, "gather", "an index out of range was not found again (internal error)");
  return out;
}

void scatter_add_(const Tensor& dst, int64_t dim, const Tensor& index, const Tensor& src) {
  require_same_device(dst, index, "scatter_add");
  require_same_device(dst, src, "scatter_add");
  dim = normalize_dim(dim, dst.dim(), "scatter_add");
  SMYRF_CHECK_HINT(
      index.shape() == src.shape(), "scatter_add",
      "index " << shape_str(index.shape()) << " and source " << shape_str(src.shape()) << " differ",
      "index and source need equal shapes");
  SMYRF_CHECK_HINT(index.dim() == dst.dim(), "scatter_add",
                   "index of shape " << shape_str(index.shape()) << " and input "
                                     << shape_str(dst.shape()) << " differ in rank",
                   "index needs the input's rank");
  for (int64_t d = 0; d < dst.dim(); ++d)
    SMYRF_CHECK_HINT(d == dim || index.shape()[d] == dst.shape()[d], "scatter_add",
                     "index of shape " << shape_str(index.shape()) << " and input "
                                       << shape_str(dst.shape()) << " differ in dim " << d,
                     "only dim " << dim << " may differ");
  Tensor idx = checked_index(index, dst.shape()[dim], "scatter_add");
  Tensor out = contiguous(dst);  // dst itself when contiguous: the kernel adds in place
  Tensor sc = unaliased(contiguous(to_dtype(src, dst.dtype())), out);
  idx = unaliased(idx, out);
  int64_t outer, inner;
  split_around(index.shape(), dim, outer, inner);
  if (dst.device().is_cuda()) {
    cuda_ops::scatter_add(out, idx, sc, outer, dst.shape()[dim], index.shape()[dim], inner);
  } else {
    SMYRF_DISPATCH_NUMERIC(dst.dtype(), "scatter_add", [&] {
      kc::scatter_add<scalar_t>(out.data_ptr<scalar_t>(), idx.data_ptr<int64_t>(),
                                sc.data_ptr<scalar_t>(), outer, dst.shape()[dim],
                                index.shape()[dim], inner);
    });
  }
  finish_in_place(dst, out);
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor out = clone(x);
  scatter_add_(out, dim, index, src);
  return out;
}

Tensor one_hot(const Tensor& index, int64_t num_classes) {
  SMYRF_CHECK(num_classes > 0, "one_hot", "num_classes must be positive, got " << num_classes);
  Tensor idx = checked_index(index, num_classes, "one_hot");
  Shape s = index.shape();
  s.push_back(num_classes);
  if (idx.device().is_cuda())  // index[..., None] == arange(C), on the device, as int64
    return to_dtype(
        compare(CompareKind::Eq, unsqueeze(idx, -1),
                arange(num_classes, TensorOptions(DType::Int64).set_device(idx.device()))),
        DType::Int64);
  Tensor out = zeros(s, TensorOptions(DType::Int64));
  int64_t* o = out.data_ptr<int64_t>();
  const int64_t* p = idx.data_ptr<int64_t>();
  const int64_t count = idx.numel();
  for (int64_t i = 0; i < count; ++i) o[i * num_classes + p[i]] = 1;
  return out;
}

namespace {
// x with dim moved last, contiguous, bool as int32: the rows sort_rows and topk_rows take.
Tensor rows_along(const Tensor& x, int64_t dim) {
  Tensor xc = contiguous(transpose(x, dim, -1));
  return xc.dtype() == DType::Bool ? to_dtype(xc, DType::Int32) : xc;
}
// Row results (values, indices) put back: values in dtype dt, dim back in its place.
std::pair<Tensor, Tensor> from_rows(const Tensor& vals, const Tensor& idx, DType dt, int64_t dim) {
  return {contiguous(transpose(to_dtype(vals, dt), dim, -1)), contiguous(transpose(idx, dim, -1))};
}
}  // namespace

std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending) {
  if (x.dim() == 0) return {clone(x), zeros({}, on(DType::Int64, x))};
  dim = normalize_dim(dim, x.dim(), "sort");
  Tensor xx = rows_along(x, dim);
  Tensor vals = empty(xx.shape(), on(xx.dtype(), xx));
  Tensor idx = empty(xx.shape(), on(DType::Int64, xx));
  const int64_t n = xx.shape().back();
  const int64_t rows = n ? xx.numel() / n : 0;
  if (xx.device().is_cuda()) {
    cuda_ops::sort_rows(xx, vals, idx, rows, n, descending);
  } else {
    SMYRF_DISPATCH_NUMERIC(xx.dtype(), "sort", [&] {
      kc::sort_rows<scalar_t>(xx.data_ptr<scalar_t>(), vals.data_ptr<scalar_t>(),
                              idx.data_ptr<int64_t>(), rows, n, descending);
    });
  }
  return from_rows(vals, idx, x.dtype(), dim);
}

std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  dim = normalize_dim(dim, x.dim(), "topk");
  const int64_t n = x.dim() ? x.shape()[dim] : 1;
  SMYRF_CHECK_HINT(k >= 0 && k <= n, "topk", "k = " << k << " but dim " << dim << " has size " << n,
                   "choose k in [0, " << n << "]");
  if (x.dim() > 0 && !x.device().is_cuda() && (k * 8 <= n || k <= kc::kTopkInsertMax)) {
    // a selection in each row (kernels/cpu/index.h topk_rows): sorting whole rows to keep k of
    // them took 600 ms for k = 5 of 65536 rows of 256 (PyTorch: 124 ms), and 121 ms for k = 1 of
    // 4M rows of 4 (PyTorch: 96)
    Tensor xx = rows_along(x, dim);
    Shape s = xx.shape();
    s.back() = k;
    Tensor vals = empty(s, on(xx.dtype(), xx)), idx = empty(s, on(DType::Int64, xx));
    const int64_t rows = n ? xx.numel() / n : 0;
    SMYRF_DISPATCH_NUMERIC(xx.dtype(), "topk", [&] {
      kc::topk_rows<scalar_t>(xx.data_ptr<scalar_t>(), vals.data_ptr<scalar_t>(),
                              idx.data_ptr<int64_t>(), rows, n, k, largest);
    });
    return from_rows(vals, idx, x.dtype(), dim);
  }
  auto [v, i] = sort(x, dim, largest);
  return {contiguous(slice(v, dim, 0, k, 1)), contiguous(slice(i, dim, 0, k, 1))};
}

}  // namespace smyrf::raw
