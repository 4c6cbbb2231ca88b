// Views (share storage) and copies/conversions.
#include <algorithm>
#include <cstring>

#include "core/bf16_cast.h"
#include "core/iter.h"
#include "core/ops.h"
#include "core/ops_cuda.h"

namespace smyrf::raw {

Tensor as_strided(const Tensor& t, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.storage();
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = t.dtype();
  return Tensor(impl);
}

Shape infer_reshape(const Shape& from, Shape to, const char* op) {
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < to.size(); ++i) {
    if (to[i] == -1) {
      SMYRF_CHECK(infer < 0, op, "only one dimension can be -1 in " << shape_str(to));
      infer = static_cast<int64_t>(i);
    } else {
      SMYRF_CHECK(to[i] >= 0, op, "invalid dimension " << to[i] << " in " << shape_str(to));
      known *= to[i];
    }
  }
  int64_t n = shape_numel(from);
  if (infer >= 0) {
    SMYRF_CHECK_HINT(
        known != 0 && n % known == 0, op,
        "cannot reshape " << shape_str(from) << " (" << n << " elements) into " << shape_str(to),
        "the product of the known dims must divide the element count");
    to[infer] = n / known;
  }
  SMYRF_CHECK_HINT(shape_numel(to) == n, op,
                   "cannot reshape " << shape_str(from) << " (" << n << " elements) into "
                                     << shape_str(to) << " (" << shape_numel(to) << " elements)",
                   "the element count must stay the same");
  return to;
}

namespace {
// Strides for viewing t as `to` without copying, or empty if impossible (PyTorch's rule:
// every group of old dims that merges into new dims must be contiguous within itself).
bool view_strides(const Tensor& t, const Shape& to, Shape& out) {
  const Shape& s = t.shape();
  const Shape& st = t.strides();
  if (shape_numel(s) == 0 || s.empty()) {
    out = contiguous_strides(to);
    return true;
  }
  out.assign(to.size(), 0);
  int64_t vi = static_cast<int64_t>(to.size()) - 1;
  int64_t chunk_base = st.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t ti = static_cast<int64_t>(s.size()) - 1; ti >= 0; --ti) {
    tensor_numel *= s[ti];
    if (ti == 0 || (s[ti - 1] != 1 && st[ti - 1] != tensor_numel * chunk_base)) {
      while (vi >= 0 && (view_numel < tensor_numel || to[vi] == 1)) {
        out[vi] = view_numel * chunk_base;
        view_numel *= to[vi];
        --vi;
      }
      if (view_numel != tensor_numel) return false;
      if (ti > 0) {
        chunk_base = st[ti - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return vi == -1;
}
}  // namespace

Tensor view(const Tensor& t, Shape shape) {
  shape = infer_reshape(t.shape(), std::move(shape), "view");
  Shape st;
  SMYRF_CHECK_HINT(
      view_strides(t, shape, st), "view",
      "cannot view a tensor of shape " << shape_str(t.shape()) << " and strides "
                                       << shape_str(t.strides()) << " as " << shape_str(shape),
      "the tensor is not contiguous in the merged dims; use reshape (copies) or contiguous()");
  return as_strided(t, shape, st, t.offset());
}

Tensor reshape(const Tensor& t, Shape shape) {
  shape = infer_reshape(t.shape(), std::move(shape), "reshape");
  Shape st;
  if (view_strides(t, shape, st)) return as_strided(t, shape, st, t.offset());
  Tensor c = contiguous(t);
  return as_strided(c, shape, contiguous_strides(shape), c.offset());
}

Tensor permute(const Tensor& t, const std::vector<int64_t>& dims) {
  const int64_t n = t.dim();
  SMYRF_CHECK_HINT(
      static_cast<int64_t>(dims.size()) == n, "permute",
      "got " << dims.size() << " dims for a tensor of rank " << n << " " << shape_str(t.shape()),
      "give each dim exactly once");
  Shape s(n), st(n);
  std::vector<bool> seen(n, false);
  for (int64_t i = 0; i < n; ++i) {
    int64_t d = normalize_dim(dims[i], n, "permute");
    SMYRF_CHECK(!seen[d], "permute", "dim " << d << " repeated in " << shape_str(Shape(dims)));
    seen[d] = true;
    s[i] = t.shape()[d];
    st[i] = t.strides()[d];
  }
  return as_strided(t, s, st, t.offset());
}

Tensor transpose(const Tensor& t, int64_t d0, int64_t d1) {
  std::vector<int64_t> p(t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) p[i] = i;
  if (t.dim() == 0) return t;
  d0 = normalize_dim(d0, t.dim(), "transpose");
  d1 = normalize_dim(d1, t.dim(), "transpose");
  std::swap(p[d0], p[d1]);
  return permute(t, p);
}

Tensor slice(const Tensor& t, int64_t dim, int64_t start, int64_t end, int64_t step) {
  dim = normalize_dim(dim, t.dim(), "slice");
  SMYRF_CHECK(step > 0, "slice", "step must be positive, got " << step);
  const int64_t n = t.shape()[dim];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = t.shape(), st = t.strides();
  s[dim] = (end - start + step - 1) / step;
  st[dim] = t.strides()[dim] * step;
  return as_strided(t, s, st, t.offset() + start * t.strides()[dim]);
}

Tensor select(const Tensor& t, int64_t dim, int64_t index) {
  dim = normalize_dim(dim, t.dim(), "select");
  const int64_t n = t.shape()[dim];
  SMYRF_CHECK_HINT(index >= -n && index < n, "select",
                   "index " << index << " out of range for dim " << dim << " of size " << n,
                   "valid indices are " << -n << " .. " << n - 1);
  if (index < 0) index += n;
  Shape s = t.shape(), st = t.strides();
  s.erase(s.begin() + dim);
  st.erase(st.begin() + dim);
  return as_strided(t, s, st, t.offset() + index * t.strides()[dim]);
}

Tensor expand(const Tensor& t, const Shape& shape) {
  SMYRF_CHECK_HINT(
      shape.size() >= t.shape().size(), "expand",
      "cannot expand " << shape_str(t.shape()) << " to fewer dims " << shape_str(shape),
      "the target must have at least as many dims");
  const size_t off = shape.size() - t.shape().size();
  Shape s(shape.size()), st(shape.size(), 0);
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < off) {
      SMYRF_CHECK(shape[i] >= 0, "expand",
                  "cannot use -1 for a new leading dim in " << shape_str(shape));
      s[i] = shape[i];
      continue;
    }
    int64_t cur = t.shape()[i - off];
    int64_t want = shape[i] == -1 ? cur : shape[i];
    SMYRF_CHECK_HINT(cur == want || cur == 1, "expand",
                     "cannot expand " << shape_str(t.shape()) << " to " << shape_str(shape),
                     "only dims of size 1 can be expanded");
    s[i] = want;
    st[i] = cur == want ? t.strides()[i - off] : 0;
  }
  return as_strided(t, s, st, t.offset());
}

Tensor squeeze(const Tensor& t, int64_t dim) {
  if (t.dim() == 0) return t;
  dim = normalize_dim(dim, t.dim(), "squeeze");
  if (t.shape()[dim] != 1) return t;
  Shape s = t.shape(), st = t.strides();
  s.erase(s.begin() + dim);
  st.erase(st.begin() + dim);
  return as_strided(t, s, st, t.offset());
}

Tensor unsqueeze(const Tensor& t, int64_t dim) {
  dim = normalize_dim(dim, t.dim() + 1, "unsqueeze");
  Shape s = t.shape(), st = t.strides();
  int64_t stride = dim < t.dim() ? t.strides()[dim] * t.shape()[dim] : 1;
  s.insert(s.begin() + dim, 1);
  st.insert(st.begin() + dim, stride);
  return as_strided(t, s, st, t.offset());
}

// ---------------------------------------------------------------- copies

void copy_into(const Tensor& dst, const Tensor& src) {
  SMYRF_CHECK(dst.defined() && src.defined(), "copy_", "undefined tensor");
  Shape shape = dst.shape();
  Shape bs = broadcast_shapes(src.shape(), shape, "copy_");
  SMYRF_CHECK_HINT(
      bs == shape, "copy_",
      "source of shape " << shape_str(src.shape()) << " does not broadcast to " << shape_str(shape),
      "the destination shape must be the broadcast shape");
  if (dst.device() != src.device()) {
    // Across devices only dense bytes move: broadcast/convert/strided work happens on the source's
    // side when the destination is dense, else on the destination's side after a dense copy.
    if (dst.is_contiguous() && src.is_contiguous() && src.shape() == shape &&
        src.dtype() == dst.dtype()) {
      cuda_ops::copy_bytes(dst, src);
    } else if (dst.is_contiguous()) {
      TensorOptions o(dst.dtype());
      o.device = src.device();
      Tensor staged = empty(shape, o);  // dense, dst's dtype, on the source's device
      copy_into(staged, src);
      cuda_ops::copy_bytes(dst, staged);
    } else {
      copy_into(dst, to_device(contiguous(src), dst.device()));
      return;  // the inner copy_into bumped dst's version
    }
    dst.storage()->bump_version();
    return;
  }
  IterPlan p = make_iter_plan(shape, {broadcast_strides(src, shape), dst.strides()}, "copy_");
  if (dst.device().is_cuda()) {
    cuda_ops::convert(p, src, dst);
    dst.storage()->bump_version();
    return;
  }
  const DType sd = src.dtype(), dd = dst.dtype();
  if (sd == kBFloat16 || dd == kBFloat16) {  // casts only (core/bf16_cast.h)
    detail::convert_cpu_bf16(p, src, dst);
    dst.storage()->bump_version();
    return;
  }
  SMYRF_DISPATCH_ALL(sd, "copy_", [&] {
    using S = scalar_t;
    SMYRF_DISPATCH_ALL(dd, "copy_", [&] {
      kernels::cpu::convert<S, scalar_t>(p.ndim, p.sizes, static_cast<const S*>(src.raw_data()),
                                         p.s(0), static_cast<scalar_t*>(dst.raw_data()), p.s(1));
    });
  });
  dst.storage()->bump_version();
}

void fill(const Tensor& dst, double value) {
  IterPlan p = make_iter_plan(dst.shape(), {dst.strides()}, "fill_");
  if (dst.device().is_cuda()) {
    cuda_ops::fill(p, dst, value);
    dst.storage()->bump_version();
    return;
  }
  if (dst.dtype() == kBFloat16) {
    detail::fill_cpu_bf16(p, dst, value);
    dst.storage()->bump_version();
    return;
  }
  SMYRF_DISPATCH_ALL(dst.dtype(), "fill_", [&] {
    kernels::cpu::fill<scalar_t>(p.ndim, p.sizes, static_cast<scalar_t*>(dst.raw_data()), p.s(0),
                                 static_cast<scalar_t>(value));
  });
  dst.storage()->bump_version();
}

Tensor contiguous(const Tensor& t) {
  if (t.is_contiguous()) return t;
  return clone(t);
}

Tensor clone(const Tensor& t) {
  TensorOptions o(t.dtype());
  o.device = t.device();
  Tensor out = empty(t.shape(), o);
  copy_into(out, t);
  return out;
}

Tensor to_dtype(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  Tensor out = empty(t.shape(), TensorOptions(dtype).set_device(t.device()));
  copy_into(out, t);
  return out;
}

void move_to_device_(const Tensor& t, Device device) {
  SMYRF_CHECK(t.defined(), "move_to_device_", "undefined tensor");
  if (t.device() == device) return;
  const Tensor moved = to_device(t, device);  // dense
  TensorImpl* impl = t.impl();
  impl->storage = moved.storage();
  impl->strides = moved.strides();
  impl->offset = moved.offset();
  if (impl->grad) move_to_device_(Tensor(impl->grad), device);
}

Tensor to_device(const Tensor& t, Device device) {
  if (t.device() == device) return t;
  Tensor src = contiguous(t);  // on its own device (a CUDA kernel for CUDA tensors)
  TensorOptions o(t.dtype());
  o.device = device;
  Tensor out = empty(t.shape(), o);
  copy_into(out, src);
  return out;
}

}  // namespace smyrf::raw
