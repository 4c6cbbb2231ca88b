// linear(x, W, b) = x W^T + b as one autograd node.
//
// Written as matmul + add it cost, per call on a (B, T, K) input: one GEMM per batch entry (the
// weight expanded over the batch and packed again for each), a second pass over the output for
// the bias, and in backward one GEMM per batch entry for dx, a transposed weight gradient copied
// once more, and the add node's sum_to. Here the leading dims fold into the GEMM's rows:
//   forward   y = x2 W^T  (x2 = x as (rows, K)), the bias written into y first and the GEMM
//             accumulating onto it (beta = 1)
//   backward  dx = G W,  dW = G^T x2,  db = column sums of G     (G = dy as (rows, N))
// one GEMM each. CUDA tensors keep the composite (cuBLAS already folds nothing worth fusing here).
#include "autograd/function.h"
#include "autograd/ops.h"
#include "core/ops.h"
#include "kernels/cpu/gemm.h"

namespace smyrf {
namespace kc = kernels::cpu;

namespace {

// y (rows, N) = x2 (rows, K) W^T + bias, all contiguous on the CPU.
Tensor linear_rows(const Tensor& x2, const Tensor& w, const Tensor& bias) {
  const int64_t rows = x2.size(0), K = x2.size(1), N = w.size(0);
  Tensor y = empty({rows, N}, TensorOptions(x2.dtype()));
  // a fresh buffer even when the expanded bias is already contiguous (rows == 1): the GEMM
  // accumulates into it
  if (bias.defined()) raw::copy_into(y, raw::expand(bias, {rows, N}));
  if (x2.dtype() == DType::Float32)
    kc::sgemm(false, true, rows, N, K, 1.0f, x2.data_ptr<float>(), K, w.data_ptr<float>(), K,
              bias.defined() ? 1.0f : 0.0f, y.data_ptr<float>(), N);
  else
    kc::dgemm(false, true, rows, N, K, 1.0, x2.data_ptr<double>(), K, w.data_ptr<double>(), K,
              bias.defined() ? 1.0 : 0.0, y.data_ptr<double>(), N);
  return y;
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  SMYRF_CHECK_HINT(
      weight.dim() == 2 && x.dim() >= 1 && x.size(-1) == weight.size(1), "linear",
      "input " << shape_str(x.shape()) << " does not match weight " << shape_str(weight.shape()),
      "weight is (out_features, in_features) and the input's last dim is in_features");
  if (bias.defined())
    SMYRF_CHECK_HINT(
        bias.dim() == 1 && bias.size(0) == weight.size(0), "linear",
        "bias of shape " << shape_str(bias.shape()) << " for weight " << shape_str(weight.shape()),
        "bias is (out_features,)");
  const bool same = x.dtype() == weight.dtype() && (!bias.defined() || bias.dtype() == x.dtype());
  const bool cpu = !x.device().is_cuda() && !weight.device().is_cuda() &&
                   (!bias.defined() || !bias.device().is_cuda());
  if (!cpu || !same || !is_floating(x.dtype())) {
    // the composite: matmul and add check devices and dtypes and say what is wrong
    Tensor y = matmul(x, transpose(weight, 0, 1));
    return bias.defined() ? y + bias : y;
  }
  const int64_t K = weight.size(1), N = weight.size(0);
  const int64_t rows = x.numel() / K;
  const Shape x_shape = x.shape();
  Shape y_shape(x_shape.begin(), x_shape.end() - 1);
  y_shape.push_back(N);
  // views without history: the node's closure must not own the graph (see autograd/function.h)
  const Tensor x2 = raw::contiguous(raw::reshape(alias(x), {rows, K}));
  const Tensor w = raw::contiguous(alias(weight));
  const Tensor y =
      raw::reshape(linear_rows(x2, w, bias.defined() ? alias(bias) : Tensor()), y_shape);
  if (needs_grad({x, weight, bias})) {
    const bool gx = x.requires_grad(), gw = weight.requires_grad();
    const bool gb = bias.defined() && bias.requires_grad();
    record(
        "linear", {x, weight, bias}, {y},
        [x2, w, gx, gw, gb, x_shape, rows, N](const std::vector<Tensor>& g) -> std::vector<Tensor> {
          const Tensor G = raw::contiguous(raw::reshape(g[0], {rows, N}));
          Tensor dx, dw, db;
          if (gx) dx = raw::reshape(raw::matmul(G, w), x_shape);
          if (gw) dw = raw::matmul_t(G, true, x2, false);
          if (gb) db = raw::reduce(raw::ReduceKind::Sum, G, {0}, false);
          return {dx, dw, db};
        },
        {x, weight, bias});
  }
  return y;
}

}  // namespace smyrf
