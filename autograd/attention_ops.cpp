// Dense and SMYRF attention ops: validation, dispatch to the fused kernels of kernels/cpu, the
// single autograd node of each, and the SMYRF diagnostics.
#include "autograd/attention_ops.h"

#include <cmath>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/function.h"
#include "core/ops.h"
#include "core/ops_cuda_nn.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/smyrf.h"

namespace smyrf {
namespace kc = kernels::cpu;

namespace {

struct Dims {
  int64_t B = 0, H = 0, nq = 0, nk = 0, d = 0, dv = 0;
};

std::string qkv_str(const Tensor& q, const Tensor& k, const Tensor& v) {
  return "q " + shape_str(q.shape()) + ", k " + shape_str(k.shape()) + ", v " +
         shape_str(v.shape());
}

Dims check_qkv(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  SMYRF_CHECK_HINT(q.defined() && k.defined() && v.defined(), op, "q, k and v must all be defined",
                   "pass k = v = q for plain self-attention");
  const std::string s = qkv_str(q, k, v);
  SMYRF_CHECK_HINT(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, op,
                   "q, k and v must be (batch, heads, N, d); got " << s,
                   "split heads with reshape + permute, or unsqueeze(1) for one head");
  for (const Tensor* t : {&q, &k, &v}) {
    SMYRF_CHECK_HINT(t->device() == q.device(), op,
                     "q is on " << q.device().str() << " but another input is on "
                                << t->device().str() << " (" << s << ")",
                     "move q, k and v to one device");
    if (t->device().is_cuda()) {
      SMYRF_CHECK_HINT(t->dtype() == kFloat32 || t->dtype() == kBFloat16, op,
                       "the CUDA kernels take float32 or bfloat16, got " << dtype_name(t->dtype())
                                                                         << " (" << s << ")",
                       "convert with .to(kFloat32) or .to(kBFloat16), or run float64 on the CPU");
    } else {
      SMYRF_CHECK_HINT(
          t->dtype() == kFloat32 || t->dtype() == kFloat64, op,
          "inputs must be float32 or float64, got " << dtype_name(t->dtype()) << " (" << s << ")",
          (t->dtype() == kBFloat16
               ? "bfloat16 attention runs on CUDA (tensor cores); on the CPU convert with "
                 ".to(kFloat32)"
               : "convert with .to(kFloat32)"));
    }
  }
  SMYRF_CHECK_HINT(q.dtype() == k.dtype() && q.dtype() == v.dtype(), op,
                   "q, k and v have different dtypes: " << dtype_name(q.dtype()) << ", "
                                                        << dtype_name(k.dtype()) << ", "
                                                        << dtype_name(v.dtype()),
                   "convert all three to one dtype");
  Dims dm;
  dm.B = q.size(0), dm.H = q.size(1), dm.nq = q.size(2), dm.d = q.size(3);
  dm.nk = k.size(2), dm.dv = v.size(3);
  SMYRF_CHECK_HINT(k.size(0) == dm.B && v.size(0) == dm.B, op, "batch sizes differ: " << s,
                   "q, k and v need the same batch (dim 0)");
  SMYRF_CHECK_HINT(k.size(1) == dm.H && v.size(1) == dm.H, op, "head counts differ: " << s,
                   "q, k and v need the same number of heads (dim 1)");
  SMYRF_CHECK_HINT(k.size(3) == dm.d, op,
                   "q and k head sizes differ (" << dm.d << " vs " << k.size(3) << "): " << s,
                   "scores are q.k, so q and k need the same last dim");
  SMYRF_CHECK_HINT(
      v.size(2) == dm.nk, op,
      "k and v lengths differ (" << dm.nk << " keys vs " << v.size(2) << " values): " << s,
      "every key needs one value: k and v share dim 2");
  SMYRF_CHECK_HINT(dm.d > 0 && dm.dv > 0, op, "head sizes must be positive: " << s,
                   "d = q.size(3) and dv = v.size(3) must be at least 1");
  return dm;
}

// A (B, N) mask as the kernels read it: bytes, nonzero = real token. On the CPU a byte vector;
// on CUDA a contiguous bool tensor on the device (bool is one byte holding 0 or 1).
struct MaskBuffer {
  std::vector<uint8_t> bytes;
  Tensor device_copy;
  const uint8_t* data() const {
    if (device_copy.defined()) return static_cast<const uint8_t*>(device_copy.raw_data());
    return bytes.empty() ? nullptr : bytes.data();
  }
  // A contiguous CPU bool mask as bytes.
  static MaskBuffer from_host(const Tensor& c) {
    MaskBuffer h;
    const bool* p = c.data_ptr<bool>();
    h.bytes.resize(static_cast<size_t>(c.numel()));
    for (size_t i = 0; i < h.bytes.size(); ++i) h.bytes[i] = p[i] ? 1 : 0;
    return h;
  }
  // The same mask as host bytes.
  MaskBuffer on_host() const {
    return device_copy.defined() ? from_host(raw::to_device(device_copy, Device::cpu())) : *this;
  }
};

// `device` is q's: the mask must be there too, and the kernels read it there.
MaskBuffer mask_bytes(const char* op, const Tensor& mask, const char* name, int64_t B, int64_t n,
                      const char* len_name, const Device& device) {
  if (!mask.defined()) return {};
  SMYRF_CHECK_HINT(mask.dtype() == kBool, op,
                   name << " must be bool (true = real token), got " << dtype_name(mask.dtype()),
                   "build it with a comparison, e.g. lengths > position, or .to(kBool)");
  SMYRF_CHECK_HINT(mask.dim() == 2 && mask.size(0) == B && mask.size(1) == n, op,
                   name << " must be (batch, " << len_name << ") = (" << B << ", " << n << "), got "
                        << shape_str(mask.shape()),
                   "one row per batch element, true for real tokens");
  SMYRF_CHECK_HINT(mask.device() == device, op,
                   name << " is on " << mask.device().str() << " but q is on " << device.str(),
                   "move the mask to q's device");
  const Tensor c = raw::contiguous(mask);
  if (!device.is_cuda()) return MaskBuffer::from_host(c);
  MaskBuffer out;
  out.device_copy = c;
  return out;
}

// Kernels report bad parameters as std::invalid_argument("[op] what; hint: ..."); users get an
// smyrf::Error with the tensor shapes added.
template <typename F>
void call_kernel(const char* op, const std::string& shapes, F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    std::string msg = e.what();
    const std::string prefix = std::string("[") + op + "] ";
    if (msg.rfind(prefix, 0) == 0) msg = msg.substr(prefix.size());
    std::string hint = "check the shapes and options";
    const size_t h = msg.find("; hint: ");
    if (h != std::string::npos) {
      hint = msg.substr(h + 8);
      msg = msg.substr(0, h);
    }
    throw Error(op, msg + " (" + shapes + ")", hint);
  }
}

// The per-query log-sum-exp is kept in q's dtype, except for bfloat16 (CUDA tensor-core
// kernels), whose LSE is float32: a bfloat16 LSE would cost the backward 0.4% per probability.
DType lse_dtype(DType q) { return q == kBFloat16 ? kFloat32 : q; }

template <typename F>
void dispatch(DType dt, F&& f) {
  if (dt == kFloat32)
    f(float{});
  else
    f(double{});
}

double resolve_scale(const char* op, const AttentionOptions& o, int64_t d) {
  const double s = o.scale ? *o.scale : 1.0 / std::sqrt(static_cast<double>(d));
  SMYRF_CHECK_HINT(std::isfinite(s), op, "scale must be finite, got " << s,
                   "leave it unset for 1/sqrt(d)");
  return s;
}

// The dropout seed of this call (0 when dropout is off), drawn from the options' generator.
uint64_t draw_dropout(const char* op, const AttentionOptions& o, double* p) {
  SMYRF_CHECK_HINT(o.dropout_p >= 0.0 && o.dropout_p < 1.0, op,
                   "dropout_p must lie in [0, 1), got " << o.dropout_p,
                   "p = 1 would drop every pair; use 0 to disable");
  *p = (o.training && o.dropout_p > 0) ? o.dropout_p : 0.0;
  if (*p == 0) return 0;
  return (o.generator ? *o.generator : default_generator()).next_u64();
}

// Owns the mask bytes the kernel parameters point into, so the backward can run later.
struct DenseState {
  kc::AttentionParams p;
  MaskBuffer key_mask, query_mask;
  kc::AttentionParams params() const {
    kc::AttentionParams r = p;
    r.key_mask = key_mask.data();
    r.query_mask = query_mask.data();
    return r;
  }
};

struct SmyrfState {
  kc::SmyrfParams p;
  MaskBuffer key_mask, query_mask;
  kc::SmyrfPlan plan;                                  // CPU
  std::shared_ptr<cuda_ops::SmyrfCudaPlan> cuda_plan;  // CUDA
  kc::SmyrfParams params() const {
    kc::SmyrfParams r = p;
    r.key_mask = key_mask.data();
    r.query_mask = query_mask.data();
    return r;
  }
};

Tensor check_bias(const Tensor& bias, const Dims& dm, DType dt, const Device& device) {
  const char* op = "attention";
  if (!bias.defined()) return Tensor();
  SMYRF_CHECK_HINT(!bias.requires_grad(), op,
                   "the bias " << shape_str(bias.shape()) << " requires grad, but it is a constant",
                   "pass bias.detach(); the bias receives no gradient");
  SMYRF_CHECK_HINT(bias.dtype() == dt && bias.device() == device, op,
                   "bias is " << dtype_name(bias.dtype()) << " on " << bias.device().str()
                              << " but q is " << dtype_name(dt) << " on " << device.str(),
                   "convert the bias to q's dtype and device");
  const bool shared = bias.dim() == 2 && bias.size(0) == dm.nq && bias.size(1) == dm.nk;
  const bool per_row = bias.dim() == 4 && bias.size(0) == dm.B && bias.size(1) == dm.H &&
                       bias.size(2) == dm.nq && bias.size(3) == dm.nk;
  SMYRF_CHECK_HINT(shared || per_row, op,
                   "bias must be (Nq, Nk) = (" << dm.nq << ", " << dm.nk
                                               << ") or (B, H, Nq, Nk) = (" << dm.B << ", " << dm.H
                                               << ", " << dm.nq << ", " << dm.nk << "), got "
                                               << shape_str(bias.shape()),
                   "expand it explicitly for other broadcasts");
  return raw::contiguous(bias);
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& o) {
  const char* op = "attention";
  const Dims dm = check_qkv(op, q, k, v);
  const std::string shapes = qkv_str(q, k, v);
  auto st = std::make_shared<DenseState>();
  const Device run_on = q.device();
  st->key_mask = mask_bytes(op, o.key_padding_mask, "key_padding_mask", dm.B, dm.nk, "Nk", run_on);
  st->query_mask =
      mask_bytes(op, o.query_padding_mask, "query_padding_mask", dm.B, dm.nq, "Nq", run_on);
  const Tensor bias = check_bias(o.bias, dm, q.dtype(), q.device());
  kc::AttentionParams& p = st->p;
  p.batch_heads = dm.B * dm.H;
  p.heads = dm.H;
  p.nq = dm.nq, p.nk = dm.nk, p.d = dm.d, p.dv = dm.dv;
  p.scale = resolve_scale(op, o, dm.d);
  p.causal = o.causal;
  p.bias_bh_stride = bias.defined() && bias.dim() == 4 ? dm.nq * dm.nk : 0;
  p.dropout_seed = draw_dropout(op, o, &p.dropout_p);

  const Tensor qc = raw::contiguous(q), kc_ = raw::contiguous(k), vc = raw::contiguous(v);
  const TensorOptions like_q = TensorOptions(q.dtype()).set_device(q.device());
  Tensor out = empty({dm.B, dm.H, dm.nq, dm.dv}, like_q);
  Tensor lse =
      empty({dm.B, dm.H, dm.nq}, TensorOptions(lse_dtype(q.dtype())).set_device(q.device()));
  const kc::AttentionParams params = st->params();
  if (q.device().is_cuda())
    cuda_ops::attention_forward(params, qc, kc_, vc, bias, out, lse);
  else
    dispatch(q.dtype(), [&](auto t) {
      using T = decltype(t);
      call_kernel(op, shapes, [&] {
        kc::attention_forward<T>(params, qc.data_ptr<T>(), kc_.data_ptr<T>(), vc.data_ptr<T>(),
                                 bias.defined() ? bias.data_ptr<T>() : nullptr, out.data_ptr<T>(),
                                 lse.data_ptr<T>());
      });
    });
  if (needs_grad({q, k, v})) {
    const Tensor qs = alias(qc), ks = alias(kc_), vs = alias(vc), os = alias(out);
    record(op, {q, k, v}, {out},
           [st, qs, ks, vs, os, lse, bias](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             const Tensor go = raw::contiguous(g[0]);
             const TensorOptions like = TensorOptions(qs.dtype()).set_device(qs.device());
             Tensor dq = empty(qs.shape(), like);
             Tensor dk = empty(ks.shape(), like);
             Tensor dv = empty(vs.shape(), like);
             const kc::AttentionParams bp = st->params();
             if (qs.device().is_cuda()) {
               cuda_ops::attention_backward(bp, qs, ks, vs, bias, os, lse, go, dq, dk, dv);
               return {dq, dk, dv};
             }
             dispatch(qs.dtype(), [&](auto t) {
               using T = decltype(t);
               kc::attention_backward<T>(bp, qs.data_ptr<T>(), ks.data_ptr<T>(), vs.data_ptr<T>(),
                                         bias.defined() ? bias.data_ptr<T>() : nullptr,
                                         os.data_ptr<T>(), lse.data_ptr<T>(), go.data_ptr<T>(),
                                         dq.data_ptr<T>(), dk.data_ptr<T>(), dv.data_ptr<T>());
             });
             return {dq, dk, dv};
           },
           {q, k, v, out});
  }
  return out;
}

namespace {

// Share of dense attention mass on the keys each query attends in some round (see the header).
template <typename T>
void smyrf_coverage(const kc::SmyrfParams& p, const T* q, const T* k, const int32_t* qcl,
                    const int32_t* kcl, const int32_t* mult, double* cov) {
  const int64_t BH = p.batch_heads, R = p.n_hashes, nq = p.nq, nk = p.nk, d = p.d;
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t row = 0; row < BH * nq; ++row) {
    const int64_t bh = row / nq, i = row % nq, b = bh / p.heads;
    cov[row] = 0;
    if (p.query_mask && !p.query_mask[b * nq + i]) continue;
    std::vector<double> s(static_cast<size_t>(nk));
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < nk; ++j) {
      const bool allowed = (!p.key_mask || p.key_mask[b * nk + j]) && (!p.causal || j <= i);
      double acc = -std::numeric_limits<double>::infinity();
      if (allowed) {
        acc = 0;
        const T* qi = q + (bh * nq + i) * d;
        const T* kj = k + (bh * nk + j) * d;
        for (int64_t c = 0; c < d; ++c) acc += static_cast<double>(qi[c]) * kj[c];
        acc *= p.scale;
      }
      s[j] = acc;
      mx = std::max(mx, acc);
    }
    if (!std::isfinite(mx)) continue;
    double total = 0, seen = 0;
    for (int64_t j = 0; j < nk; ++j) {
      const double e = std::exp(s[j] - mx);
      total += e;
      bool attended = false;
      if (mult) {
        attended = mult[(bh * nq + i) * nk + j] > 0;
      } else {
        for (int64_t r = 0; r < R && !attended; ++r) {
          const int32_t c = qcl[(bh * R + r) * nq + i];
          attended = c >= 0 && kcl[(bh * R + r) * nk + j] == c;
        }
      }
      if (attended) seen += e;
    }
    cov[row] = seen / total;
  }
}

void fill_diagnostics(SmyrfDiagnostics& dg, const SmyrfState& st, const Dims& dm, const Tensor& qc,
                      const Tensor& kc_) {
  const char* op = "smyrf_attention";
  const kc::SmyrfParams p = st.params();
  const int64_t R = p.n_hashes;
  dg.q_cluster = Tensor();
  dg.k_cluster = Tensor();
  dg.multiplicity = Tensor();
  dg.coverage = Tensor();
  const bool clusters = !p.causal && (dg.want_clusters || dg.want_coverage);
  if (qc.device().is_cuda() && p.causal && (dg.want_multiplicity || dg.want_coverage)) {
    // A causal plan is a host computation anyway (core/ops_cuda_nn builds it from host copies and
    // keeps it): the CPU diagnostics run on it and on host copies, and come back as CPU tensors.
    SmyrfState host;
    host.p = st.p;
    host.key_mask = st.key_mask.on_host();
    host.query_mask = st.query_mask.on_host();
    host.plan = *cuda_ops::smyrf_host_plan(*st.cuda_plan);
    fill_diagnostics(dg, host, dm, raw::to_device(qc, Device::cpu()),
                     raw::to_device(kc_, Device::cpu()));
    return;
  }
  if (qc.device().is_cuda()) {
    SMYRF_CHECK_HINT(
        !dg.want_multiplicity && !dg.want_coverage, op,
        "the multiplicity and coverage diagnostics are computed on the CPU only",
        "run the call on CPU copies of q, k, v with the same seed (diagnostics->seed)");
    if (dg.want_clusters && !p.causal) {  // causal plans have no clusters (as on the CPU)
      const TensorOptions ints = TensorOptions(kInt32).set_device(qc.device());
      dg.q_cluster = empty({dm.B, dm.H, R, dm.nq}, ints);
      dg.k_cluster = empty({dm.B, dm.H, R, dm.nk}, ints);
      cuda_ops::smyrf_clusters(*st.cuda_plan, dg.q_cluster, dg.k_cluster);
    }
    return;
  }
  if (clusters) {
    dg.q_cluster = empty({dm.B, dm.H, R, dm.nq}, TensorOptions(kInt32));
    dg.k_cluster = empty({dm.B, dm.H, R, dm.nk}, TensorOptions(kInt32));
    kc::smyrf_cluster_assignment(p, st.plan, dg.q_cluster.data_ptr<int32_t>(),
                                 dg.k_cluster.data_ptr<int32_t>());
  }
  // causal plans have no clusters, so their coverage needs M
  const bool mult = dg.want_multiplicity || (p.causal && dg.want_coverage);
  if (mult) {
    const int64_t n = dm.B * dm.H * dm.nq * dm.nk;
    SMYRF_CHECK_HINT(n <= dg.max_matrix_elements, op,
                     "the multiplicity matrix ("
                         << dm.B << ", " << dm.H << ", " << dm.nq << ", " << dm.nk << ") has " << n
                         << " elements, above max_matrix_elements = " << dg.max_matrix_elements,
                     "raise SmyrfDiagnostics::max_matrix_elements or request it for small N");
    dg.multiplicity = empty({dm.B, dm.H, dm.nq, dm.nk}, TensorOptions(kInt32));
    kc::smyrf_multiplicity(p, st.plan, dg.multiplicity.data_ptr<int32_t>());
  }
  if (dg.want_coverage) {
    dg.coverage = empty({dm.B, dm.H, dm.nq}, TensorOptions(kFloat64));
    const int32_t* m = mult ? dg.multiplicity.data_ptr<int32_t>() : nullptr;
    const int32_t* qcl = clusters ? dg.q_cluster.data_ptr<int32_t>() : nullptr;
    const int32_t* kcl = clusters ? dg.k_cluster.data_ptr<int32_t>() : nullptr;
    dispatch(qc.dtype(), [&](auto t) {
      using T = decltype(t);
      smyrf_coverage<T>(p, qc.data_ptr<T>(), kc_.data_ptr<T>(), qcl, kcl, m,
                        dg.coverage.data_ptr<double>());
    });
  }
  if (!dg.want_clusters) {
    dg.q_cluster = Tensor();
    dg.k_cluster = Tensor();
  }
  if (!dg.want_multiplicity) dg.multiplicity = Tensor();
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

Tensor smyrf_attention(const Tensor& q, const Tensor& k, const Tensor& v, const SmyrfOptions& o) {
  const char* op = "smyrf_attention";
  const Dims dm = check_qkv(op, q, k, v);
  const std::string shapes = qkv_str(q, k, v);
  SMYRF_CHECK_HINT(!o.bias.defined(), op, "an additive bias is not supported by SMYRF",
                   "SMYRF's bias is its own log M; use attention() for an explicit bias");
  SMYRF_CHECK_HINT(o.n_hashes >= 1, op, "n_hashes must be at least 1, got " << o.n_hashes,
                   "the paper uses 1 to 8 rounds");
  SMYRF_CHECK_HINT(o.q_cluster_size >= 1 && o.k_cluster_size >= 1, op,
                   "cluster sizes must be positive, got Cq = " << o.q_cluster_size
                                                               << ", Ck = " << o.k_cluster_size,
                   "for example Cq = Ck = 32");
  if (o.causal) {
    SMYRF_CHECK_HINT(
        dm.nq == dm.nk, op, "causal SMYRF needs Nq == Nk (" << shapes << ")",
        "causal mode is for self-attention; use attention() for causal cross-attention");
    SMYRF_CHECK_HINT(q.dtype() != kBFloat16, op,
                     "causal SMYRF takes float32 (CPU or CUDA) or float64 (CPU), got bfloat16 ("
                         << shapes << ")",
                     "convert q, k and v with .to(kFloat32) for causal SMYRF");
  } else if (dm.nq > 0 || dm.nk > 0) {
    const int64_t cq = ceil_div(dm.nq, o.q_cluster_size), ck = ceil_div(dm.nk, o.k_cluster_size);
    SMYRF_CHECK_HINT(
        cq == ck, op,
        "query and key clusters cannot pair: ceil(Nq/Cq) = ceil("
            << dm.nq << "/" << o.q_cluster_size << ") = " << cq
            << " query clusters but ceil(Nk/Ck) = ceil(" << dm.nk << "/" << o.k_cluster_size
            << ") = " << ck << " key clusters (" << shapes << ")",
        "query cluster c attends key cluster c; choose Ck about Cq * Nk / Nq = " << ceil_div(
            o.q_cluster_size * std::max<int64_t>(dm.nk, 1), std::max<int64_t>(dm.nq, 1)));
  }
  auto st = std::make_shared<SmyrfState>();
  // Every call runs on its inputs' device. (Causal SMYRF on CUDA builds its plan on the host from
  // copies of q and k, and runs the attention on the device: core/ops_cuda_nn.)
  const Device run_on = q.device();
  st->key_mask = mask_bytes(op, o.key_padding_mask, "key_padding_mask", dm.B, dm.nk, "Nk", run_on);
  st->query_mask =
      mask_bytes(op, o.query_padding_mask, "query_padding_mask", dm.B, dm.nq, "Nq", run_on);
  kc::SmyrfParams& p = st->p;
  p.batch_heads = dm.B * dm.H;
  p.heads = dm.H;
  p.nq = dm.nq, p.nk = dm.nk, p.d = dm.d, p.dv = dm.dv;
  p.n_hashes = o.n_hashes;
  p.cq = o.q_cluster_size, p.ck = o.k_cluster_size;
  p.scale = resolve_scale(op, o, dm.d);
  p.causal = o.causal;
  p.duplicates = o.duplicates == SmyrfDuplicates::Set ? kc::SmyrfDuplicates::Set
                                                      : kc::SmyrfDuplicates::Multiset;
  // the hash seed is drawn before the dropout seed, so an explicit seed leaves the generator
  // stream exactly as attention() would consume it (SMYRF and dense then share dropout masks)
  p.seed = o.seed ? *o.seed : (o.generator ? *o.generator : default_generator()).next_u64();
  p.dropout_seed = draw_dropout(op, o, &p.dropout_p);

  const Tensor qc = raw::contiguous(q), kc_ = raw::contiguous(k), vc = raw::contiguous(v);
  const TensorOptions like_q = TensorOptions(q.dtype()).set_device(run_on);
  Tensor out = empty({dm.B, dm.H, dm.nq, dm.dv}, like_q);
  Tensor lse = empty({dm.B, dm.H, dm.nq}, TensorOptions(lse_dtype(q.dtype())).set_device(run_on));
  const kc::SmyrfParams params = st->params();
  if (run_on.is_cuda()) {
    st->cuda_plan = cuda_ops::smyrf_make_plan(params, qc, kc_);
    cuda_ops::smyrf_forward(params, *st->cuda_plan, qc, kc_, vc, out, lse);
  } else
    dispatch(q.dtype(), [&](auto t) {
      using T = decltype(t);
      call_kernel(op, shapes, [&] {
        st->plan = kc::smyrf_make_plan<T>(params, qc.data_ptr<T>(), kc_.data_ptr<T>());
        kc::smyrf_forward<T>(params, st->plan, qc.data_ptr<T>(), kc_.data_ptr<T>(),
                             vc.data_ptr<T>(), out.data_ptr<T>(), lse.data_ptr<T>());
      });
    });
  if (o.diagnostics) {
    o.diagnostics->seed = p.seed;
    o.diagnostics->dropout_seed = p.dropout_seed;
    fill_diagnostics(*o.diagnostics, *st, dm, qc, kc_);
  }
  if (needs_grad({q, k, v})) {
    const Tensor qs = alias(qc), ks = alias(kc_), vs = alias(vc), os = alias(out);
    record(op, {q, k, v}, {out},
           [st, qs, ks, vs, os, lse](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             const Tensor go = raw::contiguous(g[0]);
             const TensorOptions like = TensorOptions(qs.dtype()).set_device(qs.device());
             Tensor dq = empty(qs.shape(), like);
             Tensor dk = empty(ks.shape(), like);
             Tensor dv = empty(vs.shape(), like);
             const kc::SmyrfParams bp = st->params();
             if (qs.device().is_cuda()) {
               cuda_ops::smyrf_backward(bp, *st->cuda_plan, qs, ks, vs, os, lse, go, dq, dk, dv);
               return {dq, dk, dv};
             }
             dispatch(qs.dtype(), [&](auto t) {
               using T = decltype(t);
               kc::smyrf_backward<T>(bp, st->plan, qs.data_ptr<T>(), ks.data_ptr<T>(),
                                     vs.data_ptr<T>(), os.data_ptr<T>(), lse.data_ptr<T>(),
                                     go.data_ptr<T>(), dq.data_ptr<T>(), dk.data_ptr<T>(),
                                     dv.data_ptr<T>());
             });
             return {dq, dk, dv};
           },
           {q, k, v, out});
  }
  return out;
}

}  // namespace smyrf
