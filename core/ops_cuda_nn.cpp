// CUDA dispatch for attention, SMYRF attention and convolution (see ops_cuda_nn.h).
// Status: ran on an NVIDIA H200 on 2026-11-30 (tests/cuda 42/42), except the causal SMYRF branch
// (make_causal_pairs and the pair-list dispatch), written later that day without a GPU: compiled,
// not yet run.
#include "core/ops_cuda_nn.h"

#include <cstdlib>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"
#ifdef SMYRF_WITH_CUDA
#include "core/ops_cuda_run.h"
#include "kernels/cpu/smyrf_pairs.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/batch_norm.h"
#include "kernels/cuda/conv_cudnn.h"
#include "kernels/cuda/pool.h"
#include "kernels/cuda/runtime.h"
#endif

namespace smyrf::cuda_ops {

namespace {
void check_stages(int stages) {
  if (stages != 1 && stages != 2)
    throw Error("attention", "pipeline stages " + std::to_string(stages) + " unsupported",
                "use 1 (one synchronously loaded buffer) or 2 (cp.async double buffering)");
}
}  // namespace

#ifdef SMYRF_WITH_CUDA

void set_attention_pipeline_stages(int stages) {
  check_stages(stages);
  kernels::cuda::set_attention_pipeline_stages(stages);
}
int attention_pipeline_stages() {
  try {
    return kernels::cuda::attention_pipeline_stages();
  } catch (const std::invalid_argument&) {  // a bad SMYRF_CUDA_ATTN_STAGES
    const char* env = std::getenv("SMYRF_CUDA_ATTN_STAGES");
    throw Error(
        "attention",
        std::string("SMYRF_CUDA_ATTN_STAGES='") + (env ? env : "") + "' is not a pipeline depth",
        "set it to 1 or 2, or unset it");
  }
}
namespace kg = kernels::cuda;

bool smyrf_stored_ds() {
  try {
    return kg::smyrf_stored_ds();
  } catch (const std::invalid_argument&) {  // a bad SMYRF_CUDA_SMYRF_DQ
    const char* env = std::getenv("SMYRF_CUDA_SMYRF_DQ");
    throw Error("smyrf_attention",
                std::string("SMYRF_CUDA_SMYRF_DQ='") + (env ? env : "") + "' is not a dq mode",
                "set it to stored or recompute, or unset it");
  }
}
bool set_smyrf_stored_ds(bool stored) {
  const bool prev = smyrf_stored_ds();
  kg::set_smyrf_stored_ds(stored);
  return prev;
}

// Non-causal calls keep the device clustering; causal ones the device pair lists built on the
// host (kernels/cuda/attention.h).
struct SmyrfCudaPlan {
  bool causal = false;
  kg::SmyrfDevicePlan plan;
  kernels::cpu::SmyrfPlan host_plan;  // causal
  kg::SmyrfDevicePairs pairs;
};

using detail::ptr;
using detail::run;

namespace {
// float32 runs the CUDA-core kernels, bfloat16 the tensor-core ones (kernels/cuda/attention.h).
bool is_bf16(const char* op, const Tensor& q) {
  if (q.dtype() == kFloat32) return false;
  if (q.dtype() == kBFloat16) return true;
  throw Error(op,
              std::string("CUDA attention takes float32 or bfloat16, got ") + dtype_name(q.dtype()),
              "convert with .to(kFloat32) or .to(kBFloat16)");
}

// Every defined tensor in `ts` has dtype `want`; lse is float32 in both modes.
void require_dtypes(const char* op, DType want, std::initializer_list<const Tensor*> ts,
                    const Tensor& lse) {
  for (const Tensor* t : ts)
    if (t->defined() && t->dtype() != want)
      throw Error(op,
                  std::string("mixed dtypes on CUDA: q is ") + dtype_name(want) + ", another is " +
                      dtype_name(t->dtype()),
                  "give q, k, v, out and the gradients one dtype");
  if (lse.defined() && lse.dtype() != kFloat32)
    throw Error(op, std::string("the LSE must be float32, got ") + dtype_name(lse.dtype()),
                "allocate lse as float32 (bfloat16 attention keeps its LSE in float32)");
}

const uint16_t* bits(const Tensor& t) { return static_cast<const uint16_t*>(t.raw_data()); }
uint16_t* wbits(const Tensor& t) { return static_cast<uint16_t*>(t.raw_data()); }

// The bias of the bfloat16 kernels is float32 (a bfloat16 bias is widened, exactly).
Tensor bias_f32(const Tensor& bias) {
  return bias.defined() && bias.dtype() != kFloat32 ? bias.to(kFloat32) : bias;
}
}  // namespace

void attention_forward(const kernels::cpu::AttentionParams& p, const Tensor& q, const Tensor& k,
                       const Tensor& v, const Tensor& bias, const Tensor& out, const Tensor& lse) {
  const bool bf = is_bf16("attention", q);
  require_dtypes("attention", q.dtype(), {&k, &v, &out}, lse);
  run("attention", q, [&] {
    if (bf) {
      const Tensor b32 = bias_f32(bias);
      kg::attention_forward_bf16(p, bits(q), bits(k), bits(v), ptr<float>(b32), wbits(out),
                                 ptr<float>(lse));
      return;
    }
    kg::attention_forward(p, ptr<float>(q), ptr<float>(k), ptr<float>(v), ptr<float>(bias),
                          ptr<float>(out), ptr<float>(lse));
  });
}

void attention_backward(const kernels::cpu::AttentionParams& p, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& bias, const Tensor& out, const Tensor& lse,
                        const Tensor& dout, const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  const bool bf = is_bf16("attention", q);
  require_dtypes("attention", q.dtype(), {&k, &v, &out, &dout, &dq, &dk, &dv}, lse);
  run("attention", q, [&] {
    if (bf) {
      const Tensor b32 = bias_f32(bias);
      kg::attention_backward_bf16(p, bits(q), bits(k), bits(v), ptr<float>(b32), bits(out),
                                  ptr<float>(lse), bits(dout), wbits(dq), wbits(dk), wbits(dv));
      return;
    }
    kg::attention_backward(p, ptr<float>(q), ptr<float>(k), ptr<float>(v), ptr<float>(bias),
                           ptr<float>(out), ptr<float>(lse), ptr<float>(dout), ptr<float>(dq),
                           ptr<float>(dk), ptr<float>(dv));
  });
}

namespace {
// n elements of T from the device into a host vector (an empty vector for a null pointer).
template <typename T>
std::vector<T> to_host(const T* device, int64_t n) {
  std::vector<T> h;
  if (!device) return h;
  h.resize(static_cast<size_t>(n));
  kg::memcpy_any(h.data(), false, device, true, h.size() * sizeof(T));
  return h;
}

// Causal SMYRF's plan is a sequential walk over sorted past-key snapshots (kernels/cpu/smyrf.h):
// it runs on the host, from host copies of q, k and the masks (the same code as the CPU op, so
// both devices attend exactly the same pairs), and its pair lists are uploaded.
void make_causal_pairs(const kernels::cpu::SmyrfParams& p, const Tensor& q, const Tensor& k,
                       SmyrfCudaPlan& plan) {
  namespace kc = kernels::cpu;
  if (q.dtype() != kFloat32)
    throw Error("smyrf_attention",
                std::string("causal SMYRF on CUDA takes float32, got ") + dtype_name(q.dtype()),
                "convert q, k and v with .to(kFloat32) for causal SMYRF");
  const int64_t B = p.batch_heads / p.heads;
  const std::vector<float> qh = to_host(ptr<float>(q), p.batch_heads * p.nq * p.d);
  const std::vector<float> kh = to_host(ptr<float>(k), p.batch_heads * p.nk * p.d);
  const std::vector<uint8_t> km = to_host(p.key_mask, B * p.nk);
  const std::vector<uint8_t> qm = to_host(p.query_mask, B * p.nq);
  kc::SmyrfParams hp = p;
  hp.key_mask = p.key_mask ? km.data() : nullptr;
  hp.query_mask = p.query_mask ? qm.data() : nullptr;
  plan.host_plan = kc::smyrf_make_plan<float>(hp, qh.data(), kh.data());
  plan.pairs = kg::smyrf_upload_pairs(kc::smyrf_pairs(hp, plan.host_plan));
  plan.causal = true;
}
}  // namespace

std::shared_ptr<SmyrfCudaPlan> smyrf_make_plan(const kernels::cpu::SmyrfParams& p, const Tensor& q,
                                               const Tensor& k) {
  const bool bf = is_bf16("smyrf_attention", q);
  require_dtypes("smyrf_attention", q.dtype(), {&k}, Tensor());
  auto plan = std::make_shared<SmyrfCudaPlan>();
  run("smyrf_attention", q, [&] {
    if (p.causal) {
      make_causal_pairs(p, q, k, *plan);
      return;
    }
    plan->plan = bf ? kg::smyrf_make_plan_bf16(p, bits(q), bits(k))
                    : kg::smyrf_make_plan(p, ptr<float>(q), ptr<float>(k));
  });
  return plan;
}

void smyrf_forward(const kernels::cpu::SmyrfParams& p, const SmyrfCudaPlan& plan, const Tensor& q,
                   const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse) {
  const bool bf = is_bf16("smyrf_attention", q);
  require_dtypes("smyrf_attention", q.dtype(), {&k, &v, &out}, lse);
  run("smyrf_attention", q, [&] {
    if (plan.causal) {
      kg::smyrf_pairs_forward(p, plan.pairs, ptr<float>(q), ptr<float>(k), ptr<float>(v),
                              ptr<float>(out), ptr<float>(lse));
      return;
    }
    if (bf) {
      kg::smyrf_forward_bf16(p, plan.plan, bits(q), bits(k), bits(v), wbits(out), ptr<float>(lse));
      return;
    }
    kg::smyrf_forward(p, plan.plan, ptr<float>(q), ptr<float>(k), ptr<float>(v), ptr<float>(out),
                      ptr<float>(lse));
  });
}

void smyrf_backward(const kernels::cpu::SmyrfParams& p, const SmyrfCudaPlan& plan, const Tensor& q,
                    const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                    const Tensor& dout, const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  const bool bf = is_bf16("smyrf_attention", q);
  require_dtypes("smyrf_attention", q.dtype(), {&k, &v, &out, &dout, &dq, &dk, &dv}, lse);
  run("smyrf_attention", q, [&] {
    if (plan.causal) {
      kg::smyrf_pairs_backward(p, plan.pairs, ptr<float>(q), ptr<float>(k), ptr<float>(v),
                               ptr<float>(out), ptr<float>(lse), ptr<float>(dout), ptr<float>(dq),
                               ptr<float>(dk), ptr<float>(dv));
      return;
    }
    if (bf) {
      kg::smyrf_backward_bf16(p, plan.plan, bits(q), bits(k), bits(v), bits(out), ptr<float>(lse),
                              bits(dout), wbits(dq), wbits(dk), wbits(dv));
      return;
    }
    kg::smyrf_backward(p, plan.plan, ptr<float>(q), ptr<float>(k), ptr<float>(v), ptr<float>(out),
                       ptr<float>(lse), ptr<float>(dout), ptr<float>(dq), ptr<float>(dk),
                       ptr<float>(dv));
  });
}

const kernels::cpu::SmyrfPlan* smyrf_host_plan(const SmyrfCudaPlan& plan) {
  return plan.causal ? &plan.host_plan : nullptr;
}

void smyrf_clusters(const SmyrfCudaPlan& plan, const Tensor& q_cluster, const Tensor& k_cluster) {
  if (plan.causal)
    throw Error("smyrf_attention", "a causal plan has no clusters (each query has its own window)",
                "ask for the clusters of non-causal calls only");
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

void avg_pool2d_forward(const kernels::cpu::Pool2dGeometry& g, const Tensor& x, const Tensor& y,
                        bool count_include_pad) {
  run("avg_pool2d", x, [&] {
    SMYRF_DISPATCH_FLOAT(x.dtype(), "avg_pool2d", [&] {
      kg::avg_pool2d_forward<scalar_t>(g, ptr<scalar_t>(x), ptr<scalar_t>(y), count_include_pad);
    });
  });
}
void avg_pool2d_backward(const kernels::cpu::Pool2dGeometry& g, const Tensor& dy, const Tensor& dx,
                         bool count_include_pad) {
  run("avg_pool2d", dy, [&] {
    SMYRF_DISPATCH_FLOAT(dy.dtype(), "avg_pool2d", [&] {
      kg::avg_pool2d_backward<scalar_t>(g, ptr<scalar_t>(dy), ptr<scalar_t>(dx), count_include_pad);
    });
  });
}
void max_pool2d_forward(const kernels::cpu::Pool2dGeometry& g, const Tensor& x, const Tensor& y,
                        const Tensor& indices) {
  run("max_pool2d", x, [&] {
    SMYRF_DISPATCH_FLOAT(x.dtype(), "max_pool2d", [&] {
      kg::max_pool2d_forward<scalar_t>(g, ptr<scalar_t>(x), ptr<scalar_t>(y),
                                       ptr<int64_t>(indices));
    });
  });
}
void max_pool2d_backward(const kernels::cpu::Pool2dGeometry& g, const Tensor& dy,
                         const Tensor& indices, const Tensor& dx) {
  run("max_pool2d", dy, [&] {
    SMYRF_DISPATCH_FLOAT(dy.dtype(), "max_pool2d", [&] {
      kg::max_pool2d_backward<scalar_t>(g, ptr<scalar_t>(dy), ptr<int64_t>(indices),
                                        ptr<scalar_t>(dx));
    });
  });
}
void upsample_nearest2d_forward(int64_t planes, int64_t H, int64_t W, int64_t fh, int64_t fw,
                                const Tensor& x, const Tensor& y) {
  run("upsample_nearest2d", x, [&] {
    SMYRF_DISPATCH_FLOAT(x.dtype(), "upsample_nearest2d", [&] {
      kg::upsample_nearest2d_forward<scalar_t>(planes, H, W, fh, fw, ptr<scalar_t>(x),
                                               ptr<scalar_t>(y));
    });
  });
}
void upsample_nearest2d_backward(int64_t planes, int64_t H, int64_t W, int64_t fh, int64_t fw,
                                 const Tensor& dy, const Tensor& dx) {
  run("upsample_nearest2d", dy, [&] {
    SMYRF_DISPATCH_FLOAT(dy.dtype(), "upsample_nearest2d", [&] {
      kg::upsample_nearest2d_backward<scalar_t>(planes, H, W, fh, fw, ptr<scalar_t>(dy),
                                                ptr<scalar_t>(dx));
    });
  });
}

void batch_norm_stats(const Tensor& x, int64_t N, int64_t C, int64_t L, const Tensor& mean,
                      const Tensor& var) {
  run("batch_norm", x, [&] {
    SMYRF_DISPATCH_FLOAT(x.dtype(), "batch_norm", [&] {
      kg::batch_norm_stats<scalar_t>(ptr<scalar_t>(x), N, C, L, ptr<scalar_t>(mean),
                                     ptr<scalar_t>(var));
    });
  });
}
void batch_norm_finish_stats(const Tensor& mean, const Tensor& var, double eps, double momentum,
                             int64_t count, const Tensor& running_mean, const Tensor& running_var,
                             const Tensor& rstd) {
  run("batch_norm", var, [&] {
    SMYRF_DISPATCH_FLOAT(var.dtype(), "batch_norm", [&] {
      kg::batch_norm_finish_stats<scalar_t>(ptr<scalar_t>(mean), ptr<scalar_t>(var), var.numel(),
                                            eps, momentum, count, ptr<scalar_t>(running_mean),
                                            ptr<scalar_t>(running_var), ptr<scalar_t>(rstd));
    });
  });
}
void batch_norm_apply(const Tensor& x, int64_t N, int64_t C, int64_t L, const Tensor& mean,
                      const Tensor& rstd, const Tensor& w, const Tensor& b, int64_t affine_stride_n,
                      const Tensor& y) {
  run("batch_norm", x, [&] {
    SMYRF_DISPATCH_FLOAT(x.dtype(), "batch_norm", [&] {
      kg::batch_norm_apply<scalar_t>(ptr<scalar_t>(x), N, C, L, ptr<scalar_t>(mean),
                                     ptr<scalar_t>(rstd), ptr<scalar_t>(w), ptr<scalar_t>(b),
                                     affine_stride_n, ptr<scalar_t>(y));
    });
  });
}
void batch_norm_backward(const Tensor& dy, const Tensor& x, int64_t N, int64_t C, int64_t L,
                         const Tensor& mean, const Tensor& rstd, const Tensor& w,
                         int64_t affine_stride_n, bool training, const Tensor& dx, const Tensor& dw,
                         const Tensor& db) {
  run("batch_norm", dy, [&] {
    SMYRF_DISPATCH_FLOAT(dy.dtype(), "batch_norm", [&] {
      kg::batch_norm_backward<scalar_t>(ptr<scalar_t>(dy), ptr<scalar_t>(x), N, C, L,
                                        ptr<scalar_t>(mean), ptr<scalar_t>(rstd), ptr<scalar_t>(w),
                                        affine_stride_n, training, ptr<scalar_t>(dx),
                                        ptr<scalar_t>(dw), ptr<scalar_t>(db));
    });
  });
}

#else  // built without CUDA: no CUDA tensor can exist, so these are unreachable

struct SmyrfCudaPlan {};

namespace {
int g_stages = 2;  // kept for symmetry; nothing reads it without CUDA
}  // namespace
void set_attention_pipeline_stages(int stages) {
  check_stages(stages);
  g_stages = stages;
}
int attention_pipeline_stages() { return g_stages; }
namespace {
bool g_stored_ds = false;  // kept for symmetry; nothing reads it without CUDA
}  // namespace
bool set_smyrf_stored_ds(bool stored) {
  const bool prev = g_stored_ds;
  g_stored_ds = stored;
  return prev;
}
bool smyrf_stored_ds() { return g_stored_ds; }

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
const kernels::cpu::SmyrfPlan* smyrf_host_plan(const SmyrfCudaPlan&) { return nullptr; }
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
void avg_pool2d_forward(const kernels::cpu::Pool2dGeometry&, const Tensor&, const Tensor&, bool) {
  no_cuda("avg_pool2d");
}
void avg_pool2d_backward(const kernels::cpu::Pool2dGeometry&, const Tensor&, const Tensor&, bool) {
  no_cuda("avg_pool2d");
}
void max_pool2d_forward(const kernels::cpu::Pool2dGeometry&, const Tensor&, const Tensor&,
                        const Tensor&) {
  no_cuda("max_pool2d");
}
void max_pool2d_backward(const kernels::cpu::Pool2dGeometry&, const Tensor&, const Tensor&,
                         const Tensor&) {
  no_cuda("max_pool2d");
}
void upsample_nearest2d_forward(int64_t, int64_t, int64_t, int64_t, int64_t, const Tensor&,
                                const Tensor&) {
  no_cuda("upsample_nearest2d");
}
void upsample_nearest2d_backward(int64_t, int64_t, int64_t, int64_t, int64_t, const Tensor&,
                                 const Tensor&) {
  no_cuda("upsample_nearest2d");
}
void batch_norm_stats(const Tensor&, int64_t, int64_t, int64_t, const Tensor&, const Tensor&) {
  no_cuda("batch_norm");
}
void batch_norm_finish_stats(const Tensor&, const Tensor&, double, double, int64_t, const Tensor&,
                             const Tensor&, const Tensor&) {
  no_cuda("batch_norm");
}
void batch_norm_apply(const Tensor&, int64_t, int64_t, int64_t, const Tensor&, const Tensor&,
                      const Tensor&, const Tensor&, int64_t, const Tensor&) {
  no_cuda("batch_norm");
}
void batch_norm_backward(const Tensor&, const Tensor&, int64_t, int64_t, int64_t, const Tensor&,
                         const Tensor&, const Tensor&, int64_t, bool, const Tensor&, const Tensor&,
                         const Tensor&) {
  no_cuda("batch_norm");
}

#endif

}  // namespace smyrf::cuda_ops
