// matmul with NumPy semantics (1-D operands, broadcast batch dims) on top of the GEMM kernels.
// Transposed views are passed to GEMM as transpose flags, not copied.
#include "core/iter.h"
#include "core/ops.h"
#include "core/ops_cuda.h"
#include "kernels/cpu/gemm.h"

namespace smyrf::raw {
namespace kc = kernels::cpu;

namespace {
struct MatLayout {
  bool ok = false;
  bool trans = false;
  int64_t ld = 0;
};

// How a (rows, cols) matrix with strides (sr, sc) can be handed to GEMM without a copy.
MatLayout mat_layout(int64_t rows, int64_t cols, int64_t sr, int64_t sc) {
  MatLayout m;
  if ((rows > 1 && sr == 0) || (cols > 1 && sc == 0)) return m;  // broadcast rows: copy
  if (cols == 1 || sc == 1) {
    m.ok = true;
    m.ld = rows == 1 ? std::max<int64_t>(cols, 1) : sr;
    if (m.ld < cols) m.ok = false;
    return m;
  }
  if (rows == 1 || sr == 1) {
    m.ok = true;
    m.trans = true;
    m.ld = sc;
    if (m.ld < rows) m.ok = false;
    return m;
  }
  return m;
}
}  // namespace

Tensor matmul(const Tensor& a0, const Tensor& b0) {
  SMYRF_CHECK(a0.dim() >= 1 && b0.dim() >= 1, "matmul",
              "operands must have at least 1 dim, got " << shape_str(a0.shape()) << " @ " << shape_str(b0.shape()));
  SMYRF_CHECK_HINT(a0.device() == b0.device(), "matmul",
                   "operands on " << a0.device().str() << " and " << b0.device().str(), "move both to one device");
  SMYRF_CHECK_HINT(a0.dtype() == b0.dtype() && is_floating(a0.dtype()), "matmul",
                   "operands must share a floating dtype, got " << dtype_name(a0.dtype()) << " @ "
                                                                << dtype_name(b0.dtype()),
                   "convert with .to(kFloat32) or .to(kFloat64)");
  Tensor a = a0.dim() == 1 ? unsqueeze(a0, 0) : a0;
  Tensor b = b0.dim() == 1 ? unsqueeze(b0, 1) : b0;
  const int64_t M = a.shape()[a.dim() - 2], K = a.shape()[a.dim() - 1];
  const int64_t Kb = b.shape()[b.dim() - 2], N = b.shape()[b.dim() - 1];
  SMYRF_CHECK_HINT(K == Kb, "matmul",
                   "inner dimensions differ: " << shape_str(a0.shape()) << " @ " << shape_str(b0.shape()),
                   "the last dim of the left operand must equal the second-to-last of the right");
  Shape ab(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ab, bb, "matmul");
  Shape ea = batch, eb = batch;
  ea.push_back(M), ea.push_back(K);
  eb.push_back(K), eb.push_back(N);
  a = expand(a, ea);
  b = expand(b, eb);
  MatLayout la = mat_layout(M, K, a.strides()[a.dim() - 2], a.strides()[a.dim() - 1]);
  if (!la.ok) {
    a = contiguous(a);
    la = mat_layout(M, K, a.strides()[a.dim() - 2], a.strides()[a.dim() - 1]);
  }
  MatLayout lb = mat_layout(K, N, b.strides()[b.dim() - 2], b.strides()[b.dim() - 1]);
  if (!lb.ok) {
    b = contiguous(b);
    lb = mat_layout(K, N, b.strides()[b.dim() - 2], b.strides()[b.dim() - 1]);
  }
  Shape out_shape = batch;
  out_shape.push_back(M), out_shape.push_back(N);
  Tensor out = empty(out_shape, TensorOptions(a.dtype()).set_device(a.device()));
  Shape sa(a.strides().begin(), a.strides().end() - 2), sb(b.strides().begin(), b.strides().end() - 2);
  Shape so(out.strides().begin(), out.strides().end() - 2);
  IterPlan p = make_iter_plan(batch, {sa, sb, so}, "matmul");
  // the innermost batch dim goes to the batched kernel; outer dims are looped here
  const int last = p.ndim - 1;
  const int64_t inner_batch = p.ndim ? p.sizes[last] : 1;
  const int64_t isa = p.ndim ? p.s(0)[last] : 0, isb = p.ndim ? p.s(1)[last] : 0, iso = p.ndim ? p.s(2)[last] : 0;
  int64_t outer = 1;
  for (int d = 0; d < last; ++d) outer *= p.sizes[d];
  for (int64_t o = 0; o < outer; ++o) {
    int64_t rem = o, oa = 0, ob = 0, oo = 0;
    for (int d = last - 1; d >= 0; --d) {
      int64_t i = rem % p.sizes[d];
      rem /= p.sizes[d];
      oa += i * p.s(0)[d], ob += i * p.s(1)[d], oo += i * p.s(2)[d];
    }
    if (out.device().is_cuda()) {  // cuBLAS, same row-major interface
      cuda_ops::gemm_batched(la.trans, lb.trans, inner_batch, M, N, K, a, oa, la.ld, isa, b, ob, lb.ld, isb, out, oo,
                             N, iso);
    } else if (a.dtype() == DType::Float32) {
      kc::sgemm_batched(la.trans, lb.trans, inner_batch, M, N, K, 1.0f, a.data_ptr<float>() + oa, la.ld, isa,
                        b.data_ptr<float>() + ob, lb.ld, isb, 0.0f, out.data_ptr<float>() + oo, N, iso);
    } else {
      kc::dgemm_batched(la.trans, lb.trans, inner_batch, M, N, K, 1.0, a.data_ptr<double>() + oa, la.ld, isa,
                        b.data_ptr<double>() + ob, lb.ld, isb, 0.0, out.data_ptr<double>() + oo, N, iso);
    }
  }
  if (a0.dim() == 1) out = squeeze(out, out.dim() - 2);
  if (b0.dim() == 1) out = squeeze(out, out.dim() - 1);
  return out;
}

Tensor matmul_t(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b) {
  return matmul(trans_a ? transpose(a, -2, -1) : a, trans_b ? transpose(b, -2, -1) : b);
}

}  // namespace smyrf::raw
