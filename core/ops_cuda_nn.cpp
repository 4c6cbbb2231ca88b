// CUDA dispatch for attention, SMYRF attention and convolution (see ops_cuda_nn.h).
// Status: compiled only; not yet run on a GPU.
#include "core/ops_cuda_nn.h"

#include <stdexcept>

#include "core/error.h"
#ifdef SMYRF_WITH_CUDA
#include "core/ops_cuda_run.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/conv_cudnn.h"
#include "kernels/cuda/runtime.h"
#endif

namespace smyrf::cuda_ops {

#ifdef SMYRF_WITH_CUDA
namespace kg = kernels::cuda;

struct SmyrfCudaPlan {
  kg::SmyrfDevicePlan plan;
};

using detail::ptr;
using detail::run;

namespace {
void require_float(const char* op, const Tensor& t) {
  if (t.dtype() != kFloat32)
    throw Error(op, std::string("CUDA kernels take float32, got ") + dtype_name(t.dtype()),
                "convert with .to(kFloat32)");
}
}  // namespace

void attention_forward(const kernels::cpu::AttentionParams& p, const Tensor& q, const Tensor& k,
                       const Tensor& v, const Tensor& bias, const Tensor& out, const Tensor& lse) {
  require_float("attention", q);
  run("attention", q, [&] {
    kg::attention_forward(p, ptr<float>(q), ptr<float>(k), ptr<float>(v), ptr<float>(bias),
                          ptr<float>(out), ptr<float>(lse));
  });
}

void attention_backward(const kernels::cpu::AttentionParams& p, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& bias, const Tensor& out, const Tensor& lse,
                        const Tensor& dout, const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  require_float("attention", q);
  run("attention", q, [&] {
    kg::attention_backward(p, ptr<float>(q), ptr<float>(k), ptr<float>(v), ptr<float>(bias),
                           ptr<float>(out), ptr<float>(lse), ptr<float>(dout), ptr<float>(dq),
                           ptr<float>(dk), ptr<float>(dv));
  });
}

std::shared_ptr<SmyrfCudaPlan> smyrf_make_plan(const kernels::cpu::SmyrfParams& p, const Tensor& q,
                                               const Tensor& k) {
  require_float("smyrf_attention", q);
  auto plan = std::make_shared<SmyrfCudaPlan>();
  run("smyrf_attention", q,
      [&] { plan->plan = kg::smyrf_make_plan(p, ptr<float>(q), ptr<float>(k)); });
  return plan;
}

void smyrf_forward(const kernels::cpu::SmyrfParams& p, const SmyrfCudaPlan& plan, const Tensor& q,
                   const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse) {
  run("smyrf_attention", q, [&] {
    kg::smyrf_forward(p, plan.plan, ptr<float>(q), ptr<float>(k), ptr<float>(v), ptr<float>(out),
                      ptr<float>(lse));
  });
}

void smyrf_backward(const kernels::cpu::SmyrfParams& p, const SmyrfCudaPlan& plan, const Tensor& q,
                    const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                    const Tensor& dout, const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  run("smyrf_attention", q, [&] {
    kg::smyrf_backward(p, plan.plan, ptr<float>(q), ptr<float>(k), ptr<float>(v), ptr<float>(out),
                       ptr<float>(lse), ptr<float>(dout), ptr<float>(dq), ptr<float>(dk),
                       ptr<float>(dv));
  });
}

void smyrf_clusters(const SmyrfCudaPlan& plan, const Tensor& q_cluster, const Tensor& k_cluster) {
  run("smyrf_attention", q_cluster, [&] {
    kg::memcpy_any(q_cluster.raw_data(), true, plan.plan.q_cluster.data(), true,
                   static_cast<size_t>(plan.plan.q_cluster.size()) * sizeof(int32_t));
    kg::memcpy_any(k_cluster.raw_data(), true, plan.plan.k_cluster.data(), true,
                   static_cast<size_t>(plan.plan.k_cluster.size()) * sizeof(int32_t));
  });
}

void conv2d_forward(const kernels::cpu::Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                    const Tensor& bias, const Tensor& y) {
  run("conv2d", x, [&] {
    SMYRF_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] {
      kg::conv2d_forward<scalar_t>(g, ptr<scalar_t>(x), ptr<scalar_t>(w), ptr<scalar_t>(bias),
                                   ptr<scalar_t>(y));
    });
  });
}

void conv2d_backward_data(const kernels::cpu::Conv2dGeometry& g, const Tensor& dy, const Tensor& w,
                          const Tensor& dx) {
  run("conv2d", dy, [&] {
    SMYRF_DISPATCH_FLOAT(dy.dtype(), "conv2d", [&] {
      kg::conv2d_backward_data<scalar_t>(g, ptr<scalar_t>(dy), ptr<scalar_t>(w), ptr<scalar_t>(dx));
    });
  });
}

void conv2d_backward_filter(const kernels::cpu::Conv2dGeometry& g, const Tensor& x,
                            const Tensor& dy, const Tensor& dw, const Tensor& dbias) {
  run("conv2d", x, [&] {
    SMYRF_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] {
      kg::conv2d_backward_filter<scalar_t>(g, ptr<scalar_t>(x), ptr<scalar_t>(dy),
                                           ptr<scalar_t>(dw), ptr<scalar_t>(dbias));
    });
  });
}

#else  // built without CUDA: no CUDA tensor can exist, so these are unreachable

struct SmyrfCudaPlan {};

namespace {
[[noreturn]] void no_cuda(const char* op) {
  throw Error(op, "smyrf was built without CUDA", "configure on a machine with nvcc");
}
}  // namespace

void attention_forward(const kernels::cpu::AttentionParams&, const Tensor&, const Tensor&,
                       const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  no_cuda("attention");
}
void attention_backward(const kernels::cpu::AttentionParams&, const Tensor&, const Tensor&,
                        const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                        const Tensor&, const Tensor&, const Tensor&) {
  no_cuda("attention");
}
std::shared_ptr<SmyrfCudaPlan> smyrf_make_plan(const kernels::cpu::SmyrfParams&, const Tensor&,
                                               const Tensor&) {
  no_cuda("smyrf_attention");
}
void smyrf_forward(const kernels::cpu::SmyrfParams&, const SmyrfCudaPlan&, const Tensor&,
                   const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  no_cuda("smyrf_attention");
}
void smyrf_backward(const kernels::cpu::SmyrfParams&, const SmyrfCudaPlan&, const Tensor&,
                    const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                    const Tensor&, const Tensor&, const Tensor&) {
  no_cuda("smyrf_attention");
}
void smyrf_clusters(const SmyrfCudaPlan&, const Tensor&, const Tensor&) {
  no_cuda("smyrf_attention");
}
void conv2d_forward(const kernels::cpu::Conv2dGeometry&, const Tensor&, const Tensor&,
                    const Tensor&, const Tensor&) {
  no_cuda("conv2d");
}
void conv2d_backward_data(const kernels::cpu::Conv2dGeometry&, const Tensor&, const Tensor&,
                          const Tensor&) {
  no_cuda("conv2d");
}
void conv2d_backward_filter(const kernels::cpu::Conv2dGeometry&, const Tensor&, const Tensor&,
                            const Tensor&, const Tensor&) {
  no_cuda("conv2d");
}

#endif

}  // namespace smyrf::cuda_ops
