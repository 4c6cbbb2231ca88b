// Convolution, pooling, upsampling and batch norm: validation, dispatch to kernels/cpu/conv.h
// and batch_norm.h, and the derivative rules.
#include "autograd/ops_conv.h"

#include <cmath>
#include <vector>

#include "autograd/function.h"
#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "core/ops_cuda_nn.h"
#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/conv.h"

namespace smyrf {
namespace kc = kernels::cpu;

namespace {

std::string pair_str(IntPair p) {
  return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")";
}

// Calls f(T{}) with T the C++ type of a float32/float64 dtype.
template <typename F>
void dispatch_floating(DType dt, const char* op, F&& f) {
  if (dt == kFloat32) {
    f(float{});
  } else if (dt == kFloat64) {
    f(double{});
  } else {
    SMYRF_FAIL(op, "unsupported dtype " << dtype_name(dt) << " (float32 or float64 only)");
  }
}

// Every op here runs on the CPU and on CUDA (conv2d through cuDNN; pooling and upsampling
// through kernels/cuda/pool.h, batch norm through kernels/cuda/batch_norm.h).
void check_nchw(const Tensor& x, const char* op) {
  SMYRF_CHECK(x.defined(), op, "input is undefined");
  SMYRF_CHECK_HINT(x.dim() == 4, op, "input must be (N, C, H, W), got " << shape_str(x.shape()),
                   "add a batch dim with unsqueeze(0)");
  SMYRF_CHECK_HINT(x.device().is_cpu() || x.device().is_cuda(), op,
                   "no " << x.device().str() << " kernel for " << dtype_name(x.dtype()),
                   "move the tensor to the CPU");
  SMYRF_CHECK_HINT(x.is_floating_point(), op,
                   "input must be float32 or float64, got " << dtype_name(x.dtype()),
                   "convert with .to(kFloat32)");
}

void check_same(const Tensor& x, const Tensor& t, const char* op, const char* what) {
  if (!t.defined()) return;
  SMYRF_CHECK_HINT(t.dtype() == x.dtype() && t.device() == x.device(), op,
                   what << " is " << dtype_name(t.dtype()) << " on " << t.device().str()
                        << " but the input is " << dtype_name(x.dtype()) << " on "
                        << x.device().str(),
                   "convert both to the same dtype and device");
}

bool wants_grad(const Tensor& t) { return t.defined() && t.requires_grad(); }

// --------------------------------------------------------------------------- convolution
kc::Conv2dGeometry conv_geometry(const Tensor& x, const Tensor& w, const Tensor& b, IntPair stride,
                                 IntPair padding, IntPair dilation, int64_t groups) {
  const char* op = "conv2d";
  check_nchw(x, op);
  SMYRF_CHECK(w.defined(), op, "weight is undefined");
  SMYRF_CHECK_HINT(
      w.dim() == 4, op,
      "weight must be (out_channels, in_channels/groups, kh, kw), got " << shape_str(w.shape()),
      "reshape it to 4 dims");
  check_same(x, w, op, "weight");
  check_same(x, b, op, "bias");
  SMYRF_CHECK(stride[0] >= 1 && stride[1] >= 1, op,
              "stride must be >= 1, got " << pair_str(stride));
  SMYRF_CHECK(dilation[0] >= 1 && dilation[1] >= 1, op,
              "dilation must be >= 1, got " << pair_str(dilation));
  SMYRF_CHECK(padding[0] >= 0 && padding[1] >= 0, op,
              "padding must be >= 0, got " << pair_str(padding));
  SMYRF_CHECK(groups >= 1, op, "groups must be >= 1, got " << groups);
  kc::Conv2dGeometry g;
  g.N = x.size(0), g.C = x.size(1), g.H = x.size(2), g.W = x.size(3);
  g.K = w.size(0), g.R = w.size(2), g.S = w.size(3);
  g.stride_h = stride[0], g.stride_w = stride[1], g.pad_h = padding[0], g.pad_w = padding[1];
  g.dil_h = dilation[0], g.dil_w = dilation[1], g.groups = groups;
  SMYRF_CHECK_HINT(g.C % groups == 0, op,
                   "input channels " << g.C << " of " << shape_str(x.shape())
                                     << " are not divisible by groups=" << groups,
                   "choose groups dividing both channel counts");
  SMYRF_CHECK_HINT(g.K % groups == 0, op,
                   "output channels " << g.K << " of weight " << shape_str(w.shape())
                                      << " are not divisible by groups=" << groups,
                   "choose groups dividing both channel counts");
  SMYRF_CHECK_HINT(w.size(1) * groups == g.C, op,
                   "input has " << g.C << " channels but weight " << shape_str(w.shape())
                                << " with groups=" << groups << " expects " << w.size(1) * groups,
                   "weight is (out_channels, in_channels/groups, kh, kw)");
  if (b.defined())
    SMYRF_CHECK_HINT(
        b.dim() == 1 && b.size(0) == g.K, op,
        "bias " << shape_str(b.shape()) << " does not match " << g.K << " output channels",
        "bias is (out_channels)");
  g.P = kc::conv2d_out_size(g.H, g.R, g.stride_h, g.pad_h, g.dil_h);
  g.Q = kc::conv2d_out_size(g.W, g.S, g.stride_w, g.pad_w, g.dil_w);
  SMYRF_CHECK_HINT(g.P > 0 && g.Q > 0, op,
                   "kernel " << shape_str(w.shape()) << " with dilation " << pair_str(dilation)
                             << " is larger than the padded input " << shape_str(x.shape())
                             << " with padding " << pair_str(padding),
                   "use a smaller kernel or more padding");
  return g;
}

Tensor conv_forward(const kc::Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                    const Tensor& b) {
  Tensor out = empty({g.N, g.K, g.P, g.Q}, TensorOptions(x.dtype()).set_device(x.device()));
  if (out.numel() == 0) return out;
  if (x.device().is_cuda()) {
    cuda_ops::conv2d_forward(g, x, w, b, out);
    return out;
  }
  dispatch_floating(x.dtype(), "conv2d", [&](auto t) {
    using T = decltype(t);
    kc::conv2d_forward<T>(g, x.data_ptr<T>(), w.data_ptr<T>(),
                          b.defined() ? b.data_ptr<T>() : nullptr, out.data_ptr<T>());
  });
  return out;
}

// --------------------------------------------------------------------------- pooling
kc::Pool2dGeometry pool_geometry(const char* op, const Tensor& x, IntPair kernel, IntPair& stride,
                                 IntPair padding) {
  check_nchw(x, op);
  if (stride[0] == 0 && stride[1] == 0) stride = kernel;
  SMYRF_CHECK(kernel[0] >= 1 && kernel[1] >= 1, op,
              "kernel must be >= 1, got " << pair_str(kernel));
  SMYRF_CHECK(stride[0] >= 1 && stride[1] >= 1, op,
              "stride must be >= 1, got " << pair_str(stride));
  SMYRF_CHECK_HINT(padding[0] >= 0 && padding[1] >= 0 && 2 * padding[0] <= kernel[0] &&
                       2 * padding[1] <= kernel[1],
                   op,
                   "padding " << pair_str(padding) << " must be between 0 and half the kernel "
                              << pair_str(kernel),
                   "a window may not lie entirely in the padding");
  kc::Pool2dGeometry g;
  g.planes = x.size(0) * x.size(1), g.H = x.size(2), g.W = x.size(3);
  g.kh = kernel[0], g.kw = kernel[1], g.stride_h = stride[0], g.stride_w = stride[1];
  g.pad_h = padding[0], g.pad_w = padding[1];
  g.P = kc::conv2d_out_size(g.H, g.kh, g.stride_h, g.pad_h, 1);
  g.Q = kc::conv2d_out_size(g.W, g.kw, g.stride_w, g.pad_w, 1);
  SMYRF_CHECK_HINT(g.P > 0 && g.Q > 0, op,
                   "kernel " << pair_str(kernel) << " is larger than the padded input "
                             << shape_str(x.shape()) << " with padding " << pair_str(padding),
                   "use a smaller kernel or more padding");
  return g;
}

}  // namespace

Tensor conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, IntPair stride,
              IntPair padding, IntPair dilation, int64_t groups) {
  const kc::Conv2dGeometry g = conv_geometry(x_in, w_in, b_in, stride, padding, dilation, groups);
  Tensor x = raw::contiguous(x_in), w = raw::contiguous(w_in);
  Tensor b = b_in.defined() ? raw::contiguous(b_in) : Tensor();
  Tensor y = conv_forward(g, x, w, b);
  if (needs_grad({x_in, w_in, b_in})) {
    const bool gx = wants_grad(x_in), gw = wants_grad(w_in), gb = wants_grad(b_in);
    Tensor xs = alias(x), ws = alias(w);
    record("conv2d", {x_in, w_in, b_in}, {y},
           [g, xs, ws, gx, gw, gb](const std::vector<Tensor>& grads) -> std::vector<Tensor> {
             Tensor dy = raw::contiguous(grads[0]);
             const TensorOptions like = TensorOptions(xs.dtype()).set_device(xs.device());
             Tensor dx, dw, db;
             if (gx) dx = empty(xs.shape(), like);
             if (gw) dw = empty(ws.shape(), like);
             if (gb) db = empty({g.K}, like);
             if (xs.device().is_cuda()) {
               if (gx) cuda_ops::conv2d_backward_data(g, dy, ws, dx);
               if (gw || gb)
                 cuda_ops::conv2d_backward_filter(g, xs, dy, gw ? dw : empty(ws.shape(), like), db);
               return {dx, dw, db};
             }
             dispatch_floating(xs.dtype(), "conv2d", [&](auto t) {
               using T = decltype(t);
               if (gx) {
                 if (dx.numel() > 0 && dy.numel() > 0)
                   kc::conv2d_backward_data<T>(g, dy.data_ptr<T>(), ws.data_ptr<T>(),
                                               dx.data_ptr<T>());
                 else
                   raw::fill(dx, 0);
               }
               if (gw || gb) {
                 // the filter kernel also produces the bias sums; keep dw scratch when only db is
                 // wanted
                 Tensor dws = gw ? dw : empty(ws.shape(), TensorOptions(ws.dtype()));
                 kc::conv2d_backward_filter<T>(g, xs.data_ptr<T>(), dy.data_ptr<T>(),
                                               dws.data_ptr<T>(), gb ? db.data_ptr<T>() : nullptr);
               }
             });
             return {dx, dw, db};
           },
           {x_in, w_in});
  }
  return y;
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t padding,
              int64_t dilation, int64_t groups) {
  return conv2d(x, w, b, {stride, stride}, {padding, padding}, {dilation, dilation}, groups);
}

Tensor avg_pool2d(const Tensor& x_in, IntPair kernel, IntPair stride, IntPair padding,
                  bool count_include_pad) {
  const kc::Pool2dGeometry g = pool_geometry("avg_pool2d", x_in, kernel, stride, padding);
  Tensor x = raw::contiguous(x_in);
  const TensorOptions like = TensorOptions(x.dtype()).set_device(x.device());
  Tensor y = empty({x.size(0), x.size(1), g.P, g.Q}, like);
  if (x.device().is_cuda()) {
    cuda_ops::avg_pool2d_forward(g, x, y, count_include_pad);
  } else {
    dispatch_floating(x.dtype(), "avg_pool2d", [&](auto t) {
      using T = decltype(t);
      kc::avg_pool2d_forward<T>(g, x.data_ptr<T>(), y.data_ptr<T>(), count_include_pad);
    });
  }
  if (needs_grad({x_in})) {
    Shape xs = x.shape();
    record(
        "avg_pool2d", {x_in}, {y},
        [g, xs, like, count_include_pad](const std::vector<Tensor>& grads) -> std::vector<Tensor> {
          Tensor dy = raw::contiguous(grads[0]);
          Tensor dx = empty(xs, like);
          if (dx.device().is_cuda()) {
            cuda_ops::avg_pool2d_backward(g, dy, dx, count_include_pad);
            return {dx};
          }
          dispatch_floating(like.dtype, "avg_pool2d", [&](auto t) {
            using T = decltype(t);
            kc::avg_pool2d_backward<T>(g, dy.data_ptr<T>(), dx.data_ptr<T>(), count_include_pad);
          });
          return {dx};
        });
  }
  return y;
}

Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding,
                  bool count_include_pad) {
  return avg_pool2d(x, {kernel, kernel}, {stride, stride}, {padding, padding}, count_include_pad);
}

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x_in, IntPair kernel,
                                                  IntPair stride, IntPair padding) {
  const kc::Pool2dGeometry g = pool_geometry("max_pool2d", x_in, kernel, stride, padding);
  Tensor x = raw::contiguous(x_in);
  const TensorOptions like = TensorOptions(x.dtype()).set_device(x.device());
  Tensor y = empty({x.size(0), x.size(1), g.P, g.Q}, like);
  Tensor idx =
      empty({x.size(0), x.size(1), g.P, g.Q}, TensorOptions(kInt64).set_device(x.device()));
  if (x.device().is_cuda()) {
    cuda_ops::max_pool2d_forward(g, x, y, idx);
  } else {
    dispatch_floating(x.dtype(), "max_pool2d", [&](auto t) {
      using T = decltype(t);
      kc::max_pool2d_forward<T>(g, x.data_ptr<T>(), y.data_ptr<T>(), idx.data_ptr<int64_t>());
    });
  }
  if (needs_grad({x_in})) {
    Shape xs = x.shape();
    DType dt = x.dtype();
    record("max_pool2d", {x_in}, {y},
           [g, xs, dt, like, idx](const std::vector<Tensor>& grads) -> std::vector<Tensor> {
             Tensor dy = raw::contiguous(grads[0]);
             Tensor dx = empty(xs, like);
             if (dx.device().is_cuda()) {
               cuda_ops::max_pool2d_backward(g, dy, idx, dx);
               return {dx};
             }
             dispatch_floating(dt, "max_pool2d", [&](auto t) {
               using T = decltype(t);
               kc::max_pool2d_backward<T>(g, dy.data_ptr<T>(), idx.data_ptr<int64_t>(),
                                          dx.data_ptr<T>());
             });
             return {dx};
           });
  }
  return {y, idx};
}

Tensor max_pool2d(const Tensor& x, IntPair kernel, IntPair stride, IntPair padding) {
  return max_pool2d_with_indices(x, kernel, stride, padding).first;
}

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  return max_pool2d(x, {kernel, kernel}, {stride, stride}, {padding, padding});
}

Tensor upsample_nearest2d(const Tensor& x_in, int64_t sh, int64_t sw) {
  const char* op = "upsample_nearest2d";
  check_nchw(x_in, op);
  SMYRF_CHECK_HINT(sh >= 1 && sw >= 1, op,
                   "scale factors must be integers >= 1, got (" << sh << ", " << sw << ")",
                   "use avg_pool2d to downsample");
  Tensor x = raw::contiguous(x_in);
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const TensorOptions like = TensorOptions(x.dtype()).set_device(x.device());
  Tensor y = empty({x.size(0), x.size(1), H * sh, W * sw}, like);
  if (x.device().is_cuda()) {
    cuda_ops::upsample_nearest2d_forward(planes, H, W, sh, sw, x, y);
  } else {
    dispatch_floating(x.dtype(), op, [&](auto t) {
      using T = decltype(t);
      kc::upsample_nearest2d_forward<T>(planes, H, W, sh, sw, x.data_ptr<T>(), y.data_ptr<T>());
    });
  }
  if (needs_grad({x_in})) {
    Shape xs = x.shape();
    DType dt = x.dtype();
    record(op, {x_in}, {y}, [=](const std::vector<Tensor>& grads) -> std::vector<Tensor> {
      Tensor dy = raw::contiguous(grads[0]);
      Tensor dx = empty(xs, like);
      if (dx.device().is_cuda()) {
        cuda_ops::upsample_nearest2d_backward(planes, H, W, sh, sw, dy, dx);
        return {dx};
      }
      dispatch_floating(dt, "upsample_nearest2d", [&](auto t) {
        using T = decltype(t);
        kc::upsample_nearest2d_backward<T>(planes, H, W, sh, sw, dy.data_ptr<T>(),
                                           dx.data_ptr<T>());
      });
      return {dx};
    });
  }
  return y;
}

namespace {
// The forward of batch_norm for CUDA tensors, all on the device: the statistics (or the running
// ones in evaluation), the reciprocal deviations with the running-statistics update, and the
// normalisation.
void batch_norm_cuda_forward(const Tensor& x, int64_t N, int64_t C, int64_t L,
                             const Tensor& running_mean, const Tensor& running_var, const Tensor& w,
                             const Tensor& b, int64_t affine_stride, bool training, double momentum,
                             double eps, const Tensor& mean, const Tensor& rstd, const Tensor& y) {
  NoGradGuard no_grad;
  if (training) {
    const Tensor var = empty({C}, TensorOptions(x.dtype()).set_device(x.device()));
    cuda_ops::batch_norm_stats(x, N, C, L, mean, var);
    const bool track = running_mean.defined() && running_var.defined();
    SMYRF_CHECK_HINT(!track || (running_mean.is_contiguous() && running_var.is_contiguous()),
                     "batch_norm",
                     "running statistics on CUDA must be contiguous (updated in place)",
                     "pass the module's own buffers or contiguous() copies");
    cuda_ops::batch_norm_finish_stats(mean, var, eps, momentum, N * L,
                                      track ? running_mean : Tensor(),
                                      track ? running_var : Tensor(), rstd);
  } else {
    raw::copy_into(mean, running_mean);
    cuda_ops::batch_norm_finish_stats(mean, raw::contiguous(running_var), eps, 0, 0, Tensor(),
                                      Tensor(), rstd);
  }
  cuda_ops::batch_norm_apply(x, N, C, L, mean, rstd, w, b, affine_stride, y);
}

}  // namespace

Tensor batch_norm(const Tensor& x_in, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& w_in, const Tensor& b_in, bool training, double momentum,
                  double eps) {
  const char* op = "batch_norm";
  SMYRF_CHECK(x_in.defined(), op, "input is undefined");
  SMYRF_CHECK_HINT(x_in.dim() >= 2, op,
                   "input must be (N, C, ...), got " << shape_str(x_in.shape()),
                   "add a batch dim with unsqueeze(0)");
  SMYRF_CHECK_HINT(x_in.is_floating_point(), op,
                   "input must be float32 or float64, got " << dtype_name(x_in.dtype()),
                   "convert with .to(kFloat32)");
  const int64_t N = x_in.size(0), C = x_in.size(1), L = x_in.numel() / std::max<int64_t>(1, N * C);
  for (const Tensor* s : {&running_mean, &running_var}) {
    if (!s->defined()) continue;
    check_same(x_in, *s, op, "a running statistic");
    SMYRF_CHECK_HINT(s->dim() == 1 && s->size(0) == C, op,
                     "running statistic " << shape_str(s->shape()) << " does not match " << C
                                          << " channels of " << shape_str(x_in.shape()),
                     "running_mean and running_var are (C)");
  }
  SMYRF_CHECK_HINT(training || (running_mean.defined() && running_var.defined()), op,
                   "evaluation mode needs running_mean and running_var",
                   "pass training=true or the running stats");
  SMYRF_CHECK_HINT(
      !training || N * L > 1, op,
      "training needs more than one value per channel, got input " << shape_str(x_in.shape()),
      "use a larger batch or evaluation mode");
  int64_t affine_stride = 0;
  for (const Tensor* a : {&w_in, &b_in}) {
    if (!a->defined()) continue;
    check_same(x_in, *a, op, "an affine parameter");
    const bool per_channel = a->dim() == 1 && a->size(0) == C;
    const bool per_sample = a->dim() == 2 && a->size(0) == N && a->size(1) == C;
    SMYRF_CHECK_HINT(per_channel || per_sample, op,
                     "weight/bias " << shape_str(a->shape())
                                    << " fits neither (C) nor (N, C) for input "
                                    << shape_str(x_in.shape()),
                     "pass (C) for batch norm or (N, C) for conditional batch norm");
    const int64_t s = per_sample ? C : 0;
    SMYRF_CHECK_HINT(!(w_in.defined() && b_in.defined()) || w_in.shape() == b_in.shape(), op,
                     "weight " << shape_str(w_in.shape()) << " and bias " << shape_str(b_in.shape())
                               << " differ",
                     "give both the same shape");
    affine_stride = s;
  }
  Tensor x = raw::contiguous(x_in);
  Tensor w = w_in.defined() ? raw::contiguous(w_in) : Tensor();
  Tensor b = b_in.defined() ? raw::contiguous(b_in) : Tensor();
  const DType dt = x.dtype();
  const TensorOptions like = TensorOptions(dt).set_device(x.device());
  Tensor mean = empty({C}, like), rstd = empty({C}, like);
  Tensor y = empty(x.shape(), like);
  if (x.device().is_cuda()) {
    batch_norm_cuda_forward(x, N, C, L, running_mean, running_var, w, b, affine_stride, training,
                            momentum, eps, mean, rstd, y);
  } else {
    dispatch_floating(dt, op, [&](auto t) {
      using T = decltype(t);
      T* m = mean.data_ptr<T>();
      T* r = rstd.data_ptr<T>();
      if (training) {
        Tensor var = empty({C}, TensorOptions(dt));
        T* v = var.data_ptr<T>();
        kc::batch_norm_stats<T>(x.data_ptr<T>(), N, C, L, m, v);
        for (int64_t c = 0; c < C; ++c)
          r[c] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(v[c]) + eps));
        if (running_mean.defined() && running_var.defined()) {
          // PyTorch's convention: normalise with the biased variance, track the unbiased one.
          const double unbias = static_cast<double>(N * L) / static_cast<double>(N * L - 1);
          NoGradGuard no_grad;
          std::vector<double> rm = running_mean.to_vector<double>(),
                              rv = running_var.to_vector<double>();
          for (int64_t c = 0; c < C; ++c) {
            rm[c] = (1 - momentum) * rm[c] + momentum * static_cast<double>(m[c]);
            rv[c] = (1 - momentum) * rv[c] + momentum * static_cast<double>(v[c]) * unbias;
          }
          raw::copy_into(running_mean, from_vector<double>(rm, {C}, kFloat64));
          raw::copy_into(running_var, from_vector<double>(rv, {C}, kFloat64));
        }
      } else {
        Tensor rmc = raw::contiguous(running_mean), rvc = raw::contiguous(running_var);
        const T* rm = rmc.data_ptr<T>();
        const T* rv = rvc.data_ptr<T>();
        for (int64_t c = 0; c < C; ++c) {
          m[c] = rm[c];
          r[c] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(rv[c]) + eps));
        }
      }
      kc::batch_norm_apply<T>(
          x.data_ptr<T>(), N, C, L, m, r, w.defined() ? w.data_ptr<T>() : nullptr,
          b.defined() ? b.data_ptr<T>() : nullptr, affine_stride, y.data_ptr<T>());
    });
  }
  if (needs_grad({x_in, w_in, b_in})) {
    const bool gx = wants_grad(x_in), gw = wants_grad(w_in), gb = wants_grad(b_in);
    Tensor xs = alias(x), ws = w.defined() ? alias(w) : Tensor();
    Shape affine_shape = w_in.defined() ? w_in.shape() : (b_in.defined() ? b_in.shape() : Shape{});
    record(op, {x_in, w_in, b_in}, {y},
           [=](const std::vector<Tensor>& grads) -> std::vector<Tensor> {
             Tensor dy = raw::contiguous(grads[0]);
             Tensor dx, dw, db;
             if (gx) dx = empty(xs.shape(), like);
             if (gw) dw = empty(affine_shape, like);
             if (gb) db = empty(affine_shape, like);
             if (xs.device().is_cuda()) {
               cuda_ops::batch_norm_backward(dy, xs, N, C, L, mean, rstd, ws, affine_stride,
                                             training, dx, dw, db);
               return {dx, dw, db};
             }
             dispatch_floating(dt, "batch_norm", [&](auto t) {
               using T = decltype(t);
               auto ptr = [](const Tensor& u) { return u.defined() ? u.data_ptr<T>() : nullptr; };
               kc::batch_norm_backward<T>(dy.data_ptr<T>(), xs.data_ptr<T>(), N, C, L,
                                          mean.data_ptr<T>(), rstd.data_ptr<T>(), ptr(ws),
                                          affine_stride, training, ptr(dx), ptr(dw), ptr(db));
             });
             return {dx, dw, db};
           },
           {x_in, w_in});
  }
  return y;
}

}  // namespace smyrf
